// Winograd's F(2×2, 3×3) on the wasm backend (wasm/winograd.as, derivation.md §6): forward, dW, db and dx
// against the float64 direct sums (conv2dForwardRef / conv2dBackwardRef) over random geometries — every
// padding from 0 to 2 on each side, maps from 1×1 up, odd sizes, batches that do not fill a group of images —
// within a float32 error bound taken from the magnitudes of the terms; which convolutions take it, and that
// setConvAlgorithm("direct") gives the GEMM convolution's bits; and the same bits on 1, 2 and 3 threads.

import assert from "node:assert/strict";
import { describe, test } from "node:test";
import fc from "fast-check";

import { NDArray } from "../src/nd/ndarray.ts";
import { RandomState } from "../src/nd/random.ts";
import { convGeometry } from "../src/kernels/im2col.ts";
import { conv2dBackwardRef, conv2dForwardRef } from "../src/kernels/js.ts";
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

/** The wasm backend's forward and backward (dW and db accumulated onto 0.5 and −0.25) of one case. */
function run(c: Case) {
  const rng = new RandomState(c.seed);
  const g = convGeometry(c.N, c.C, c.H, c.W, [3, 3], [1, 1], c.pads, [1, 1]);
  const x = rand(rng, [c.N, c.C, c.H, c.W]);
  const w = rand(rng, [c.O, c.C, 3, 3], 1 / Math.sqrt(9 * c.C));
  const b = c.bias ? rand(rng, [c.O]) : null;
  const ctx = wasmBackend.conv2dForward(g, 1, x, w, b, null);
  const y = new NDArray(ctx.y.data.slice(), ctx.y.shape);
  const dy = rand(rng, y.shape);
  const dW = zeros(w.shape);
  dW.data.fill(0.5);
  const db = zeros([c.O]);
  db.data.fill(-0.25);
  const dx = wasmBackend.conv2dBackward(ctx, w, dy, dW, db, true);
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

describe("Winograd F(2×2, 3×3) on the wasm backend", { skip: noWasm }, () => {
  test("forward, dW, db and dx match the float64 direct sums over random geometries", () => {
    setConvAlgorithm("auto");
    const cases = fc
      .record({
        N: fc.integer({ min: 1, max: 5 }),
        C: fc.integer({ min: 8, max: 20 }),
        O: fc.integer({ min: 8, max: 14 }),
        H: fc.integer({ min: 1, max: 15 }),
        W: fc.integer({ min: 1, max: 17 }),
        pads: fc.tuple(
          fc.integer({ min: 0, max: 2 }),
          fc.integer({ min: 0, max: 2 }),
          fc.integer({ min: 0, max: 2 }),
          fc.integer({ min: 0, max: 2 }),
        ),
        bias: fc.boolean(),
        seed: fc.integer({ min: 1, max: 10_000 }),
      })
      .filter((c) => c.H + c.pads[0] + c.pads[1] >= 3 && c.W + c.pads[2] + c.pads[3] >= 3);
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
