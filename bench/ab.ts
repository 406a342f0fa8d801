// A/B of two builds of the WebAssembly kernels, interleaved in one process: the current build
// (src/kernels/wasm/kernels.generated.ts) against a saved one, on operands resident in each module's own
// memory, round by round (A, B, A, B, …), with the median of per-round ratios new ÷ old — the way a kernel
// change is measured on a shared machine. Also checks that both builds give bit-identical outputs.
// Times are the process's CPU time (user + system; every call runs on this one thread), which leaves out
// the time other processes held the core: on an oversubscribed machine wall-clock turns of 0.1 s vary
// by 2× from one to the next, CPU time far less.
//
//   cp src/kernels/wasm/kernels.generated.ts /tmp/old.generated.ts    (before the change)
//   node scripts/build-wasm.mjs                                         (after it)
//   node --import tsx bench/ab.ts /tmp/old.generated.ts [--rounds 15]
//
// Workloads: GEMM 256³ (NN), the 3×3 conv N32 16→32 28×28 forward and backward, LeNet-5's conv1 and conv2
// at batch 64 forward + backward, five convolutions of resnet-mini's shapes (two of stride 2) forward +
// backward, and the dense layers' products. Each round also times the WebAssembly
// SIMD ceiling (bench/ceiling.ts, the best kernel picked once) in CPU time, so each build's efficiency
// (GFLOP/s ÷ ceiling, per round, median) is printed beside the ratio. Timings are not tests.

import { resolve } from "node:path";
import { pathToFileURL } from "node:url";
import { loadKernels, type LoadedKernels } from "../src/kernels/wasm.ts";
import { convGeometry } from "../src/kernels/im2col.ts";
import { RandomState } from "../src/nd/random.ts";
import { cpuSeconds, spread, roundRatios } from "./schedule.ts";
import { ceilingKernels, type CeilingKernel } from "./ceiling.ts";

interface Case {
  name: string;
  gflop: number;
  /** Sets operands up in a build's memory; returns the call and a view of the outputs. */
  setup(k: LoadedKernels): { run: () => void; out: () => Float32Array };
}

/** A bump allocator over a build's memory, above everything its module uses. */
function arena(k: LoadedKernels, bytes: number): (n: number) => number {
  const base = k.memory.buffer.byteLength;
  k.memory.grow(Math.ceil((bytes + 4096) / 65536));
  let at = base;
  return (floats) => {
    const p = at;
    at += Math.ceil((4 * floats + 64) / 64) * 64;
    return p;
  };
}

function fill(k: LoadedKernels, ptr: number, n: number, seed: number): void {
  const rng = new RandomState(seed);
  const v = new Float32Array(k.memory.buffer, ptr, n);
  for (let i = 0; i < n; i++) v[i] = rng.standardNormal();
}

const gemmCase = (M: number, N: number, K: number, tA: boolean, tB: boolean, label: string): Case => ({
  name: `gemm ${label} ${tA ? "T" : "N"}${tB ? "T" : "N"} ${String(M)}×${String(N)}×${String(K)}`,
  gflop: (2 * M * N * K) / 1e9,
  setup(k) {
    const ex = k.exports;
    const ws = ex.gemmScratchBytes(+tA, +tB, M, K);
    const alloc = arena(k, 4 * (M * K + K * N + M * N) + ws + 1024);
    const a = alloc(M * K),
      b = alloc(K * N),
      c = alloc(M * N),
      w = alloc(ws / 4 + 16);
    fill(k, a, M * K, 1);
    fill(k, b, K * N, 2);
    return {
      run: () => {
        ex.gemm(+tA, +tB, M, N, K, 1, a, tA ? M : K, b, tB ? K : N, 0, c, N, w);
      },
      out: () => new Float32Array(k.memory.buffer, c, M * N).slice(),
    };
  },
});

const convCase = (
  N: number,
  C: number,
  O: number,
  H: number,
  kk: number,
  pad: number,
  label: string,
  backward: boolean,
  stride = 1,
): Case => {
  const g = convGeometry(N, C, H, H, [kk, kk], [stride, stride], [pad, pad, pad, pad], [1, 1]);
  const P = g.OH * g.OW;
  const fwd = (2 * N * O * C * kk * kk * P) / 1e9;
  return {
    name: `conv ${label} ${backward ? "fwd+bwd" : "fwd"}`,
    gflop: backward ? 3 * fwd : fwd,
    setup(k) {
      const ex = k.exports;
      const ws = ex.convScratchBytes(C, O, kk, kk, g.OH, g.OW);
      const sizes = [N * C * H * H, O * C * kk * kk, O, N * O * P, N * O * P, O * C * kk * kk, O, N * C * H * H];
      const alloc = arena(k, sizes.reduce((s, n) => s + 4 * n + 128, 0) + ws + 1024);
      const [x, w, b, y, dy, dW, db, dx] = sizes.map((n) => alloc(n));
      const wsp = alloc(ws / 4 + 16);
      fill(k, x, sizes[0], 3);
      fill(k, w, sizes[1], 4);
      fill(k, b, sizes[2], 5);
      fill(k, dy, sizes[4], 6);
      const { sh, sw, dh, dw, padTop, padLeft, OH, OW } = g;
      return {
        run: () => {
          ex.convForward(N, C, H, H, O, kk, kk, sh, sw, dh, dw, padTop, padLeft, OH, OW, x, w, b, y, wsp);
          if (backward) {
            new Float32Array(k.memory.buffer, dW, sizes[5]).fill(0); // backward accumulates dW and db
            new Float32Array(k.memory.buffer, db, O).fill(0);
            ex.convBackward(N, C, H, H, O, kk, kk, sh, sw, dh, dw, padTop, padLeft, OH, OW, x, w, dy, dW, db, dx, wsp);
          }
        },
        out: () => {
          const f = (p: number, n: number) => [...new Float32Array(k.memory.buffer, p, n)];
          return Float32Array.from([
            ...f(y, sizes[3]),
            ...(backward ? [...f(dW, sizes[5]), ...f(db, O), ...f(dx, sizes[7])] : []),
          ]);
        },
      };
    },
  };
};

/** The ceiling kernel with the best median CPU-time GFLOP/s over a few alternating runs, or null without SIMD. */
function pickCeiling(): { kernel: CeilingKernel; iterations: number } | null {
  const kernels = ceilingKernels();
  if (kernels === null) return null;
  const iters = (k: CeilingKernel) => Math.round(2e7 / k.flopsPerIteration); // 0.02 GFLOP a call
  const rates = kernels.map((): number[] => []);
  for (let r = 0; r < 5; r++) {
    kernels.forEach((k, i) => {
      const t = cpuSeconds();
      for (let j = 0; j < 5; j++) k.run(iters(k));
      rates[i].push(0.1 / Math.max(cpuSeconds() - t, 1e-6));
    });
  }
  let best = 0;
  kernels.forEach((_, i) => {
    if (spread(rates[i]).median > spread(rates[best]).median) best = i;
  });
  return { kernel: kernels[best], iterations: iters(kernels[best]) };
}

const CASES: Case[] = [
  gemmCase(256, 256, 256, false, false, "square"),
  gemmCase(64, 120, 400, false, false, "dense1 fwd"),
  gemmCase(400, 120, 64, true, false, "dense1 dW"),
  convCase(32, 16, 32, 28, 3, 1, "3×3 N32 16→32 28×28", false),
  convCase(32, 16, 32, 28, 3, 1, "3×3 N32 16→32 28×28", true),
  convCase(64, 1, 6, 28, 5, 2, "LeNet conv1 N64 1→6 28×28 5×5", true),
  convCase(64, 6, 16, 14, 5, 0, "LeNet conv2 N64 6→16 14×14 5×5", true),
  convCase(32, 16, 16, 28, 3, 1, "resnet-mini 3×3 N32 16→16 28×28", true),
  convCase(32, 32, 64, 14, 5, 2, "resnet-mini 5×5 N32 32→64 14×14", true),
  convCase(32, 64, 64, 7, 3, 1, "resnet-mini 3×3 N32 64→64 7×7", true),
  convCase(32, 16, 32, 28, 3, 1, "resnet-mini 3×3 stride 2 N32 16→32 28×28", true, 2),
  convCase(32, 32, 64, 14, 3, 1, "resnet-mini 3×3 stride 2 N32 32→64 14×14", true, 2),
];

async function main(argv: string[]): Promise<number> {
  const baseline = argv.find((a) => !a.startsWith("--") && !/^\d+$/.test(a));
  const ri = argv.indexOf("--rounds");
  const rounds = ri >= 0 ? Number(argv[ri + 1]) : 15;
  if (baseline === undefined || !Number.isInteger(rounds) || rounds < 1) {
    process.stderr.write("usage: node --import tsx bench/ab.ts OLD_kernels.generated.ts [--rounds N]\n");
    return 2;
  }
  const oldK = await loadKernels(() => import(pathToFileURL(resolve(baseline)).href));
  const newK = await loadKernels();
  if (typeof oldK === "string" || typeof newK === "string") {
    process.stderr.write(
      `ab: ${typeof oldK === "string" ? `old build: ${oldK}` : ""} ` +
        `${typeof newK === "string" ? `new build: ${newK}` : ""}\n`,
    );
    return 1;
  }
  const ceiling = pickCeiling();
  let ceilingRate = 0;
  if (ceiling) {
    const t = cpuSeconds();
    for (let i = 0; i < 10; i++) ceiling.kernel.run(ceiling.iterations);
    ceilingRate = 0.2 / Math.max(cpuSeconds() - t, 1e-6);
  }
  console.log(
    `A/B of kernel builds, ${String(rounds)} interleaved rounds of ≈ 0.1 s CPU time per build; ` +
      "ratio = new ÷ old (GFLOP/s of CPU time)" +
      (ceiling
        ? `; % = efficiency, GFLOP/s ÷ the ${ceiling.kernel.name} ceiling timed in the same round`
        : "; no ceiling: this engine has no WebAssembly SIMD"),
  );
  for (const c of CASES) {
    const o = c.setup(oldK);
    const n = c.setup(newK);
    o.run();
    n.run();
    const [outOld, outNew] = [o.out(), n.out()];
    const same = outOld.length === outNew.length && outOld.every((v, i) => Object.is(v, outNew[i]));
    // calls per turn: enough for ≥ 0.1 s on the old build
    for (let i = 0; i < 3; i++) o.run();
    const t0 = cpuSeconds();
    o.run();
    const calls = Math.max(1, Math.round(0.1 / Math.max(cpuSeconds() - t0, 1e-5)));
    const rates = { old: [] as number[], new: [] as number[], ceiling: [] as number[] };
    const ceilingCalls = ceiling ? Math.max(1, Math.round((0.1 * ceilingRate) / 0.02)) : 0;
    for (let r = 0; r < rounds; r++) {
      for (const [which, x] of [
        ["old", o],
        ["new", n],
      ] as const) {
        x.run();
        const t = cpuSeconds();
        for (let i = 0; i < calls; i++) x.run();
        rates[which].push((calls * c.gflop) / Math.max(cpuSeconds() - t, 1e-6));
      }
      if (ceiling) {
        const t = cpuSeconds();
        for (let i = 0; i < ceilingCalls; i++) ceiling.kernel.run(ceiling.iterations);
        rates.ceiling.push((ceilingCalls * 0.02) / Math.max(cpuSeconds() - t, 1e-6));
      }
    }
    const q = spread(roundRatios(rates.new, rates.old));
    const efficiency = (which: "old" | "new") =>
      ceiling ? ` ${(100 * spread(roundRatios(rates[which], rates.ceiling)).median).toFixed(0)}%` : "";
    console.log(
      `${c.name.padEnd(46)} old ${spread(rates.old).median.toFixed(1).padStart(5)}${efficiency("old")}  ` +
        `new ${spread(rates.new).median.toFixed(1).padStart(5)}${efficiency("new")}  new÷old ${q.median.toFixed(2)}× ` +
        `(IQR ${q.q1.toFixed(2)}–${q.q3.toFixed(2)}, min–max ${q.min.toFixed(2)}–${q.max.toFixed(2)})` +
        (same ? "  outputs bit-identical" : "  OUTPUTS DIFFER"),
    );
  }
  return 0;
}

process.exitCode = await main(process.argv.slice(2));
