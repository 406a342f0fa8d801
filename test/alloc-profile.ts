// Allocation profile of steady-state training: V8's sampling heap profiler (node:inspector) over a
// number of training steps after a warm-up, with objects collected by minor and major GCs included, so
// every allocation made during the window counts, not only those still alive at the end. Used by
// test/alloc.test.ts (a budget) and runnable on its own for a per-call-site report:
//
//   node --import tsx test/alloc-profile.ts [--threads 1|2] [--optimizer adam|sgd] [--batch 64] [--warmup 300]
//                                           [--steps 200] [--windows 1] [--interval 64] [--trainer] [--json]
//                                           [--model lenet5|mobilenet-mini|…|grouped-convs]

import { Session } from "node:inspector/promises";
import { fileURLToPath } from "node:url";
import { NDArray } from "../src/nd/ndarray.ts";
import { RandomState } from "../src/nd/random.ts";
import { buildModel, type ModelName } from "../src/nn/models.ts";
import { Sequential } from "../src/nn/sequential.ts";
import { Conv2D } from "../src/nn/conv.ts";
import { DepthwiseConv2D } from "../src/nn/depthwise.ts";
import { ReLU } from "../src/nn/activations.ts";
import { Flatten } from "../src/nn/flatten.ts";
import { Dense } from "../src/nn/dense.ts";
import { Adam, SGD, type Optimizer } from "../src/nn/optim.ts";
import { SoftmaxCrossEntropy } from "../src/nn/losses.ts";
import { Trainer, trainStep } from "../src/nn/trainer.ts";
import { setBackend, setThreads } from "../src/kernels/backend.ts";

interface ProfileNode {
  callFrame: { functionName: string; url: string; lineNumber: number; columnNumber: number };
  selfSize: number;
  children: ProfileNode[];
}
interface SamplingProfile {
  head: ProfileNode;
  samples: { size: number; nodeId: number }[];
}

/** Bytes sampled at one call site (the allocating function and its caller chain's nearest handprop frame). */
export interface AllocationSite {
  site: string;
  /** Sampled bytes per step (an estimate: the profiler samples about one allocation per `interval` bytes). */
  bytesPerStep: number;
  /** True when the allocating frame or a caller is in this repository's src/ */
  ours: boolean;
  /**
   * True for the frames that call into the wasm kernels (runParts, KernelPool.run): V8 attributes its
   * own allocations during a long wasm call (not the kernels', which cannot allocate on the JS heap) to
   * the nearest JS frame. A single 0.3 ms wasm call in a loop shows ≈ 6 B per call; a 1 µs one ≈ 0.1 B.
   */
  engine: boolean;
}

export interface AllocationReport {
  steps: number;
  totalBytesPerStep: number;
  /** Bytes per step attributed to a frame in src/ (the allocating function, or its nearest src/ caller). */
  oursBytesPerStep: number;
  /** The part of oursBytesPerStep allocated in the frames that call wasm (see AllocationSite.engine). */
  engineBytesPerStep: number;
  sites: AllocationSite[];
}

const root = new URL("../src/", import.meta.url).href;

function describe(f: ProfileNode["callFrame"]): string {
  const where = f.url.startsWith(root) ? f.url.slice(root.length) : f.url || "(native)";
  return `${f.functionName || "(anonymous)"} ${where}`;
}

/** Sum selfSize per site; a site is the allocating frame plus its nearest caller in src/ (if another). */
const WASM_CALLERS = new Set(["runParts kernels/wasm-threads.ts", "run kernels/threads.ts"]);

type Sites = Map<string, { bytes: number; ours: boolean; engine: boolean }>;

function collect(node: ProfileNode, nearestOurs: ProfileNode | null, into: Sites): void {
  const isOurs = node.callFrame.url.startsWith(root);
  const ours = isOurs ? node : nearestOurs;
  if (node.selfSize > 0) {
    const key =
      isOurs || ours === null ? describe(node.callFrame) : `${describe(node.callFrame)} ← ${describe(ours.callFrame)}`;
    const engine = ours !== null && WASM_CALLERS.has(describe(ours.callFrame));
    const e = into.get(key) ?? { bytes: 0, ours: ours !== null, engine };
    e.bytes += node.selfSize;
    into.set(key, e);
  }
  for (const c of node.children) collect(c, ours, into);
}

export interface ProfileOptions {
  threads?: number;
  steps?: number;
  warmup?: number;
  batch?: number;
  /** Measurement windows of `steps` steps each; the quietest is reported. */
  windows?: number;
  /** Mean bytes between samples (smaller: finer, slower). */
  interval?: number;
  model?: ModelName | typeof GROUPED_CONVS;
  /** A model to profile instead of a zoo one (1×28×28 inputs, 10 classes). */
  build?: () => Sequential;
  optimizer?: "adam" | "sgd";
  /** Drive the steps through Trainer.step() (what fit and the CLI run) instead of trainStep. */
  trainer?: boolean;
}

/** A model of nothing but Conv2D, depthwise (multiplier 2, stride 2) and grouped (G = 4) convolutions, ReLU and Dense. */
export const GROUPED_CONVS = "grouped-convs";

function groupedConvs(): Sequential {
  return new Sequential(
    [
      new Conv2D({ outChannels: 8, kernelSize: 3, padding: "same" }),
      new ReLU(),
      new DepthwiseConv2D({ kernelSize: 3, stride: 2, padding: "same", depthMultiplier: 2 }),
      new ReLU(),
      new Conv2D({ outChannels: 16, kernelSize: 3, groups: 4 }),
      new ReLU(),
      new Flatten(),
      new Dense({ outFeatures: 10 }),
    ],
    { inputShape: [1, 28, 28], seed: 0 },
  );
}

/** Run `step` `steps` times under the sampling heap profiler and sum what it sampled per site. */
async function sampleSteps(
  session: Session,
  steps: number,
  interval: number,
  step: () => void,
): Promise<AllocationReport> {
  await session.post("HeapProfiler.collectGarbage");
  await session.post("HeapProfiler.startSampling", {
    samplingInterval: interval,
    includeObjectsCollectedByMajorGC: true,
    includeObjectsCollectedByMinorGC: true,
  });
  for (let i = 0; i < steps; i++) step();
  const { profile } = (await session.post("HeapProfiler.stopSampling")) as unknown as { profile: SamplingProfile };
  const sites: Sites = new Map();
  collect(profile.head, null, sites);
  const list = [...sites]
    .map(([site, e]) => ({ site, bytesPerStep: e.bytes / steps, ours: e.ours, engine: e.engine }))
    .sort((a, b) => b.bytesPerStep - a.bytesPerStep);
  const sum = (l: AllocationSite[]): number => l.reduce((s, e) => s + e.bytesPerStep, 0);
  return {
    steps,
    totalBytesPerStep: sum(list),
    oursBytesPerStep: sum(list.filter((s) => s.ours)),
    engineBytesPerStep: sum(list.filter((s) => s.ours && s.engine)),
    sites: list,
  };
}

/**
 * Train `steps` steps of a model after `warmup` steps, under the sampling heap profiler, `windows` times:
 * the window with the least handprop allocation is returned (a JIT tier-up allocates in one window, not
 * in every one).
 */
export async function profileTraining(opts: ProfileOptions = {}): Promise<AllocationReport> {
  const { threads = 1, steps = 200, warmup = 300, batch = 64, interval = 64, windows = 1 } = opts;
  const name = opts.model ?? "lenet5";
  setBackend("wasm");
  await setThreads(threads);
  try {
    const model = opts.build?.() ?? (name === GROUPED_CONVS ? groupedConvs() : buildModel(name, { seed: 0 }));
    const rng = new RandomState(1);
    const x = new NDArray(
      Float32Array.from({ length: batch * 784 }, () => rng.standardNormal()),
      [batch, 1, 28, 28],
    );
    const y = Int32Array.from({ length: batch }, (_, i) => i % 10);
    const loss = new SoftmaxCrossEntropy();
    const optimizer: Optimizer =
      opts.optimizer === "sgd" ? new SGD({ lr: 0.01, momentum: 0.9, weightDecay: 1e-4 }) : new Adam({ lr: 1e-3 });
    // Trainer.step over 50 batches of data (an epoch's start and end are then 1/50 of each step's share)
    const xs = new NDArray(new Float32Array(50 * x.size), [50 * batch, 1, 28, 28]);
    for (let i = 0; i < 50; i++) xs.data.set(x.data, i * x.size);
    const ys = Int32Array.from({ length: 50 * batch }, (_, i) => y[i % batch]);
    const trainer = new Trainer(model, { x: xs, y: ys }, { loss, optimizer, batchSize: batch });
    const step = opts.trainer === true ? () => void trainer.step() : () => void trainStep(model, x, y, loss, optimizer);
    for (let i = 0; i < warmup; i++) step();
    const session = new Session();
    session.connect();
    try {
      await session.post("HeapProfiler.enable");
      let best: AllocationReport | null = null;
      for (let w = 0; w < windows; w++) {
        const r = await sampleSteps(session, steps, interval, step);
        if (
          best === null ||
          r.oursBytesPerStep - r.engineBytesPerStep < best.oursBytesPerStep - best.engineBytesPerStep
        )
          best = r;
      }
      return best!;
    } finally {
      await session.post("HeapProfiler.disable");
      session.disconnect();
    }
  } finally {
    await setThreads(1);
  }
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  const arg = (name: string, dflt: string): string => {
    const i = process.argv.indexOf(`--${name}`);
    return i >= 0 ? process.argv[i + 1] : dflt;
  };
  const num = (name: string, dflt: number): number => Number(arg(name, String(dflt)));
  const threads = num("threads", 1);
  const optimizer = arg("optimizer", "adam") as "adam" | "sgd";
  const r = await profileTraining({
    threads,
    optimizer,
    batch: num("batch", 64),
    warmup: num("warmup", 300),
    steps: num("steps", 200),
    windows: num("windows", 1),
    interval: num("interval", 64),
    trainer: process.argv.includes("--trainer"),
    model: arg("model", "lenet5") as ModelName | typeof GROUPED_CONVS,
  });
  if (process.argv.includes("--json")) {
    console.log(JSON.stringify(r));
  } else {
    console.log(
      `${arg("model", "lenet5")}, wasm, ${threads} thread(s), ${optimizer}: ${r.totalBytesPerStep.toFixed(0)} B/step sampled in all, ` +
        `${r.oursBytesPerStep.toFixed(0)} B/step under handprop frames, of which ${r.engineBytesPerStep.toFixed(0)} in ` +
        "the frames calling wasm (V8's own, see AllocationSite.engine)",
    );
    for (const s of r.sites.slice(0, 40)) {
      console.log(`${s.bytesPerStep.toFixed(1).padStart(10)} B/step  ${s.engine ? "e" : s.ours ? "*" : " "} ${s.site}`);
    }
  }
}
