import { test } from "node:test";
import assert from "node:assert/strict";
import { NDArray } from "../src/nd/ndarray.ts";
import { array, square, sub, sumAll } from "../src/nd/ops.ts";
import { RandomState } from "../src/nd/random.ts";
import { ShapeError } from "../src/nn/layer.ts";
import {
  BCE_EPS,
  BinaryCrossEntropy,
  MSE,
  SoftmaxCrossEntropy,
  accuracy,
  lossFromConfig,
  type Loss,
  type Target,
} from "../src/nn/losses.ts";
import { gradcheckLoss } from "../src/nn/gradcheck.ts";

function randn(rng: RandomState, shape: number[], scale = 1): NDArray {
  const x = new NDArray(new Float64Array(shape.reduce((a, b) => a * b, 1)), shape);
  for (let i = 0; i < x.size; i++) x.data[i] = scale * rng.standardNormal();
  return x;
}
function uniform(rng: RandomState, shape: number[], lo: number, hi: number): NDArray {
  const x = new NDArray(new Float64Array(shape.reduce((a, b) => a * b, 1)), shape);
  for (let i = 0; i < x.size; i++) x.data[i] = rng.uniform(lo, hi);
  return x;
}
function randint(rng: RandomState, n: number, k: number): number[] {
  return Array.from({ length: n }, () => Math.floor(rng.nextDouble() * k));
}
function oneHot(labels: readonly number[], k: number): NDArray {
  const t = new NDArray(new Float64Array(labels.length * k), [labels.length, k]);
  labels.forEach((c, n) => (t.data[n * k + c] = 1));
  return t;
}

function assertGrad(loss: Loss, pred: NDArray, target: Target, what: string): void {
  const r = gradcheckLoss(loss, pred, target);
  assert.ok(r.ok, `${what}: max rel error ${r.maxRelError} ${JSON.stringify(r.tensors)}`);
  assert.equal(r.tensors[0].tensor, "pred");
  assert.equal(r.tensors[0].skippedKinks, 0, what);
}

test("gradcheck: MSE with both reductions on random shapes", () => {
  const rng = new RandomState(11);
  for (const shape of [
    [4, 1],
    [3, 5],
    [2, 3, 4, 4],
  ]) {
    for (const reduction of ["mean", "half_sum"] as const) {
      assertGrad(
        new MSE({ reduction }),
        randn(rng, shape),
        randn(rng, shape),
        `MSE ${reduction} ${JSON.stringify(shape)}`,
      );
    }
  }
});

test("gradcheck: SoftmaxCrossEntropy with every label form and with soft targets", () => {
  // Logits of moderate spread: a class with p ≈ 1e-6 has a gradient p/N too small to resolve against
  // the rounding of L ≈ log K in a finite difference of the scalar loss (see gradcheckLoss).
  const rng = new RandomState(12);
  for (const [N, K, scale] of [
    [5, 3, 1.5],
    [8, 10, 1.5],
    [1, 2, 3],
    [32, 10, 1],
  ]) {
    const z = randn(rng, [N, K], scale);
    const labels = randint(rng, N, K);
    const ce = new SoftmaxCrossEntropy();
    assertGrad(ce, z, labels, `CE number[] (${N}, ${K})`);
    assertGrad(ce, z, Int32Array.from(labels), `CE Int32Array (${N}, ${K})`);
    assertGrad(ce, z, new NDArray(Float64Array.from(labels), [N]), `CE NDArray (N,) (${N}, ${K})`);
    assertGrad(ce, z, oneHot(labels, K), `CE one-hot (${N}, ${K})`);
    // Soft targets (label smoothing-like rows that sum to 1) and rows that do not sum to 1.
    const soft = uniform(rng, [N, K], 0, 1);
    for (let n = 0; n < N; n++) {
      let s = 0;
      for (let k = 0; k < K; k++) s += soft.data[n * K + k];
      for (let k = 0; k < K; k++) soft.data[n * K + k] /= s;
    }
    assertGrad(ce, z, soft, `CE soft (${N}, ${K})`);
    assertGrad(ce, z, uniform(rng, [N, K], 0, 2), `CE unnormalised (${N}, ${K})`);
  }
});

test("gradcheck: BinaryCrossEntropy on probabilities and on logits", () => {
  const rng = new RandomState(13);
  for (const shape of [[6, 1], [4, 3], [5]]) {
    const t = uniform(rng, shape, 0, 1);
    for (let i = 0; i < t.size; i += 2) t.data[i] = t.data[i] > 0.5 ? 1 : 0; // hard and soft targets
    assertGrad(
      new BinaryCrossEntropy(),
      uniform(rng, shape, 0.02, 0.98),
      t,
      `BCE probabilities ${JSON.stringify(shape)}`,
    );
    assertGrad(
      new BinaryCrossEntropy({ fromLogits: true }),
      randn(rng, shape, 4),
      t,
      `BCE logits ${JSON.stringify(shape)}`,
    );
  }
  // Plain per-sample targets for (N, 1) predictions.
  assertGrad(
    new BinaryCrossEntropy({ fromLogits: true }),
    randn(rng, [4, 1]),
    [0, 1, 1, 0],
    "BCE logits, number[] targets",
  );
});

test("MSE values: half_sum is the article's ½Σ(o − y)² bit for bit, mean divides by every element", () => {
  const o = array([[0.61], [0.72], [0.95], [1.02]]);
  const y = array([[0.53], [0.77], [0.88], [1.1]]);
  const half = new MSE({ reduction: "half_sum" });
  assert.equal(half.forward(o, y), sumAll(square(sub(o, y))) * 0.5);
  assert.deepEqual(Array.from(half.backward().data), Array.from(sub(o, y).data));
  const mean = new MSE();
  assert.equal(mean.forward(o, y), sumAll(square(sub(o, y))) / 4);
  assert.deepEqual(
    Array.from(mean.backward().data),
    Array.from(sub(o, y).data, (d) => (2 / 4) * d),
  );
  const g = mean.backward();
  assert.equal(mean.backward(), g, "backward reuses its buffer");
  assert.deepEqual(g.shape, [4, 1]);
});

test("SoftmaxCrossEntropy equals −log softmax[label] computed naively, and is stable for ±1000", () => {
  const z = array([
    [0.2, -1.3, 2.1],
    [1.5, 0.3, -0.7],
    [0, 0, 0],
  ]);
  const labels = [2, 1, 0];
  let naive = 0;
  for (let n = 0; n < 3; n++) {
    const row = [0, 1, 2].map((k) => Math.exp(z.get(n, k)));
    naive += -Math.log(row[labels[n]] / (row[0] + row[1] + row[2]));
  }
  naive /= 3;
  const ce = new SoftmaxCrossEntropy();
  assert.ok(Math.abs(ce.forward(z, labels) - naive) < 1e-15);
  assert.ok(Math.abs(ce.forward(z, oneHot(labels, 3)) - naive) < 1e-15);

  // Backward = (softmax − onehot)/N.
  ce.forward(z, labels);
  const p = SoftmaxCrossEntropy.softmax(z);
  const g = ce.backward();
  for (let n = 0; n < 3; n++)
    for (let k = 0; k < 3; k++) {
      assert.ok(Math.abs(g.get(n, k) - (p.get(n, k) - (k === labels[n] ? 1 : 0)) / 3) < 1e-16);
    }
  assert.deepEqual(ce.probabilities().shape, [3, 3]);

  const big = array([
    [1000, -1000],
    [-1000, 1000],
    [1000, 1000],
  ]);
  assert.ok(Math.abs(ce.forward(big, [0, 1, 0]) - Math.log(2) / 3) < 1e-12);
  assert.ok(Math.abs(ce.forward(big, [1, 1, 0]) - (2000 + Math.log(2)) / 3) < 1e-12);
  assert.ok(ce.backward().data.every(Number.isFinite));
});

test("BinaryCrossEntropy: logits and probabilities agree; the clamp keeps the loss finite with zero gradient", () => {
  const z = array([
    [-3, -0.5],
    [0.1, 2.5],
  ]);
  const t = array([
    [0, 1],
    [1, 0.3],
  ]);
  const p = new NDArray(
    Float64Array.from(z.data, (v) => 1 / (1 + Math.exp(-v))),
    [2, 2],
  );
  const fromLogits = new BinaryCrossEntropy({ fromLogits: true });
  const probs = new BinaryCrossEntropy();
  const a = fromLogits.forward(z, t);
  const b = probs.forward(p, t);
  let naive = 0;
  for (let i = 0; i < 4; i++) naive -= t.data[i] * Math.log(p.data[i]) + (1 - t.data[i]) * Math.log(1 - p.data[i]);
  assert.ok(Math.abs(a - naive / 4) < 1e-15 && Math.abs(b - naive / 4) < 1e-15);
  // ∂L/∂z = (σ(z) − t)/M
  const gz = fromLogits.backward();
  for (let i = 0; i < 4; i++) assert.ok(Math.abs(gz.data[i] - (p.data[i] - t.data[i]) / 4) < 1e-16);

  const edge = array([[0], [1], [0.5]]);
  const l = probs.forward(edge, array([[1], [0], [1]]));
  assert.ok(Math.abs(l - (-2 * Math.log(BCE_EPS) + Math.log(2)) / 3) < 1e-8);
  const g = probs.backward();
  assert.equal(g.data[0], 0);
  assert.equal(g.data[1], 0);
  assert.ok(Math.abs(g.data[2] - (0.5 - 1) / 0.25 / 3) < 1e-16);
  // Logits at ±1000 stay finite.
  assert.ok(Math.abs(fromLogits.forward(array([[1000], [-1000]]), array([[0], [1]])) - 1000) < 1e-9);
});

test("accuracy from labels and from one-hot rows", () => {
  const z = array([
    [0.1, 0.9, 0.0],
    [2, 1, 0],
    [0, 0, 5],
    [1, 1, 0],
  ]);
  assert.equal(accuracy(z, [1, 0, 2, 0]), 1);
  assert.equal(accuracy(z, Int32Array.from([1, 1, 2, 1])), 0.5);
  assert.equal(accuracy(z, oneHot([0, 0, 2, 0], 3)), 0.75);
});

test("float32 predictions give float32 gradients", () => {
  const z = new NDArray(Float32Array.from([1, 2, 3, 4, 5, 6]), [2, 3]);
  const ce = new SoftmaxCrossEntropy();
  ce.forward(z, [0, 2]);
  assert.equal(ce.backward().dtype, "float32");
  const m = new MSE();
  m.forward(z, z.copy());
  assert.equal(m.backward().dtype, "float32");
});

test("clear errors", () => {
  const ce = new SoftmaxCrossEntropy();
  const z = array([
    [1, 2, 3],
    [4, 5, 6],
    [7, 8, 9],
  ]);
  assert.throws(() => ce.forward(z, [0, 1, 3]), /label of sample 2 is 3, outside \[0, 3\)/);
  assert.throws(() => ce.forward(z, [0, -1, 2]), /label of sample 1 is -1/);
  assert.throws(() => ce.forward(z, [0, 1.5, 2]), /label of sample 1 is 1.5, not an integer/);
  assert.throws(() => ce.forward(z, new NDArray(Float64Array.from([0, 1, 0.25]), [3])), /sample 2 is 0.25/);
  assert.throws(
    () => ce.forward(z, [0, 1]),
    (e: unknown) => e instanceof ShapeError && /batch size mismatch: logits \(3, 3\), targets \(2,\)/.test(e.message),
  );
  assert.throws(() => ce.forward(z, oneHot([0, 1], 3)), /batch size mismatch: logits \(3, 3\), targets \(2, 3\)/);
  assert.throws(
    () => ce.forward(z, oneHot([0, 1, 1], 2)),
    /one-hot\/probability targets must have shape \(3, 3\) like the logits, got \(3, 2\)/,
  );
  assert.throws(() => ce.forward(array([1, 2, 3]), [0]), /expected logits of shape \(N, K\), got \(3,\)/);
  assert.throws(() => new SoftmaxCrossEntropy().backward(), /backward called before forward/);

  const mse = new MSE();
  assert.throws(
    () => mse.forward(array([[1], [2]]), array([1, 2])),
    /targets must have pred's shape: pred \(2, 1\), targets \(2,\)/,
  );
  assert.throws(() => mse.forward(array([[1], [2]]), array([[1], [2], [3]])), /batch size mismatch/);
  assert.throws(() => mse.forward(array([[1], [2]]), [1, 2]), /must be an NDArray/);
  assert.throws(() => new MSE({ reduction: "sum" as "mean" }), /reduction must be "half_sum" or "mean"/);

  const bce = new BinaryCrossEntropy();
  assert.throws(
    () => bce.forward(array([[0.5], [0.5]]), array([[0.5], [2]])),
    /targets must lie in \[0, 1\]; element 1 is 2/,
  );
  assert.throws(
    () => bce.forward(array([[0.5], [0.5]]), [1, 0, 1]),
    /batch size mismatch: pred \(2, 1\), targets \(3,\)/,
  );
  assert.throws(() => bce.forward(array([[0.5, 0.5]]), [1, 0]), /one value per sample/);
});

test("config and lossFromConfig", () => {
  for (const loss of [
    new MSE(),
    new MSE({ reduction: "half_sum" }),
    new SoftmaxCrossEntropy(),
    new BinaryCrossEntropy({ fromLogits: true }),
  ]) {
    const back = lossFromConfig(JSON.parse(JSON.stringify(loss)) as ReturnType<Loss["config"]>);
    assert.deepEqual(back.config(), loss.config());
    assert.equal(back.type, loss.type);
  }
  assert.throws(() => lossFromConfig({ type: "Hinge" }), /unknown loss type "Hinge"/);
});
