// Quick micro-benchmark of the hot kernels, on both backends (src/kernels/backend.ts):
//
//   node --import tsx bench/kernels.ts            everything
//   node --import tsx bench/kernels.ts gemm conv  only the sections named (gemm, conv, lenet, profile, elementwise, copies, threads)
//   node --import tsx bench/kernels.ts --threads 2 lenet    the wasm kernels on 2 threads (wall-clock rates)
//
// Each figure is the median over 5 timed runs (best in parentheses) of a loop lasting ≥ 0.2 s. The gemm
// lines time gemm() (wasm: operands copied into linear memory and C back out on every call) and, below
// them, the wasm kernel alone on operands that already live in linear memory. Rates are
// computed from the process's CPU time (user + system), not wall time: on a shared machine the wall
// clock also counts the time other processes held the core, while CPU time counts only ours. Pass
// --wall to use the wall clock instead. Single-threaded unless --threads N (N > 1), which switches to the
// wall clock, since CPU time adds up every thread's. The `threads` section compares 1 thread with N
// (default: every core) on the same workloads in one run, wall clock, and checks the outputs are identical.
//
// FLOP counts: a GEMM is 2·M·N·K; a convolution's forward 2·N·O·C·kh·kw·OH·OW, and forward + backward
// three times that (dW and dx each cost as much as the forward).

import { NDArray } from "../src/nd/ndarray.ts";
import { RandomState } from "../src/nd/random.ts";
import { gemm } from "../src/kernels/gemm.ts";
import os from "node:os";
import {
  getBackend,
  getThreads,
  setBackend,
  setThreads,
  threadsUnavailable,
  wasmAvailable,
  wasmUnavailable,
  type BackendName,
} from "../src/kernels/backend.ts";
import { WasmConv2D, WasmReLU, wasmKernels, wasmMemory } from "../src/kernels/wasm.ts";
import { convGeometry } from "../src/kernels/im2col.ts";
import { Conv2D } from "../src/nn/conv.ts";
import { ReLU } from "../src/nn/activations.ts";
import type { Sequential } from "../src/nn/sequential.ts";
import { buildModel } from "../src/nn/models.ts";
import { SoftmaxCrossEntropy } from "../src/nn/losses.ts";
import { SGD } from "../src/nn/optim.ts";
import type { Layer } from "../src/nn/layer.ts";

const args = process.argv.slice(2);
const threadsAt = args.indexOf("--threads");
const threadsArg = threadsAt >= 0 ? Number(args[threadsAt + 1]) : 1;
if (!Number.isInteger(threadsArg) || threadsArg < 1) {
  console.error(`kernels bench: --threads needs an integer ≥ 1, got ${args[threadsAt + 1] ?? "nothing"}`);
  process.exit(2);
}
const useWall = args.includes("--wall") || threadsArg > 1;
const sections = args.filter((a, i) => !a.startsWith("--") && (threadsAt < 0 || i !== threadsAt + 1));
const want = (s: string) => sections.length === 0 || sections.includes(s);
const backends: BackendName[] = wasmAvailable() ? ["js", "wasm"] : ["js"];

let now = (): number => {
  if (useWall) return performance.now() / 1000;
  const u = process.cpuUsage();
  return (u.user + u.system) / 1e6;
};

function randf(rng: RandomState, n: number): Float32Array {
  const a = new Float32Array(n);
  for (let i = 0; i < n; i++) a[i] = rng.standardNormal();
  return a;
}

/** Seconds per call of fn: median and min over `reps` timed loops of ≥ minTime each. */
function time(fn: () => void, minTime = 0.2, reps = 5): { median: number; min: number } {
  fn();
  let calls = 1;
  for (;;) {
    const t0 = now();
    for (let i = 0; i < calls; i++) fn();
    const dt = now() - t0;
    if (dt >= minTime / 4) {
      calls = Math.max(1, Math.ceil((calls * minTime) / Math.max(dt, 1e-9)));
      break;
    }
    calls *= 4;
  }
  const ts: number[] = [];
  for (let r = 0; r < reps; r++) {
    const t0 = now();
    for (let i = 0; i < calls; i++) fn();
    ts.push((now() - t0) / calls);
  }
  ts.sort((a, b) => a - b);
  return { median: ts[Math.floor(reps / 2)], min: ts[0] };
}

/** "12.3 (13.1)" for a rate = amount / seconds, median (best). */
function rate(amount: number, t: { median: number; min: number }, scale: number, digits: number): string {
  return `${(amount / t.median / scale).toFixed(digits)} (${(amount / t.min / scale).toFixed(digits)})`;
}

/** Run fn once per backend and print one line with both figures and the wasm/js ratio of medians. */
function compare(
  label: string,
  unit: string,
  amount: number,
  scale: number,
  digits: number,
  fn: () => () => void,
): void {
  const out: string[] = [];
  const medians: number[] = [];
  for (const b of backends) {
    setBackend(b);
    const t = time(fn());
    medians.push(t.median);
    out.push(`${b} ${rate(amount, t, scale, digits)}`);
  }
  const ratio = medians.length === 2 ? `  ×${(medians[0] / medians[1]).toFixed(1)}` : "";
  console.log(`${label.padEnd(44)} ${unit}: ${out.join("   ")}${ratio}`);
}

const rng = new RandomState(1);

/**
 * The wasm GEMM on operands already in linear memory (no copies): the kernel alone. The operands are put
 * above everything the scratch arena has used so far; a later arena call may overwrite them, which is
 * harmless since they are filled again here before each measurement.
 */
function residentGemm(
  tA: boolean,
  tB: boolean,
  M: number,
  N: number,
  K: number,
  batch: number,
): { median: number; min: number } | null {
  const k = wasmKernels;
  const mem = wasmMemory;
  if (k === null || mem === null) return null;
  const ws = k.gemmScratchBytes(+tA, +tB, M, K);
  const base = mem.buffer.byteLength;
  const bytes = 4 * (M * K + K * N + M * N) + ws + 256;
  mem.grow(Math.ceil(bytes / 65536));
  const a = base,
    b = a + 4 * M * K + 64,
    c = b + 4 * K * N + 64,
    w = c + 4 * M * N + 64;
  new Float32Array(mem.buffer, a, M * K + K * N + 32).set(randf(rng, M * K + K * N + 32));
  const lda = tA ? M : K;
  const ldb = tB ? K : N;
  return time(() => {
    for (let i = 0; i < batch; i++) k.gemm(+tA, +tB, M, N, K, 1, a, lda, b, ldb, 0, c, N, w);
  });
}

function benchGemm(label: string, tA: boolean, tB: boolean, M: number, N: number, K: number, batch = 1): void {
  const A = randf(rng, M * K);
  const B = randf(rng, K * N);
  const C = new Float32Array(M * N);
  const lda = tA ? M : K;
  const ldb = tB ? K : N;
  const shape = `${tA ? "T" : "N"}${tB ? "T" : "N"} ${M}×${N}×${K}${batch > 1 ? ` ×${batch}` : ""}`;
  const flops = 2 * M * N * K * batch;
  compare(`gemm ${label} ${shape}`, "GFLOP/s", flops, 1e9, 2, () => () => {
    for (let b = 0; b < batch; b++) gemm(tA, tB, M, N, K, 1, A, 0, lda, B, 0, ldb, 0, C, 0, N);
  });
  const t = residentGemm(tA, tB, M, N, K, batch);
  if (t !== null)
    console.log(`${"".padEnd(44)}          wasm, operands resident (no copies) ${rate(flops, t, 1e9, 2)}`);
}

function benchConv(): void {
  const N = 32,
    C = 16,
    O = 32,
    H = 28,
    W = 28;
  const conv = new Conv2D({ inChannels: C, outChannels: O, kernelSize: 3, padding: "same", rng: new RandomState(2) });
  const x = new NDArray(randf(rng, N * C * H * W), [N, C, H, W]);
  const dy = new NDArray(randf(rng, N * O * H * W), [N, O, H, W]);
  const flops = 2 * N * O * C * 9 * H * W;
  compare("conv 3×3 N32 16→32 28×28 same, forward", "GFLOP/s", flops, 1e9, 2, () => () => {
    conv.forward(x);
  });
  compare("conv 3×3 N32 16→32 28×28 same, fwd+bwd", "GFLOP/s", 3 * flops, 1e9, 2, () => () => {
    conv.forward(x);
    conv.backward(dy);
  });
}

function lenet(): Sequential {
  return buildModel("lenet5", { seed: 3 });
}

/** One SGD step of LeNet-5 on a fixed batch (what fit does per batch, minus shuffling and checks). */
function lenetStep(B: number, r = rng): { model: Sequential; step: () => void } {
  const model = lenet();
  const loss = new SoftmaxCrossEntropy();
  const opt = new SGD({ lr: 0.01 });
  const params = model.params();
  const x = new NDArray(randf(r, B * 784), [B, 1, 28, 28]);
  const labels = Int32Array.from({ length: B }, (_, i) => i % 10);
  const step = () => {
    model.zeroGrad();
    const pred = model.forward(x, { training: true });
    loss.forward(pred, labels);
    model.backward(loss.backward());
    opt.step(params);
  };
  return { model, step };
}

function benchLenet(): void {
  compare("LeNet-5 training, batch 64", "img/s", 64, 1, 0, () => lenetStep(64).step);
  const model = lenet();
  const xi = new NDArray(randf(rng, 256 * 784), [256, 1, 28, 28]);
  compare("LeNet-5 inference, batch 256", "img/s", 256, 1, 0, () => () => {
    model.forward(xi, { training: false });
  });
}

/** Where a LeNet-5 training step's time goes, layer by layer, on the current backend. */
function profileLenet(): void {
  for (const b of backends) {
    setBackend(b);
    const { model, step } = lenetStep(64);
    const layers = (model as unknown as { layers: Layer[] }).layers;
    const loss = new SoftmaxCrossEntropy();
    const opt = new SGD({ lr: 0.01 });
    const params = model.params();
    const x = new NDArray(randf(rng, 64 * 784), [64, 1, 28, 28]);
    const labels = Int32Array.from({ length: 64 }, (_, i) => i % 10);
    for (let i = 0; i < 10; i++) step();
    const tf = new Float64Array(layers.length);
    const tb = new Float64Array(layers.length);
    let rest = 0;
    const steps = b === "wasm" ? 200 : 20;
    for (let s = 0; s < steps; s++) {
      model.zeroGrad();
      let h = x;
      for (let i = 0; i < layers.length; i++) {
        const t1 = now();
        h = layers[i].forward(h, { training: true });
        tf[i] += now() - t1;
      }
      let t2 = now();
      loss.forward(h, labels);
      let d = loss.backward();
      rest += now() - t2;
      for (let i = layers.length - 1; i >= 0; i--) {
        const t1 = now();
        d = layers[i].backward(d);
        tb[i] += now() - t1;
      }
      t2 = now();
      opt.step(params);
      rest += now() - t2;
    }
    const ms = (v: number) => ((v / steps) * 1000).toFixed(3).padStart(7);
    const total = tf.reduce((a, v) => a + v, 0) + tb.reduce((a, v) => a + v, 0) + rest;
    console.log(
      `LeNet-5 training step, batch 64, backend ${b}: ${ms(total)} ms per step (ms per layer: forward, backward)`,
    );
    layers.forEach((l, i) => {
      console.log(`  ${String(i).padStart(2)} ${l.type.padEnd(10)} ${ms(tf[i])} ${ms(tb[i])}`);
    });
    console.log(`     loss + SGD ${ms(rest)}`);
  }
}

/** The elementwise kernels on LeNet's largest activation (64×6×28×28): JS ReLU layer vs the wasm kernels. */
function benchElementwise(): void {
  const n = 64 * 6 * 28 * 28;
  const x = new NDArray(randf(rng, n), [64, 6, 28, 28]);
  const y = new Float32Array(n);
  const dx = new Float32Array(n);
  const relu = new ReLU();
  const out = relu.forward(x);
  setBackend("js");
  const tj = time(() => relu.forward(x));
  const tjb = time(() => relu.backward(out));
  console.log(
    `ReLU layer (JS) on 64×6×28×28: forward ${(tj.median * 1000).toFixed(3)} ms, backward ${(tjb.median * 1000).toFixed(3)} ms`,
  );
  if (wasmAvailable()) {
    const k = new WasmReLU();
    const tw = time(() => {
      k.forward(x.data, y);
    });
    const twb = time(() => {
      k.backward(y, x.data, dx);
    });
    console.log(
      `WasmReLU (kernels/wasm.ts), same size: forward ${(tw.median * 1000).toFixed(3)} ms, backward ${(twb.median * 1000).toFixed(3)} ms (copies included)`,
    );
  }
}

/**
 * What the copy-in/copy-out design costs: LeNet-5's two conv layers at batch 64 through WasmConv2D (operands
 * copied into linear memory and results out on every call) against the same kernels on resident operands.
 */
function benchCopies(): void {
  const k = wasmKernels;
  const mem = wasmMemory;
  if (k === null || mem === null) return;
  const layers: [string, number, number, number, number, number][] = [
    ["conv1 1→6 28×28 5×5 same", 1, 28, 6, 5, 2],
    ["conv2 6→16 14×14 5×5 valid", 6, 14, 16, 5, 0],
  ];
  for (const [label, C, H, O, kk, pad] of layers) {
    const N = 64;
    const g = convGeometry(N, C, H, H, [kk, kk], [1, 1], [pad, pad, pad, pad], [1, 1]);
    const P = g.OH * g.OW;
    const x = randf(rng, N * C * H * H),
      w = randf(rng, O * C * kk * kk),
      b = randf(rng, O);
    const y = new Float32Array(N * O * P),
      dy = randf(rng, N * O * P),
      dW = new Float32Array(w.length),
      db = new Float32Array(O),
      dx = new Float32Array(x.length);
    const conv = new WasmConv2D();
    const withCopies = time(() => {
      conv.forward(g, O, x, w, b, y);
      conv.backward(g, O, conv.grads.of(x, w, dy, dW, db, dx));
    });
    // resident: the same calls on operands placed once above the arena
    const ws = k.convScratchBytes(C, O, kk, kk, g.OH, g.OW);
    const sizes = [x.length, w.length, b.length, y.length, dy.length, dW.length, db.length, dx.length].map(
      (n) => 4 * n + 64,
    );
    const base = mem.buffer.byteLength;
    mem.grow(Math.ceil((sizes.reduce((a, v) => a + v, 0) + ws + 64) / 65536));
    const ptrs: number[] = [];
    let at = base;
    for (const sz of sizes) {
      ptrs.push(at);
      at += sz;
    }
    const [xp, wp, bp, yp, dyp, dWp, dbp, dxp] = ptrs;
    const f = new Float32Array(mem.buffer);
    f.set(x, xp / 4);
    f.set(w, wp / 4);
    f.set(b, bp / 4);
    f.set(dy, dyp / 4);
    const { C: c, H: h, W: ww, kh, kw, sh, sw, dh, dw, padTop, padLeft, OH, OW } = g;
    const resident = time(() => {
      k.convForward(N, c, h, ww, O, kh, kw, sh, sw, dh, dw, padTop, padLeft, OH, OW, xp, wp, bp, yp, at);
      k.convBackward(N, c, h, ww, O, kh, kw, sh, sw, dh, dw, padTop, padLeft, OH, OW, xp, wp, dyp, dWp, dbp, dxp, at);
    });
    const share = 1 - resident.median / withCopies.median;
    console.log(
      `${label}, batch 64, forward + backward: ${(withCopies.median * 1000).toFixed(3)} ms with copies, ` +
        `${(resident.median * 1000).toFixed(3)} ms resident: copies ≈ ${(100 * share).toFixed(1)}%`,
    );
  }
}

/**
 * 1 thread against N on the wasm backend, wall clock, same process: LeNet-5 training and inference and the
 * 3×3 conv. The thread counts alternate over 7 rounds (each a loop of ≥ 0.2 s) and each gets the median
 * of its rounds, so a burst of load from other processes hits both alike. Each thread count also runs
 * the workload from a fresh start and the outputs are compared bit for bit.
 */
async function benchThreads(): Promise<void> {
  if (!wasmAvailable()) return;
  setBackend("wasm");
  const n = threadsArg > 1 ? threadsArg : os.availableParallelism();
  const counts = [1, n];
  const wall = () => performance.now() / 1000;
  const rounds = 7;
  type Workload = { run: () => void; out: () => Float32Array };
  const workloads: [string, string, number, () => Workload][] = [
    [
      "LeNet-5 training, batch 64",
      "img/s",
      64,
      () => {
        const { model, step } = lenetStep(64, new RandomState(6));
        return { run: step, out: () => Float32Array.from(model.params().flatMap((p) => Array.from(p.value.data))) };
      },
    ],
    [
      "LeNet-5 inference, batch 256",
      "img/s",
      256,
      () => {
        const model = lenet();
        const xi = new NDArray(randf(new RandomState(7), 256 * 784), [256, 1, 28, 28]);
        let y: NDArray | null = null;
        return {
          run: () => {
            y = model.forward(xi, { training: false });
          },
          out: () => Float32Array.from(y!.data),
        };
      },
    ],
    [
      "conv 3×3 N32 16→32 28×28 same, forward",
      "GFLOP/s",
      (2 * 32 * 32 * 16 * 9 * 28 * 28) / 1e9,
      () => {
        const conv = new Conv2D({
          inChannels: 16,
          outChannels: 32,
          kernelSize: 3,
          padding: "same",
          rng: new RandomState(2),
        });
        const x = new NDArray(randf(new RandomState(8), 32 * 16 * 28 * 28), [32, 16, 28, 28]);
        let y: NDArray | null = null;
        return {
          run: () => {
            y = conv.forward(x);
          },
          out: () => Float32Array.from(y!.data),
        };
      },
    ],
    [
      "conv 3×3 N32 16→32 28×28 same, fwd+bwd",
      "GFLOP/s",
      (3 * 2 * 32 * 32 * 16 * 9 * 28 * 28) / 1e9,
      () => {
        const conv = new Conv2D({
          inChannels: 16,
          outChannels: 32,
          kernelSize: 3,
          padding: "same",
          rng: new RandomState(2),
        });
        const r = new RandomState(8);
        const x = new NDArray(randf(r, 32 * 16 * 28 * 28), [32, 16, 28, 28]);
        const dy = new NDArray(randf(r, 32 * 32 * 28 * 28), [32, 32, 28, 28]);
        let dx: NDArray | null = null;
        return {
          run: () => {
            conv.forward(x);
            dx = conv.backward(dy);
          },
          out: () => Float32Array.from([...conv.params().flatMap((p) => Array.from(p.grad.data)), ...dx!.data]),
        };
      },
    ],
  ];
  console.log(
    `threads: 1 vs ${n}, wall clock, median (best) of ${rounds} alternating rounds; ${os.cpus()[0]?.model ?? "?"}, ` +
      `${os.availableParallelism()} cores, load average ${os
        .loadavg()
        .map((l) => l.toFixed(2))
        .join(" ")} at the start`,
  );
  const saved = now;
  now = wall;
  try {
    for (const [label, unit, amount, make] of workloads) {
      const outs: Float32Array[] = [];
      const instances: Workload[] = [];
      for (const t of counts) {
        await setThreads(t);
        const w = make(); // the same steps from the same start for every thread count
        for (let i = 0; i < 3; i++) w.run();
        outs.push(w.out());
        instances.push(w);
      }
      const times: number[][] = counts.map(() => []);
      for (let r = 0; r < rounds; r++) {
        for (let i = 0; i < counts.length; i++) {
          await setThreads(counts[i]);
          times[i].push(time(instances[i].run, 0.2, 1).median);
        }
      }
      const stats = times.map((ts) => {
        ts.sort((a, b) => a - b);
        return { median: ts[Math.floor(ts.length / 2)], min: ts[0] };
      });
      const same = outs[0].length === outs[1].length && outs[0].every((v, i) => Object.is(v, outs[1][i]));
      const cells = counts.map(
        (t, i) => `${t} thread${t > 1 ? "s" : ""} ${rate(amount, stats[i], 1, unit === "img/s" ? 0 : 2)}`,
      );
      console.log(
        `${label.padEnd(44)} ${unit}: ${cells.join("   ")}  ×${(stats[0].median / stats[1].median).toFixed(2)}` +
          (same ? "  (outputs bit-identical)" : "  OUTPUTS DIFFER"),
      );
    }
  } finally {
    now = saved;
  }
  console.log(
    `  (load average ${os
      .loadavg()
      .map((l) => l.toFixed(2))
      .join(" ")} at the end)`,
  );
  await setThreads(threadsArg);
}

if (threadsArg > 1) {
  const started = await setThreads(threadsArg);
  if (started < threadsArg) console.log(`(threads: running on ${started}: ${threadsUnavailable() ?? "?"})`);
}
console.log(
  `handprop kernel benchmark — ${useWall ? "wall-clock" : "CPU-time"} rates, median (best) of 5; backends: ${backends.join(", ")}; ` +
    `wasm threads: ${getThreads()}` +
    (wasmAvailable() ? "" : ` (wasm unavailable: ${wasmUnavailable() ?? "?"})`),
);
const initial = getBackend();
if (want("gemm")) {
  // LeNet-5's GEMM shapes at batch 64 (the conv ones per image, ×64) and a square one.
  benchGemm("conv1 fwd  W·col_n  ", false, false, 6, 784, 25, 64);
  benchGemm("conv1 dW   dy_n·col_nᵀ", false, true, 6, 25, 784, 64);
  benchGemm("conv1 dcol Wᵀ·dy_n ", true, false, 25, 784, 6, 64);
  benchGemm("conv2 fwd ", false, false, 16, 100, 150, 64);
  benchGemm("conv2 dW  ", false, true, 16, 150, 100, 64);
  benchGemm("conv2 dcol", true, false, 150, 100, 16, 64);
  benchGemm("dense1 fwd x·W ", false, false, 64, 120, 400);
  benchGemm("dense1 dW  xᵀ·dy", true, false, 400, 120, 64);
  benchGemm("dense1 dx  dy·Wᵀ", false, true, 64, 400, 120);
  benchGemm("square", false, false, 256, 256, 256);
}
if (want("conv")) benchConv();
if (want("lenet")) benchLenet();
if (want("profile")) profileLenet();
if (want("elementwise")) benchElementwise();
if (want("copies")) benchCopies();
if (want("threads")) await benchThreads();
setBackend(initial);
