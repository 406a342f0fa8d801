import { test } from "node:test";
import assert from "node:assert/strict";
import { NDArray, shapeSize } from "../src/nd/ndarray.ts";
import { RandomState } from "../src/nd/random.ts";
import { gradcheck } from "../src/nn/gradcheck.ts";
import { ShapeError } from "../src/nn/layer.ts";
import { AvgPool2D, GlobalAvgPool2D, MaxPool2D } from "../src/nn/pool.ts";
import { assertClose } from "./helpers.ts";

const nd = (data: number[], shape: number[]): NDArray => new NDArray(Float64Array.from(data), shape);
const int = (rng: RandomState, lo: number, hi: number): number => lo + Math.floor(rng.nextDouble() * (hi - lo + 1));

function randn(rng: RandomState, shape: number[]): NDArray {
  const a = new Float64Array(shapeSize(shape));
  for (let i = 0; i < a.length; i++) a[i] = rng.standardNormal();
  return new NDArray(a, shape);
}

/** Distinct values 0.1 apart in random order: a ±h step (h ≤ 1e-4) can never change an argmax. */
function distinct(rng: RandomState, shape: number[]): NDArray {
  const v = Array.from({ length: shapeSize(shape) }, (_, i) => (i - shapeSize(shape) / 2) * 0.1);
  rng.shuffle(v);
  return nd(v, shape);
}

// x[0,0] = 4×4 with a known layout
const X44 = nd([1, 5, 2, 0, 3, 4, 8, 7, -1, 6, 9, 2, 0, 2, 3, 10], [1, 1, 4, 4]);

test("MaxPool2D 2×2/2 on a known 4×4 and its backward routing", () => {
  const pool = new MaxPool2D({ kernelSize: 2 });
  const y = pool.forward(X44);
  assertClose(y, nd([5, 8, 6, 10], [1, 1, 2, 2]), 0, 0, "maxpool");
  const dx = pool.backward(nd([1, 2, 3, 4], [1, 1, 2, 2]));
  assertClose(dx, nd([0, 1, 0, 0, 0, 0, 2, 0, 0, 3, 0, 0, 0, 0, 0, 4], [1, 1, 4, 4]), 0, 0, "maxpool dx");
});

test("MaxPool2D with padding: padded cells never win, even over negative inputs", () => {
  // k=3, s=2, p=1 on 4×4 → 2×2; windows rows/cols {-1,0,1} and {1,2,3}
  const neg = nd(
    Array.from(X44.data, (v) => -v - 1),
    [1, 1, 4, 4],
  );
  const pool = new MaxPool2D({ kernelSize: 3, stride: 2, padding: 1 });
  assert.deepEqual(pool.outputShape([1, 4, 4]), [1, 2, 2]);
  // −x−1: the max over a window is −(min x) − 1
  // window (0,0): rows 0-1, cols 0-1: x ∈ {1,5,3,4} min 1 → −2
  // window (0,1): rows 0-1, cols 1-3: {5,2,0,4,8,7} min 0 → −1
  // window (1,0): rows 1-3, cols 0-1: {3,4,-1,6,0,2} min −1 → 0
  // window (1,1): rows 1-3, cols 1-3: {4,8,7,6,9,2,2,3,10} min 2 → −3
  assertClose(pool.forward(neg), nd([-2, -1, 0, -3], [1, 1, 2, 2]), 0, 0, "padded maxpool");
});

test("MaxPool2D ties go to the first maximum in row-major window order; overlapping windows accumulate", () => {
  const pool = new MaxPool2D({ kernelSize: 2, stride: 2 });
  pool.forward(nd([7, 7, 7, 7], [1, 1, 2, 2]));
  assertClose(pool.backward(nd([1], [1, 1, 1, 1])), nd([1, 0, 0, 0], [1, 1, 2, 2]), 0, 0, "tie → top-left");

  // k=2, s=1: the 9 in the middle wins all four windows of a 3×3 → dx there = Σ dy
  const over = new MaxPool2D({ kernelSize: 2, stride: 1 });
  const y = over.forward(nd([1, 2, 3, 4, 9, 5, 6, 7, 8], [1, 1, 3, 3]));
  assertClose(y, nd([9, 9, 9, 9], [1, 1, 2, 2]), 0, 0, "overlap forward");
  const dx = over.backward(nd([1, 10, 100, 1000], [1, 1, 2, 2]));
  assertClose(dx, nd([0, 0, 0, 0, 1111, 0, 0, 0, 0], [1, 1, 3, 3]), 0, 0, "overlap dx");
});

test("MaxPool2D propagates NaN like PyTorch", () => {
  const pool = new MaxPool2D({ kernelSize: 2 });
  const y = pool.forward(nd([1, NaN, 3, 2], [1, 1, 2, 2]));
  assert.ok(Number.isNaN(y.data[0]));
});

test("AvgPool2D with and without countIncludePad (PyTorch's semantics)", () => {
  const incl = new AvgPool2D({ kernelSize: 3, stride: 2, padding: 1 });
  const excl = new AvgPool2D({ kernelSize: 3, stride: 2, padding: 1, countIncludePad: false });
  // window sums (see the MaxPool padding test for the windows): 13, 26, 14, 51
  assertClose(incl.forward(X44), nd([13 / 9, 26 / 9, 14 / 9, 51 / 9], [1, 1, 2, 2]), 1e-15, 0, "include pad");
  assertClose(excl.forward(X44), nd([13 / 4, 26 / 6, 14 / 6, 51 / 9], [1, 1, 2, 2]), 1e-15, 0, "exclude pad");
  // backward of the window (0,0) alone: its 4 real cells get dy/9 (incl) or dy/4 (excl)
  const dy = nd([9, 0, 0, 0], [1, 1, 2, 2]);
  assertClose(
    incl.backward(dy),
    nd([1, 1, 0, 0, 1, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0], [1, 1, 4, 4]),
    1e-15,
    0,
    "incl dx",
  );
  assertClose(
    excl.backward(dy),
    nd([2.25, 2.25, 0, 0, 2.25, 2.25, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0], [1, 1, 4, 4]),
    1e-15,
    0,
    "excl dx",
  );
  // plain 2×2/2, no padding
  assertClose(
    new AvgPool2D({ kernelSize: 2 }).forward(X44),
    nd([13 / 4, 17 / 4, 7 / 4, 24 / 4], [1, 1, 2, 2]),
    1e-15,
    0,
    "2x2 avg",
  );
});

test("GlobalAvgPool2D: (N, C, H, W) → (N, C) means; backward spreads dy/(H·W)", () => {
  const g = new GlobalAvgPool2D();
  const x = nd([1, 2, 3, 4, 10, 20, 30, 40, -1, -1, -1, -1, 0, 0, 0, 8], [2, 2, 2, 2]);
  assert.deepEqual(g.outputShape([2, 2, 2]), [2]);
  assertClose(g.forward(x), nd([2.5, 25, -1, 2], [2, 2]), 0, 0, "gap");
  assertClose(
    g.backward(nd([4, 8, 12, 16], [2, 2])),
    nd([1, 1, 1, 1, 2, 2, 2, 2, 3, 3, 3, 3, 4, 4, 4, 4], [2, 2, 2, 2]),
    0,
    0,
    "gap dx",
  );
});

test("pooling gradchecks ≤ 1e-6 over randomized kernel/stride/padding/batch/channel configs", () => {
  const rng = new RandomState(1234);
  let worst = 0;
  for (let trial = 0; trial < 30; trial++) {
    const k: [number, number] = [int(rng, 1, 4), int(rng, 1, 4)];
    const s: [number, number] = [int(rng, 1, 3), int(rng, 1, 3)]; // s < k gives overlapping windows
    const p: [number, number] = [int(rng, 0, Math.floor(k[0] / 2)), int(rng, 0, Math.floor(k[1] / 2))];
    const N = int(rng, 1, 3);
    const C = int(rng, 1, 3);
    const H = Math.max(1, k[0] - 2 * p[0] + int(rng, 0, 4));
    const W = Math.max(1, k[1] - 2 * p[1] + int(rng, 0, 4));
    const opts = { kernelSize: k, stride: s, padding: p };
    const what = `k=${k.join("×")} s=${s.join("×")} p=${p.join("×")} x=(${N},${C},${H},${W})`;

    const max = gradcheck(new MaxPool2D(opts), distinct(rng, [N, C, H, W]), { seed: trial });
    assert.ok(max.ok, `MaxPool2D ${what}: ${JSON.stringify(max)}`);
    assert.equal(max.tensors[0].skippedKinks, 0, `MaxPool2D ${what}: no argmax may flip`);
    for (const countIncludePad of [true, false]) {
      const avg = gradcheck(new AvgPool2D({ ...opts, countIncludePad }), randn(rng, [N, C, H, W]), { seed: trial });
      assert.ok(avg.ok, `AvgPool2D countIncludePad=${countIncludePad} ${what}: ${JSON.stringify(avg)}`);
      worst = Math.max(worst, avg.maxRelError);
    }
    const gap = gradcheck(new GlobalAvgPool2D(), randn(rng, [N, C, H, W]), { seed: trial });
    assert.ok(gap.ok, `GlobalAvgPool2D ${what}: ${JSON.stringify(gap)}`);
    worst = Math.max(worst, max.maxRelError, gap.maxRelError);
  }
  assert.ok(worst <= 1e-6);
});

test("pool layers never mutate dy, reuse their buffers and keep the input dtype", () => {
  const rng = new RandomState(5);
  for (const layer of [
    new MaxPool2D({ kernelSize: 3, stride: 1, padding: 1 }),
    new AvgPool2D({ kernelSize: 2, stride: 1 }),
    new GlobalAvgPool2D(),
  ]) {
    const x = randn(rng, [2, 3, 5, 5]).astype("float32");
    const y = layer.forward(x);
    assert.equal(y.dtype, "float32");
    const dy = randn(rng, y.shape).astype("float32");
    const before = dy.data.slice();
    const dx = layer.backward(dy);
    assert.equal(dx.dtype, "float32");
    assert.deepEqual(dx.shape, x.shape);
    assert.deepEqual(dy.data, before, `${layer.type} mutated dy`);
    assert.equal(layer.forward(x), y, `${layer.type} output buffer reused`);
    assert.equal(layer.backward(dy), dx, `${layer.type} dx buffer reused`);
  }
});

test("pool option validation and shape errors are clear", () => {
  assert.throws(
    () => new MaxPool2D({ kernelSize: 2, stride: 0 }),
    /MaxPool2D: stride must be a positive integer, got 0/,
  );
  assert.throws(() => new AvgPool2D({ kernelSize: [2, 0] }), /AvgPool2D: kernelSize\[1\] must be a positive integer/);
  assert.throws(
    () => new MaxPool2D({ kernelSize: 3, padding: 2 }),
    /padding must be at most half the kernel size \(⌊3\/2⌋ = 1\) on the height axis, got padding 2/,
  );
  assert.throws(() => new AvgPool2D({ kernelSize: [3, 2], padding: [1, 2] }), /width axis/);
  assert.throws(() => new MaxPool2D({ kernelSize: 2, padding: -1 }), /padding must be a non-negative integer/);
  assert.throws(() => new MaxPool2D({ kernelSize: 2.5 }), /kernelSize must be a positive integer/);
  assert.throws(
    () => new AvgPool2D({ kernelSize: 2, countIncludePad: "yes" as unknown as boolean }),
    /countIncludePad must be a boolean/,
  );

  const pool = new MaxPool2D({ kernelSize: 5, padding: 1 });
  assert.throws(
    () => pool.outputShape([1, 2, 6]),
    (e: unknown) => e instanceof ShapeError && /kernel 5×5 is larger than the padded input 4×8/.test(e.message),
  );
  assert.throws(() => pool.forward(nd([1, 2, 3, 4], [1, 1, 2, 2])), ShapeError);
  assert.throws(() => pool.outputShape([4, 4]), /expected input of shape \(N, C, H, W\)/);
  assert.throws(
    () => pool.forward(nd([1, 2, 3, 4], [1, 4])),
    /MaxPool2D: expected input of shape \(N, C, H, W\), got \(1, 4\)/,
  );
  assert.throws(() => new GlobalAvgPool2D().outputShape([3]), ShapeError);

  const fresh = new AvgPool2D({ kernelSize: 2 });
  assert.throws(() => fresh.backward(nd([1], [1, 1, 1, 1])), /backward called before forward/);
  fresh.forward(X44);
  assert.throws(() => fresh.backward(nd([1, 2], [1, 1, 1, 2])), /backward expected dy of shape \(1, 1, 2, 2\)/);
});

test("pool configs rebuild identical layers", () => {
  const layers = [
    new MaxPool2D({ kernelSize: [3, 2], stride: 1, padding: [1, 0] }),
    new AvgPool2D({ kernelSize: 2, countIncludePad: false }),
    new AvgPool2D({ kernelSize: 3, stride: 2, padding: 1 }),
  ];
  assert.deepEqual(layers[0].config(), { type: "MaxPool2D", kernelSize: [3, 2], stride: 1, padding: [1, 0] });
  assert.deepEqual(layers[1].config(), {
    type: "AvgPool2D",
    kernelSize: 2,
    stride: 2,
    padding: 0,
    countIncludePad: false,
  });
  for (const l of layers) {
    const opts = JSON.parse(JSON.stringify(l.config())) as Record<string, unknown>;
    delete opts.type;
    const rebuilt = l instanceof MaxPool2D ? new MaxPool2D(opts as never) : new AvgPool2D(opts as never);
    assert.deepEqual(rebuilt.config(), l.config());
    assertClose(rebuilt.forward(X44), l.forward(X44), 0, 0, l.type);
  }
  assert.deepEqual(new GlobalAvgPool2D().config(), { type: "GlobalAvgPool2D" });
});
