// docs/derivation.md §1, equation by equation, against finite differences (the method of §3).
//
// Part 1, the convolution gradients (8), (9), (11), (12): random float64 X, K and upstream gradient G,
// and the scalar L = Σ G ⊙ Y. L is linear in each single coordinate of X or of K, so its central
// difference has no truncation error at any step h: it is exact up to rounding, and the formulas must
// match it to 1e-8 relative. Rounding grows as 1/h, so the step is not tiny: h = 1e-6 leaves up to
// ≈ 4e-8 relative error on the smaller derivatives, h = 1e-3 ≈ 5e-11.
//
// Part 2, the article's network (1)–(4): its gradients grad_2 (5) and grad_1 (8, through (6) and (7)),
// written here from the formulas, against Richardson-extrapolated central differences of its cost, on
// each of the four images, at the article's initial weights (seed 598765) and at random weights.

import { describe, test } from "node:test";
import assert from "node:assert/strict";

import { NDArray } from "../src/nd/ndarray.ts";
import { allclose, array, dot, expandDims, map, mul, reshape, rot90, tanh, transpose } from "../src/nd/ops.ts";
import { RandomState } from "../src/nd/random.ts";
import { convolve2d, correlate2d, type ConvMode } from "../src/nd/signal.ts";

const rot180 = (a: NDArray): NDArray => rot90(a, 2);

/**
 * Largest |a − n| / max(|a|, |n|, floor) over all elements: gradcheck's relative error (§3), whose
 * floor is 1e-8; below `floor` a derivative is compared in absolute terms.
 */
function maxRelError(analytic: NDArray, numeric: NDArray, floor = 1e-8): number {
  assert.deepEqual(analytic.shape, numeric.shape, "analytic and numeric gradients differ in shape");
  let worst = 0;
  for (let i = 0; i < analytic.size; i++) {
    const a = analytic.data[i];
    const n = numeric.data[i];
    const e = Math.abs(a - n) / Math.max(Math.abs(a), Math.abs(n), floor);
    if (!(e <= worst)) worst = Number.isNaN(e) ? Infinity : e;
  }
  return worst;
}

// ---------------------------------------------------------------------------------------------
// Part 1: Y = convolve2d(X, K, 'valid') and Y = correlate2d(X, K, 'valid')

const X_SHAPES: [number, number][] = [
  [3, 3],
  [5, 4],
  [6, 6],
];
const K_SHAPES: [number, number][] = [
  [2, 2],
  [3, 2],
  [3, 3],
];
const STEP = 1e-3; // exact for a function linear in the coordinate; see the header
const BILINEAR_TOLERANCE = 1e-8;

interface Case {
  label: string;
  X: NDArray;
  K: NDArray;
  /** Upstream gradient ∂L/∂Y, Y's shape (M − P + 1) × (N − Q + 1). */
  G: NDArray;
}

function cases(seed: number): Case[] {
  const rng = new RandomState(seed);
  const out: Case[] = [];
  for (const [M, N] of X_SHAPES) {
    for (const [P, Q] of K_SHAPES) {
      out.push({
        label: `X ${M}×${N}, K ${P}×${Q}`,
        X: rng.randn(M, N),
        K: rng.randn(P, Q),
        G: rng.randn(M - P + 1, N - Q + 1),
      });
    }
  }
  return out;
}

/**
 * ∂L/∂u for L = Σ_j G_j · Y_j(u) by central differences: Σ_j G_j (Y_j(u+h) − Y_j(u−h)) / (2h), output by
 * output as gradcheck does, dividing by the step actually taken ((u+h) − (u−h) in floating point).
 */
function numericGrad(u: NDArray, G: NDArray, forward: () => NDArray): NDArray {
  const grad = new NDArray(new Float64Array(u.size), u.shape);
  for (let i = 0; i < u.size; i++) {
    const u0 = u.data[i];
    const up = u0 + STEP;
    const um = u0 - STEP;
    u.data[i] = up;
    const yp = forward().data;
    u.data[i] = um;
    const ym = forward().data;
    u.data[i] = u0;
    let s = 0;
    for (let j = 0; j < G.size; j++) s += G.data[j] * (yp[j] - ym[j]);
    grad.data[i] = s / (up - um);
  }
  return grad;
}

/** Check `formula` (the analytic gradient w.r.t. K or X) against finite differences on every case. */
function checkAll(forward: (X: NDArray, K: NDArray) => NDArray, wrt: "K" | "X", formula: (c: Case) => NDArray): void {
  for (const c of cases(wrt === "K" ? 1 : 2)) {
    const numeric = numericGrad(c[wrt], c.G, () => forward(c.X, c.K));
    const e = maxRelError(formula(c), numeric);
    assert.ok(e <= BILINEAR_TOLERANCE, `${c.label}: max relative error ${e.toExponential(2)} > ${BILINEAR_TOLERANCE}`);
  }
}

const convolution = (X: NDArray, K: NDArray): NDArray => convolve2d(X, K, "valid");
const correlation = (X: NDArray, K: NDArray): NDArray => correlate2d(X, K, "valid");

describe("derivation.md (C4): convolve2d(X, K, m) = correlate2d(X, rot180(K), m)", () => {
  for (const mode of ["valid", "full"] as ConvMode[]) {
    test(`mode '${mode}'`, () => {
      for (const c of cases(3)) {
        assert.ok(allclose(convolve2d(c.X, c.K, mode), correlate2d(c.X, rot180(c.K), mode), 1e-14, 1e-14), c.label);
        assert.ok(allclose(correlate2d(c.X, c.K, mode), convolve2d(c.X, rot180(c.K), mode), 1e-14, 1e-14), c.label);
      }
    });
  }
});

describe("derivation.md §1, Y = convolve2d(X, K, 'valid') (the article's layer), L = Σ G ⊙ Y", () => {
  test("eq. 8: ∂L/∂K = rot180(convolve2d(X, rot180(G), 'valid'))", () => {
    checkAll(convolution, "K", ({ X, G }) => rot180(convolve2d(X, rot180(G), "valid")));
  });

  test("eq. 8, step 2: ∂L/∂K = rot180(correlate2d(X, G, 'valid'))", () => {
    checkAll(convolution, "K", ({ X, G }) => rot180(correlate2d(X, G, "valid")));
  });

  test("eq. 8, equivalent form: ∂L/∂K = convolve2d(rot180(X), G, 'valid')", () => {
    checkAll(convolution, "K", ({ X, G }) => convolve2d(rot180(X), G, "valid"));
  });

  test("eq. 9: ∂L/∂X = correlate2d(G, K, 'full')", () => {
    checkAll(convolution, "X", ({ K, G }) => correlate2d(G, K, "full"));
  });
});

describe("derivation.md §1, Y = correlate2d(X, K, 'valid') (Conv2D's cross-correlation), L = Σ G ⊙ Y", () => {
  test("eq. 11: ∂L/∂K = correlate2d(X, G, 'valid')", () => {
    checkAll(correlation, "K", ({ X, G }) => correlate2d(X, G, "valid"));
  });

  test("eq. 12: ∂L/∂X = convolve2d(G, K, 'full')", () => {
    checkAll(correlation, "X", ({ K, G }) => convolve2d(G, K, "full"));
  });
});

// ---------------------------------------------------------------------------------------------
// Part 2: the article's network, z1 = convolve2d(X, w1) → tanh → vec · w2 → σ, L = ½(o − y)²

/** The article's four images and targets (test/fixtures/article_script.py). */
const IMAGES: NDArray[] = [
  array([
    [0, 0, 0],
    [0, 0, 0],
    [0, 0, 0],
  ]),
  array([
    [1, 1, 1],
    [0, 0, 0],
    [0, 0, 0],
  ]),
  array([
    [0, 0, 0],
    [1, 1, 1],
    [1, 1, 1],
  ]),
  array([
    [1, 1, 1],
    [1, 1, 1],
    [1, 1, 1],
  ]),
];
const TARGETS = [0.53, 0.77, 0.88, 1.1];

const sigmoid = (v: number): number => 1 / (1 + Math.exp(-v));

/** Forward (1)–(3), in the script's names. */
function articleForward(x: NDArray, w1: NDArray, w2: NDArray) {
  const layer_1 = convolve2d(x, w1, "valid"); //                     (1) z1
  const layer_1_act = tanh(layer_1); //                              (2) a1
  const layer_1_act_vec = expandDims(reshape(layer_1_act, -1), 0); //     vec(a1), 1×4
  const layer_2 = dot(layer_1_act_vec, w2); //                       (3) z2, 1×1
  const layer_2_act = map(layer_2, sigmoid); //                          o
  return { layer_1, layer_1_act_vec, layer_2, layer_2_act };
}

/** Cost (4): L = ½(o − y)². */
function articleCost(x: NDArray, y: number, w1: NDArray, w2: NDArray): number {
  const o = articleForward(x, w1, w2).layer_2_act.data[0];
  return 0.5 * (o - y) ** 2;
}

/** Gradients by the formulas of §1. `outerRot = false` drops eq. 8's outer rot180 (to show it matters). */
function articleGrads(x: NDArray, y: number, w1: NDArray, w2: NDArray, outerRot = true) {
  const { layer_1, layer_1_act_vec, layer_2 } = articleForward(x, w1, w2);
  const o = sigmoid(layer_2.data[0]);
  const delta2 = array([[(o - y) * o * (1 - o)]]); //                    δ2 = (o − y)·σ'(z2), 1×1
  const grad_2 = dot(transpose(layer_1_act_vec), delta2); //             (5) vec(a1)ᵀ · δ2
  const dA1 = dot(delta2, transpose(w2)); //                             (6) δ2 · w2ᵀ, 1×4
  const G = mul(
    reshape(dA1, [2, 2]),
    map(layer_1, (v) => 1 - Math.tanh(v) ** 2),
  ); // (7) δ1
  const inner = convolve2d(x, rot180(G), "valid");
  const grad_1 = outerRot ? rot180(inner) : inner; //                  (8)
  return { grad_1, grad_2 };
}

// The cost is smooth but not polynomial, so the differences are Richardson-extrapolated (§3):
// D(h) = (L(u+h) − L(u−h))/2h, n = (4·D(h/2) − D(h))/3, truncation O(h⁴). Rounding leaves ≈ ε·L/h
// ≈ 1e-13 of absolute noise (measured: ≤ 3e-13 at h = 1e-3), so a derivative can be resolved only down
// to about that size, and at the article's weights tanh is saturated on some images: some derivatives
// of w1 are 1e-11 to 1e-17. So derivatives above FLOOR are held to 1e-7 relative and smaller ones to
// 1e-7·FLOOR = 1e-12 absolute (measured worst: 5.5e-9 in these units).
const ARTICLE_STEP = 1e-3;
const ARTICLE_TOLERANCE = 1e-7;
const FLOOR = 1e-5;

function articleNumericGrad(w: NDArray, cost: () => number): NDArray {
  const grad = new NDArray(new Float64Array(w.size), w.shape);
  const D = (i: number, h: number): number => {
    const u0 = w.data[i];
    const up = u0 + h;
    const um = u0 - h;
    w.data[i] = up;
    const lp = cost();
    w.data[i] = um;
    const lm = cost();
    w.data[i] = u0;
    return (lp - lm) / (up - um);
  };
  for (let i = 0; i < w.size; i++) {
    const d1 = D(i, ARTICLE_STEP);
    const d2 = D(i, ARTICLE_STEP / 2);
    grad.data[i] = (4 * d2 - d1) / 3;
  }
  return grad;
}

/** The article's initial weights: np.random.seed(598765); w1 = randn(2,2)*4; w2 = randn(4,1)*4. */
function articleWeights(): { w1: NDArray; w2: NDArray } {
  const rng = new RandomState(598765);
  const w1 = mul(rng.randn(2, 2), 4);
  const w2 = mul(rng.randn(4, 1), 4);
  // NumPy's values, as it prints them (8 decimals), to be sure these are the weights we mean.
  assert.ok(
    allclose(
      w1,
      array([
        [3.63182094, 2.26243332],
        [6.67289679, 4.48301623],
      ]),
      0,
      1e-8,
    ),
    "w1 is not NumPy's",
  );
  assert.ok(
    allclose(w2, array([[-4.10103441], [-1.53480113], [-4.79469581], [3.28804975]]), 0, 1e-8),
    "w2 is not NumPy's",
  );
  return { w1, w2 };
}

/** Random weights at scale 1 (tanh mostly unsaturated) and at the article's scale 4. */
function randomWeights(seed: number, scale: number): { w1: NDArray; w2: NDArray } {
  const rng = new RandomState(seed);
  return { w1: mul(rng.randn(2, 2), scale), w2: mul(rng.randn(4, 1), scale) };
}

const WEIGHT_SETS: { label: string; make: () => { w1: NDArray; w2: NDArray } }[] = [
  { label: "the article's initial weights (seed 598765)", make: articleWeights },
  { label: "random weights N(0, 1), seed 1", make: () => randomWeights(1, 1) },
  { label: "random weights N(0, 1), seed 2", make: () => randomWeights(2, 1) },
  { label: "random weights 4·N(0, 1), seed 3", make: () => randomWeights(3, 4) },
];

describe("derivation.md §1, the article's network: eqs. (5) and (8) against finite differences of the cost (4)", () => {
  for (const { label, make } of WEIGHT_SETS) {
    for (const [which, eq] of [
      ["grad_2", "eq. 5: ∂L/∂w2 = vec(a1)ᵀ·δ2"],
      ["grad_1", "eq. 8 (via 6, 7): ∂L/∂w1 = rot180(convolve2d(X, rot180(δ1)))"],
    ] as const) {
      test(`${eq} (${which}), each image, at ${label}`, () => {
        const { w1, w2 } = make();
        for (let k = 0; k < IMAGES.length; k++) {
          const x = IMAGES[k];
          const y = TARGETS[k];
          const analytic = articleGrads(x, y, w1, w2)[which];
          const w = which === "grad_2" ? w2 : w1;
          const numeric = articleNumericGrad(w, () => articleCost(x, y, w1, w2));
          const e = maxRelError(analytic, numeric, FLOOR);
          assert.ok(
            e <= ARTICLE_TOLERANCE,
            `image ${k + 1}: ${which} max relative error ${e.toExponential(2)} > ${ARTICLE_TOLERANCE}`,
          );
        }
      });
    }
  }

  test("eq. 8 needs its outer rot180: without it grad_1 is wrong on the asymmetric images x2 and x3", () => {
    const { w1, w2 } = randomWeights(1, 1);
    for (const k of [1, 2]) {
      const x = IMAGES[k];
      const y = TARGETS[k];
      const numeric = articleNumericGrad(w1, () => articleCost(x, y, w1, w2));
      assert.ok(maxRelError(articleGrads(x, y, w1, w2).grad_1, numeric, FLOOR) <= ARTICLE_TOLERANCE);
      assert.ok(maxRelError(articleGrads(x, y, w1, w2, false).grad_1, numeric, FLOOR) > 0.5, `image ${k + 1}`);
    }
  });
});
