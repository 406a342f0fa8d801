// Vite config for handprop's two-page playground (web/index.html, web/mnist.html).
// `vite build web` / `vite web` from the repo root, or `handprop serve` (src/cli/serve.ts).
//
// Before anything else it makes sure the MNIST subset exists (web/scripts/make-subset.mjs), and it
// tells the page at build time whether a pretrained model was shipped in web/public/models/lenet5/,
// so the page never requests a file that is not there (a 404 is a console error in the browser).

import { existsSync } from "node:fs";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { defineConfig } from "vite";
import { ensureMnistSubset } from "./scripts/make-subset.mjs";

const here = dirname(fileURLToPath(import.meta.url));
const repoRoot = resolve(here, "..");

// Cross-origin isolation (SharedArrayBuffer, precise timers) for the dev server and `vite preview`;
// src/cli/serve.ts sends the same headers.
const isolation = {
  "Cross-Origin-Opener-Policy": "same-origin",
  "Cross-Origin-Embedder-Policy": "require-corp",
};

export default defineConfig(() => {
  ensureMnistSubset();
  const modelDir = join(here, "public", "models", "lenet5");
  const pretrained = existsSync(join(modelDir, "model.json")) && existsSync(join(modelDir, "weights.bin"));
  return {
    root: here,
    base: "./", // relative asset URLs: the build works from any path and from file-less static hosts
    appType: "mpa" as const, // a missing file is a 404, never index.html
    publicDir: "public",
    define: { __HANDPROP_PRETRAINED__: JSON.stringify(pretrained) },
    // The pages import the library by its package name, as a user's page would; here that is the source
    // itself, so the dev server and the build need no compiled dist/.
    resolve: { alias: [{ find: /^handprop$/, replacement: join(repoRoot, "src", "index.ts") }] },
    build: {
      outDir: "dist",
      emptyOutDir: true,
      target: "es2022",
      chunkSizeWarningLimit: 1024,
      rolldownOptions: {
        input: {
          index: join(here, "index.html"),
          mnist: join(here, "mnist.html"),
          backward: join(here, "backward.html"),
        },
      },
    },
    worker: { format: "es" as const },
    server: { host: "127.0.0.1", headers: isolation, fs: { allow: [repoRoot] } },
    preview: { host: "127.0.0.1", headers: isolation },
  };
});
