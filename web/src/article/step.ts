// The article's training step, one sample at a time, for the page. src/examples/article.ts runs the
// whole experiment in one call; the page needs to stop after any sample and show every intermediate.
// So this file repeats the body of runArticle's inner loop — the same handprop ops, in the same order,
// with the same variable names — as a function of (x, y, w1, w2). Identical ops on identical inputs
// give identical bits: test/e2e/article-step.test.ts checks that looping step() reproduces runArticle
// (and so `handprop seed --json`) exactly. Notation and equation numbers: docs/derivation.md §1.
//
// One substitution: Math.exp and Math.tanh are replaced by fdlibm.ts's ports of the functions Node's V8
// uses. They return Node's bits in Node, and the same bits in a browser whose own Math.exp/Math.tanh
// differ in the last place (Chromium's do), so the page shows exactly what the CLI prints.

import {
  dot, expandDims, map, mul, reshape, rot90, square, sub, sumAll, transpose, RandomState, convolve2d, fdlibmExp as exp, fdlibmTanh,
} from "handprop";
import type { NDArray } from "handprop";

export { ARTICLE_DEFAULTS, ARTICLE_X, ARTICLE_Y } from "handprop";

// The same helpers as article.ts (and the article's tanh, d_tanh, log, d_log).
const tanh = (x: NDArray): NDArray => map(x, fdlibmTanh);
const tanhPrime = (x: NDArray): NDArray => map(x, (v) => 1 - fdlibmTanh(v) ** 2);
const logistic = (x: NDArray): NDArray => map(x, (v) => 1 / (1 + exp(-1 * v)));
const logisticPrime = (x: NDArray): NDArray => map(x, (v) => {
  const s = 1 / (1 + exp(-1 * v));
  return s * (1 - s);
});

/** 0. Declare weights: np.random.seed(seed); w1 = randn(2,2)*4; w2 = randn(4,1)*4 (w1 drawn first). */
export function initialWeights(seed: number): { w1: NDArray; w2: NDArray } {
  const rng = new RandomState(seed);
  const w1 = mul(rng.randn(2, 2), 4);
  const w2 = mul(rng.randn(4, 1), 4);
  return { w1, w2 };
}

/** Every intermediate of the forward pass for one image (eqs. 1–4). */
export interface ForwardTrace {
  layer_1: NDArray; //         z1 = convolve2d(X, w1, 'valid'), 2×2
  layer_1_act: NDArray; //     a1 = tanh(z1), 2×2
  layer_1_act_vec: NDArray; // vec(a1), 1×4
  layer_2: NDArray; //         z2 = vec(a1)·w2, 1×1
  layer_2_act: NDArray; //     o = σ(z2), 1×1
  cost: number; //             ½(o − y)²
}

export function forward(x: NDArray, y: number, w1: NDArray, w2: NDArray): ForwardTrace {
  const layer_1 = convolve2d(x, w1, "valid");
  const layer_1_act = tanh(layer_1);
  const layer_1_act_vec = expandDims(reshape(layer_1_act, -1), 0);
  const layer_2 = dot(layer_1_act_vec, w2);
  const layer_2_act = logistic(layer_2);
  const cost = sumAll(square(sub(layer_2_act, y))) * 0.5;
  return { layer_1, layer_1_act, layer_1_act_vec, layer_2, layer_2_act, cost };
}

/** The forward pass plus every term of the backward pass (eqs. 5–8), at the given weights. */
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

/** Forward and backward for one image: the body of runArticle's inner loop, minus the update. */
export function gradients(x: NDArray, y: number, w1: NDArray, w2: NDArray): StepTrace {
  const f = forward(x, y, w1, w2);
  const { layer_1, layer_1_act_vec, layer_2, layer_2_act } = f;

  const grad_2_part_1 = sub(layer_2_act, y);
  const grad_2_part_2 = logisticPrime(layer_2);
  const grad_2_part_3 = layer_1_act_vec;
  const grad_2 = dot(transpose(grad_2_part_3), mul(grad_2_part_1, grad_2_part_2));

  const grad_1_part_1 = dot(mul(grad_2_part_1, grad_2_part_2), transpose(w2));
  const grad_1_part_2 = tanhPrime(layer_1);
  const grad_1_part_3 = x;

  const grad_1_part_1_reshape = reshape(grad_1_part_1, [2, 2]);
  const grad_1_temp_1 = mul(grad_1_part_1_reshape, grad_1_part_2);
  const grad_1_conv = convolve2d(grad_1_part_3, rot90(grad_1_temp_1, 2), "valid");
  const grad_1 = rot90(grad_1_conv, 2);

  return {
    ...f, grad_2_part_1, grad_2_part_2, grad_2_part_3, grad_2,
    grad_1_part_1, grad_1_part_2, grad_1_part_3, grad_1_part_1_reshape, grad_1_temp_1, grad_1_conv, grad_1,
  };
}

/** One SGD step on one image: w2 ← w2 − lr·∂L/∂w2, then w1 ← w1 − lr·∂L/∂w1 (both at the old weights). */
export function step(x: NDArray, y: number, w1: NDArray, w2: NDArray, lr: number): { w1: NDArray; w2: NDArray; trace: StepTrace } {
  const trace = gradients(x, y, w1, w2);
  return { w1: sub(w1, mul(trace.grad_1, lr)), w2: sub(w2, mul(trace.grad_2, lr)), trace };
}

/** Total cost Σᵢ ½(oᵢ − yᵢ)² and the outputs oᵢ, as article.ts's evaluate (summed in the same order). */
export function evaluate(xs: readonly NDArray[], ys: readonly number[], w1: NDArray, w2: NDArray): { cost: number; out: number[] } {
  let total = 0;
  const out: number[] = [];
  for (let i = 0; i < xs.length; i++) {
    const { layer_2_act, cost } = forward(xs[i], ys[i], w1, w2);
    total = total + cost;
    out.push(layer_2_act.data[0]);
  }
  return { cost: total, out };
}
