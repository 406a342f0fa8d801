// The depthwise convolution kernels (groups = C, derivation.md §5.1): the WebAssembly one
// (wasm/depthwise.as) against the JS reference loops (js.ts) in float32 over randomized geometries —
// depth multiplier, stride, asymmetric padding, dilation, with and without bias — forward, dW and db
// accumulated onto what was there, dx; needDx = false adds the same dW and db as with dx; bit-identical
// results on 1, 2 and 3 threads, for the kernel and for a few training steps of mobilenet-mini; the same
// bits when the WebAssembly memory grows between forward and backward. Also grouped convolutions
// (1 < G < C: one ungrouped wasm convolution per group) against the JS ones.

import { describe, test } from "node:test";
import assert from "node:assert/strict";
import fc from "fast-check";
import { NDArray } from "../src/nd/ndarray.ts";
import { RandomState } from "../src/nd/random.ts";
import { convGeometry, type ConvGeometry } from "../src/kernels/im2col.ts";
import { jsBackend } from "../src/kernels/js.ts";
import { wasmBackend } from "../src/kernels/wasm-backend.ts";
import { setBackend } from "../src/kernels/backend.ts";
import { wasmMemoryBytes } from "../src/kernels/wasm.ts";
import type { Kernels } from "../src/kernels/kernels.ts";
import { buildModel } from "../src/nn/models.ts";
import { SoftmaxCrossEntropy } from "../src/nn/losses.ts";
import { Adam } from "../src/nn/optim.ts";
import { noThreads, noWasm, rand, restoreKernelsAfter, sameBitsOnEveryCount } from "./kernel-helpers.ts";

const initialBackend = restoreKernelsAfter();

/** One grouped convolution: geometry, groups G (C: depthwise), outputs per group, bias or not, its arrays' seed. */
interface Case {
  g: ConvGeometry;
  G: number;
  M: number;
  bias: boolean;
  seed: number;
}

/**
 * Forward, then backward with needDx = false and then true onto the same accumulators (dW and db start
 * random): y, dW and db after the first backward, then dx, dW and db after the second.
 */
function runCase(k: Kernels, c: Case, afterForward?: () => void): Float32Array[] {
  const { g, G, M } = c;
  const O = G * M;
  const rng = new RandomState(c.seed);
  const x = rand(rng, [g.N, g.C, g.H, g.W]);
  const w = rand(rng, [O, g.C / G, g.kh, g.kw]);
  const b = c.bias ? rand(rng, [O]) : null;
  const dy = rand(rng, [g.N, O, g.OH, g.OW]);
  const dW = rand(rng, w.shape);
  const db = c.bias ? rand(rng, [O]) : null;
  const ctx = k.conv2dForward(g, G, x, w, b, null);
  assert.equal(ctx.kernels, k, "the convolution runs on the backend asked");
  afterForward?.();
  const copy = (a: NDArray | null): Float32Array[] => (a === null ? [] : [(a.data as Float32Array).slice()]);
  const out = [...copy(ctx.y)];
  k.conv2dBackward(ctx, w, dy, dW, db, false);
  out.push(...copy(dW), ...copy(db));
  const dx = k.conv2dBackward(ctx, w, dy, dW, db, true);
  out.push(...copy(dx), ...copy(dW), ...copy(db));
  return out;
}

/** A random depthwise geometry with at least one output position. */
const caseArbitrary: fc.Arbitrary<Case> = fc
  .record({
    N: fc.integer({ min: 1, max: 3 }),
    C: fc.integer({ min: 2, max: 5 }),
    M: fc.integer({ min: 1, max: 3 }),
    H: fc.integer({ min: 1, max: 13 }),
    // up to 24 columns: dx rows of 16 floats and more per phase (gatherDx's widest loop)
    W: fc.integer({ min: 1, max: 24 }),
    kh: fc.integer({ min: 1, max: 5 }),
    kw: fc.integer({ min: 1, max: 5 }),
    sh: fc.integer({ min: 1, max: 4 }),
    sw: fc.integer({ min: 1, max: 4 }),
    dh: fc.integer({ min: 1, max: 3 }),
    dw: fc.integer({ min: 1, max: 3 }),
    pad: fc.tuple(
      fc.integer({ min: 0, max: 3 }),
      fc.integer({ min: 0, max: 3 }),
      fc.integer({ min: 0, max: 3 }),
      fc.integer({ min: 0, max: 3 }),
    ),
    bias: fc.boolean(),
    seed: fc.integer({ min: 0, max: 1 << 20 }),
  })
  .map((r) => ({
    g: convGeometry(r.N, r.C, r.H, r.W, [r.kh, r.kw], [r.sh, r.sw], r.pad, [r.dh, r.dw]),
    G: r.C,
    M: r.M,
    bias: r.bias,
    seed: r.seed,
  }))
  .filter((c) => c.g.OH >= 1 && c.g.OW >= 1);

/** A random grouped geometry: G groups of 2 or 3 input channels each (C = G·Cg), M outputs per group. */
const groupedArbitrary: fc.Arbitrary<Case> = fc
  .tuple(caseArbitrary, fc.integer({ min: 2, max: 3 }), fc.integer({ min: 2, max: 3 }))
  .map(([c, G, Cg]) => {
    const g = c.g;
    const geometry = convGeometry(
      g.N,
      G * Cg,
      g.H,
      g.W,
      [g.kh, g.kw],
      [g.sh, g.sw],
      [g.padTop, g.padBottom, g.padLeft, g.padRight],
      [g.dh, g.dw],
    );
    return { ...c, g: geometry, G };
  });

/** Geometries of mobilenet-mini's depthwise layers (3×3, "same", strides 2, 2, 1, 2) and a few others. */
const FIXED: Case[] = [
  { g: convGeometry(4, 16, 28, 28, [3, 3], [2, 2], [0, 1, 0, 1], [1, 1]), G: 16, M: 1, bias: false, seed: 1 },
  { g: convGeometry(3, 32, 14, 14, [3, 3], [2, 2], [0, 1, 0, 1], [1, 1]), G: 32, M: 1, bias: false, seed: 2 },
  { g: convGeometry(3, 64, 7, 7, [3, 3], [1, 1], [1, 1, 1, 1], [1, 1]), G: 64, M: 1, bias: true, seed: 3 },
  { g: convGeometry(2, 6, 9, 11, [5, 3], [1, 3], [2, 1, 0, 2], [2, 1]), G: 6, M: 2, bias: true, seed: 4 },
  { g: convGeometry(2, 3, 17, 19, [3, 3], [1, 1], [0, 0, 0, 0], [1, 1]), G: 3, M: 3, bias: true, seed: 5 },
];

/** Each array of `got` within 1e-5 of `want`'s, relative to the largest magnitude in that array of `want`. */
function assertNear(got: Float32Array[], want: Float32Array[], what: string): void {
  assert.equal(got.length, want.length, `${what}: number of outputs`);
  want.forEach((ref, j) => {
    const scale = Math.max(1e-3, ...Array.from(ref, Math.abs));
    let err = 0;
    for (let t = 0; t < ref.length; t++) err = Math.max(err, Math.abs(ref[t] - got[j][t]));
    assert.ok(err / scale <= 1e-5, `${what}: output ${j} differs by ${err / scale} (relative to its largest value)`);
  });
}

const describeCase = (c: Case): string => {
  const g = c.g;
  return (
    `N${g.N} C${g.C} G${c.G} M${c.M} ${g.H}×${g.W} k${g.kh}×${g.kw} s${g.sh},${g.sw} d${g.dh},${g.dw} ` +
    `pad ${g.padTop},${g.padBottom},${g.padLeft},${g.padRight} bias ${c.bias}`
  );
};

describe("depthwise convolution kernels", { skip: noWasm }, () => {
  test("wasm agrees with the JS reference in float32 (y, dW, db, dx) over random geometries", () => {
    for (const c of FIXED) assertNear(runCase(wasmBackend, c), runCase(jsBackend, c), describeCase(c));
    fc.assert(
      fc.property(caseArbitrary, (c) => {
        assertNear(runCase(wasmBackend, c), runCase(jsBackend, c), describeCase(c));
      }),
      { numRuns: 150, seed: 13 },
    );
  });

  test("grouped convolutions (1 < G < C) on wasm agree with the JS ones", () => {
    fc.assert(
      fc.property(groupedArbitrary, (c) => {
        assertNear(runCase(wasmBackend, c), runCase(jsBackend, c), describeCase(c));
      }),
      { numRuns: 40, seed: 17 },
    );
  });

  test("needDx = false adds the same dW and db, bit for bit, as needDx = true", () => {
    for (const c of FIXED) {
      const { g, M } = c;
      const rng = new RandomState(c.seed);
      const x = rand(rng, [g.N, g.C, g.H, g.W]);
      const w = rand(rng, [g.C * M, 1, g.kh, g.kw]);
      const ctx = wasmBackend.conv2dForward(g, g.C, x, w, null, null);
      const dy = rand(rng, ctx.y.shape);
      const grads = (needDx: boolean): Uint32Array[] => {
        const dW = new NDArray(new Float32Array(w.size), w.shape);
        const db = new NDArray(new Float32Array(g.C * M), [g.C * M]);
        wasmBackend.conv2dBackward(ctx, w, dy, dW, db, needDx);
        return [dW, db].map((a) => new Uint32Array(a.data.buffer));
      };
      assert.deepEqual(grads(false), grads(true), describeCase(c));
    }
  });

  test("a WebAssembly memory growth between forward and backward changes no bit", () => {
    // an add over more floats than the memory holds grows it: every cached view of the old buffer is stale
    const grow = (): void => {
      const big = new Float32Array(Math.ceil(wasmMemoryBytes() / 4));
      wasmBackend.add(big, big, big);
    };
    for (const c of [FIXED[3], ...fc.sample(groupedArbitrary, { numRuns: 1, seed: 5 })]) {
      const bits = (a: Float32Array[]): Uint32Array[] => a.map((t) => new Uint32Array(t.buffer));
      const before = wasmMemoryBytes();
      const grown = bits(runCase(wasmBackend, c, grow));
      assert.ok(wasmMemoryBytes() > before, "the memory grew");
      assert.deepEqual(grown, bits(runCase(wasmBackend, c)), describeCase(c));
    }
  });

  test("a bad groups value is refused, naming the channels and weights", () => {
    const g = convGeometry(1, 4, 5, 5, [3, 3], [1, 1], [1, 1, 1, 1], [1, 1]);
    const x = new NDArray(new Float32Array(100), [1, 4, 5, 5]);
    const w = new NDArray(new Float32Array(4 * 2 * 9), [4, 2, 3, 3]);
    assert.throws(() => wasmBackend.conv2dForward(g, 4, x, w, null, null), /groups 4 does not fit input channels 4/);
  });
});

describe("depthwise convolution on threads", { skip: noThreads }, () => {
  test("the kernels are bit-identical on 1, 2 and 3 threads", async () => {
    const cases = [
      ...fc.sample(caseArbitrary, { numRuns: 30, seed: 7 }),
      ...fc.sample(groupedArbitrary, { numRuns: 6, seed: 8 }),
    ];
    await sameBitsOnEveryCount("depthwise kernels", () => [...FIXED, ...cases].flatMap((c) => runCase(wasmBackend, c)));
  });

  test("mobilenet-mini trains to bit-identical weights on 1, 2 and 3 threads", async () => {
    setBackend("wasm");
    await sameBitsOnEveryCount("mobilenet-mini", () => {
      const rng = new RandomState(3);
      const x = rand(rng, [8, 1, 28, 28]);
      const labels = Int32Array.from({ length: 8 }, (_, i) => i % 10);
      const model = buildModel("mobilenet-mini", { seed: 0 });
      const loss = new SoftmaxCrossEntropy();
      const optimizer = new Adam({ lr: 1e-3 });
      for (let step = 0; step < 2; step++) model.trainBatch(x, labels, loss, optimizer);
      return model.params().map((p) => p.value.data as Float32Array);
    });
    setBackend(initialBackend);
  });
});
