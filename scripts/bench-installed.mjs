#!/usr/bin/env node
// The installed package against the checkout: CLI start-up and LeNet-5 training speed.
//
//   node scripts/bench-installed.mjs [--rounds N] [--project DIR]
//
// Packs the checkout (npm pack: its prepack builds dist/ and the pages) and installs the tarball offline
// into a temporary empty project, unless --project names a folder where handprop is already installed.
// Then, in rounds that alternate the systems (so a machine busy with other work affects both alike):
//
//   start-up   wall time of `handprop --help` and `handprop seed` — the installed bin directly and through
//              npx, and the checkout's `node bin/handprop.mjs` (tsx on src/)
//   training   LeNet-5 training images/s, batch 64, Adam, one thread, float32, random inputs: the installed
//              dist/ in plain Node against the checkout's src/ through tsx, each in a fresh process
//
// Prints medians (and min–max) per system and the median of the per-round ratios installed/checkout.

import { spawnSync } from "node:child_process";
import { mkdirSync, mkdtempSync, readdirSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";

const root = resolve(dirname(fileURLToPath(import.meta.url)), "..");
const args = process.argv.slice(2);
const flag = (name, fallback) => {
  const i = args.indexOf(name);
  return i >= 0 ? args[i + 1] : fallback;
};
const rounds = Number(flag("--rounds", "9"));

function run(cmd, argv, cwd, extra = {}) {
  const r = spawnSync(cmd, argv, { cwd, encoding: "utf8", maxBuffer: 64 << 20, ...extra });
  if (r.status !== 0) throw new Error(`${cmd} ${argv.join(" ")} exited ${r.status}: ${r.stderr}`);
  return r.stdout;
}

let project = flag("--project", null);
if (project === null) {
  const work = mkdtempSync(join(tmpdir(), "handprop-bench-installed-"));
  run("npm", ["pack", "--pack-destination", work, "--loglevel", "error"], root);
  const tarball = join(
    work,
    readdirSync(work).find((f) => f.endsWith(".tgz")),
  );
  project = join(work, "project");
  mkdirSync(project);
  writeFileSync(join(project, "package.json"), '{"name": "consumer", "private": true, "type": "module"}\n');
  run("npm", ["install", "--offline", "--no-audit", "--no-fund", "--loglevel", "error", tarball], project);
  process.stderr.write(
    `installed in ${project} (pass --project ${project} to measure it again; delete ${work} when done)\n`,
  );
}
project = resolve(project);
const installedBin = join(project, "node_modules", ".bin", "handprop");

// One training measurement per process: warm up, then time whole steps.
const trainer = join(project, "bench-train.mjs");
writeFileSync(
  trainer,
  `const h = await import(process.argv[2]);
const batch = 64, warm = 5, steps = 40;
const model = h.buildModel("lenet5", { seed: 0 });
const rng = new h.RandomState(1);
const x = new h.NDArray(Float32Array.from({ length: batch * 784 }, () => rng.uniform()), [batch, 1, 28, 28]);
const y = Int32Array.from({ length: batch }, (_, i) => i % 10);
const loss = new h.SoftmaxCrossEntropy(), opt = new h.Adam({ lr: 1e-3 });
for (let i = 0; i < warm; i++) model.trainBatch(x, y, loss, opt);
const t0 = performance.now();
for (let i = 0; i < steps; i++) model.trainBatch(x, y, loss, opt);
const seconds = (performance.now() - t0) / 1000;
console.log(JSON.stringify({ imagesPerSecond: (steps * batch) / seconds, backend: h.getBackend(), threads: h.getThreads() }));
`,
);

const startup = {
  "installed: handprop --help": [installedBin, ["--help"], project],
  "installed: handprop seed": [installedBin, ["seed"], project],
  "installed: npx handprop --help": ["npx", ["--offline", "--no-install", "handprop", "--help"], project],
  "installed: npx handprop seed": ["npx", ["--offline", "--no-install", "handprop", "seed"], project],
  "checkout: node bin/handprop.mjs --help": [process.execPath, [join(root, "bin/handprop.mjs"), "--help"], root],
  "checkout: node bin/handprop.mjs seed": [process.execPath, [join(root, "bin/handprop.mjs"), "seed"], root],
};
const training = {
  installed: [process.execPath, [trainer, join(project, "node_modules/handprop/dist/index.js")], project],
  checkout: [process.execPath, ["--import", "tsx", trainer, join(root, "src/index.ts")], root],
};

const times = Object.fromEntries(Object.keys(startup).map((k) => [k, []]));
const speed = { installed: [], checkout: [] };
const ratios = [];
for (let r = 0; r < rounds; r++) {
  for (const [name, [cmd, argv, cwd]] of Object.entries(startup)) {
    const t0 = performance.now();
    run(cmd, argv, cwd);
    times[name].push(performance.now() - t0);
  }
  const perRound = {};
  for (const [name, [cmd, argv, cwd]] of Object.entries(training)) {
    const out = JSON.parse(run(cmd, argv, cwd, { env: { ...process.env, HANDPROP_THREADS: "" } }));
    if (out.backend !== "wasm") throw new Error(`${name}: trained on the ${out.backend} backend`);
    perRound[name] = out.imagesPerSecond;
    speed[name].push(out.imagesPerSecond);
  }
  ratios.push(perRound.installed / perRound.checkout);
  process.stderr.write(`round ${r + 1}/${rounds}\n`);
}

const median = (xs) => {
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2;
};
const range = (xs) => `${Math.min(...xs).toFixed(0)}–${Math.max(...xs).toFixed(0)}`;
console.log(`${rounds} alternating rounds; Node ${process.version}`);
console.log("start-up, wall ms: median (min–max)");
for (const [name, xs] of Object.entries(times))
  console.log(`  ${name.padEnd(42)} ${median(xs).toFixed(0).padStart(5)} (${range(xs)})`);
console.log("LeNet-5 training, batch 64, 1 thread, images/s: median (min–max)");
for (const [name, xs] of Object.entries(speed))
  console.log(`  ${name.padEnd(10)} ${median(xs).toFixed(0).padStart(6)} (${range(xs)})`);
console.log(
  `  installed/checkout, median of per-round ratios: ${median(ratios).toFixed(3)} (${Math.min(...ratios).toFixed(3)}–${Math.max(...ratios).toFixed(3)})`,
);
