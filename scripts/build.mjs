#!/usr/bin/env node
// `npm run build`: the compiled package in dist/, what an installed copy of handprop runs.
//
//   dist/**/*.js, *.d.ts    the library (src/ minus src/cli/), ESM, with declaration and source maps, by
//                           tsc -p tsconfig.build.json (rewriteRelativeImportExtensions: ./x.ts → ./x.js)
//   dist/kernels/wasm/kernels.generated.js
//                           the WebAssembly kernels (built first if stale), so an installed copy runs
//                           exactly the checkout's kernels
//   dist/cli.js             the handprop command as one file (esbuild), with pngjs and cli-progress
//                           inside: the package has no runtime dependencies and starts without a loader
//
// The checkout itself needs none of this (tests and `npx handprop` run src/ through tsx). The playground
// pages are built separately (`npm run build:web`); `npm pack` runs all three (prepack).
//
// dist/ is removed first, so nothing stale from an earlier build ships; any failure exits 1.

import { spawnSync } from "node:child_process";
import { existsSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";

const root = resolve(dirname(fileURLToPath(import.meta.url)), "..");
const dist = join(root, "dist");

function fail(message) {
  console.error(`build: ${message}`);
  process.exit(1);
}

function run(args) {
  const r = spawnSync(process.execPath, args, { cwd: root, stdio: "inherit" });
  if (r.status !== 0) fail(`${args.join(" ")} failed (exit ${r.status ?? r.signal})`);
}

// 1. Kernels. Without them a package would silently train ~15× slower, so their absence is an error here.
run([join(root, "scripts/build-wasm.mjs"), "--if-stale"]);
if (!existsSync(join(root, "src/kernels/wasm/kernels.generated.ts"))) {
  fail("src/kernels/wasm/kernels.generated.ts was not built: the assemblyscript devDependency is needed (npm install)");
}

// 2. The library.
rmSync(dist, { recursive: true, force: true });
run([join(root, "node_modules/typescript/bin/tsc"), "-p", join(root, "tsconfig.build.json")]);

// wasm-loader.ts imports the generated module through a computed specifier (so that tsc and eslint pass on a
// fresh clone before it is built), which tsc turns into a run-time rewrite. Bundlers cannot follow
// that, so the compiled file names the module literally: esbuild, webpack and Vite then bundle the
// kernels like any other import.
const wasmJs = join(dist, "kernels/wasm-loader.js");
const computed = "import(__rewriteRelativeImportExtension(`./wasm/${name}.ts`))";
const source = readFileSync(wasmJs, "utf8");
if (source.split(computed).length !== 2) fail(`${wasmJs}: expected exactly one \`${computed}\` to make literal`);
writeFileSync(wasmJs, source.replace(computed, 'import("./wasm/kernels.generated.js")'));
if (!existsSync(join(dist, "kernels/wasm/kernels.generated.js")))
  fail("dist/kernels/wasm/kernels.generated.js was not emitted");

// 3. The CLI, one file. The CLI's source imports the library by relative paths, so the library is
// inside it too (the kernels included, through the same computed import, which esbuild expands to the
// files it matches). CommonJS dependencies (pngjs, cli-progress) call require(): the banner gives the
// ESM bundle one. vite (serve's page build) and bench/ (the peer benchmark) exist only in a checkout,
// which runs the CLI from src/ anyway; they stay external and are reported as absent if reached.
const { build } = await import("esbuild");
await build({
  entryPoints: [join(root, "src/cli/main.ts")],
  outfile: join(dist, "cli.js"),
  bundle: true,
  platform: "node",
  format: "esm",
  target: "node20",
  external: ["vite", "../../bench/run.ts"],
  banner: {
    js:
      'import { createRequire as __handpropCreateRequire } from "node:module";\n' +
      "const require = __handpropCreateRequire(import.meta.url);",
  },
  legalComments: "inline",
  logLevel: "warning",
}).catch(() => fail("esbuild could not bundle src/cli/main.ts"));
