// Winograd's F(2×2, 3×3) against the GEMM convolution on the same operands, one thread, interleaved rounds
// in CPU time (as bench/ab.ts): per shape, the forward and the backward (dW, db, dx) by each, their median
// per-round ratio GEMM ÷ Winograd, and each one's largest error against the float64 direct sums of every
// output (js.ts's conv2dForwardRef / conv2dBackwardRef, the tests' oracle). The kernels' exports are called directly: convForward/convBackward (conv.as)
// and winogradPackWeights/winogradForwardPart/winogradWeightGradPart/…FinishPart (winograd.as), which
// wasm-ops.ts's WasmConv2D runs on the thread pool.
//
//   node --import tsx bench/winograd.ts ["N,C,O,H,pad;…"] [--rounds 7]
//   (default: the 3×3 16→32 28×28 of `npm run bench` at N32, resnet-mini's 16→16 28×28, 32→32 14×14 and
//   64→64 7×7 at N64)
//
// Timings are not tests.

import { loadKernels } from "../src/kernels/wasm.ts";
import { conv2dBackwardRef, conv2dForwardRef } from "../src/kernels/js.ts";
import { NDArray } from "../src/nd/ndarray.ts";
import { RandomState } from "../src/nd/random.ts";
import { cpuSeconds, roundRatios, spread } from "./schedule.ts";

type Fn = (...args: number[]) => number;

const DEFAULT_SHAPES = "32,16,32,28,1;64,16,16,28,1;64,32,32,14,1;64,64,64,7,1";

async function main(argv: string[]): Promise<number> {
  const ri = argv.indexOf("--rounds");
  const rounds = ri >= 0 ? Number(argv[ri + 1]) : 7;
  const list = argv.find((a, i) => a.includes(",") && argv[i - 1] !== "--rounds") ?? DEFAULT_SHAPES;
  const shapes = list.split(";").map((s) => s.split(",").map(Number));
  if (!Number.isInteger(rounds) || rounds < 1 || shapes.some((s) => s.length !== 5 || s.some((v) => !(v >= 0)))) {
    process.stderr.write('usage: node --import tsx bench/winograd.ts ["N,C,O,H,pad;…"] [--rounds N]\n');
    return 2;
  }
  const k = await loadKernels();
  if (typeof k === "string") {
    process.stderr.write(`winograd: ${k}\n`);
    return 1;
  }
  const ex = k.exports as unknown as Record<string, Fn>;
  process.stdout.write(
    `Winograd F(2×2, 3×3) ÷ GEMM convolution, 1 thread, ${String(rounds)} interleaved rounds, CPU time\n`,
  );
  for (const [N, C, O, H, pad] of shapes) {
    const W = H,
      OH = H + 2 * pad - 2,
      OW = W + 2 * pad - 2;
    const chunks = ex.winogradWeightChunks(N, OH, OW);
    const sizes = {
      x: N * C * H * W,
      w: O * C * 9,
      b: O,
      y: N * O * OH * OW,
      wsGemm: ex.convScratchBytes(C, O, 3, 3, OH, OW) / 4,
      upack: Math.max(ex.winogradPackedBytes(C, O), ex.winogradPackedBytes(O, C)) / 4,
      tmp: 16 * O * C,
      wsFwd: ex.winogradThreadScratchBytes(N, C, H, W, O, pad, pad, OH, OW) / 4,
      wsDx: ex.winogradThreadScratchBytes(N, O, OH, OW, C, 2 - pad, 2 - pad, H, W) / 4,
      partials: ex.winogradPartialBytes(C, O, chunks) / 4,
    };
    const base = k.memory.buffer.byteLength;
    const floats = Object.values(sizes).reduce((a, n) => a + n + 32, 0) + 4 * (sizes.y + sizes.x + sizes.w + O);
    k.memory.grow(Math.ceil((4 * floats + 65536) / 65536));
    let at = base;
    const alloc = (n: number) => ((at += Math.ceil((4 * n + 64) / 64) * 64), at - Math.ceil((4 * n + 64) / 64) * 64);
    const [x, w, bias, dy] = [alloc(sizes.x), alloc(sizes.w), alloc(O), alloc(sizes.y)];
    const out = { gemm: { y: alloc(sizes.y), dW: alloc(sizes.w), db: alloc(O), dx: alloc(sizes.x) } };
    const wino = { y: alloc(sizes.y), dW: alloc(sizes.w), db: alloc(O), dx: alloc(sizes.x) };
    const wsGemm = alloc(sizes.wsGemm),
      upack = alloc(sizes.upack),
      tmp = alloc(sizes.tmp),
      wsFwd = alloc(sizes.wsFwd),
      wsDx = alloc(sizes.wsDx),
      partials = alloc(sizes.partials);
    const f32 = () => new Float32Array(k.memory.buffer);
    const rng = new RandomState(1);
    let f = f32();
    for (let i = 0; i < sizes.x; i++) f[x / 4 + i] = rng.standardNormal();
    for (let i = 0; i < sizes.w; i++) f[w / 4 + i] = rng.standardNormal() / Math.sqrt(9 * C);
    for (let i = 0; i < O; i++) f[bias / 4 + i] = rng.standardNormal();
    for (let i = 0; i < sizes.y; i++) f[dy / 4 + i] = rng.standardNormal();
    const g = out.gemm;
    const run = {
      gemmForward: () => ex.convForward(N, C, H, W, O, 3, 3, 1, 1, 1, 1, pad, pad, OH, OW, x, w, bias, g.y, wsGemm),
      gemmBackward: () =>
        ex.convBackward(N, C, H, W, O, 3, 3, 1, 1, 1, 1, pad, pad, OH, OW, x, w, dy, g.dW, g.db, g.dx, wsGemm),
      winogradForward: () => {
        ex.winogradPackWeights(O, C, w, 0, upack, tmp);
        ex.winogradForwardPart(0, 1, wsFwd, N, C, H, W, O, pad, pad, OH, OW, x, upack, bias, wino.y);
      },
      winogradBackward: () => {
        for (let t = 0; t < chunks; t++)
          ex.winogradWeightGradPart(t, chunks, wsFwd, N, C, H, W, O, pad, pad, OH, OW, x, dy, partials);
        ex.winogradWeightGradFinishPart(0, 1, wsFwd, O, C, chunks, partials, wino.dW, N, OH * OW, dy, wino.db);
        ex.winogradPackWeights(C, O, w, 1, upack, tmp);
        ex.winogradForwardPart(0, 1, wsDx, N, O, OH, OW, C, 2 - pad, 2 - pad, H, W, dy, upack, 0, wino.dx);
      },
    };
    for (const r of Object.values(run)) r(); // warm-up; dW and db accumulate once here (checked below)
    f = f32();
    // the float64 direct sums of js.ts (the tests' oracle) on the same operands; the largest error of each output
    const view = (p: number, shape: number[]) =>
      new NDArray(f.slice(p / 4, p / 4 + shape.reduce((a, d) => a * d, 1)), shape);
    const xs = [N, C, H, W],
      ws = [O, C, 3, 3],
      dys = [N, O, OH, OW];
    const opts = { padding: [pad, pad, pad, pad] as [number, number, number, number] };
    const yRef = conv2dForwardRef(view(x, xs), view(w, ws), view(bias, [O]), opts);
    const ref = conv2dBackwardRef(view(x, xs), view(w, ws), view(dy, dys), opts);
    const largest = (p: number, want: NDArray) => {
      let m = 0;
      for (let i = 0; i < want.size; i++) m = Math.max(m, Math.abs(f[p / 4 + i] - want.data[i]));
      return m;
    };
    const errors = {
      gemm: [largest(g.y, yRef), largest(g.dW, ref.dw), largest(g.db, ref.db), largest(g.dx, ref.dx)],
      winograd: [largest(wino.y, yRef), largest(wino.dW, ref.dw), largest(wino.db, ref.db), largest(wino.dx, ref.dx)],
    }; // y, dW, db, dx
    const gflop = (2 * N * O * C * 9 * OH * OW) / 1e9;
    const reps = Math.max(1, Math.round(0.3 / gflop));
    const times: Record<keyof typeof run, number[]> = {
      gemmForward: [],
      gemmBackward: [],
      winogradForward: [],
      winogradBackward: [],
    };
    for (let r = 0; r < rounds; r++) {
      for (const name of Object.keys(run) as (keyof typeof run)[]) {
        const t0 = cpuSeconds();
        for (let i = 0; i < reps; i++) run[name]();
        times[name].push((cpuSeconds() - t0) / reps);
      }
    }
    const ms = (a: number[]) => (spread(a).median * 1e3).toFixed(2);
    const ratio = (a: number[], b: number[]) => {
      const s = spread(roundRatios(a, b));
      return `${s.median.toFixed(2)}× (IQR ${s.q1.toFixed(2)}–${s.q3.toFixed(2)})`;
    };
    const e = (v: number[]) => v.map((z) => z.toExponential(1)).join(" / ");
    process.stdout.write(
      `N${String(N)} ${String(C)}→${String(O)} ${String(H)}×${String(W)} pad ${String(pad)}\n` +
        `  forward   GEMM ${ms(times.gemmForward)} ms, Winograd ${ms(times.winogradForward)} ms: ` +
        `${ratio(times.gemmForward, times.winogradForward)}\n` +
        `  backward  GEMM ${ms(times.gemmBackward)} ms, Winograd ${ms(times.winogradBackward)} ms: ` +
        `${ratio(times.gemmBackward, times.winogradBackward)}\n` +
        `  largest error against float64, y / dW / db / dx: GEMM ${e(errors.gemm)}; Winograd ${e(errors.winograd)}\n`,
    );
  }
  return 0;
}

process.exitCode = await main(process.argv.slice(2));
