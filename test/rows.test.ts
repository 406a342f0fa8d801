// src/nd/rows.ts: row-wise argmax (NumPy's rule: first index on ties) and the shifted softmax.
import { test } from "node:test";
import assert from "node:assert/strict";
import fc from "fast-check";
import { argmax, argmaxRowsOf, softmax, softmaxRows } from "../src/nd/rows.ts";

test("argmax: the first index of the maximum, within a row given by offset and length", () => {
  assert.equal(argmax([1, 3, 3, 2]), 1);
  assert.equal(argmax([5, 0, 9, 9, 1, 7], 3, 3), 0); // row [9, 1, 7]
  assert.equal(argmax([NaN, 2, 1]), 0); // NaN first: nothing compares larger (np.argmax would say 0 too)
  assert.equal(argmax([0, NaN, 1]), 2);
  assert.deepEqual(Array.from(argmaxRowsOf([0, 1, 1, 0, 2, 2], 3, 2)), [1, 0, 0]);
  fc.assert(
    fc.property(fc.array(fc.double({ noNaN: true }), { minLength: 1, maxLength: 20 }), (xs) => {
      const i = argmax(xs);
      assert.equal(i, xs.indexOf(Math.max(...xs)));
    }),
  );
});

test("softmax: sums to 1, shift-invariant, no overflow, log-sum-exp per row", () => {
  const p = softmax([1000, 1000, -Infinity]);
  assert.deepEqual(Array.from(p), [0.5, 0.5, 0]);
  fc.assert(
    fc.property(
      fc.array(fc.double({ min: -50, max: 50, noNaN: true }), { minLength: 1, maxLength: 12 }),
      fc.double({ min: -100, max: 100, noNaN: true }),
      (z, c) => {
        const a = softmax(z);
        const b = softmax(z.map((v) => v + c));
        assert.ok(Math.abs(a.reduce((s, v) => s + v, 0) - 1) < 1e-12);
        a.forEach((v, k) => {
          assert.ok(Math.abs(v - b[k]) < 1e-9);
        });
        const naive = z.map((v) => Math.exp(v) / z.reduce((s, w) => s + Math.exp(w), 0));
        a.forEach((v, k) => {
          assert.ok(Math.abs(v - naive[k]) < 1e-12);
        });
      },
    ),
  );
  const out = new Float32Array(4);
  const lse = new Float64Array(2);
  softmaxRows([0, 0, 1, 3], 2, 2, out, lse);
  assert.deepEqual(Array.from(out), [
    0.5,
    0.5,
    Math.fround(1 / (1 + Math.exp(2))),
    Math.fround(1 / (1 + Math.exp(-2))),
  ]);
  assert.ok(Math.abs(lse[0] - Math.log(2)) < 1e-15 && Math.abs(lse[1] - Math.log(Math.exp(1) + Math.exp(3))) < 1e-14);
});
