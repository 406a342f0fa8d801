// Where a convolution's time goes, phase by phase, on one thread: the WebAssembly kernels' own pieces
// (im2col, the forward GEMM, dW's dot products, dx's GEMM, col2im) timed in CPU time in interleaved
// rounds with the SIMD ceiling (bench/ceiling.ts), each as GFLOP/s, efficiency and share of its pass.
// The profile behind the efficiency figures of `npm run bench` and bench/ab.ts, for a machine without
// hardware counters (a VM): the phases are the kernels' exported building blocks run on the same
// operands as convForward/convBackward, so their times add up to the whole call's — except the forward's
// two, the explicit im2col + GEMM, which the forward replaces by the implicit GEMM (conv.as gemmImplicit)
// where the output columns step by one input column (here: always): they show what that saves.
//
//   node --import tsx bench/conv-profile.ts [N C O H K] [--valid] [--rounds 9]   (default: 32 16 32 28 3, 'same')
//
// Timings are not tests.

import { loadKernels } from "../src/kernels/wasm.ts";
import { ceilingKernels } from "./ceiling.ts";
import { cpuSeconds, spread, roundRatios } from "./schedule.ts";

type Fn = (...args: number[]) => number;

interface Phase {
  name: string;
  /** GFLOP per call (0: data movement only). */
  gflop: number;
  run: () => void;
}

async function main(argv: string[]): Promise<number> {
  const ri = argv.indexOf("--rounds");
  const rounds = ri >= 0 ? Number(argv[ri + 1]) : 9;
  const dims = argv.filter((a, i) => /^\d+$/.test(a) && argv[i - 1] !== "--rounds").map(Number);
  const [N, C, O, H, kk] = dims.length === 5 ? dims : [32, 16, 32, 28, 3];
  if (!Number.isInteger(rounds) || rounds < 1 || [N, C, O, H, kk].some((v) => v < 1) || kk > H) {
    process.stderr.write("usage: node --import tsx bench/conv-profile.ts [N C O H K] [--rounds N]\n");
    return 2;
  }
  const k = await loadKernels();
  const ceilings = ceilingKernels();
  if (typeof k === "string" || ceilings === null) {
    process.stderr.write(`conv-profile: ${typeof k === "string" ? k : "no WebAssembly SIMD"}\n`);
    return 1;
  }
  const ex = k.exports as unknown as Record<string, Fn>;
  const valid = argv.includes("--valid"); // no padding (LeNet-5's second convolution), else 'same'
  const pad = valid ? 0 : (kk - 1) >> 1;
  const OH = H + 2 * pad - kk + 1;
  const P = OH * OH;
  const K = C * kk * kk;
  const geometry = [C, H, H, kk, kk, 1, 1, 1, 1, pad, pad, OH, OH];
  const sizes = {
    x: N * C * H * H,
    w: O * K,
    y: N * O * P,
    dy: N * O * P,
    dW: O * K,
    db: O,
    dx: N * C * H * H,
    col: K * P + 16,
  };
  const bytes = (floats: number) => Math.ceil((4 * floats + 64) / 64) * 64;
  const wsBytes = ex.convScratchBytes(C, O, kk, kk, OH, OH);
  const packBytes = ex.convPackedBytes(C, O, kk, kk);
  const edgeBytes = 1 << 16;
  const total = Object.values(sizes).reduce((s, n) => s + bytes(n), 0) + wsBytes + 2 * packBytes + edgeBytes + 4096;
  let at = k.memory.buffer.byteLength;
  k.memory.grow(Math.ceil(total / 65536));
  const alloc = (b: number) => {
    const p = at;
    at += Math.ceil((b + 64) / 64) * 64;
    return p;
  };
  const p = Object.fromEntries(Object.entries(sizes).map(([name, n]) => [name, alloc(4 * n)])) as Record<
    keyof typeof sizes,
    number
  >;
  const ws = alloc(wsBytes);
  const packed = alloc(packBytes);
  const packedT = alloc(packBytes);
  const edge = alloc(edgeBytes);
  const f = new Float32Array(k.memory.buffer);
  for (let i = 0; i < sizes.x; i++) f[p.x / 4 + i] = Math.sin(i);
  for (let i = 0; i < sizes.w; i++) f[p.w / 4 + i] = Math.cos(i) / K;
  for (let i = 0; i < sizes.dy; i++) f[p.dy / 4 + i] = Math.sin(0.7 * i);

  const g = (2 * O * P * K * N) / 1e9; // one pass: forward, dW or dx
  const xn = (n: number) => p.x + 4 * n * C * H * H;
  const dyn = (n: number) => p.dy + 4 * n * O * P;
  const eachImage = (body: (n: number) => void) => () => {
    for (let n = 0; n < N; n++) body(n);
  };
  const phases: Phase[] = [
    {
      name: "forward: whole call",
      gflop: g,
      run: () => void ex.convForward(N, ...geometry.slice(0, 3), O, ...geometry.slice(3), p.x, p.w, 0, p.y, ws),
    },
    { name: "  explicit: im2col", gflop: 0, run: eachImage((n) => ex.im2colImage(xn(n), ...geometry, p.col)) },
    {
      name: "  explicit: GEMM W·col",
      gflop: g,
      run: eachImage((n) => ex.gemmPacked(O, P, K, packed, p.col, P, p.y + 4 * n * O * P, P, 0, edge)),
    },
    {
      name: "backward: whole call",
      gflop: 2 * g,
      run: () =>
        void ex.convBackward(N, ...geometry.slice(0, 3), O, ...geometry.slice(3), p.x, p.w, p.dy, p.dW, p.db, p.dx, ws),
    },
    { name: "  dW: im2col", gflop: 0, run: eachImage((n) => ex.im2colImage(xn(n), ...geometry, p.col)) },
    {
      name: "  dW: dot products dy·colᵀ",
      gflop: g,
      run: eachImage((n) => ex.gemmNT(O, K, P, 1, dyn(n), P, p.col, P, 1, p.dW, K)),
    },
    {
      name: "  dx: GEMM Wᵀ·dy",
      gflop: g,
      run: eachImage((n) => ex.gemmPacked(K, P, O, packedT, dyn(n), P, p.col, P, 0, edge)),
    },
    {
      name: "  dx: col2im",
      gflop: 0,
      run: eachImage((n) => ex.col2imImage(p.col, ...geometry, p.dx + 4 * n * C * H * H)),
    },
  ];
  const ceiling = ceilings.find((c) => c.name === "chains 12") ?? ceilings[0];
  const ceilingIterations = Math.round(2e7 / ceiling.flopsPerIteration);
  ex.packA(0, O, K, 1, p.w, K, packed); // W, as convForward packs it
  ex.packA(1, K, O, 1, p.w, K, packedT); // Wᵀ, as convBackward packs it
  const seconds = phases.map((): number[] => []);
  const ceilingRates: number[] = [];
  for (let r = 0; r < rounds; r++) {
    phases.forEach((ph, i) => {
      ph.run();
      const t = cpuSeconds();
      for (let j = 0; j < 3; j++) ph.run();
      seconds[i].push((cpuSeconds() - t) / 3);
    });
    const t = cpuSeconds();
    for (let j = 0; j < 5; j++) ceiling.run(ceilingIterations);
    ceilingRates.push(0.1 / Math.max(cpuSeconds() - t, 1e-6));
  }
  console.log(
    `conv ${String(kk)}×${String(kk)} ${valid ? "'valid'" : "'same'"} N${String(N)} ${String(C)}→${String(O)} ${String(H)}×${String(H)}, ` +
      `1 thread, ${String(rounds)} interleaved rounds, CPU time; ceiling ${ceiling.name} ` +
      `${spread(ceilingRates).median.toFixed(1)} GFLOP/s`,
  );
  let whole = 0;
  phases.forEach((ph, i) => {
    const s = spread(seconds[i]).median;
    if (!ph.name.startsWith(" ")) whole = s;
    const rates = seconds[i].map((sec) => ph.gflop / sec);
    const rate = ph.gflop > 0 ? `${spread(rates).median.toFixed(1).padStart(5)} GFLOP/s` : " ".repeat(13);
    const eff =
      ph.gflop > 0 ? `${(100 * spread(roundRatios(rates, ceilingRates)).median).toFixed(0).padStart(3)}%` : "    ";
    const share = ph.name.startsWith(" ") ? `${((100 * s) / whole).toFixed(0).padStart(3)}% of the call` : "";
    console.log(`${ph.name.padEnd(30)} ${(s * 1e3).toFixed(2).padStart(7)} ms  ${rate}  ${eff}  ${share}`);
  });
  return 0;
}

process.exitCode = await main(process.argv.slice(2));
