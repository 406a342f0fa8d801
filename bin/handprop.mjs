#!/usr/bin/env node
// The handprop command. An installed package runs the compiled CLI (dist/cli.js, one file, no loader).
// A checkout (src/ present, and tsx from its devDependencies) runs the TypeScript sources through tsx, so
// development needs no build step; HANDPROP_CLI=dist runs the compiled CLI there too (after npm run build).
import { existsSync } from "node:fs";

const sources = new URL("../src/cli/main.ts", import.meta.url);
let main;
if (process.env.HANDPROP_CLI !== "dist" && existsSync(sources)) {
  let register = null;
  try {
    ({ register } = await import("tsx/esm/api"));
  } catch {
    // a checkout installed without devDependencies: fall through to the compiled CLI, if it was built
  }
  if (register !== null) {
    register();
    ({ main } = await import(sources.href));
  }
}
if (main === undefined) {
  const compiled = new URL("../dist/cli.js", import.meta.url);
  if (!existsSync(compiled)) {
    process.stderr.write(
      "handprop: dist/cli.js is missing: in a checkout run `npm install` (or `npm run build`); " +
        "an installed copy without it was packed without its build: reinstall handprop\n",
    );
    process.exit(1);
  }
  ({ main } = await import(compiled.href));
}
process.exitCode = await main(process.argv.slice(2));
