import { test } from "node:test";
import assert from "node:assert/strict";
import { NDArray, shapeSize } from "../src/nd/ndarray.ts";
import { RandomState } from "../src/nd/random.ts";
import { gradcheck } from "../src/nn/gradcheck.ts";
import { ShapeError } from "../src/nn/layer.ts";
import { Flatten } from "../src/nn/flatten.ts";
import { Dropout } from "../src/nn/dropout.ts";
import { BatchNorm1D, BatchNorm2D } from "../src/nn/batchnorm.ts";
import { assertClose } from "./helpers.ts";

const nd = (data: number[], shape: number[]): NDArray => new NDArray(Float64Array.from(data), shape);
const int = (rng: RandomState, lo: number, hi: number): number => lo + Math.floor(rng.nextDouble() * (hi - lo + 1));
const TRAIN = { training: true };
const INFER = { training: false };

function randn(rng: RandomState, shape: number[], scale = 1, shift = 0): NDArray {
  const a = new Float64Array(shapeSize(shape));
  for (let i = 0; i < a.length; i++) a[i] = shift + scale * rng.standardNormal();
  return new NDArray(a, shape);
}

// ---------------------------------------------------------------- Flatten

test("Flatten: (N, C, H, W) → (N, C·H·W) in channel-major (NCHW) order; backward reshapes dy back", () => {
  const f = new Flatten();
  const x = nd(
    Array.from({ length: 24 }, (_, i) => i),
    [2, 3, 2, 2],
  );
  assert.deepEqual(f.outputShape([3, 2, 2]), [12]);
  const y = f.forward(x);
  assert.deepEqual(y.shape, [2, 12]);
  // feature c·H·W + h·W + w of sample n is x[n, c, h, w]
  assert.equal(y.get(1, 2 * 4 + 1 * 2 + 0), x.get(1, 2, 1, 0));
  assert.notEqual(y.data, x.data, "output must not alias the input");
  const dy = nd(
    Array.from({ length: 24 }, (_, i) => -i),
    [2, 12],
  );
  const before = dy.data.slice();
  const dx = f.backward(dy);
  assert.deepEqual(dx.shape, [2, 3, 2, 2]);
  assert.deepEqual(Array.from(dx.data), Array.from(before));
  assert.notEqual(dx.data, dy.data, "dx must not alias dy");
  dx.data[0] = 99;
  assert.deepEqual(dy.data, before, "dy never mutated");
  assert.equal(f.backward(dy), dx, "dx buffer reused");
  assert.deepEqual(f.config(), { type: "Flatten" });
  assert.throws(() => f.forward(nd([1, 2], [2])), ShapeError);
  assert.throws(() => f.outputShape([]), ShapeError);
  assert.throws(() => f.backward(nd([1], [1, 1])), /backward expected dy of shape \(2, 12\)/);
  const r = gradcheck(new Flatten(), randn(new RandomState(3), [3, 2, 3, 2]));
  assert.ok(r.ok && r.maxRelError <= 1e-6, JSON.stringify(r));
});

// ---------------------------------------------------------------- Dropout

test("Dropout: the same seed gives the same mask, another seed another mask", () => {
  const x = nd(new Array<number>(400).fill(1), [4, 100]);
  const a = Array.from(new Dropout({ rate: 0.5, seed: 7 }).forward(x, TRAIN).data);
  const b = Array.from(new Dropout({ rate: 0.5, seed: 7 }).forward(x, TRAIN).data);
  const c = Array.from(new Dropout({ rate: 0.5, seed: 8 }).forward(x, TRAIN).data);
  assert.deepEqual(a, b);
  assert.notDeepEqual(a, c);
  // successive batches draw fresh masks
  const d = new Dropout({ rate: 0.5, seed: 7 });
  const first = Array.from(d.forward(x, TRAIN).data);
  const second = Array.from(d.forward(x, TRAIN).data);
  assert.notDeepEqual(first, second);
});

test("Dropout: mask from nextDouble() ≥ rate, survivors scaled by 1/(1 − rate), mean preserved", () => {
  const rate = 0.3;
  const n = 20000;
  const x = nd(new Array<number>(n).fill(2), [n, 1]);
  const d = new Dropout({ rate, seed: 11 });
  const y = d.forward(x, TRAIN);
  const ref = new RandomState(11);
  let kept = 0;
  let sum = 0;
  for (let i = 0; i < n; i++) {
    const keep = ref.nextDouble() >= rate;
    assert.equal(y.data[i], keep ? 2 / (1 - rate) : 0);
    assert.equal(d.mask![i], keep ? 1 : 0);
    if (keep) kept++;
    sum += y.data[i];
  }
  assert.ok(Math.abs(kept / n - (1 - rate)) < 0.015, `kept fraction ${kept / n}`);
  assert.ok(Math.abs(sum / n - 2) < 0.05, `mean ${sum / n} ≈ 2`);
  const dy = nd(new Array<number>(n).fill(1), [n, 1]);
  const dx = d.backward(dy);
  for (let i = 0; i < n; i++) assert.equal(dx.data[i], d.mask![i] === 1 ? 1 / (1 - rate) : 0);
  assert.ok(
    dy.data.every((v) => v === 1),
    "dy never mutated",
  );
});

test("Dropout: rate 0 and inference are the identity (forward and backward)", () => {
  const rng = new RandomState(2);
  const x = randn(rng, [3, 4, 2, 2]);
  const dy = randn(rng, [3, 4, 2, 2]);
  for (const [d, opts] of [
    [new Dropout({ rate: 0 }), TRAIN],
    [new Dropout({ rate: 0.9 }), INFER],
    [new Dropout({ rate: 0.5 }), {}],
  ] as const) {
    const y = d.forward(x, opts);
    assert.deepEqual(Array.from(y.data), Array.from(x.data));
    assert.notEqual(y.data, x.data);
    const dx = d.backward(dy);
    assert.deepEqual(Array.from(dx.data), Array.from(dy.data));
    assert.notEqual(dx.data, dy.data);
  }
});

test("Dropout: initialize reseeds from the model's generator; freeze reuses the mask; gradcheck ≤ 1e-6", () => {
  const x = nd(new Array<number>(200).fill(1), [2, 100]);
  const a = new Dropout({ rate: 0.4 });
  const b = new Dropout({ rate: 0.4, seed: 99 });
  a.initialize(new RandomState(5));
  b.initialize(new RandomState(5));
  assert.deepEqual(Array.from(a.forward(x, TRAIN).data), Array.from(b.forward(x, TRAIN).data));
  const plain = Array.from(new Dropout({ rate: 0.4 }).forward(x, TRAIN).data);
  assert.notDeepEqual(Array.from(a.forward(x, TRAIN).data), plain);

  a.freeze = true;
  const m1 = Array.from(a.forward(x, TRAIN).data);
  const m2 = Array.from(a.forward(x, TRAIN).data);
  assert.deepEqual(m1, m2);

  const rng = new RandomState(8);
  for (let trial = 0; trial < 6; trial++) {
    const d = new Dropout({ rate: [0, 0.2, 0.5, 0.75][trial % 4], seed: trial });
    d.freeze = true;
    const shape = [int(rng, 1, 3), int(rng, 1, 3), int(rng, 1, 4), int(rng, 1, 4)];
    for (const training of [true, false]) {
      const r = gradcheck(d, randn(rng, shape), { training, seed: trial });
      assert.ok(r.ok && r.maxRelError <= 1e-6, `Dropout training=${training} ${JSON.stringify(r)}`);
    }
  }
});

test("Dropout validates its options", () => {
  assert.throws(() => new Dropout({ rate: 1 }), /Dropout: rate must be a number in \[0, 1\), got 1/);
  assert.throws(() => new Dropout({ rate: -0.1 }), /rate must be a number in \[0, 1\)/);
  assert.throws(() => new Dropout({ rate: NaN }), /rate must be/);
  assert.throws(() => new Dropout({ rate: "0.5" as unknown as number }), /rate must be/);
  assert.throws(() => new Dropout({ rate: 0.5, seed: -1 }), /seed must be an integer in \[0, 2\^32\)/);
  assert.deepEqual(new Dropout({ rate: 0.25, seed: 3 }).config(), { type: "Dropout", rate: 0.25, seed: 3 });
  assert.deepEqual(new Dropout({ rate: 0.25 }).outputShape([3, 4]), [3, 4]);
  assert.throws(() => new Dropout({ rate: 0.5 }).backward(nd([1], [1])), /backward called before forward/);
});

// ---------------------------------------------------------------- BatchNorm

/** Set γ, β (if any) and the running statistics to random values, so checks exercise all of them. */
function randomizeBN(bn: BatchNorm1D | BatchNorm2D, rng: RandomState): void {
  const C = bn.numFeatures;
  for (let c = 0; c < C; c++) {
    if (bn.gamma && bn.beta) {
      bn.gamma.value.data[c] = rng.uniform(0.5, 2) * (rng.nextDouble() < 0.5 ? -1 : 1);
      bn.beta.value.data[c] = rng.standardNormal();
    }
    bn.runningMean.value.data[c] = rng.standardNormal();
    bn.runningVar.value.data[c] = rng.uniform(0.2, 3);
  }
}

test("BatchNorm2D training forward: per-channel batch statistics, y = γ·x̂ + β", () => {
  const rng = new RandomState(21);
  const bn = new BatchNorm2D({ numFeatures: 3, dtype: "float64" });
  const gamma = [2, -1, 0.5];
  const beta = [1, 0, -3];
  bn.gamma!.value.data.set(gamma);
  bn.beta!.value.data.set(beta);
  const x = randn(rng, [4, 3, 2, 3], 3, 5);
  const y = bn.forward(x, TRAIN);
  for (let c = 0; c < 3; c++) {
    const xs: number[] = [];
    const ys: number[] = [];
    for (let n = 0; n < 4; n++)
      for (let h = 0; h < 2; h++)
        for (let w = 0; w < 3; w++) {
          xs.push(x.get(n, c, h, w));
          ys.push(y.get(n, c, h, w));
        }
    const m = xs.length;
    const mu = xs.reduce((a, b) => a + b, 0) / m;
    const v = xs.reduce((a, b) => a + (b - mu) ** 2, 0) / m;
    for (let i = 0; i < m; i++) {
      const expected = (gamma[c] * (xs[i] - mu)) / Math.sqrt(v + 1e-5) + beta[c];
      assert.ok(Math.abs(ys[i] - expected) < 1e-12, `c=${c} i=${i}: ${ys[i]} vs ${expected}`);
    }
  }
});

test("BatchNorm running statistics after a few steps equal a hand computation (unbiased variance)", () => {
  const bn = new BatchNorm1D({ numFeatures: 1, dtype: "float64" });
  // step 1: [1, 2, 3, 4]  μ = 2.5, unbiased var = 5/3
  bn.forward(nd([1, 2, 3, 4], [4, 1]), TRAIN);
  assert.ok(Math.abs(bn.runningMean.value.data[0] - 0.25) < 1e-15);
  assert.ok(Math.abs(bn.runningVar.value.data[0] - (0.9 + 0.1 * (5 / 3))) < 1e-15);
  // step 2: [2, 4, 6, 8]  μ = 5, unbiased var = 20/3
  bn.forward(nd([2, 4, 6, 8], [4, 1]), TRAIN);
  assert.ok(Math.abs(bn.runningMean.value.data[0] - (0.9 * 0.25 + 0.5)) < 1e-15);
  assert.ok(Math.abs(bn.runningVar.value.data[0] - (0.9 * (0.9 + 0.5 / 3) + 0.1 * (20 / 3))) < 1e-14);
  // step 3 with momentum read the PyTorch way, on a 2-feature BatchNorm2D: N=2, H·W=2 → m = 4
  const bn2 = new BatchNorm2D({ numFeatures: 2, momentum: 0.5, dtype: "float64" });
  bn2.forward(nd([0, 2, 10, 10, 4, 6, 10, 14], [2, 2, 1, 2]), TRAIN);
  // channel 0: {0, 2, 4, 6} μ = 3, unbiased var = 20/3;  channel 1: {10, 10, 10, 14} μ = 11, unbiased var = 4
  assertClose(bn2.runningMean.value, nd([1.5, 5.5], [2]), 1e-15, 0, "running mean");
  assertClose(bn2.runningVar.value, nd([0.5 + 10 / 3, 2.5], [2]), 1e-15, 0, "running var");
  // inference mode does not touch them and normalises with them
  const y = bn2.forward(nd([1.5, 1.5, 5.5, 5.5 + Math.sqrt(2.5 + 1e-5)], [1, 2, 1, 2]), INFER);
  assertClose(y, nd([0, 0, 0, 1], [1, 2, 1, 2]), 1e-12, 1e-12, "inference output");
  assertClose(bn2.runningMean.value, nd([1.5, 5.5], [2]), 0, 0, "running mean untouched in inference");
});

test("BatchNorm gradchecks ≤ 1e-6 in training and inference, 1D and 2D, affine or not", () => {
  const rng = new RandomState(77);
  let worst = 0;
  for (let trial = 0; trial < 16; trial++) {
    const affine = trial % 4 !== 3;
    const C = int(rng, 1, 3);
    const N = int(rng, 1, 3);
    const twoD = trial % 2 === 0;
    let shape = twoD ? [N, C, int(rng, 1, 3), int(rng, 1, 3)] : [N + 1, C];
    if (twoD && N * shape[2] * shape[3] < 2) shape = [N, C, 2, shape[3]];
    // With m = 2 values per channel x̂ = ±(x₁−x₂)/√((x₁−x₂)² + 4ε) ≈ ±1: the output hardly depends on x,
    // dx is O(ε) and finite differences drown in rounding. A large ε keeps that case well conditioned.
    const m = shapeSize(shape) / C;
    const eps = m === 2 ? 0.5 : 1e-5;
    const bn = twoD
      ? new BatchNorm2D({ numFeatures: C, affine, eps })
      : new BatchNorm1D({ numFeatures: C, affine, eps });
    randomizeBN(bn, rng);
    for (const training of [true, false]) {
      const r = gradcheck(bn, randn(rng, shape, 2, 1), { training, seed: trial });
      assert.ok(
        r.ok,
        `${bn.type} affine=${affine} training=${training} shape=${shape.join("×")}: ${JSON.stringify(r)}`,
      );
      assert.equal(r.tensors.length, affine ? 3 : 1, "input, gamma, beta checked; running stats are not trainable");
      worst = Math.max(worst, r.maxRelError);
    }
  }
  assert.ok(worst <= 1e-6);
});

test("BatchNorm with m = 2 values per channel: backward matches the closed form (finite differences cannot)", () => {
  // x̂₁ = (d/2)/√(d²/4 + ε) = −x̂₂ with d = x₁ − x₂, so L = dy₁x̂₁ + dy₂x̂₂ = (dy₁ − dy₂)·x̂₁ and
  // ∂L/∂x₁ = −∂L/∂x₂ = (dy₁ − dy₂)·ε / (2·(d²/4 + ε)^{3/2}) — O(ε), far below finite-difference noise.
  const bn = new BatchNorm1D({ numFeatures: 1, dtype: "float64" });
  const [x1, x2, eps] = [0.7, -1.3, 1e-5];
  bn.forward(nd([x1, x2], [2, 1]), TRAIN);
  const dy = [0.4, -1.1];
  const dx = bn.backward(nd(dy, [2, 1]));
  const k = ((dy[0] - dy[1]) * eps) / (2 * ((x1 - x2) ** 2 / 4 + eps) ** 1.5);
  assertClose(dx, nd([k, -k], [2, 1]), 1e-9, 0, "m=2 dx");
});

test("BatchNorm backward: dy never mutated, grads accumulate, params and state exposed", () => {
  const rng = new RandomState(4);
  const bn = new BatchNorm2D({ numFeatures: 2 });
  assert.deepEqual(
    bn.params().map((p) => [p.name, p.trainable]),
    [
      ["gamma", true],
      ["beta", true],
      ["runningMean", false],
      ["runningVar", false],
    ],
  );
  assert.deepEqual(
    new BatchNorm1D({ numFeatures: 2, affine: false }).params().map((p) => p.name),
    ["runningMean", "runningVar"],
  );
  assert.deepEqual(Array.from(bn.runningVar.value.data), [1, 1]);
  const x = randn(rng, [3, 2, 2, 2]).astype("float32");
  const y = bn.forward(x, TRAIN);
  assert.equal(y.dtype, "float32");
  const dy = randn(rng, y.shape).astype("float32");
  const before = dy.data.slice();
  bn.backward(dy);
  const g1 = Array.from(bn.gamma!.grad.data);
  bn.backward(dy);
  assert.deepEqual(dy.data, before, "dy never mutated");
  bn.gamma!.grad.data.forEach((v, c) => {
    assert.ok(Math.abs(v - 2 * g1[c]) <= 1e-6 * Math.abs(g1[c]) + 1e-7, "gamma grad accumulates");
  });
  assert.equal(bn.forward(x, TRAIN), y, "output buffer reused");
});

test("BatchNorm validates options and shapes", () => {
  assert.throws(
    () => new BatchNorm2D({ numFeatures: 0 }),
    /BatchNorm2D: numFeatures must be a positive integer, got 0/,
  );
  assert.throws(() => new BatchNorm1D({ numFeatures: 2, eps: 0 }), /BatchNorm1D: eps must be a positive number/);
  assert.throws(() => new BatchNorm1D({ numFeatures: 2, momentum: 1.5 }), /momentum must be a number in \[0, 1\]/);
  const bn = new BatchNorm2D({ numFeatures: 3 });
  assert.throws(
    () => bn.forward(nd([1, 2, 3, 4], [1, 4, 1, 1]), TRAIN),
    /BatchNorm2D: expected input of shape \(N, 3, H, W\), got \(1, 4, 1, 1\)/,
  );
  assert.throws(() => bn.forward(nd([1, 2, 3], [1, 3, 1, 1]), TRAIN), /more than 1 value per channel/);
  bn.forward(nd([1, 2, 3], [1, 3, 1, 1]), INFER); // a single sample is fine in inference
  assert.throws(
    () => bn.outputShape([3, 4]),
    (e: unknown) => e instanceof ShapeError && /\(N, 3, H, W\)/.test(e.message),
  );
  assert.deepEqual(bn.outputShape([3, 5, 6]), [3, 5, 6]);
  assert.deepEqual(new BatchNorm1D({ numFeatures: 4 }).outputShape([4]), [4]);
  assert.throws(() => new BatchNorm1D({ numFeatures: 4 }).outputShape([3]), /\(N, 4\)/);
  assert.throws(
    () => new BatchNorm1D({ numFeatures: 4 }).forward(nd([1, 2, 3, 4], [1, 1, 2, 2])),
    /expected input of shape \(N, 4\)/,
  );
  assert.deepEqual(new BatchNorm1D({ numFeatures: 4, momentum: 0.01, affine: false }).config(), {
    type: "BatchNorm1D",
    numFeatures: 4,
    eps: 1e-5,
    momentum: 0.01,
    affine: false,
  });
});
