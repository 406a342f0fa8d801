// Vite config for the browser example. Installed, "handprop" resolves from node_modules and this file
// adds nothing; in handprop's own checkout it maps "handprop" to the TypeScript source (src/index.ts).
//   npx vite examples/browser            # dev server
//   npx vite build examples/browser      # static files in examples/browser/dist/

import { existsSync } from "node:fs";
import { fileURLToPath } from "node:url";
import { defineConfig } from "vite";

const checkoutSource = fileURLToPath(new URL("../../src/index.ts", import.meta.url));

export default defineConfig({
  base: "./",
  resolve: existsSync(checkoutSource) ? { alias: { handprop: checkoutSource } } : {},
  worker: { format: "es" },
  build: { target: "es2022", chunkSizeWarningLimit: 2048 },
});
