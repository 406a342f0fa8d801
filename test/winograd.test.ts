// Winograd's F(2×2, 3×3) on the wasm backend (wasm/winograd.as, derivation.md §6): forward, dW, db and dx
// against the float64 direct sums (conv2dForwardRef / conv2dBackwardRef) over random geometries — every
// padding from 0 to 2 on each side, maps from 1×1 up, odd sizes, batches that do not fill a group of images —
// within a float32 error bound taken from the magnitudes of the terms; which convolutions take it, and that
// setConvAlgorithm("direct") gives the GEMM convolution's bits; and the same bits on 1, 2 and 3 threads.
// That bound is loose (the errors measured use under 1% of it), so on small integers, where every sum is exact,
// the results must equal the JS backend's bit for bit: random geometries (bottom and right padding up to 4) and
// edge ones, through the backend and with the kernels called directly inside a canary; and the scratch sizes
// must be reported exactly however large (winogradFits refuses the ones i32 offsets cannot address).

import assert from "node:assert/strict";
import { describe, test } from "node:test";
import fc from "fast-check";

import { NDArray } from "../src/nd/ndarray.ts";
import { RandomState } from "../src/nd/random.ts";
import { convGeometry } from "../src/kernels/im2col.ts";
import { conv2dBackwardRef, conv2dForwardRef, jsBackend } from "../src/kernels/js.ts";
import type { Kernels } from "../src/kernels/kernels.ts";
import type { KernelExports } from "../src/kernels/wasm-loader.ts";
import { WinogradShape, winogradFits } from "../src/kernels/wasm-ops.ts";
import { wasmBackend } from "../src/kernels/wasm-backend.ts";
import { getConvAlgorithm, setConvAlgorithm } from "../src/kernels/backend.ts";
import { noThreads, noWasm, rand, restoreKernelsAfter, sameBitsOnEveryCount } from "./kernel-helpers.ts";

const EPS32 = 2 ** -24;

restoreKernelsAfter();

const zeros = (shape: readonly number[]) => new NDArray(new Float32Array(shape.reduce((a, b) => a * b, 1)), shape);
const abs = (a: NDArray) => new NDArray(Float64Array.from(a.data, Math.abs), a.shape);

interface Case {
  N: number;
  C: number;
  O: number;
  H: number;
  W: number;
  pads: [number, number, number, number]; // top, bottom, left, right
  bias: boolean;
  seed: number;
}

/** Integers from −3 to 3: every sum of the transforms, the GEMMs and the references is exact in float32. */
function ints(rng: RandomState, shape: readonly number[]): NDArray {
  const a = zeros(shape);
  for (let i = 0; i < a.size; i++) a.data[i] = Math.floor(rng.nextDouble() * 7) - 3;
  return a;
}

/**
 * The wasm backend's forward and backward (dW and db accumulated onto 0.5 and −0.25) of one case: normal data,
 * or (`exact`) small integers; `groups` as Conv2D's (C/groups input channels a group).
 */
function run(c: Case, exact = false, groups = 1, kernels: Kernels = wasmBackend) {
  const rng = new RandomState(c.seed);
  const g = convGeometry(c.N, c.C, c.H, c.W, [3, 3], [1, 1], c.pads, [1, 1]);
  const data = (shape: readonly number[], scale = 1) => (exact ? ints(rng, shape) : rand(rng, shape, scale));
  const x = data([c.N, c.C, c.H, c.W]);
  const w = data([c.O, c.C / groups, 3, 3], 1 / Math.sqrt((9 * c.C) / groups));
  const b = c.bias ? data([c.O]) : null;
  const ctx = kernels.conv2dForward(g, groups, x, w, b, null);
  const y = new NDArray(ctx.y.data.slice(), ctx.y.shape);
  const dy = data(y.shape);
  const dW = zeros(w.shape);
  dW.data.fill(0.5);
  const db = zeros([c.O]);
  db.data.fill(-0.25);
  const dx = kernels.conv2dBackward(ctx, w, dy, dW, db, true);
  return { g, x, w, b, dy, y, dW, db, dx: new NDArray(dx.data.slice(), dx.shape) };
}

/**
 * |got − want| within 16·(terms + 2)·ε₃₂ of the sum of the terms' magnitudes (the same sum over |operands|):
 * the transforms add at most a few terms' worth of rounding per product; a wrong transform is off by O(1).
 */
function assertNear(got: NDArray, want: NDArray, magnitude: NDArray, terms: number, what: string): void {
  assert.deepEqual(got.shape, want.shape, `${what}: shape`);
  const gamma = 16 * (terms + 2) * EPS32;
  for (let i = 0; i < want.size; i++) {
    const tol = gamma * magnitude.data[i] + 1e-30;
    if (!(Math.abs(got.data[i] - want.data[i]) <= tol))
      assert.fail(`${what}[${i}]: got ${got.data[i]}, want ${want.data[i]} ± ${tol.toExponential(2)}`);
  }
}

const base: Case = { N: 1, C: 8, O: 8, H: 3, W: 3, pads: [0, 0, 0, 0], bias: true, seed: 7 };
/** Geometries at the kernels' edges, each with its number of groups. */
const EDGE_CASES: [Case, number][] = [
  [base, 1], // a 1×1 output: one tile, three of its four outputs dropped
  [{ ...base, H: 1, W: 1, pads: [1, 1, 1, 1] }, 1], // 1×1 input and output
  [{ ...base, H: 2, W: 2, pads: [1, 1, 1, 1] }, 1], // 2×2: one whole tile
  [{ ...base, N: 2, H: 4, W: 4, pads: [2, 0, 0, 2] }, 1],
  [{ ...base, N: 3, H: 6, W: 6, pads: [1, 0, 1, 0] }, 1], // 'same' padding of an even size
  [{ ...base, N: 2, H: 5, W: 7, pads: [0, 6, 0, 5] }, 1], // bottom and right padding past 2
  [{ ...base, N: 2, H: 3, W: 200, pads: [1, 1, 1, 1] }, 1], // one row of 100 tiles
  [{ ...base, N: 2, H: 201, W: 3, pads: [0, 0, 1, 1] }, 1],
  [{ ...base, N: 5, H: 7, W: 7, pads: [1, 1, 1, 1] }, 1], // 4 images a group: 2 groups, the last of 1
  // 64 tiles an image, so an image a group: 9 groups in 8 weight-gradient chunks, one of them two groups
  [{ ...base, N: 9, H: 16, W: 16, pads: [1, 1, 1, 1] }, 1],
  [{ ...base, N: 2, C: 256, O: 256, H: 4, W: 4, pads: [1, 1, 1, 1] }, 1],
  // odd channel counts: the dW finish's last pair of input channels has a single lane (lane 1 never stored)
  [{ ...base, N: 2, C: 13, O: 9, H: 5, W: 6, pads: [1, 1, 1, 1] }, 1],
  [{ ...base, N: 2, C: 32, O: 16, H: 9, W: 8, pads: [1, 1, 1, 1] }, 2], // grouped: 16 → 8 a group
  [{ ...base, N: 3, C: 48, O: 24, H: 6, W: 5, pads: [1, 1, 1, 1] }, 3],
];

const CANARY = 0x7fa5a5a5; // a NaN: read into a result, it shows there too

/**
 * One case's forward, dx and dW/db by the Winograd kernels called directly, as wasm-ops.ts calls them on one
 * thread, in a fresh memory filled with a canary; each buffer at its size function's size, 64 canary bytes
 * at least between them. Returns the results and the first word outside the buffers that was written.
 */
function directKernels(module: WebAssembly.Module, c: Case) {
  const want = run(c, true, 1, jsBackend);
  const { x, w, b, dy, g } = want;
  const { N, C, O, H, W } = c;
  const { padTop, padLeft, OH, OW } = g;
  const memory = new WebAssembly.Memory({ initial: 256, maximum: 4096, shared: true });
  const k = new WebAssembly.Instance(module, { env: { memory } }).exports as unknown as KernelExports;
  const buffers: [number, number][] = [];
  let top = 1 << 16;
  const place = (bytes: number) => {
    const at = (top + 64 + 63) & ~63;
    top = at + bytes;
    buffers.push([at, bytes]);
    const size = memory.buffer.byteLength;
    if (top + 64 > size) {
      memory.grow(Math.ceil((top + 64 - size) / 65536));
      new Uint32Array(memory.buffer, size).fill(CANARY);
    }
    return at;
  };
  const put = (a: NDArray | null) => {
    if (a === null) return 0;
    const at = place(a.size * 4);
    new Float32Array(memory.buffer, at, a.size).set(a.data);
    return at;
  };
  const moduleData = new Uint32Array(memory.buffer, 0, 1 << 14).slice(); // the module's own first 64 KiB
  new Uint32Array(memory.buffer, 1 << 16).fill(CANARY);
  const xp = put(x),
    wp = put(w),
    bp = put(b),
    dyp = put(dy);
  const dWp = put(new NDArray(new Float32Array(O * C * 9).fill(0.5), [O, C, 3, 3]));
  const dbp = put(new NDArray(new Float32Array(O).fill(-0.25), [O]));
  // forward, then dx as the forward of dy with the flipped kernel (wasm-ops.ts winogradConv)
  const conv = (
    Ci: number,
    Hi: number,
    Wi: number,
    Co: number,
    pt: number,
    pl: number,
    Ho: number,
    Wo: number,
    inp: number,
    flipped: boolean,
    bias: number,
  ) => {
    const upack = place(k.winogradPackedBytes(Ci, Co));
    const tmp = place(16 * Co * Ci * 4);
    // the weights' transform as one call (one thread), and for dx in the 4 parts of several threads
    if (!flipped) k.winogradPackWeights(Co, Ci, wp, 0, upack, tmp);
    else for (let t = 0; t < 4; t++) k.winogradPackWeightsPart(t, 4, 0, Co, Ci, wp, 1, upack, tmp);
    const ws = place(k.winogradThreadScratchBytes(N, Ci, Hi, Wi, Co, pt, pl, Ho, Wo));
    const out = place(N * Co * Ho * Wo * 4);
    const groups = Math.ceil(N / k.winogradGroupImages(Ho, Wo));
    for (let t = 0; t < groups; t++)
      k.winogradForwardPart(t, groups, ws, N, Ci, Hi, Wi, Co, pt, pl, Ho, Wo, inp, upack, bias, out);
    return out;
  };
  const yp = conv(C, H, W, O, padTop, padLeft, OH, OW, xp, false, bp);
  const dxp = conv(O, OH, OW, C, 2 - padTop, 2 - padLeft, H, W, dyp, true, 0);
  const chunks = k.winogradWeightChunks(N, OH, OW);
  const partials = place(k.winogradPartialBytes(C, O, chunks));
  const ws = place(k.winogradThreadScratchBytes(N, C, H, W, O, padTop, padLeft, OH, OW));
  for (let t = 0; t < chunks; t++)
    k.winogradWeightGradPart(t, chunks, ws, N, C, H, W, O, padTop, padLeft, OH, OW, xp, dyp, partials);
  k.winogradWeightGradFinishPart(0, 1, ws, O, C, chunks, partials, dWp, N, OH * OW, dyp, bp === 0 ? 0 : dbp);
  const words = new Uint32Array(memory.buffer);
  const below = moduleData.findIndex((v, i) => v !== words[i]);
  let outside = below < 0 ? -1 : below * 4;
  let from = 1 << 14;
  for (const [at, bytes] of [...buffers, [words.length * 4, 0] as [number, number]]) {
    for (let i = from; i < at >> 2 && outside < 0; i++) if (words[i] !== CANARY) outside = i * 4;
    from = (at + bytes + 3) >> 2;
  }
  const view = (at: number, a: NDArray) => new NDArray(new Float32Array(memory.buffer, at, a.size).slice(), a.shape);
  const unchanged = [x, w, b, dy].every(
    (a, i) => a === null || view([xp, wp, bp, dyp][i], a).data.every((v, j) => Object.is(v, a.data[j])),
  );
  return {
    outside,
    unchanged,
    got: {
      ...want,
      y: view(yp, want.y),
      dx: view(dxp, want.dx),
      dW: view(dWp, want.dW),
      db: bp === 0 ? want.db : view(dbp, want.db),
    },
    want,
  };
}

/** Each of y, dW, db and dx of `got` bit-identical to `want`'s. */
function assertSameBits(got: ReturnType<typeof run>, want: ReturnType<typeof run>, what: string): void {
  for (const key of ["y", "dW", "db", "dx"] as const) {
    const a = Float32Array.from(got[key].data),
      b = Float32Array.from(want[key].data);
    const at = a.findIndex((v, i) => !Object.is(v, b[i]));
    if (at >= 0 || a.length !== b.length) assert.fail(`${what}: ${key}[${at}] is ${a[at]}, want ${b[at]}`);
  }
}

/**
 * Random cases of 1…N images, 8…20 input and O[0]…O[1] output channels, maps up to H × W, top/left padding
 * 0…2 and bottom/right 0…padEnd, with an output of at least 1×1.
 */
function winogradCases(r: { N: number; O: [number, number]; H: number; W: number; padEnd: number }) {
  return fc
    .record({
      N: fc.integer({ min: 1, max: r.N }),
      C: fc.integer({ min: 8, max: 20 }),
      O: fc.integer({ min: r.O[0], max: r.O[1] }),
      H: fc.integer({ min: 1, max: r.H }),
      W: fc.integer({ min: 1, max: r.W }),
      pads: fc.tuple(
        fc.integer({ min: 0, max: 2 }),
        fc.integer({ min: 0, max: r.padEnd }),
        fc.integer({ min: 0, max: 2 }),
        fc.integer({ min: 0, max: r.padEnd }),
      ),
      bias: fc.boolean(),
      seed: fc.integer({ min: 1, max: 10_000 }),
    })
    .filter((c) => c.H + c.pads[0] + c.pads[1] >= 3 && c.W + c.pads[2] + c.pads[3] >= 3);
}

describe("Winograd F(2×2, 3×3) on the wasm backend", { skip: noWasm }, () => {
  test("forward, dW, db and dx match the float64 direct sums over random geometries", () => {
    setConvAlgorithm("auto");
    const cases = winogradCases({ N: 5, O: [8, 14], H: 15, W: 17, padEnd: 2 });
    fc.assert(
      fc.property(cases, (c) => {
        const r = run(c);
        const padding = c.pads;
        const opts = { padding, stride: [1, 1] as [number, number], dilation: [1, 1] as [number, number] };
        const P = r.g.OH * r.g.OW;
        assertNear(
          r.y,
          conv2dForwardRef(r.x, r.w, r.b, opts),
          conv2dForwardRef(abs(r.x), abs(r.w), r.b === null ? null : abs(r.b), opts),
          9 * c.C,
          "y",
        );
        const ref = conv2dBackwardRef(r.x, r.w, r.dy, opts);
        const mag = conv2dBackwardRef(abs(r.x), abs(r.w), abs(r.dy), opts);
        const shifted = (a: NDArray, by: number) =>
          new NDArray(
            Float64Array.from(a.data, (v) => v + by),
            a.shape,
          );
        assertNear(r.dW, shifted(ref.dw, 0.5), shifted(mag.dw, 0.5), c.N * P, "dW");
        assertNear(r.db, shifted(ref.db, -0.25), shifted(mag.db, 0.25), c.N * P, "db");
        assertNear(r.dx, ref.dx, mag.dx, 9 * c.O, "dx");
      }),
      { numRuns: 60 },
    );
  });

  test("which convolutions take it; setConvAlgorithm('direct') gives the GEMM convolution's bits", () => {
    assert.equal(getConvAlgorithm(), "auto");
    const bits = (c: Case) => {
      const r = run(c);
      return [r.y, r.dW, r.db, r.dx].map((a) => new Uint32Array(Float32Array.from(a.data).buffer));
    };
    const differs = (a: Uint32Array[], b: Uint32Array[]) => a.some((v, i) => v.some((u, j) => u !== b[i][j]));
    const wide: Case = { N: 3, C: 16, O: 12, H: 9, W: 10, pads: [1, 1, 1, 1], bias: true, seed: 3 };
    // 4 input and 6 output channels: the forward and the weight gradient have fewer than 8 input channels, the
    // input gradient's convolution (6 → 4) too: the GEMM convolution throughout
    const narrow: Case = { ...wide, C: 4, O: 6 };
    const auto = { wide: bits(wide), narrow: bits(narrow) };
    setConvAlgorithm("direct");
    try {
      const direct = { wide: bits(wide), narrow: bits(narrow) };
      assert.ok(differs(auto.wide, direct.wide), "16 input channels: Winograd under 'auto', not under 'direct'");
      assert.ok(!differs(auto.narrow, direct.narrow), "4 → 6 channels: the same GEMM convolution either way");
    } finally {
      setConvAlgorithm("auto");
    }
    assert.throws(() => {
      setConvAlgorithm("fast" as never);
    }, /must be "auto" or "direct", got "fast"/);
  });

  test("on small integers (every sum exact) the same bits as the JS backend: random geometries", () => {
    setConvAlgorithm("auto");
    // bottom and right padding up to 4 (the input gradient's convolution then reads only part of dy), output
    // channels from 4 (the input gradient on the GEMM path) up
    const cases = winogradCases({ N: 9, O: [4, 14], H: 19, W: 21, padEnd: 4 });
    fc.assert(
      fc.property(cases, (c) => {
        assertSameBits(run(c, true), run(c, true, 1, jsBackend), JSON.stringify(c));
      }),
      { numRuns: 60 },
    );
  });

  test("on small integers the same bits as the JS backend: edge geometries, grouped convolutions", () => {
    setConvAlgorithm("auto");
    for (const [c, groups] of EDGE_CASES) {
      assertSameBits(run(c, true, groups), run(c, true, groups, jsBackend), `${JSON.stringify(c)}, ${groups} groups`);
    }
  });

  test("the kernels write nothing past the buffers their size functions give (a canary around each)", async () => {
    const { wasmSharedBase64 } = (await import("../src/kernels/wasm/kernels.generated.ts")) as {
      wasmSharedBase64: string;
    };
    const module = new WebAssembly.Module(Uint8Array.from(atob(wasmSharedBase64), (ch) => ch.charCodeAt(0)));
    for (const [c, groups] of EDGE_CASES) {
      if (groups !== 1) continue;
      const r = directKernels(module, c);
      assert.equal(r.outside, -1, `${JSON.stringify(c)}: written at byte ${r.outside}, outside every buffer`);
      assert.ok(r.unchanged, `${JSON.stringify(c)}: an input written`);
      assertSameBits(r.got, r.want, JSON.stringify(c));
    }
  });

  test("scratch sizes are reported exactly however large; past the cap, the GEMM convolution", async () => {
    const { wasmSharedBase64 } = (await import("../src/kernels/wasm/kernels.generated.ts")) as {
      wasmSharedBase64: string;
    };
    const module = new WebAssembly.Module(Uint8Array.from(atob(wasmSharedBase64), (ch) => ch.charCodeAt(0)));
    const memory = new WebAssembly.Memory({ initial: 1, maximum: 16, shared: true });
    const k = new WebAssembly.Instance(module, { env: { memory } }).exports as unknown as KernelExports;
    setConvAlgorithm("auto");
    // 64 → 64 channels at 1024×1024, 'same': V and M hold 16·64·(512² + 4) floats each, and the padded image
    // 64·1026² (in i32 the sum wrapped to −1 877 957 184 bytes, and the call would have written far past it)
    const block = (floats: number) => Math.ceil((floats * 4) / 64) * 64 + 64;
    // gemmPacked's edge buffers: what a 3×3 image's scratch (one tile; 8 planes of 4 × 10 padded) leaves
    const edges = k.winogradThreadScratchBytes(1, 8, 3, 3, 8, 0, 0, 1, 1) - block(8 * 4 * 10) - 2 * block(16 * 8 * 5);
    const big = convGeometry(1, 64, 1024, 1024, [3, 3], [1, 1], [1, 1, 1, 1], [1, 1]);
    const bytes = k.winogradThreadScratchBytes(1, 64, 1024, 1024, 64, 1, 1, 1024, 1024);
    assert.equal(bytes, block(64 * 1026 * 1026) + 2 * block(16 * 64 * (512 * 512 + 4)) + edges);
    assert.ok(bytes > 2 ** 31, `${bytes} bytes`);
    assert.ok(!winogradFits(k, big, 1, new WinogradShape().of(big, 64, false)), "64 → 64 at 1024×1024: direct");
    assert.ok(!winogradFits(k, big, 1, new WinogradShape().of(big, 64, true)), "its input gradient: direct");
    const small = convGeometry(2, 256, 4, 4, [3, 3], [1, 1], [1, 1, 1, 1], [1, 1]);
    assert.ok(winogradFits(k, small, 2, new WinogradShape().of(small, 256, false)), "256 → 256 at 4×4: Winograd");
  });

  test(
    "the same bits on 1, 2 and 3 threads (groups of images, the weight gradient's chunks)",
    { skip: noThreads },
    async () => {
      setConvAlgorithm("auto");
      // 7×7: 4 images a group (16 tiles each), 9 images → 3 groups, 3 chunks; 28×28 16→16 (resnet-mini's), 5
      // images → 5 chunks; 14×14 with 'valid' padding; dx of a 'same' 12→8 (its transposed convolution: 8 → 12)
      const cases: Case[] = [
        { N: 9, C: 16, O: 16, H: 7, W: 7, pads: [1, 1, 1, 1], bias: true, seed: 1 },
        { N: 5, C: 16, O: 16, H: 28, W: 28, pads: [1, 1, 1, 1], bias: false, seed: 2 },
        { N: 4, C: 9, O: 20, H: 14, W: 13, pads: [0, 0, 0, 0], bias: true, seed: 3 },
        { N: 3, C: 12, O: 8, H: 11, W: 16, pads: [2, 0, 1, 2], bias: true, seed: 4 },
        // one image: one group, one chunk, fewer than the threads; 9 groups in 8 chunks, more than the threads
        { N: 1, C: 8, O: 8, H: 10, W: 9, pads: [1, 1, 1, 1], bias: true, seed: 5 },
        { N: 9, C: 8, O: 8, H: 16, W: 16, pads: [1, 1, 1, 1], bias: true, seed: 6 },
      ];
      for (const c of cases) {
        await sameBitsOnEveryCount(`winograd N${c.N} ${c.C}→${c.O} ${c.H}×${c.W}`, () => {
          const r = run(c);
          return [r.y, r.dW, r.db, r.dx].map((a) => Float32Array.from(a.data));
        });
      }
    },
  );
});
