// Tests for src/nd/signal.ts against SciPy fixtures (test/fixtures/signal.json, written by
// test/fixtures/gen_signal.py) and fast-check properties of convolution and correlation.

import { describe, test } from "node:test";
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import fc from "fast-check";

import { NDArray, formatShape, type DType } from "../src/nd/ndarray.ts";
import { add, mul, rot90 } from "../src/nd/ops.ts";
import { convolve2d, correlate2d, type ConvMode } from "../src/nd/signal.ts";

// ---------------------------------------------------------------------------------------------
// Fixture format (see gen_signal.py)

type Num = number | "nan" | "inf" | "-inf";
interface FixtureArray {
  shape: number[];
  dtype: DType;
  data: Num[];
}
interface OkResult extends FixtureArray {
  /** float32 cases: SciPy's result on the inputs upcast to float64. */
  data64?: Num[];
}
interface ErrResult {
  error: string;
}
interface FixtureCase {
  name: string;
  a: FixtureArray;
  b: FixtureArray;
  results: Record<string, OkResult | ErrResult | undefined>;
}
interface Fixture {
  scipy: string;
  numpy: string;
  cases: FixtureCase[];
}

const fixture = JSON.parse(readFileSync(new URL("./fixtures/signal.json", import.meta.url), "utf8")) as Fixture;

const FNS = { convolve2d, correlate2d } as const;
type FnName = keyof typeof FNS;
const FN_NAMES: readonly FnName[] = ["convolve2d", "correlate2d"];
const MODES: readonly ConvMode[] = ["full", "same", "valid"];

function num(x: Num): number {
  if (x === "nan") return NaN;
  if (x === "inf") return Infinity;
  if (x === "-inf") return -Infinity;
  return x;
}

function fromFixture(f: FixtureArray): NDArray {
  const data = f.dtype === "float32" ? new Float32Array(f.data.length) : new Float64Array(f.data.length);
  for (let i = 0; i < f.data.length; i++) data[i] = num(f.data[i]);
  return new NDArray(data, f.shape);
}

/**
 * Largest |got − want| over the array, divided by the largest finite |want| (at least the smallest
 * normal double, so all-zero outputs compare absolutely). Non-finite entries must match exactly.
 */
function relMaxDiff(got: ArrayLike<number>, want: readonly number[], where: string): number {
  assert.equal(got.length, want.length, `${where}: length`);
  let scale = 0;
  for (const w of want) if (Number.isFinite(w)) scale = Math.max(scale, Math.abs(w));
  scale = Math.max(scale, 2.2250738585072014e-308);
  let worst = 0;
  for (let i = 0; i < want.length; i++) {
    const g = got[i];
    const w = want[i];
    if (!Number.isFinite(w)) {
      assert.ok(Object.is(g, w), `${where}: element ${i} is ${g}, SciPy has ${w}`);
      continue;
    }
    assert.ok(Number.isFinite(g), `${where}: element ${i} is ${g}, SciPy has ${w}`);
    worst = Math.max(worst, Math.abs(g - w) / scale);
  }
  return worst;
}

// ---------------------------------------------------------------------------------------------
// SciPy fixtures

describe(`SciPy ${fixture.scipy} fixtures`, () => {
  const stats = { f64: 0, f32VsScipy: 0, f32VsRounded64: 0, bitExact: 0, compared: 0, errors: 0 };

  for (const c of fixture.cases) {
    test(c.name, () => {
      const a = fromFixture(c.a);
      const b = fromFixture(c.b);
      const aBefore = Array.from(a.data);
      const bBefore = Array.from(b.data);
      for (const fn of FN_NAMES) {
        for (const mode of MODES) {
          const where = `${c.name} ${fn}(a ${formatShape(c.a.shape)}, b ${formatShape(c.b.shape)}, '${mode}')`;
          const r = c.results[`${fn}/${mode}`];
          assert.ok(r !== undefined, `${where}: missing from fixture`);
          if ("error" in r) {
            stats.errors++;
            assert.throws(
              () => FNS[fn](a, b, mode),
              (e: unknown) =>
                e instanceof RangeError &&
                e.message.includes(r.error) &&
                e.message.includes(formatShape(c.a.shape)) &&
                e.message.includes(formatShape(c.b.shape)) &&
                e.message.startsWith(`${fn}:`),
              where,
            );
            continue;
          }
          const out = FNS[fn](a, b, mode);
          assert.deepEqual(out.shape, r.shape, `${where}: shape`);
          assert.equal(out.dtype, r.dtype, `${where}: dtype`);
          const want = r.data.map(num);
          stats.compared++;
          if (r.dtype === "float64") {
            const d = relMaxDiff(out.data, want, where);
            assert.ok(d <= 1e-12, `${where}: max relative difference ${d} > 1e-12`);
            stats.f64 = Math.max(stats.f64, d);
            // Same summation order as SciPy's loop: identical doubles (see gen_signal.py on FMA).
            const exact = want.every((w, i) => Object.is(out.data[i], w));
            assert.ok(exact, `${where}: not bit-identical to SciPy`);
            stats.bitExact++;
          } else {
            // SciPy accumulates float32 in float32; we accumulate in float64 and round once, which is
            // float32 of SciPy's float64 result on the same (upcast) inputs.
            assert.ok(r.data64 !== undefined, `${where}: fixture lacks data64`);
            const want64 = r.data64.map(num);
            const rounded = want64.map((w) => Math.fround(w));
            assert.ok(
              rounded.every((w, i) => Object.is(out.data[i], w)),
              `${where}: not float32(SciPy float64 result)`,
            );
            stats.f32VsRounded64 = Math.max(stats.f32VsRounded64, relMaxDiff(out.data, rounded, where));
            const d = relMaxDiff(out.data, want, where);
            assert.ok(d <= 1e-5, `${where}: max relative difference to SciPy float32 ${d} > 1e-5`);
            stats.f32VsScipy = Math.max(stats.f32VsScipy, d);
          }
        }
      }
      assert.deepEqual(Array.from(a.data), aBefore, "a was modified");
      assert.deepEqual(Array.from(b.data), bBefore, "b was modified");
    });
  }

  test("fixture summary", (t) => {
    assert.ok(fixture.cases.length >= 50, "fixture has too few cases");
    assert.ok(stats.errors > 0 && stats.compared > 0);
    t.diagnostic(
      `compared ${stats.compared} outputs (${stats.bitExact} float64 bit-identical), ${stats.errors} errors; ` +
        `max rel diff float64 ${stats.f64}, float32 vs SciPy ${stats.f32VsScipy}`,
    );
  });
});

// ---------------------------------------------------------------------------------------------
// Worked examples

const m = (rows: number[][], dtype: DType = "float64"): NDArray => {
  const data = dtype === "float32" ? new Float32Array(rows.flat()) : new Float64Array(rows.flat());
  return new NDArray(data, [rows.length, rows[0].length]);
};

describe("worked examples", () => {
  const a = m([
    [1, 2, 3],
    [4, 5, 6],
  ]);
  test("convolve2d full flips the kernel", () => {
    assert.deepEqual(convolve2d(a, m([[1, 10]])).toArray(), [
      [1, 12, 23, 30],
      [4, 45, 56, 60],
    ]);
  });
  test("correlate2d full does not flip the kernel", () => {
    assert.deepEqual(correlate2d(a, m([[1, 10]])).toArray(), [
      [10, 21, 32, 3],
      [40, 54, 65, 6],
    ]);
  });
  test("'same' with an even kernel: convolve keeps the start of 'full', correlate the end", () => {
    assert.deepEqual(convolve2d(a, m([[1, 10]]), "same").toArray(), [
      [1, 12, 23],
      [4, 45, 56],
    ]);
    assert.deepEqual(correlate2d(a, m([[1, 10]]), "same").toArray(), [
      [21, 32, 3],
      [54, 65, 6],
    ]);
  });
  test("'valid' with the larger array second swaps inputs (correlate2d then reverses)", () => {
    const k = m([[1, 10]]);
    assert.deepEqual(convolve2d(k, a, "valid").toArray(), [
      [12, 23],
      [45, 56],
    ]);
    assert.deepEqual(correlate2d(a, k, "valid").toArray(), [
      [21, 32],
      [54, 65],
    ]);
    assert.deepEqual(correlate2d(k, a, "valid").toArray(), [
      [65, 54],
      [32, 21],
    ]);
    const row = m([[1, 2, 3, 4]]);
    assert.deepEqual(convolve2d(k, row, "valid").toArray(), [[12, 23, 34]]);
    assert.deepEqual(convolve2d(row, k, "valid").toArray(), [[12, 23, 34]]);
    assert.deepEqual(correlate2d(row, k, "valid").toArray(), [[21, 32, 43]]);
    assert.deepEqual(correlate2d(k, row, "valid").toArray(), [[43, 32, 21]]);
  });
  test("an infinite kernel entry meets the zero fill and gives NaN, as in SciPy", () => {
    const out = convolve2d(m([[1]]), m([[Infinity, 1]]));
    assert.deepEqual(Array.from(out.data), [Infinity, NaN]);
  });
  test("dtype: float32 only when both inputs are float32", () => {
    const f32 = m([[1, 2]], "float32");
    assert.equal(convolve2d(f32, f32).dtype, "float32");
    assert.equal(correlate2d(f32, m([[1]])).dtype, "float64");
    assert.equal(convolve2d(m([[1]]), f32, "same").dtype, "float64");
  });
  test("float32 inputs are accumulated in float64 and rounded once", () => {
    // 2^24 + 1 + 1 in float32 steps rounds back to 2^24 at each step: SciPy returns 16777216 here.
    const x = m([[16777216, 1, 1]], "float32");
    const out = correlate2d(x, m([[1, 1, 1]], "float32"), "valid");
    assert.equal(out.dtype, "float32");
    assert.equal(out.data[0], 16777218);
  });
});

// ---------------------------------------------------------------------------------------------
// Bad input

describe("bad input", () => {
  const ok = m([[1, 2]]);
  for (const [fn, f] of Object.entries(FNS)) {
    test(`${fn}: non-2-D inputs name the argument and its shape`, () => {
      const v = new NDArray(new Float64Array(3), [3]);
      const t3 = new NDArray(new Float64Array(8), [2, 2, 2]);
      assert.throws(
        () => f(v, ok),
        (e: unknown) => e instanceof RangeError && e.message === `${fn}: a must be a 2-D array, got shape (3,) (1-D)`,
      );
      assert.throws(
        () => f(ok, t3),
        (e: unknown) =>
          e instanceof RangeError && e.message === `${fn}: b must be a 2-D array, got shape (2, 2, 2) (3-D)`,
      );
      const s = new NDArray(new Float64Array(1), []);
      assert.throws(() => f(s, ok), /a must be a 2-D array, got shape \(\) \(0-D\)/);
    });
    test(`${fn}: empty inputs are rejected, naming the argument and its shape`, () => {
      for (const shape of [
        [0, 3],
        [3, 0],
        [0, 0],
      ]) {
        const e0 = new NDArray(new Float64Array(0), shape);
        for (const mode of MODES) {
          for (const [arg, call] of [
            ["a", () => f(e0, ok, mode)],
            ["b", () => f(ok, e0, mode)],
          ] as const) {
            assert.throws(
              call,
              (e: unknown) =>
                e instanceof RangeError &&
                e.message ===
                  `${fn}: ${arg} is empty (shape ${formatShape(shape)}); inputs with a zero-length dimension are not supported`,
            );
          }
        }
      }
    });
    test(`${fn}: invalid mode lists the valid modes and the value given`, () => {
      assert.throws(
        () => f(ok, ok, "circular" as ConvMode),
        (e: unknown) =>
          e instanceof RangeError &&
          e.message === `${fn}: invalid mode 'circular'; acceptable modes are 'full', 'same', 'valid'`,
      );
      assert.throws(
        () => f(ok, ok, 2 as unknown as ConvMode),
        /invalid mode 2; acceptable modes are 'full', 'same', 'valid'/,
      );
      assert.throws(() => f(ok, ok, "FULL" as ConvMode), /invalid mode 'FULL'/);
    });
    test(`${fn}: 'valid' with neither input containing the other names both shapes`, () => {
      const x = m([
        [1, 2, 3],
        [4, 5, 6],
      ]);
      const y = m([[1], [2], [3]]);
      assert.throws(
        () => f(x, y, "valid"),
        (e: unknown) =>
          e instanceof RangeError &&
          e.message ===
            `${fn}: For 'valid' mode, one must be at least as large as the other in every dimension (got a with shape (2, 3) and b with shape (3, 1))`,
      );
      // Other modes accept the same shapes.
      assert.deepEqual(f(x, y, "same").shape, [2, 3]);
      assert.deepEqual(f(x, y, "full").shape, [4, 3]);
    });
    test(`${fn}: non-NDArray arguments are a TypeError`, () => {
      const bad = [[1, 2]] as unknown as NDArray;
      assert.throws(
        () => f(bad, ok),
        (e: unknown) => e instanceof TypeError && e.message.startsWith(`${fn}: a must be an NDArray, got`),
      );
      assert.throws(() => f(ok, null as unknown as NDArray), /b must be an NDArray, got null/);
    });
  }
});

// ---------------------------------------------------------------------------------------------
// Properties

const dim = fc.integer({ min: 1, max: 7 });

/** Integer-valued matrices: every sum below is exact, so identities hold with ===. */
function intMatrix(rows: number, cols: number): fc.Arbitrary<NDArray> {
  return fc
    .array(fc.integer({ min: -9, max: 9 }), { minLength: rows * cols, maxLength: rows * cols })
    .map((v) => new NDArray(Float64Array.from(v), [rows, cols]));
}
const anyIntMatrix = fc.tuple(dim, dim).chain(([r, c]) => intMatrix(r, c));

function floatMatrix(rows: number, cols: number): fc.Arbitrary<NDArray> {
  return fc
    .array(fc.double({ min: -100, max: 100, noNaN: true, noDefaultInfinity: true }), {
      minLength: rows * cols,
      maxLength: rows * cols,
    })
    .map((v) => new NDArray(Float64Array.from(v), [rows, cols]));
}
const anyFloatMatrix = fc.tuple(dim, dim).chain(([r, c]) => floatMatrix(r, c));
const modeArb = fc.constantFrom<ConvMode>("full", "same", "valid");

function validOk(a: NDArray, b: NDArray): boolean {
  const [M, N] = a.shape;
  const [P, Q] = b.shape;
  return (M >= P && N >= Q) || (P >= M && Q >= N);
}

/** Equal shapes and values (−0 and +0 compare equal: the right-hand sides are built with mul/add). */
function assertSame(got: NDArray, want: NDArray, msg: string): void {
  assert.deepEqual(got.shape, want.shape, `${msg}: shape`);
  assert.deepEqual(
    Array.from(got.data, (v) => v + 0),
    Array.from(want.data, (v) => v + 0),
    msg,
  );
}

function assertClose(got: NDArray, want: NDArray, scaleBound: number, msg: string): void {
  assert.deepEqual(got.shape, want.shape, `${msg}: shape`);
  for (let i = 0; i < want.size; i++) {
    const d = Math.abs(got.data[i] - want.data[i]);
    assert.ok(d <= 1e-13 * scaleBound, `${msg}: element ${i}: ${got.data[i]} vs ${want.data[i]}`);
  }
}

/** Σ|a|·Σ|b|: bounds every output magnitude and so the rounding error of every sum. */
function absBound(a: NDArray, b: NDArray): number {
  let sa = 0;
  let sb = 0;
  for (const v of a.data) sa += Math.abs(v);
  for (const v of b.data) sb += Math.abs(v);
  return Math.max(sa * sb, 1);
}

/** Naive full convolution / correlation straight from the definitions. */
function naiveFull(a: NDArray, b: NDArray, flip: boolean): NDArray {
  const [M, N] = a.shape;
  const [P, Q] = b.shape;
  const out = new NDArray(new Float64Array((M + P - 1) * (N + Q - 1)), [M + P - 1, N + Q - 1]);
  for (let i = 0; i < M + P - 1; i++) {
    for (let j = 0; j < N + Q - 1; j++) {
      let s = 0;
      for (let p = 0; p < P; p++) {
        for (let q = 0; q < Q; q++) {
          // convolve: a[i−p, j−q]·b[p, q]; correlate: a[i−(P−1)+p, j−(Q−1)+q]·b[p, q]
          const r = flip ? i - p : i - (P - 1) + p;
          const c = flip ? j - q : j - (Q - 1) + q;
          if (r >= 0 && r < M && c >= 0 && c < N) s += a.get(r, c) * b.get(p, q);
        }
      }
      out.set(s, i, j);
    }
  }
  return out;
}

function slice2d(x: NDArray, r0: number, rows: number, c0: number, cols: number): NDArray {
  const out = new NDArray(new Float64Array(rows * cols), [rows, cols]);
  for (let i = 0; i < rows; i++) for (let j = 0; j < cols; j++) out.set(x.get(r0 + i, c0 + j), i, j);
  return out;
}

describe("properties", () => {
  test("full/same/valid equal the definition, cropped where SciPy crops", () => {
    fc.assert(
      fc.property(anyIntMatrix, anyIntMatrix, (a, b) => {
        const [M, N] = a.shape;
        const [P, Q] = b.shape;
        for (const flip of [true, false]) {
          const f = flip ? convolve2d : correlate2d;
          const full = naiveFull(a, b, flip);
          assertSame(f(a, b, "full"), full, "full");
          // 'same': convolve starts at ⌊(P−1)/2⌋, correlate at ⌊P/2⌋.
          const s0 = flip ? (P - 1) >> 1 : P >> 1;
          const s1 = flip ? (Q - 1) >> 1 : Q >> 1;
          assertSame(f(a, b, "same"), slice2d(full, s0, M, s1, N), "same");
          // 'valid': the positions of complete overlap, whichever input is larger.
          if (validOk(a, b)) {
            const v = f(a, b, "valid");
            assertSame(
              v,
              slice2d(full, Math.min(M, P) - 1, Math.abs(M - P) + 1, Math.min(N, Q) - 1, Math.abs(N - Q) + 1),
              "valid",
            );
          } else {
            assert.throws(() => f(a, b, "valid"), /For 'valid' mode/);
          }
        }
      }),
      { numRuns: 150 },
    );
  });

  // In 'same' mode the identity needs odd kernel dimensions: SciPy centres an even kernel dimension
  // one element differently in the two functions (⌊(P−1)/2⌋ vs ⌊P/2⌋, see the test above and the
  // worked examples), and the test below pins that down.
  const identityHolds = (a: NDArray, b: NDArray, mode: ConvMode): boolean =>
    mode === "full" || (mode === "valid" ? validOk(a, b) : b.shape[0] % 2 === 1 && b.shape[1] % 2 === 1);

  test("convolve2d(a, b, m) == correlate2d(a, rot90(b, 2), m)", () => {
    fc.assert(
      fc.property(anyIntMatrix, anyIntMatrix, modeArb, (a, b, mode) => {
        fc.pre(identityHolds(a, b, mode));
        assertSame(convolve2d(a, b, mode), correlate2d(a, rot90(b, 2), mode), mode);
      }),
      { numRuns: 200 },
    );
    fc.assert(
      fc.property(anyFloatMatrix, anyFloatMatrix, modeArb, (a, b, mode) => {
        fc.pre(identityHolds(a, b, mode));
        assertClose(convolve2d(a, b, mode), correlate2d(a, rot90(b, 2), mode), absBound(a, b), mode);
      }),
    );
  });

  test("'same' with an even kernel dimension: correlate2d(a, rot90(b, 2)) is convolve2d shifted by one", () => {
    fc.assert(
      fc.property(anyIntMatrix, anyIntMatrix, (a, b) => {
        const [M, N] = a.shape;
        const [P, Q] = b.shape;
        const corrFull = correlate2d(a, rot90(b, 2), "full");
        assertSame(convolve2d(a, b, "same"), slice2d(corrFull, (P - 1) >> 1, M, (Q - 1) >> 1, N), "convolve2d");
        assertSame(correlate2d(a, rot90(b, 2), "same"), slice2d(corrFull, P >> 1, M, Q >> 1, N), "correlate2d");
      }),
    );
  });

  test("'full' convolution commutes", () => {
    fc.assert(
      fc.property(anyIntMatrix, anyIntMatrix, (a, b) => {
        assertSame(convolve2d(a, b), convolve2d(b, a), "full");
      }),
    );
    fc.assert(
      fc.property(anyFloatMatrix, anyFloatMatrix, (a, b) => {
        assertClose(convolve2d(a, b), convolve2d(b, a), absBound(a, b), "full");
      }),
    );
  });

  test("correlate2d(a, b, 'full') == rot90(correlate2d(b, a, 'full'), 2)", () => {
    fc.assert(
      fc.property(anyIntMatrix, anyIntMatrix, (a, b) => {
        assertSame(correlate2d(a, b, "full"), rot90(correlate2d(b, a, "full"), 2), "full");
      }),
    );
  });

  test("linear in each argument", () => {
    const pairOfSameShape = fc.tuple(dim, dim).chain(([r, c]) => fc.tuple(intMatrix(r, c), intMatrix(r, c)));
    const coef = fc.integer({ min: -5, max: 5 });
    fc.assert(
      fc.property(
        pairOfSameShape,
        anyIntMatrix,
        coef,
        coef,
        modeArb,
        fc.boolean(),
        ([x, y], k, alpha, beta, mode, first) => {
          const mix = add(mul(x, alpha), mul(y, beta));
          for (const f of [convolve2d, correlate2d]) {
            // first: f(αx+βy, k) = αf(x, k) + βf(y, k); else f(k, αx+βy) = αf(k, x) + βf(k, y).
            const g = (z: NDArray): NDArray => (first ? f(z, k, mode) : f(k, z, mode));
            if (mode === "valid" && !validOk(x, k)) {
              assert.throws(() => g(mix), /For 'valid' mode/);
              continue;
            }
            assertSame(g(mix), add(mul(g(x), alpha), mul(g(y), beta)), `${f.name} ${mode}`);
          }
        },
      ),
    );
  });

  test("float32 in, float32 out, equal to float32 of the float64 computation", () => {
    fc.assert(
      fc.property(
        anyFloatMatrix,
        anyFloatMatrix,
        modeArb,
        fc.constantFrom(convolve2d, correlate2d),
        (a, b, mode, f) => {
          fc.pre(mode !== "valid" || validOk(a, b));
          const a32 = a.astype("float32");
          const b32 = b.astype("float32");
          const out = f(a32, b32, mode);
          assert.equal(out.dtype, "float32");
          const ref = f(a32.astype("float64"), b32.astype("float64"), mode);
          assert.deepEqual(
            Array.from(out.data),
            Array.from(ref.data, (v) => Math.fround(v)),
          );
        },
      ),
    );
  });
});
