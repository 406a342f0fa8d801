#!/usr/bin/env node
// Compiles the AssemblyScript kernels (src/kernels/wasm/*.as) to WebAssembly with SIMD and writes
// src/kernels/wasm/kernels.generated.ts, which embeds the modules as base64 so that Node and the browser
// (Vite) load them with a plain import: no fetch, no fs, no .wasm asset to serve. Two variants of the
// same code are built:
//
//   wasmBase64        memory imported as an ordinary WebAssembly.Memory — what src/kernels/wasm.ts runs
//   wasmSharedBase64  memory imported as a *shared* WebAssembly.Memory (threads feature): the one to
//                     instantiate in several workers over one memory (needs cross-origin isolation in
//                     browsers); loadKernels(importer, { shared: true }) loads it
//
//   node scripts/build-wasm.mjs              build (npm install and npm ci run this as the "dependencies"
//                                            script: like "prepare" in a checkout, but never in a project
//                                            that installs handprop, which gets the kernels pre-built in dist/)
//   node scripts/build-wasm.mjs --if-stale   build only if the generated file is missing or was built
//                                            from other sources (pretest/prestart run this)
//
// The sources use the .as extension, not .ts: they are AssemblyScript (v128, usize, @inline), which the
// project's tsc and eslint would reject, and those only look at .ts files. The compiler asks for
// "<name>.ts"; readFile below answers with "<name>.as".
//
// Runs offline in seconds with the assemblyscript devDependency; without it (an install that omits
// devDependencies) it warns and exits 0, and handprop runs on its TypeScript kernels. The output is
// written to a temporary file and renamed, so an interrupted build never leaves half a module behind.

import { createHash } from "node:crypto";
import { existsSync, readFileSync, readdirSync, renameSync, writeFileSync } from "node:fs";
import { dirname, join, relative, resolve } from "node:path";
import { fileURLToPath } from "node:url";

const root = resolve(dirname(fileURLToPath(import.meta.url)), "..");
const srcDir = join(root, "src/kernels/wasm");
const outFile = join(srcDir, "kernels.generated.ts");
const entry = "src/kernels/wasm/index.ts"; // served from index.as

// Compiler flags. The memory is imported (src/kernels/wasm.ts creates it and owns its layout); the stub
// runtime has no allocator or GC, since the kernels only ever see pointers into buffers the JS side
// manages. -O3 with --noAssert: release build; bounds are the callers' job (wasm.ts sizes every buffer).
const common = [
  "-O3",
  "--noAssert",
  "--runtime",
  "stub",
  "--importMemory",
  "--enable",
  "simd",
  "--disable",
  "reference-types",
];
/** Maximum size of the shared memory in 64 KiB pages (2 GiB): a shared memory reserves its maximum up front. */
const SHARED_MAX_PAGES = 32768;
const variants = [
  { name: "wasmBase64", flags: common },
  {
    name: "wasmSharedBase64",
    flags: [...common, "--sharedMemory", "--maximumMemory", String(SHARED_MAX_PAGES), "--enable", "threads"],
  },
];

function sourceHash() {
  const h = createHash("sha256");
  h.update(readFileSync(fileURLToPath(import.meta.url))); // this script: flags and output format
  for (const name of readdirSync(srcDir)
    .filter((f) => f.endsWith(".as"))
    .sort()) {
    h.update(name)
      .update("\0")
      .update(readFileSync(join(srcDir, name)))
      .update("\0");
  }
  return h.digest("hex").slice(0, 16);
}

const hash = sourceHash();
if (process.argv.includes("--if-stale") && existsSync(outFile)) {
  const m = /sourceHash = "([0-9a-f]+)"/.exec(readFileSync(outFile, "utf8"));
  if (m && m[1] === hash) process.exit(0);
}

let asc;
try {
  asc = (await import("assemblyscript/asc")).default;
} catch {
  // e.g. an install without devDependencies: not an error, handprop runs on its TypeScript kernels
  console.warn(
    "build-wasm: the assemblyscript compiler is not installed (a devDependency), so the WebAssembly " +
      "kernels were not built; handprop falls back to its pure-TypeScript kernels.",
  );
  process.exit(0);
}

async function compile(flags) {
  let wasm = null;
  const { error, stderr } = await asc.main([entry, "--outFile", "kernels.wasm", ...flags], {
    readFile(filename, baseDir) {
      const p = resolve(root, baseDir, filename);
      if (!p.startsWith(srcDir) || !p.endsWith(".ts")) return null;
      const as = p.slice(0, -3) + ".as";
      return existsSync(as) ? readFileSync(as, "utf8") : null;
    },
    writeFile(filename, contents) {
      if (filename.endsWith(".wasm")) wasm = contents;
    },
    listFiles() {
      return [];
    },
  });
  if (error) {
    console.error(stderr.toString());
    console.error(`build-wasm: compilation failed: ${error.message}`);
    process.exit(1);
  }
  if (!(wasm instanceof Uint8Array)) {
    console.error("build-wasm: the compiler produced no module");
    process.exit(1);
  }
  return wasm;
}

const t0 = performance.now();
const parts = [];
for (const v of variants) {
  const wasm = await compile(v.flags);
  const lines =
    Buffer.from(wasm)
      .toString("base64")
      .match(/.{1,120}/g) ?? [];
  parts.push({ ...v, bytes: wasm.length, lines });
}

const ts = `// GENERATED by scripts/build-wasm.mjs from src/kernels/wasm/*.as — do not edit, do not commit.
// WebAssembly (SIMD) modules, base64-encoded so that Node and bundlers load them as plain code.

export const sourceHash = "${hash}";
${parts
  .map(
    (p) => `
/** ${p.bytes} bytes; asc ${p.flags.join(" ")} */
export const ${p.name} =
${p.lines.map((l) => `  "${l}"`).join(" +\n")};
`,
  )
  .join("")}`;
const tmp = `${outFile}.${process.pid}.tmp`;
writeFileSync(tmp, ts);
renameSync(tmp, outFile);
console.log(
  `build-wasm: ${relative(root, outFile)} (${parts.map((p) => `${p.name} ${p.bytes} bytes`).join(", ")}) in ${((performance.now() - t0) / 1000).toFixed(1)} s`,
);
