// Winograd's F(2×2, 3×3) against the GEMM convolution on the same operands, one thread, interleaved rounds
// in CPU time (as bench/ab.ts): per shape, the forward and the backward (dW, db, dx) by each, their median
// per-round ratio GEMM ÷ Winograd, and each one's largest error against the float64 direct sums on sampled
// outputs (all of dW and db). The kernels' exports are called directly: convForward/convBackward (conv.as)
// and winogradPackWeights/winogradForwardPart/winogradWeightGradPart/…FinishPart (winograd.as), which
// wasm-ops.ts's WasmConv2D runs on the thread pool.
//
//   node --import tsx bench/winograd.ts ["N,C,O,H,pad;…"] [--rounds 7]
//   (default: the 3×3 16→32 28×28 of `npm run bench` at N32, resnet-mini's 16→16 28×28, 32→32 14×14 and
//   64→64 7×7 at N64)
//
// Timings are not tests.

import { loadKernels } from "../src/kernels/wasm.ts";
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
        ex.winogradWeightGradFinishPart(0, 1, 0, O, C, chunks, partials, wino.dW, N, OH * OW, dy, wino.db);
        ex.winogradPackWeights(C, O, w, 1, upack, tmp);
        ex.winogradForwardPart(0, 1, wsDx, N, O, OH, OW, C, 2 - pad, 2 - pad, H, W, dy, upack, 0, wino.dx);
      },
    };
    for (const r of Object.values(run)) r(); // warm-up; dW and db accumulate once here (checked below)
    f = f32();
    const errors = { gemm: [0, 0, 0, 0], winograd: [0, 0, 0, 0] }; // y, dW, db, dx
    const at4 = (p: number, i: number) => f[p / 4 + i];
    const note = (which: "gemm" | "winograd", slot: number, got: number, want: number) => {
      errors[which][slot] = Math.max(errors[which][slot], Math.abs(got - want));
    };
    for (let s = 0; s < 1500; s++) {
      const n = s % N,
        o = (s * 7) % O,
        i = (s * 13) % OH,
        j = (s * 17) % OW;
      let ref = at4(bias, o);
      for (let c = 0; c < C; c++)
        for (let p = 0; p < 3; p++)
          for (let q = 0; q < 3; q++) {
            const r = i + p - pad,
              t = j + q - pad;
            if (r >= 0 && t >= 0 && r < H && t < W)
              ref += at4(x, ((n * C + c) * H + r) * W + t) * at4(w, ((o * C + c) * 3 + p) * 3 + q);
          }
      const idx = ((n * O + o) * OH + i) * OW + j;
      note("gemm", 0, at4(g.y, idx), ref);
      note("winograd", 0, at4(wino.y, idx), ref);
      const c = (s * 5) % C,
        u = (s * 11) % H,
        v = (s * 19) % W;
      let rdx = 0;
      for (let oo = 0; oo < O; oo++)
        for (let p = 0; p < 3; p++)
          for (let q = 0; q < 3; q++) {
            const r = u + pad - p,
              t = v + pad - q;
            if (r >= 0 && t >= 0 && r < OH && t < OW)
              rdx += at4(dy, ((n * O + oo) * OH + r) * OW + t) * at4(w, ((oo * C + c) * 3 + p) * 3 + q);
          }
      const xi = ((n * C + c) * H + u) * W + v;
      note("gemm", 3, at4(g.dx, xi), rdx);
      note("winograd", 3, at4(wino.dx, xi), rdx);
    }
    for (let o = 0; o < O; o++) {
      let rdb = 0;
      for (let i = 0; i < N * OH * OW; i++)
        rdb += at4(dy, (Math.floor(i / (OH * OW)) * O + o) * OH * OW + (i % (OH * OW)));
      note("gemm", 2, at4(g.db, o), rdb);
      note("winograd", 2, at4(wino.db, o), rdb);
      for (let c = 0; c < C; c++)
        for (let p = 0; p < 3; p++)
          for (let q = 0; q < 3; q++) {
            let rdw = 0;
            for (let n = 0; n < N; n++)
              for (let i = 0; i < OH; i++)
                for (let j = 0; j < OW; j++) {
                  const r = i + p - pad,
                    t = j + q - pad;
                  if (r >= 0 && t >= 0 && r < H && t < W)
                    rdw += at4(dy, ((n * O + o) * OH + i) * OW + j) * at4(x, ((n * C + c) * H + r) * W + t);
                }
            const wi = ((o * C + c) * 3 + p) * 3 + q;
            note("gemm", 1, at4(g.dW, wi), rdw);
            note("winograd", 1, at4(wino.dW, wi), rdw);
          }
    }
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
