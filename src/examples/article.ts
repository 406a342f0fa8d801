// The article's experiment, step for step: "Only Numpy: Implementing Convolutional Neural Network
// using Numpy (Deriving Forward Feed and Back Propagation)". Hold this file next to the article's
// script (test/fixtures/article_script.py): the same network, the same steps in the same order, and
// the article's variable names. Notation and derivations: docs/derivation.md §1.
//
//   layer_1     = convolve2d(X, w1, 'valid')        (2×2, true convolution)
//   layer_1_act = tanh(layer_1)
//   layer_2     = vec(layer_1_act) · w2             (1×4 · 4×1)
//   layer_2_act = σ(layer_2)                        (the article calls σ "log", for logistic)
//   cost        = ½ (layer_2_act − y)²

import { NDArray } from "../nd/ndarray.ts";
import { array, dot, expandDims, mul, reshape, rot90, square, sub, sumAll, transpose, map } from "../nd/ops.ts";
import { fdlibmExp as exp, fdlibmTanh } from "../nd/fdlibm.ts";
import { RandomState } from "../nd/random.ts";
import { convolve2d } from "../nd/signal.ts";
import { formatArray, pyRepr } from "../nd/format.ts";

export interface ArticleOptions {
  seed: number;
  epochs: number;
  lr: number;
}

export const ARTICLE_DEFAULTS: ArticleOptions = { seed: 598765, epochs: 1000, lr: 0.7 };

export interface ArticleResult {
  w1: number[][];
  w2: number[][];
  costBefore: number;
  costAfter: number;
  startOut: number[];
  finalOut: number[];
}

/** A 3×3 image of 0/1 rows, top to bottom: each row of the article's images is all 0 or all 1. */
function imageOfRows(top: number, middle: number, bottom: number): NDArray {
  return array([top, middle, bottom].map((v) => [v, v, v]));
}

/** The four 3×3 images and their targets, exactly as in the article: dark, top row lit, lower two rows lit, all lit. */
export const X: NDArray[] = [imageOfRows(0, 0, 0), imageOfRows(1, 0, 0), imageOfRows(0, 1, 1), imageOfRows(1, 1, 1)];
export const Y: NDArray = array([[0.53], [0.77], [0.88], [1.1]]);

// exp and tanh are the fdlibm algorithms in plain arithmetic (src/nd/fdlibm.ts), so the experiment
// gives the same bits in Node and in any browser (engines' Math.exp/Math.tanh differ in the last bit).
const tanh = (x: NDArray): NDArray => map(x, fdlibmTanh);
const tanhPrime = (x: NDArray): NDArray => map(x, (v) => 1 - fdlibmTanh(v) ** 2); // d tanh(x)/dx = 1 − tanh²(x)
const logistic = (x: NDArray): NDArray => map(x, (v) => 1 / (1 + exp(-1 * v))); // σ(x) = 1 / (1 + e^(−x))
const logisticPrime = (x: NDArray): NDArray =>
  map(x, (v) => {
    // dσ/dx = σ(x)(1 − σ(x))
    const s = 1 / (1 + exp(-1 * v));
    return s * (1 - s);
  });

/** 0. Declare weights: np.random.seed(seed); w1 = randn(2,2)*4; w2 = randn(4,1)*4 (w1 drawn first). */
export function articleInitialWeights(seed: number): { w1: NDArray; w2: NDArray } {
  const rng = new RandomState(seed);
  const w1 = mul(rng.randn(2, 2), 4);
  const w2 = mul(rng.randn(4, 1), 4);
  return { w1, w2 };
}

/** Every intermediate of the forward pass for one image (derivation.md eqs. 1–4). */
export interface ForwardTrace {
  layer_1: NDArray; //         z1 = convolve2d(X, w1, 'valid'), 2×2
  layer_1_act: NDArray; //     a1 = tanh(z1), 2×2
  layer_1_act_vec: NDArray; // vec(a1), 1×4
  layer_2: NDArray; //         z2 = vec(a1)·w2, 1×1
  layer_2_act: NDArray; //     o = σ(z2), 1×1
  cost: number; //             ½(o − y)²
}

/** Forward pass for one image: the article's four lines and its cost, returning every intermediate. */
export function articleForward(x: NDArray, y: number, w1: NDArray, w2: NDArray): ForwardTrace {
  const layer_1 = convolve2d(x, w1, "valid");
  const layer_1_act = tanh(layer_1);
  const layer_1_act_vec = expandDims(reshape(layer_1_act, -1), 0);
  const layer_2 = dot(layer_1_act_vec, w2);
  const layer_2_act = logistic(layer_2);
  const cost = sumAll(square(sub(layer_2_act, y))) * 0.5;
  return { layer_1, layer_1_act, layer_1_act_vec, layer_2, layer_2_act, cost };
}

/** The forward pass plus every term of the backward pass (derivation.md eqs. 5–8), at the given weights. */
export interface StepTrace extends ForwardTrace {
  grad_2_part_1: NDArray; //         ∂L/∂o = o − y
  grad_2_part_2: NDArray; //         ∂o/∂z2 = σ'(z2)
  grad_2_part_3: NDArray; //         ∂z2/∂w2 = vec(a1)
  grad_2: NDArray; //                ∂L/∂w2, 4×1
  grad_1_part_1: NDArray; //         ∂L/∂a1 = δ2·w2ᵀ, 1×4
  grad_1_part_2: NDArray; //         ∂a1/∂z1 = tanh'(z1), 2×2
  grad_1_part_3: NDArray; //         X
  grad_1_part_1_reshape: NDArray; // ∂L/∂a1 as 2×2
  grad_1_temp_1: NDArray; //         G = δ1 = ∂L/∂z1, 2×2
  grad_1_conv: NDArray; //           convolve2d(X, rot180(G), 'valid'), before the outer rotation
  grad_1: NDArray; //                ∂L/∂w1 = rot180(convolve2d(X, rot180(G))), 2×2
}

/** Forward and backward for one image: the body of the article's inner loop, minus the update. */
export function articleGradients(x: NDArray, y: number, w1: NDArray, w2: NDArray): StepTrace {
  const f = articleForward(x, y, w1, w2);
  const { layer_1, layer_1_act_vec, layer_2, layer_2_act } = f;

  // ∂cost/∂w2 = vec(a1)ᵀ · [(o − y) ⊙ σ'(z2)]                         (derivation.md eq. 5)
  const grad_2_part_1 = sub(layer_2_act, y); //        ∂cost/∂o  = o − y
  const grad_2_part_2 = logisticPrime(layer_2); //     ∂o/∂z2    = σ'(z2)
  const grad_2_part_3 = layer_1_act_vec; //            ∂z2/∂w2   = vec(a1)
  const grad_2 = dot(transpose(grad_2_part_3), mul(grad_2_part_1, grad_2_part_2));

  // ∂cost/∂w1: back through w2 and tanh to δ1 = (δ2 · w2ᵀ) ⊙ tanh'(z1), then a convolution.
  const grad_1_part_1 = dot(mul(grad_2_part_1, grad_2_part_2), transpose(w2)); // ∂cost/∂a1 = δ2 · w2ᵀ
  const grad_1_part_2 = tanhPrime(layer_1); //                                   ∂a1/∂z1  = tanh'(z1)
  const grad_1_part_3 = x; //                                                    ∂z1/∂w1 comes from X

  const grad_1_part_1_reshape = reshape(grad_1_part_1, [2, 2]);
  const grad_1_temp_1 = mul(grad_1_part_1_reshape, grad_1_part_2); //            δ1
  // ∂cost/∂w1 = rot180(convolve2d(X, rot180(δ1), 'valid'))                    (derivation.md eq. 8)
  const grad_1_conv = convolve2d(grad_1_part_3, rot90(grad_1_temp_1, 2), "valid");
  const grad_1 = rot90(grad_1_conv, 2);

  return {
    ...f,
    grad_2_part_1,
    grad_2_part_2,
    grad_2_part_3,
    grad_2,
    grad_1_part_1,
    grad_1_part_2,
    grad_1_part_3,
    grad_1_part_1_reshape,
    grad_1_temp_1,
    grad_1_conv,
    grad_1,
  };
}

/**
 * One SGD step on one image: w2 ← w2 − lr·∂L/∂w2, then w1 ← w1 − lr·∂L/∂w1 (both at the old weights).
 * runArticle loops over this; the playground's page 1 calls it one sample at a time.
 */
export function articleStep(
  x: NDArray,
  y: number,
  w1: NDArray,
  w2: NDArray,
  lr: number,
): { w1: NDArray; w2: NDArray; trace: StepTrace } {
  const trace = articleGradients(x, y, w1, w2);
  return { w1: sub(w1, mul(trace.grad_1, lr)), w2: sub(w2, mul(trace.grad_2, lr)), trace };
}

/** Total cost Σᵢ ½(oᵢ − yᵢ)² and the outputs oᵢ, summed in the article's order. */
export function articleEvaluate(
  xs: readonly NDArray[],
  ys: readonly number[],
  w1: NDArray,
  w2: NDArray,
): { cost: number; out: number[] } {
  let total = 0;
  const out: number[] = [];
  for (let i = 0; i < xs.length; i++) {
    const { layer_2_act, cost } = articleForward(xs[i], ys[i], w1, w2);
    total = total + cost;
    out.push(layer_2_act.data[0]);
  }
  return { cost: total, out };
}

/** Run the article's experiment: seed, draw weights, measure, train with per-sample SGD, measure. */
export function runArticle(opts: ArticleOptions = ARTICLE_DEFAULTS): ArticleResult {
  let { w1, w2 } = articleInitialWeights(opts.seed);
  const ys = Array.from(Y.data);
  const before = articleEvaluate(X, ys, w1, w2);
  for (let iter = 0; iter < opts.epochs; iter++) {
    for (let i = 0; i < X.length; i++) ({ w1, w2 } = articleStep(X[i], ys[i], w1, w2, opts.lr));
  }
  const after = articleEvaluate(X, ys, w1, w2);
  return {
    w1: w1.toArray() as number[][],
    w2: w2.toArray() as number[][],
    costBefore: before.cost,
    costAfter: after.cost,
    startOut: before.out,
    finalOut: after.out,
  };
}

/** The article's printed report, formatted as NumPy prints it (article_output.txt). */
export function articleReport(r: ArticleResult): string {
  const fmt = (nested: number[][] | number[]) => formatArray(array(nested));
  return [
    "",
    `W1 : ${fmt(r.w1)} `,
    "",
    `w2 : ${fmt(r.w2)}`,
    "----------------",
    `Cost before Training:  ${pyRepr(r.costBefore)}`,
    `Cost after Training:  ${pyRepr(r.costAfter)}`,
    "----------------",
    `Start Out put :  ${fmt(r.startOut)}`,
    `Final Out put :  ${fmt(r.finalOut)}`,
    `Ground Truth  :  ${formatArray(transpose(Y))}`,
  ].join("\n");
}
