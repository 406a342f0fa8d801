// The batch-norm kernels (src/kernels/kernels.ts batchNormForward/batchNormBackward): the WebAssembly one
// (wasm/norm.as) against the JS reference (js.ts) in float32 — training and inference, affine or not,
// (N, C, H, W) with positions that are and are not a multiple of 4, (N, F) vectors, needDx false — and
// bit-identical results on 1, 2 and 3 threads, for the kernel and for a few training steps of a BN CNN.
// The float64 gradient checks of the layer are in norm.test.ts (float64 always runs on the JS backend).
// Also the elementwise add kernel (Add's forward, a graph's fan-out sum): wasm bit-identical to JS.

import { describe, test } from "node:test";
import assert from "node:assert/strict";
import { RandomState } from "../src/nd/random.ts";
import { jsBackend } from "../src/kernels/js.ts";
import { wasmBackend } from "../src/kernels/wasm-backend.ts";
import type { Kernels } from "../src/kernels/kernels.ts";
import { BatchNorm2D } from "../src/nn/batchnorm.ts";
import { Conv2D } from "../src/nn/conv.ts";
import { ReLU } from "../src/nn/activations.ts";
import { MaxPool2D } from "../src/nn/pool.ts";
import { Flatten } from "../src/nn/flatten.ts";
import { Dense } from "../src/nn/dense.ts";
import { Sequential } from "../src/nn/sequential.ts";
import { maxRelDiff } from "./helpers.ts";
import {
  noThreads,
  noWasm,
  onBackend,
  rand,
  restoreKernelsAfter,
  sameBitsOnEveryCount,
  trainsToSameBitsOnEveryCount,
} from "./kernel-helpers.ts";

restoreKernelsAfter();

interface Case {
  shape: number[];
  affine: boolean;
  training: boolean;
  needDx: boolean;
}

/** One forward and two backwards (the gradients accumulate) on `k`; every output, float32. */
function runCase(k: Kernels, c: Case, seed: number): Float32Array[] {
  const rng = new RandomState(seed);
  const C = c.shape[1];
  const x = rand(rng, c.shape, 3, 2);
  const gamma = c.affine ? rand(rng, [C]) : null;
  const beta = c.affine ? rand(rng, [C]) : null;
  const rm = rand(rng, [C]);
  const rv = rand(rng, [C]);
  rv.data.forEach((v, i) => (rv.data[i] = 0.5 + Math.abs(v)));
  const dy = rand(rng, c.shape);
  const dGamma = c.affine ? rand(rng, [C]) : null;
  const dBeta = c.affine ? rand(rng, [C]) : null;
  const ctx = k.batchNormForward(x, { gamma, beta, runningMean: rm, runningVar: rv, eps: 1e-5 }, c.training, null);
  const y = (ctx.y.data as Float32Array).slice();
  k.batchNormBackward(ctx, gamma, dy, dGamma, dBeta, false);
  const dx = k.batchNormBackward(ctx, gamma, dy, dGamma, dBeta, c.needDx);
  const stats = [Float32Array.from(ctx.mean), Float32Array.from(ctx.invStd)];
  if (c.training) stats.push(Float32Array.from(ctx.variance));
  return [
    y,
    ...stats,
    ...(c.needDx ? [dx.data as Float32Array] : []),
    ...(dGamma && dBeta ? [dGamma.data as Float32Array, dBeta.data as Float32Array] : []),
  ];
}

const CASES: Case[] = [];
for (const shape of [
  [8, 3, 4, 4],
  [5, 4, 5, 7],
  [3, 2, 1, 3],
  [16, 6],
  [2, 5, 9, 9],
]) {
  for (const training of [true, false]) {
    for (const affine of [true, false]) CASES.push({ shape, affine, training, needDx: true });
  }
  CASES.push({ shape, affine: true, training: true, needDx: false });
}

describe("batch-norm kernels", { skip: noWasm }, () => {
  test("wasm agrees with the JS reference in float32 (forward, statistics, dx, dγ, dβ)", () => {
    CASES.forEach((c, i) => {
      const js = runCase(jsBackend, c, 100 + i);
      const wasm = runCase(wasmBackend, c, 100 + i);
      assert.equal(wasm.length, js.length);
      const what = `${c.shape.join("×")} training=${c.training} affine=${c.affine}`;
      js.forEach((ref, j) => {
        // relative to each array's largest value: dx sums cancel, so elementwise relative error is not the measure
        const scale = Math.max(1e-3, ...Array.from(ref, Math.abs));
        const err = Array.from(ref).reduce((m, v, t) => Math.max(m, Math.abs(v - wasm[j][t])), 0) / scale;
        assert.ok(err < 2e-6, `${what}: output ${j} differs by ${err} (relative to its largest value)`);
      });
    });
  });

  test("a BatchNorm2D layer trains the same on both backends (running statistics, γ, β, dx)", () => {
    const outputs = (["js", "wasm"] as const).map((backend) =>
      onBackend(backend, () => {
        const rng = new RandomState(7);
        const bn = new BatchNorm2D({});
        const out: number[][] = [];
        for (let step = 0; step < 3; step++) {
          const x = rand(rng, [6, 4, 5, 5], 2, 1);
          const y = bn.forward(x, { training: true });
          const dx = bn.backward(rand(rng, y.shape));
          out.push(Array.from(y.data), Array.from(dx.data));
        }
        out.push(...bn.params().flatMap((p) => [Array.from(p.value.data), Array.from(p.grad.data)]));
        out.push(Array.from(bn.forward(rand(rng, [2, 4, 5, 5]), { training: false }).data));
        return out;
      }),
    );
    outputs[0].forEach((ref, j) => {
      assert.ok(maxRelDiff(ref, outputs[1][j]) < 1e-4, `output ${j}: ${maxRelDiff(ref, outputs[1][j])}`);
    });
  });
});

/** a + b on `k` into a fresh array, and in place into a copy of a, for sizes around the vector width. */
function runAdd(k: Kernels, seed: number): Float32Array[] {
  const rng = new RandomState(seed);
  return [1, 3, 4, 7, 64, 1001].flatMap((n) => {
    const a = rand(rng, [n]).data as Float32Array;
    const b = rand(rng, [n], 1e-3).data as Float32Array;
    const out = new Float32Array(n);
    k.add(a, b, out);
    const inPlace = a.slice();
    k.add(inPlace, b, inPlace);
    return [out, inPlace];
  });
}

test("the add kernel: wasm gives the JS loop's bits (out fresh or in place)", { skip: noWasm }, () => {
  const js = runAdd(jsBackend, 5);
  runAdd(wasmBackend, 5).forEach((w, i) => {
    assert.deepEqual(new Uint32Array(w.buffer), new Uint32Array(js[i].buffer), `array ${i}`);
  });
});

describe("batch norm on threads", { skip: noThreads }, () => {
  test("the kernel is bit-identical on 1, 2 and 3 threads", async () => {
    await sameBitsOnEveryCount("batch-norm kernel", () => CASES.flatMap((c, i) => runCase(wasmBackend, c, 200 + i)));
  });

  test("the add kernel is bit-identical on 1, 2 and 3 threads", async () => {
    await sameBitsOnEveryCount("add kernel", () => runAdd(wasmBackend, 6));
  });

  test("training a BN CNN for a few steps gives bit-identical weights on 1, 2 and 3 threads", () =>
    trainsToSameBitsOnEveryCount(
      "BN CNN",
      () =>
        new Sequential(
          [
            new Conv2D({ outChannels: 6, kernelSize: 5, padding: "same" }),
            new BatchNorm2D({}),
            new ReLU(),
            new MaxPool2D({ kernelSize: 2 }),
            new Flatten(),
            new Dense({ outFeatures: 4 }),
          ],
          { inputShape: [1, 12, 12], seed: 2 },
        ),
    ));
});
