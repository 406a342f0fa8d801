import { test } from "node:test";
import assert from "node:assert/strict";
import { NDArray } from "../src/nd/ndarray.ts";
import { array } from "../src/nd/ops.ts";
import { RandomState } from "../src/nd/random.ts";
import { gradcheck } from "../src/nn/gradcheck.ts";
import { ShapeError, type Layer } from "../src/nn/layer.ts";
import { LeakyReLU, ReLU, Sigmoid, Softmax, Tanh, sigmoid } from "../src/nn/activations.ts";

/** N(0, scale²) draws of a shape, optionally pushed at least `gap` away from 0 (kinks of ReLU-likes). */
function randn(rng: RandomState, shape: number[], scale = 1, gap = 0): NDArray {
  const x = new NDArray(new Float64Array(shape.reduce((a, b) => a * b, 1)), shape);
  for (let i = 0; i < x.size; i++) {
    const v = scale * rng.standardNormal();
    x.data[i] = v >= 0 ? v + gap : v - gap;
  }
  return x;
}

const SHAPES = [
  [3, 5],
  [2, 3, 4, 5],
  [4, 1],
  [1, 7],
];

function checkAll(make: () => Layer, gap: number, scale = 2): void {
  const rng = new RandomState(7);
  for (const shape of SHAPES) {
    const layer = make();
    const r = gradcheck(layer, randn(rng, shape, scale, gap), { seed: shape.length });
    assert.ok(
      r.ok,
      `${layer.type} on ${JSON.stringify(shape)}: max rel error ${r.maxRelError}, ${JSON.stringify(r.tensors)}`,
    );
    assert.ok(r.maxRelError <= 1e-6);
    assert.equal(r.tensors[0].skippedKinks, 0);
  }
}

test("gradcheck: ReLU and LeakyReLU (inputs kept ≥ 0.1 away from the kink)", () => {
  checkAll(() => new ReLU(), 0.1);
  checkAll(() => new LeakyReLU(), 0.1);
  checkAll(() => new LeakyReLU({ alpha: 0.3 }), 0.1);
  checkAll(() => new LeakyReLU({ alpha: -0.5 }), 0.1);
});

test("gradcheck: Tanh and Sigmoid", () => {
  // Inputs up to |x| ≈ 9: further out σ'(x) < 1e-4 drowns in the rounding of y ≈ 1 and no finite
  // difference can resolve it relatively (the saturated values are tested in the stability test).
  checkAll(() => new Tanh(), 0);
  checkAll(() => new Sigmoid(), 0, 3);
});

test("gradcheck: Softmax along the last axis and along the channel axis of NCHW", () => {
  checkAll(() => new Softmax(), 0);
  const rng = new RandomState(3);
  for (const axis of [1, -3, 2, -1]) {
    const r = gradcheck(new Softmax({ axis }), randn(rng, [2, 3, 4, 2], 2));
    assert.ok(r.ok, `axis ${axis}: ${r.maxRelError}`);
  }
});

test("forward values match the formulas", () => {
  const x = array([[-2, -0.5, 0, 0.5, 3]]);
  assert.deepEqual(Array.from(new ReLU().forward(x).data), [0, 0, 0, 0.5, 3]);
  assert.deepEqual(Array.from(new LeakyReLU({ alpha: 0.1 }).forward(x).data), [-2 * 0.1, -0.5 * 0.1, 0, 0.5, 3]);
  assert.deepEqual(Array.from(new Tanh().forward(x).data), Array.from(x.data, Math.tanh));
  const s = new Sigmoid().forward(x).data;
  for (let i = 0; i < x.size; i++)
    assert.ok(Math.abs(s[i] - 1 / (1 + Math.exp(-x.data[i]))) < 2e-16, `σ(${x.data[i]})`);
  // Derivatives at the kink, as PyTorch: ReLU'(0) = 0, LeakyReLU'(0) = α.
  const relu = new ReLU();
  relu.forward(array([[0]]));
  assert.equal(relu.backward(array([[1]])).data[0], 0);
  const leaky = new LeakyReLU({ alpha: 0.2 });
  leaky.forward(array([[0]]));
  assert.equal(leaky.backward(array([[1]])).data[0], 0.2);
});

test("sigmoid is stable and symmetric for huge inputs", () => {
  assert.equal(sigmoid(-1000), 0);
  assert.equal(sigmoid(1000), 1);
  assert.equal(sigmoid(0), 0.5);
  for (const v of [0.1, 1, 5, 20, 40]) assert.ok(Math.abs(sigmoid(-v) - (1 - sigmoid(v))) < 2e-16, `σ(−${v})`);
  const sig = new Sigmoid();
  const y = sig.forward(array([[-1000, -745, -30, 30, 745, 1000]]));
  assert.ok(
    y.data.every((v) => Number.isFinite(v) && v >= 0 && v <= 1),
    String(y),
  );
  // Saturated: σ'(−30) = σ(−30)(1 − σ(−30)), tiny but exact to rounding; σ'(±1000) = 0, not NaN.
  const dx = sig.backward(array([[1, 1, 1, 1, 1, 1]]));
  assert.ok(Math.abs(dx.data[2] - Math.exp(-30)) < 1e-12 * Math.exp(-30) * 1e3);
  assert.deepEqual([dx.data[0], dx.data[5]], [0, 0]);
});

test("Softmax: rows sum to 1, stable for logits ±1000, and backward is y ⊙ (dy − Σ dy ⊙ y)", () => {
  const sm = new Softmax();
  const y = sm.forward(
    array([
      [1000, -1000, 0],
      [1000, 1000, 1000],
      [-1000, -1000, -999],
      [1, 2, 3],
    ]),
  );
  assert.ok(y.data.every(Number.isFinite));
  assert.deepEqual(Array.from(y.data.subarray(0, 3)), [1, 0, 0]);
  for (let n = 0; n < 4; n++) {
    const s = y.data[n * 3] + y.data[n * 3 + 1] + y.data[n * 3 + 2];
    assert.ok(Math.abs(s - 1) < 1e-15, `row ${n} sums to ${s}`);
  }
  assert.ok(Math.abs(y.data[3] - 1 / 3) < 2e-16);
  const e = [1, 2, 3].map(Math.exp);
  const z = e[0] + e[1] + e[2];
  for (let k = 0; k < 3; k++) assert.ok(Math.abs(y.data[9 + k] - e[k] / z) < 2e-16, `softmax(1, 2, 3)[${k}]`);

  // Channel softmax of NCHW: every (n, h, w) fibre sums to 1.
  const rng = new RandomState(1);
  const y4 = new Softmax({ axis: 1 }).forward(randn(rng, [2, 3, 2, 2], 5));
  for (let n = 0; n < 2; n++) {
    for (let p = 0; p < 4; p++) {
      let s = 0;
      for (let c = 0; c < 3; c++) s += y4.data[n * 12 + c * 4 + p];
      assert.ok(Math.abs(s - 1) < 1e-15);
    }
  }
});

test("shapes, dtypes, buffer reuse and dy left untouched", () => {
  for (const layer of [new ReLU(), new LeakyReLU(), new Tanh(), new Sigmoid(), new Softmax()]) {
    assert.deepEqual(layer.outputShape([3, 4, 5]), [3, 4, 5]);
    const x32 = new NDArray(Float32Array.from([0.5, -1, 2, -3, 0.25, 1]), [2, 3]);
    const y = layer.forward(x32);
    assert.equal(y.dtype, "float32");
    assert.deepEqual(y.shape, [2, 3]);
    assert.equal(layer.forward(x32), y, `${layer.type} reuses its output buffer`);
    const dy = new NDArray(Float32Array.from([1, 2, 3, 4, 5, 6]), [2, 3]);
    const dx = layer.backward(dy);
    assert.equal(dx.dtype, "float32");
    assert.deepEqual(Array.from(dy.data), [1, 2, 3, 4, 5, 6]);
    assert.equal(layer.backward(dy), dx);
  }
});

test("errors: backward before forward, dy of the wrong shape, bad options, softmax axis", () => {
  assert.throws(() => new Tanh().backward(array([[1]])), /Tanh: backward called before forward/);
  const relu = new ReLU();
  relu.forward(array([[1, 2]]));
  assert.throws(
    () => relu.backward(array([[1, 2, 3]])),
    (e: unknown) => e instanceof ShapeError && /\(1, 2\).*\(1, 3\)/.test(e.message),
  );
  assert.throws(() => new LeakyReLU({ alpha: NaN }), /LeakyReLU: alpha must be a finite number/);
  assert.throws(() => new Softmax({ axis: 0 }), /axis 0 is the batch axis/);
  assert.throws(() => new Softmax({ axis: 1.5 }), /axis must be an integer/);
  assert.throws(
    () => new Softmax({ axis: 2 }).forward(array([[1, 2]])),
    (e: unknown) => e instanceof ShapeError && /axis 2 is out of range for input of shape \(1, 2\)/.test(e.message),
  );
  assert.throws(() => new Softmax({ axis: -2 }).forward(array([[1, 2]])), ShapeError);
  assert.throws(() => new Softmax({ axis: 3 }).outputShape([4, 5]), ShapeError);
  assert.deepEqual(new Softmax({ axis: 2 }).outputShape([4, 5]), [4, 5]);
});

test("config", () => {
  assert.deepEqual(new ReLU().config(), { type: "ReLU" });
  assert.deepEqual(new LeakyReLU().config(), { type: "LeakyReLU", alpha: 0.01 });
  assert.deepEqual(new Tanh().config(), { type: "Tanh" });
  assert.deepEqual(new Sigmoid().config(), { type: "Sigmoid" });
  assert.deepEqual(new Softmax({ axis: 1 }).config(), { type: "Softmax", axis: 1 });
  assert.deepEqual(JSON.parse(JSON.stringify(new Softmax())), { type: "Softmax", axis: -1 });
});
