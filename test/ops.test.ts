import { test } from "node:test";
import assert from "node:assert/strict";
import fc from "fast-check";
import { NDArray } from "../src/nd/ndarray.ts";
import {
  add,
  arange,
  array,
  div,
  dot,
  expandDims,
  flip,
  full,
  matmul,
  mean,
  mul,
  ones,
  pad,
  reshape,
  rot90,
  sub,
  sum,
  transpose,
  zeros,
} from "../src/nd/ops.ts";
import { formatArray, pyRepr } from "../src/nd/format.ts";
import { assertClose, fromFixture, loadFixture, type FixtureArray } from "./helpers.ts";

type Axis = number | number[] | null;
interface OpsFixture {
  rot90: { a: FixtureArray; k: number; axes: [number, number]; out: FixtureArray }[];
  flip: { a: FixtureArray; axis: Axis; out: FixtureArray }[];
  transpose: { a: FixtureArray; axes: number[] | null; out: FixtureArray }[];
  pad: { a: FixtureArray; padWidth: number | [number, number][]; value: number; out: FixtureArray }[];
  binary: {
    a: FixtureArray;
    b: FixtureArray;
    add: FixtureArray;
    sub: FixtureArray;
    mul: FixtureArray;
    div: FixtureArray;
  }[];
  dot: { a: FixtureArray; b: FixtureArray; out: FixtureArray }[];
  matmul: { a: FixtureArray; b: FixtureArray; out: FixtureArray }[];
  reduce: { a: FixtureArray; axis: Axis; keepdims: boolean; sum: FixtureArray; mean: FixtureArray }[];
  format: { a: FixtureArray; str: string }[];
  repr: { x: number; repr: string }[];
}
const fx = loadFixture<OpsFixture>("ops.json");
const ax = (a: Axis) => (a === null ? undefined : a);

test("rot90 matches NumPy for every k in -6..6 and several axes", () => {
  for (const c of fx.rot90)
    assertClose(rot90(fromFixture(c.a), c.k, c.axes), c.out, 0, 0, `rot90 k=${c.k} axes=${c.axes.join(",")}`);
});

test("flip, transpose and pad match NumPy", () => {
  for (const c of fx.flip) assertClose(flip(fromFixture(c.a), ax(c.axis)), c.out, 0, 0, "flip");
  for (const c of fx.transpose) assertClose(transpose(fromFixture(c.a), c.axes ?? undefined), c.out, 0, 0, "transpose");
  for (const c of fx.pad) assertClose(pad(fromFixture(c.a), c.padWidth, c.value), c.out, 0, 0, "pad");
});

test("broadcasting add/sub/mul/div match NumPy exactly", () => {
  for (const c of fx.binary) {
    const a = fromFixture(c.a);
    const b = fromFixture(c.b);
    assertClose(add(a, b), c.add, 0, 0, "add");
    assertClose(sub(a, b), c.sub, 0, 0, "sub");
    assertClose(mul(a, b), c.mul, 0, 0, "mul");
    assertClose(div(a, b), c.div, 0, 0, "div");
  }
});

test("dot and matmul match NumPy", () => {
  for (const c of fx.dot) assertClose(dot(fromFixture(c.a), fromFixture(c.b)), c.out, 1e-12, 1e-14, "dot");
  for (const c of fx.matmul) assertClose(matmul(fromFixture(c.a), fromFixture(c.b)), c.out, 1e-12, 1e-14, "matmul");
});

test("sum and mean with axis and keepdims match NumPy", () => {
  for (const c of fx.reduce) {
    const a = fromFixture(c.a);
    const opts = { axis: ax(c.axis), keepdims: c.keepdims };
    assertClose(sum(a, opts), c.sum, 1e-12, 1e-14, `sum axis=${JSON.stringify(c.axis)}`);
    assertClose(mean(a, opts), c.mean, 1e-12, 1e-14, `mean axis=${JSON.stringify(c.axis)}`);
  }
});

test("formatArray prints as NumPy's str(ndarray); pyRepr as Python's repr(float)", () => {
  for (const c of fx.format) assert.equal(formatArray(fromFixture(c.a)), c.str);
  for (const c of fx.repr) assert.equal(pyRepr(c.x), c.repr);
});

test("creation helpers", () => {
  assert.deepEqual(zeros([2, 2]).toArray(), [
    [0, 0],
    [0, 0],
  ]);
  assert.deepEqual(ones(3).toArray(), [1, 1, 1]);
  assert.deepEqual(full([1, 2], 7, "float32").toArray(), [[7, 7]]);
  assert.equal(full([1, 2], 7, "float32").dtype, "float32");
  assert.deepEqual(arange(5).toArray(), [0, 1, 2, 3, 4]);
  assert.deepEqual(arange(1, 2, 0.25).toArray(), [1, 1.25, 1.5, 1.75]);
  assert.deepEqual(expandDims(array([1, 2]), 0).shape, [1, 2]);
  assert.deepEqual(reshape(arange(6), [-1, 2]).shape, [3, 2]);
  const a = array([
    [1, 2],
    [3, 4],
  ]);
  assert.equal(a.get(1, 0), 3);
  assert.equal(a.get(-1, -1), 4);
});

test("bad input names what was wrong", () => {
  assert.throws(() => array([[1, 2], [3]]), /ragged nested sequence: element at \[1\] has length 1, expected 2/);
  assert.throws(() => add(zeros([2, 3]), zeros([4])), /could not be broadcast together with shapes \(2, 3\) \(4,\)/);
  assert.throws(() => matmul(zeros([2, 3]), zeros([2, 3])), /mismatch in core dimension.*\(2, 3\) @ \(2, 3\)/);
  assert.throws(() => reshape(zeros([6]), [4, 2]), /cannot reshape array of size 6 into shape \(4, 2\)/);
  assert.throws(() => rot90(zeros([3]), 1), /at least 2-d/);
  assert.throws(() => rot90(zeros([2, 2]), 1, [0, 0]), /Axes must be different/);
  assert.throws(() => rot90(zeros([2, 2]), 1.5), /k must be an integer/);
  assert.throws(() => zeros([2, 2]).get(2, 0), /index 2 is out of bounds for axis 0 with size 2/);
  assert.throws(() => new NDArray(new Float64Array(3), [2, 2]), /3 elements but shape \(2, 2\) needs 4/);
  assert.throws(() => sum(zeros([2]), { axis: 1 }), /axis 1 is out of bounds for array of dimension 1/);
});

const smallMatrix = fc
  .tuple(fc.integer({ min: 1, max: 5 }), fc.integer({ min: 1, max: 5 }))
  .chain(([r, c]) =>
    fc
      .array(fc.double({ min: -10, max: 10, noNaN: true }), { minLength: r * c, maxLength: r * c })
      .map((d) => new NDArray(Float64Array.from(d), [r, c])),
  );

test("rot90 identities: four quarter turns are the identity; rot90(a, k) = rot90(a, k + 4); rot90(a,-1) undoes rot90(a,1)", () => {
  fc.assert(
    fc.property(smallMatrix, fc.integer({ min: -9, max: 9 }), (a, k) => {
      assert.deepEqual(rot90(rot90(rot90(rot90(a)))).toArray(), a.toArray());
      assert.deepEqual(rot90(a, k).toArray(), rot90(a, k + 4).toArray());
      assert.deepEqual(rot90(rot90(a, 1), -1).toArray(), a.toArray());
      assert.deepEqual(rot90(a, 2).toArray(), flip(a).toArray());
    }),
  );
});
