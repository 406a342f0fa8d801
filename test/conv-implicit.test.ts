// The convolution forward reads the zero-padded image in place of col where its output columns step by one
// input column (conv.as gemmImplicit): the same products in the same order as im2col + gemmPacked, so the
// same bits. Checked here against those two exports run on the same operands, over random geometries
// (padding, row stride and dilation, kernels wider than the output, fewer than 8 output columns, K past one
// K block, M past one M block, a bias).

import assert from "node:assert/strict";
import { test } from "node:test";
import fc from "fast-check";

import { loadKernels } from "../src/kernels/wasm.ts";
import { noWasm } from "./kernel-helpers.ts";

type Fn = (...args: number[]) => number;

test("the implicit-GEMM conv forward gives im2col + GEMM's bits", { skip: noWasm }, async () => {
  const k = await loadKernels();
  if (typeof k === "string") throw new Error(k);
  const ex = k.exports as unknown as Record<string, Fn>;
  const base = k.memory.buffer.byteLength; // past everything the library has used: this test's operands
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
      padTop: fc.integer({ min: 0, max: 3 }),
      padBottom: fc.integer({ min: 0, max: 3 }),
      padLeft: fc.integer({ min: 0, max: 3 }),
      padRight: fc.integer({ min: 0, max: 3 }),
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
      const bytes = (floats: number) => Math.ceil((4 * floats + 64) / 64) * 64;
      const sizes = [N * C * H * W, O * K, O, N * O * P, N * O * P, K * P];
      const scratch = ex.convScratchBytes(C, O, kh, kw, OH, OW);
      const total = sizes.reduce((s, n) => s + bytes(n), 0) + scratch + ex.convPackedBytes(C, O, kh, kw) + 65536;
      if (base + total > k.memory.buffer.byteLength)
        k.memory.grow(Math.ceil((base + total - k.memory.buffer.byteLength) / 65536));
      let at = base;
      const alloc = (b: number) => ((at += bytes(b / 4)), at - bytes(b / 4));
      const [x, w, b, y, yRef, col] = sizes.map((n) => alloc(4 * n));
      const ws = alloc(scratch);
      const packed = alloc(ex.convPackedBytes(C, O, kh, kw));
      const edge = alloc(65536 - 64);
      const f = new Float32Array(k.memory.buffer);
      let s = g.seed;
      const rand = () => ((s = (s * 1103515245 + 12345) % 2147483648) / 2147483648) * 2 - 1;
      for (const [p, n] of [
        [x, sizes[0]],
        [w, sizes[1]],
        [b, sizes[2]],
      ])
        for (let i = 0; i < n; i++) f[p / 4 + i] = rand();
      const bias = g.bias ? b : 0;
      ex.convForward(N, C, H, W, O, kh, kw, sh, 1, dh, dw, padTop, padLeft, OH, OW, x, w, bias, y, ws);
      // the reference: each image's col, then W·col (+ b) as convForwardPart did before the implicit form
      ex.packA(0, O, K, 1, w, K, packed);
      const g13 = [C, H, W, kh, kw, sh, 1, dh, dw, padTop, padLeft, OH, OW];
      const fr = new Float32Array(k.memory.buffer);
      for (let n = 0; n < N; n++) {
        const yn = yRef + 4 * n * O * P;
        for (let o = 0; o < O; o++) fr.fill(g.bias ? fr[b / 4 + o] : 0, yn / 4 + o * P, yn / 4 + (o + 1) * P);
        ex.im2colImage(x + 4 * n * C * H * W, ...g13, col);
        ex.gemmPacked(O, P, K, packed, col, P, yn, P, g.bias ? 1 : 0, edge);
      }
      const got = new Uint32Array(k.memory.buffer, y, N * O * P);
      const want = new Uint32Array(k.memory.buffer, yRef, N * O * P);
      const at0 = got.findIndex((v, i) => v !== want[i]);
      assert.equal(at0, -1, `y[${at0}] differs (${JSON.stringify(g)})`);
    }),
    { numRuns: 60, seed: 15 },
  );
});
