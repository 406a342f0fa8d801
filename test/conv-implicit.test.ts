// The convolution forward reads the zero-padded image in place of col where its output columns step by one
// input column (conv.as gemmImplicit): the same products in the same order as im2col + gemmPacked, so the
// same bits. Checked here against those two exports run on the same operands, over random geometries
// (padding, row stride and dilation, kernels wider than the output, fewer than 8 output columns, K past one
// K block, M past one M block, a bias); the weight gradient's parts (blocks of dW's columns) against the whole
// col's dot products; col2im against adding col's rows in order; im2col against its definition.

import assert from "node:assert/strict";
import { test } from "node:test";
import fc from "fast-check";

import { loadKernels } from "../src/kernels/wasm.ts";
import { noWasm } from "./kernel-helpers.ts";

type Fn = (...args: number[]) => number;

/** The ordinary kernel instance's exports and memory, and the first byte past what the library has used. */
async function kernelExports(): Promise<{ ex: Record<string, Fn>; memory: WebAssembly.Memory; base: number }> {
  const k = await loadKernels();
  if (typeof k === "string") throw new Error(k);
  return { ex: k.exports as unknown as Record<string, Fn>, memory: k.memory, base: k.memory.buffer.byteLength };
}

/**
 * Blocks of the given byte sizes from base on, each 64-byte aligned with at least 64 bytes after it, memory
 * grown to hold them all: their addresses.
 */
function place(memory: WebAssembly.Memory, base: number, sizes: number[]): number[] {
  const block = (bytes: number) => Math.ceil((bytes + 64) / 64) * 64;
  const end = sizes.reduce((at, bytes) => at + block(bytes), base);
  if (end > memory.buffer.byteLength) memory.grow(Math.ceil((end - memory.buffer.byteLength) / 65536));
  let at = base;
  return sizes.map((bytes) => ((at += block(bytes)), at - block(bytes)));
}

/** A linear congruential generator of floats in [−1, 1), from seed. */
function lcg(seed: number): () => number {
  let s = seed;
  return () => ((s = (s * 1103515245 + 12345) % 2147483648) / 2147483648) * 2 - 1;
}

/** floats of memory at each [address, count] filled with rand() in turn. */
function fill(memory: WebAssembly.Memory, rand: () => number, blocks: [number, number][]): void {
  const f = new Float32Array(memory.buffer);
  for (const [p, n] of blocks) for (let i = 0; i < n; i++) f[p / 4 + i] = rand();
}

/** Each side's padding, 0–3: the arbitraries the geometries below share (in the same place of each record). */
const PADDING = {
  padTop: fc.integer({ min: 0, max: 3 }),
  padBottom: fc.integer({ min: 0, max: 3 }),
  padLeft: fc.integer({ min: 0, max: 3 }),
  padRight: fc.integer({ min: 0, max: 3 }),
};

test("the implicit-GEMM conv forward gives im2col + GEMM's bits", { skip: noWasm }, async () => {
  const { ex, memory, base } = await kernelExports(); // this test's operands go from base on
  const geometry = fc
    .record({
      N: fc.integer({ min: 1, max: 2 }),
      C: fc.integer({ min: 1, max: 40 }),
      O: fc.integer({ min: 1, max: 130 }),
      H: fc.integer({ min: 1, max: 17 }),
      W: fc.integer({ min: 1, max: 19 }),
      kh: fc.integer({ min: 1, max: 5 }),
      kw: fc.integer({ min: 1, max: 5 }),
      sh: fc.integer({ min: 1, max: 3 }),
      dh: fc.integer({ min: 1, max: 2 }),
      dw: fc.integer({ min: 1, max: 2 }),
      ...PADDING,
      bias: fc.boolean(),
      seed: fc.integer({ min: 1, max: 1000 }),
    })
    .filter((g) => {
      const OH = Math.floor((g.H + g.padTop + g.padBottom - (g.kh - 1) * g.dh - 1) / g.sh) + 1;
      const OW = g.W + g.padLeft + g.padRight - (g.kw - 1) * g.dw;
      return OH >= 1 && OW >= 1 && g.C * g.O * g.kh * g.kw * OH * OW <= 3e6;
    });
  fc.assert(
    fc.property(geometry, (g) => {
      const { N, C, O, H, W, kh, kw, sh, dh, dw, padTop, padLeft } = g;
      const OH = Math.floor((H + padTop + g.padBottom - (kh - 1) * dh - 1) / sh) + 1;
      const OW = W + padLeft + g.padRight - (kw - 1) * dw;
      const K = C * kh * kw;
      const P = OH * OW;
      const sizes = [N * C * H * W, O * K, O, N * O * P, N * O * P, K * P];
      const [x, w, b, y, yRef, col, ws, packed, edge] = place(memory, base, [
        ...sizes.map((n) => 4 * n),
        ex.convScratchBytes(C, O, kh, kw, OH, OW),
        ex.convPackedBytes(C, O, kh, kw),
        65536 - 64,
      ]);
      fill(memory, lcg(g.seed), [
        [x, sizes[0]],
        [w, sizes[1]],
        [b, sizes[2]],
      ]);
      const bias = g.bias ? b : 0;
      ex.convForward(N, C, H, W, O, kh, kw, sh, 1, dh, dw, padTop, padLeft, OH, OW, x, w, bias, y, ws);
      // the reference: each image's col, then W·col (+ b) as convForwardPart did before the implicit form
      ex.packA(0, O, K, 1, w, K, packed);
      const g13 = [C, H, W, kh, kw, sh, 1, dh, dw, padTop, padLeft, OH, OW];
      const fr = new Float32Array(memory.buffer);
      for (let n = 0; n < N; n++) {
        const yn = yRef + 4 * n * O * P;
        for (let o = 0; o < O; o++) fr.fill(g.bias ? fr[b / 4 + o] : 0, yn / 4 + o * P, yn / 4 + (o + 1) * P);
        ex.im2colImage(x + 4 * n * C * H * W, ...g13, col);
        ex.gemmPacked(O, P, K, packed, col, P, yn, P, g.bias ? 1 : 0, edge);
      }
      const got = new Uint32Array(memory.buffer, y, N * O * P);
      const want = new Uint32Array(memory.buffer, yRef, N * O * P);
      const at0 = got.findIndex((v, i) => v !== want[i]);
      assert.equal(at0, -1, `y[${at0}] differs (${JSON.stringify(g)})`);
    }),
    { numRuns: 60, seed: 15 },
  );
});

// The weight gradient's parts each take a block of dW's columns and build only those rows of each image's col
// (im2colRows): the bits must be those of the whole col (im2colImage) and gemmNT's dot products, for every
// split into parts — geometries with whole-vector output rows (OW a multiple of 4), strides 1 and 2.
test("the weight gradient gives im2col + gemmNT's bits on any number of dW parts", { skip: noWasm }, async () => {
  const { ex, memory, base } = await kernelExports();
  const geometry = fc
    .record({
      N: fc.integer({ min: 1, max: 3 }),
      C: fc.integer({ min: 1, max: 12 }),
      O: fc.integer({ min: 1, max: 9 }),
      H: fc.integer({ min: 1, max: 14 }),
      quads: fc.integer({ min: 1, max: 5 }), // OW = 4·quads when the stride is 1
      kh: fc.integer({ min: 1, max: 5 }),
      kw: fc.integer({ min: 1, max: 5 }),
      sh: fc.constantFrom(1, 1, 1, 2),
      dh: fc.integer({ min: 1, max: 2 }),
      dw: fc.integer({ min: 1, max: 2 }),
      ...PADDING,
      parts: fc.integer({ min: 1, max: 4 }),
      seed: fc.integer({ min: 1, max: 1000 }),
    })
    .map((g) => ({
      ...g,
      W: 4 * g.quads + (g.kw - 1) * g.dw - g.padLeft - g.padRight,
      OH: Math.floor((g.H + g.padTop + g.padBottom - (g.kh - 1) * g.dh - 1) / g.sh) + 1,
      OW: 4 * g.quads,
    }))
    .filter((g) => g.W >= 1 && g.OH >= 1);
  fc.assert(
    fc.property(geometry, (g) => {
      const { N, C, O, H, W, kh, kw, sh, dh, dw, padTop, padLeft, OH, OW } = g;
      const K = C * kh * kw;
      const P = OH * OW;
      const sizes = [N * C * H * W, N * O * P, O * K, O * K, K * P];
      const [x, dy, dW, dWRef, col, ws] = place(memory, base, [
        ...sizes.map((n) => 4 * n),
        ex.convThreadScratchBytes(C, O, kh, kw, OH, OW),
      ]);
      fill(memory, lcg(g.seed), [
        [x, sizes[0]],
        [dy, sizes[1]],
        [dW, sizes[2]],
      ]);
      const f = new Float32Array(memory.buffer);
      f.copyWithin(dWRef / 4, dW / 4, dW / 4 + O * K);
      // dW parts only (no dx, no db), each summing every image for its block of columns
      for (let t = 0; t < g.parts; t++)
        ex.convBackwardPart(
          t,
          g.parts,
          ws,
          g.parts,
          N,
          C,
          H,
          W,
          O,
          kh,
          kw,
          sh,
          1,
          dh,
          dw,
          padTop,
          padLeft,
          OH,
          OW,
          x,
          0,
          dy,
          dW,
          0,
          0,
        );
      for (let n = 0; n < N; n++) {
        ex.im2colImage(x + 4 * n * C * H * W, C, H, W, kh, kw, sh, 1, dh, dw, padTop, padLeft, OH, OW, col);
        ex.gemmNT(O, K, P, 1, dy + 4 * n * O * P, P, col, P, 1, dWRef, K);
      }
      const got = new Uint32Array(memory.buffer, dW, O * K);
      const want = new Uint32Array(memory.buffer, dWRef, O * K);
      const at0 = got.findIndex((v, i) => v !== want[i]);
      assert.equal(at0, -1, `dW[${at0}] differs (${JSON.stringify(g)})`);
    }),
    { numRuns: 80, seed: 23 },
  );
});

// col2im adds a 3-wide kernel's three taps into each dx element together (conv.as col2imRow3); its bits
// must be those of adding col's rows one after the other in row order, as the plain loop below does.
test("col2im gives the bits of adding col's rows in order", { skip: noWasm }, async () => {
  const { ex, memory, base } = await kernelExports();
  const geometry = windowGeometry({
    C: 4,
    W: 21,
    kw: fc.constantFrom(3, 3, 3, 1, 2, 5),
    sw: fc.constantFrom(1, 1, 1, 2),
    dw: fc.constantFrom(1, 1, 1, 2),
  });
  fc.assert(
    fc.property(geometry, (g) => {
      const { C, H, W, kh, kw, sh, sw, dh, dw, padTop, padLeft, OH, OW } = g;
      const K = C * kh * kw;
      const P = OH * OW;
      const need = 4 * (K * P + 2 * C * H * W) + 256;
      if (base + need > memory.buffer.byteLength)
        memory.grow(Math.ceil((base + need - memory.buffer.byteLength) / 65536));
      const col = base;
      const dx = col + 4 * K * P + 64;
      const rand = lcg(g.seed);
      fill(memory, rand, [[col, K * P]]);
      const f = new Float32Array(memory.buffer);
      // some −0 in dx: columns a stride-2 row skips must keep their sign bit (added to nothing, not to +0)
      const start = Float32Array.from({ length: C * H * W }, () => {
        const v = rand();
        return v < -0.8 ? -0 : v;
      });
      f.set(start, dx / 4);
      ex.col2imImage(col, C, H, W, kh, kw, sh, sw, dh, dw, padTop, padLeft, OH, OW, dx);
      const want = Float32Array.from(start);
      for (let c = 0; c < C; c++)
        for (let p = 0; p < kh; p++)
          for (let q = 0; q < kw; q++) {
            const r = (c * kh + p) * kw + q;
            for (let i = 0; i < OH; i++)
              for (let j = 0; j < OW; j++) {
                const h = i * sh + p * dh - padTop;
                const w = j * sw + q * dw - padLeft;
                if (h < 0 || h >= H || w < 0 || w >= W) continue;
                const at = (c * H + h) * W + w;
                want[at] = Math.fround(want[at] + f[col / 4 + r * P + i * OW + j]);
              }
          }
      const got = new Uint32Array(memory.buffer, dx, C * H * W);
      const wantBits = new Uint32Array(want.buffer);
      const at0 = got.findIndex((v, i) => v !== wantBits[i]);
      assert.equal(at0, -1, `dx[${at0}] differs (${JSON.stringify(g)})`);
    }),
    { numRuns: 150, seed: 16 },
  );
});

test(
  "im2col copies x_pad[c, i·sh + p·dh − padTop, j·sw + q·dw − padLeft] into col, every stride",
  { skip: noWasm },
  async () => {
    const { ex, memory, base } = await kernelExports();
    const geometry = windowGeometry({
      C: 3,
      W: 30,
      kw: fc.integer({ min: 1, max: 4 }),
      sw: fc.constantFrom(1, 2, 2, 3),
      dw: fc.integer({ min: 1, max: 2 }),
    });
    fc.assert(
      fc.property(geometry, (g) => {
        const { C, H, W, kh, kw, sh, sw, dh, dw, padTop, padLeft, OH, OW } = g;
        const K = C * kh * kw;
        const P = OH * OW;
        const need = 4 * (K * P + C * H * W) + 256;
        if (base + need > memory.buffer.byteLength)
          memory.grow(Math.ceil((base + need - memory.buffer.byteLength) / 65536));
        const x = base;
        const col = x + 4 * C * H * W + 64;
        const f = new Float32Array(memory.buffer);
        let s = g.seed;
        for (let i = 0; i < C * H * W; i++) f[x / 4 + i] = (s = (s * 1103515245 + 12345) % 2147483648) / 2147483648;
        ex.im2colImage(x, C, H, W, kh, kw, sh, sw, dh, dw, padTop, padLeft, OH, OW, col);
        for (let c = 0; c < C; c++)
          for (let p = 0; p < kh; p++)
            for (let q = 0; q < kw; q++)
              for (let i = 0; i < OH; i++)
                for (let j = 0; j < OW; j++) {
                  const h = i * sh + p * dh - padTop;
                  const w = j * sw + q * dw - padLeft;
                  const want = h < 0 || h >= H || w < 0 || w >= W ? 0 : f[x / 4 + (c * H + h) * W + w];
                  const got = f[col / 4 + ((c * kh + p) * kw + q) * P + i * OW + j];
                  if (!Object.is(got, want)) assert.fail(`col[(${c},${p},${q}), (${i},${j})] = ${got}, want ${want}`);
                }
      }),
      { numRuns: 150, seed: 17 },
    );
  },
);

/**
 * Random im2col/col2im geometries with OH, OW ≥ 1: up to C channels, H up to 12 and W up to `W`, the column
 * axis's kernel width, stride and dilation drawn from the given arbitraries, paddings 0…3.
 */
function windowGeometry(axis: {
  C: number;
  W: number;
  kw: fc.Arbitrary<number>;
  sw: fc.Arbitrary<number>;
  dw: fc.Arbitrary<number>;
}) {
  return fc
    .record({
      C: fc.integer({ min: 1, max: axis.C }),
      H: fc.integer({ min: 1, max: 12 }),
      W: fc.integer({ min: 1, max: axis.W }),
      kh: fc.integer({ min: 1, max: 4 }),
      kw: axis.kw,
      sh: fc.integer({ min: 1, max: 3 }),
      sw: axis.sw,
      dh: fc.integer({ min: 1, max: 2 }),
      dw: axis.dw,
      ...PADDING,
      seed: fc.integer({ min: 1, max: 1000 }),
    })
    .map((g) => ({
      ...g,
      OH: Math.floor((g.H + g.padTop + g.padBottom - (g.kh - 1) * g.dh - 1) / g.sh) + 1,
      OW: Math.floor((g.W + g.padLeft + g.padRight - (g.kw - 1) * g.dw - 1) / g.sw) + 1,
    }))
    .filter((g) => g.OH >= 1 && g.OW >= 1);
}
