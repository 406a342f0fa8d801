// The segment-normalisation kernels behind LayerNorm and GroupNorm (src/kernels/kernels.ts
// groupNormForward/groupNormBackward): the WebAssembly ones (wasm/norm.as) against the JS reference
// (js.ts) in float32 over randomized layouts (fast-check) — GroupNorm's (N, G, C/G, S) with S = 1 and
// S > 1, LayerNorm's (rows, 1, m, 1), affine or not, needDx false — then the layers on both backends,
// bit-identical results on 1, 2 and 3 threads (kernel and a few training steps of a CNN using both), and
// steady-state training without allocation. The float64 gradient checks of the layers are gradcheck's
// (float64 always runs on the JS backend).

import { describe, test } from "node:test";
import assert from "node:assert/strict";
import fc from "fast-check";
import { RandomState } from "../src/nd/random.ts";
import { jsBackend } from "../src/kernels/js.ts";
import { wasmBackend } from "../src/kernels/wasm-backend.ts";
import type { Kernels } from "../src/kernels/kernels.ts";
import { GroupNorm, LayerNorm } from "../src/nn/norm.ts";
import { maxRelDiff } from "./helpers.ts";
import {
  assertAllocationBudget,
  noThreads,
  noWasm,
  onBackend,
  rand,
  restoreKernelsAfter,
  sameBitsOnEveryCount,
  trainsToSameBitsOnEveryCount,
} from "./kernel-helpers.ts";
import { normModel } from "./norm-model.ts";

restoreKernelsAfter();

/** x's shape and its view (N, G, C) for the kernels; S = x.size / (N·C). */
interface Case {
  shape: number[];
  N: number;
  G: number;
  C: number;
  affine: boolean;
  needDx: boolean;
}

/** GroupNorm on (N, C, S…) as it is, G | C. */
function groupCase(N: number, G: number, Cg: number, S: number, affine: boolean, needDx: boolean): Case {
  return { shape: S === 1 ? [N, G * Cg] : [N, G * Cg, S], N, G, C: G * Cg, affine, needDx };
}

/** LayerNorm over the last axis of m values of (N, rows, m): N·rows segments, one channel per element. */
function layerCase(N: number, rows: number, m: number, affine: boolean, needDx: boolean): Case {
  return { shape: [N, rows, m], N: N * rows, G: 1, C: m, affine, needDx };
}

/** One forward and two backwards (the parameter gradients accumulate) on `k`; every output, float32. */
function runCase(k: Kernels, c: Case, seed: number): Float32Array[] {
  const rng = new RandomState(seed);
  const x = rand(rng, c.shape, 3, 2);
  const gamma = c.affine ? rand(rng, [c.C]) : null;
  const beta = c.affine ? rand(rng, [c.C]) : null;
  const dy = rand(rng, c.shape);
  const dGamma = c.affine ? rand(rng, [c.C]) : null;
  const dBeta = c.affine ? rand(rng, [c.C]) : null;
  const ctx = k.groupNormForward(x, c.N, c.G, c.C, gamma, beta, 1e-5, null);
  const y = (ctx.y.data as Float32Array).slice();
  const invStd = Float32Array.from(ctx.invStd);
  k.groupNormBackward(ctx, gamma, dy, dGamma, dBeta, false);
  const dx = k.groupNormBackward(ctx, gamma, dy, dGamma, dBeta, c.needDx);
  return [
    y,
    invStd,
    ...(c.needDx ? [(dx.data as Float32Array).slice()] : []),
    ...(dGamma && dBeta ? [dGamma.data as Float32Array, dBeta.data as Float32Array] : []),
  ];
}

/** Largest difference relative to each reference array's largest value (dx sums cancel: not elementwise). */
function assertClose(js: Float32Array[], wasm: Float32Array[], what: string, tol: number): void {
  assert.equal(wasm.length, js.length, what);
  js.forEach((ref, j) => {
    const scale = Math.max(1e-3, ...Array.from(ref, Math.abs));
    const err = Array.from(ref).reduce((m, v, t) => Math.max(m, Math.abs(v - wasm[j][t])), 0) / scale;
    assert.ok(err < tol, `${what}: output ${j} differs by ${err} (relative to its largest value)`);
  });
}

const caseArb = fc.oneof(
  fc
    .tuple(
      fc.integer({ min: 1, max: 4 }),
      fc.integer({ min: 1, max: 4 }),
      fc.integer({ min: 1, max: 5 }),
      fc.integer({ min: 1, max: 40 }),
      fc.boolean(),
      fc.boolean(),
    )
    .map(([N, G, Cg, S, affine, needDx]) => groupCase(N, G, Cg, S, affine, needDx)),
  fc
    .tuple(
      fc.integer({ min: 1, max: 6 }),
      fc.integer({ min: 1, max: 3 }),
      fc.integer({ min: 1, max: 70 }),
      fc.boolean(),
      fc.boolean(),
    )
    .map(([N, rows, m, affine, needDx]) => layerCase(N, rows, m, affine, needDx)),
);

/** Fixed layouts around the vector widths (4 floats, 8 in the sums), for the thread tests. */
const CASES: Case[] = [
  groupCase(4, 2, 3, 25, true, true),
  groupCase(3, 4, 2, 7, false, true),
  groupCase(5, 3, 4, 1, true, true),
  groupCase(2, 1, 6, 16, true, false),
  layerCase(6, 1, 33, true, true),
  layerCase(3, 4, 8, false, true),
  layerCase(9, 2, 5, true, true),
];

describe("group-norm kernels", { skip: noWasm }, () => {
  test("wasm agrees with the JS reference in float32 over random layouts (y, 1/σ, dx, dγ, dβ)", () => {
    fc.assert(
      fc.property(caseArb, fc.integer({ min: 0, max: 1000 }), (c, seed) => {
        const what = `${c.shape.join("×")} as (N ${c.N}, G ${c.G}, C ${c.C}) affine=${c.affine} needDx=${c.needDx}`;
        // dγ, dβ: the JS reference adds each element's product into a float32 gradient, the kernel sums in float64
        assertClose(runCase(jsBackend, c, seed), runCase(wasmBackend, c, seed), what, 1e-5);
      }),
      { numRuns: 60, seed: 13 },
    );
  });

  test("LayerNorm and GroupNorm layers give the same y, dx and parameter gradients on both backends", () => {
    const layers = () => [new GroupNorm({ groups: 3 }), new LayerNorm({ axes: 2 }), new LayerNorm({ affine: false })];
    const outputs = (["js", "wasm"] as const).map((backend) =>
      onBackend(backend, () => {
        const rng = new RandomState(7);
        return layers().flatMap((layer) => {
          const out: number[][] = [];
          for (let step = 0; step < 2; step++) {
            const y = layer.forward(rand(rng, [5, 6, 4, 7], 2, 1));
            out.push(Array.from(y.data), Array.from(layer.backward(rand(rng, y.shape)).data));
          }
          return [...out, ...layer.params().map((p) => Array.from(p.grad.data))];
        });
      }),
    );
    outputs[0].forEach((ref, j) => {
      assert.ok(maxRelDiff(ref, outputs[1][j]) < 1e-4, `output ${j}: ${maxRelDiff(ref, outputs[1][j])}`);
    });
  });
});

describe("group norm on threads", { skip: noThreads }, () => {
  test("the kernels are bit-identical on 1, 2 and 3 threads", async () => {
    await sameBitsOnEveryCount("group-norm kernels", () => CASES.flatMap((c, i) => runCase(wasmBackend, c, 200 + i)));
  });

  test("training a CNN with GroupNorm and LayerNorm gives bit-identical weights on 1, 2 and 3 threads", () =>
    trainsToSameBitsOnEveryCount("GroupNorm/LayerNorm CNN", () => normModel([1, 12, 12], 4, 2)));
});

// The budget and the method of test/alloc.test.ts, on test/norm-model.ts's CNN (GroupNorm and LayerNorm on
// the wasm kernels) in a fresh process.
const BUDGET = 2048;

for (const threads of [1, 2]) {
  const skip = threads === 1 ? noWasm : noThreads;
  test(
    `training with GroupNorm and LayerNorm (wasm, ${threads} thread(s)) allocates ≤ ${BUDGET} B per step`,
    { skip },
    () => {
      const args = ["--threads", String(threads), "--steps", "40", "--windows", "3"];
      assertAllocationBudget("test/norm-alloc-profile.ts", args, BUDGET);
    },
  );
}
