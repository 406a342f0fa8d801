// The article's experiment as straight-line scalar code: the same arithmetic as article.ts (and so
// as NumPy/SciPy), in the same order, with no arrays allocated per step. Where the article recomputes
// a value (tanh(z1) in d_tanh, σ(z2) in d_log) the cached one is reused: same function, same input,
// same bits. It exists to show how fast
// the article's 4,000 SGD steps can run in JavaScript (bench/), and test/article.test.ts checks it
// gives bit-identical results to the step-by-step version.
//
// Unrolled for the fixed shapes: X 3×3, w1 2×2, layer_1 2×2, w2 4×1. Index names follow article.ts.

import { RandomState } from "../src/nd/random.ts";
import { fdlibmExp as exp, fdlibmTanh as tanh } from "../src/nd/fdlibm.ts";
import { ARTICLE_DEFAULTS, X, Y, type ArticleOptions, type ArticleResult } from "../src/examples/article.ts";

const images: Float64Array[] = X.map((x) => Float64Array.from(x.data));
const targets: Float64Array = Float64Array.from(Y.data);

/**
 * convolve2d(x, k, 'valid') for a 3×3 x and 2×2 k, summed in SciPy's order (kernel rows in order,
 * the flipped image walked backwards): out[m,n] = k00·x[m+1,n+1] + k01·x[m+1,n] + k10·x[m,n+1] + k11·x[m,n].
 */
function convolveValid(x: Float64Array, k0: number, k1: number, k2: number, k3: number, out: Float64Array): void {
  for (let m = 0; m < 2; m++) {
    for (let n = 0; n < 2; n++) {
      let s = 0;
      s += k0 * x[(m + 1) * 3 + n + 1];
      s += k1 * x[(m + 1) * 3 + n];
      s += k2 * x[m * 3 + n + 1];
      s += k3 * x[m * 3 + n];
      out[m * 2 + n] = s;
    }
  }
}

export function runArticleFast(opts: ArticleOptions = ARTICLE_DEFAULTS): ArticleResult {
  const rng = new RandomState(opts.seed);
  const w1 = rng.randn(2, 2).data.map((v) => v * 4);
  const w2 = rng.randn(4, 1).data.map((v) => v * 4);
  const lr = opts.lr;
  const layer_1 = new Float64Array(4);
  const a1 = new Float64Array(4); // layer_1_act = layer_1_act_vec
  const G = new Float64Array(4); // grad_1_temp_1 = δ1
  const grad_1 = new Float64Array(4);
  const grad_2 = new Float64Array(4);

  // Forward for image i; returns layer_2 (z2) and leaves layer_1, a1 filled.
  const forward = (i: number): number => {
    convolveValid(images[i], w1[0], w1[1], w1[2], w1[3], layer_1);
    let z2 = 0;
    for (let k = 0; k < 4; k++) {
      a1[k] = tanh(layer_1[k]);
      z2 += a1[k] * w2[k];
    }
    return z2;
  };
  const evaluate = () => {
    let cost = 0;
    const out: number[] = [];
    for (let i = 0; i < 4; i++) {
      const o = 1 / (1 + exp(-1 * forward(i)));
      const d = o - targets[i];
      cost = cost + d * d * 0.5;
      out.push(o);
    }
    return { cost, out };
  };

  const before = evaluate();
  for (let iter = 0; iter < opts.epochs; iter++) {
    for (let i = 0; i < 4; i++) {
      const layer_2 = forward(i);
      const o = 1 / (1 + exp(-1 * layer_2));
      const grad_2_part_1 = o - targets[i]; //                          ∂L/∂o = o − y
      const grad_2_part_2 = o * (1 - o); //                              ∂o/∂z2 = σ(z2)(1 − σ(z2)), σ(z2) = o
      const delta2 = grad_2_part_1 * grad_2_part_2; //                   δ2
      for (let k = 0; k < 4; k++) grad_2[k] = a1[k] * delta2; //        ∂L/∂w2 = a1ᵀ·δ2   (eq. 5)
      for (let k = 0; k < 4; k++) {
        // δ1 = (δ2·w2ᵀ) ⊙ tanh'(z1)                                    (eq. 7)
        G[k] = delta2 * w2[k] * (1 - a1[k] ** 2); //                      tanh'(z1) = 1 − tanh²(z1), tanh(z1) = a1
      }
      // ∂L/∂w1 = rot180(convolve2d(X, rot180(δ1), 'valid'))             (eq. 8)
      convolveValid(images[i], G[3], G[2], G[1], G[0], grad_1);
      for (let k = 0; k < 4; k++) w2[k] = w2[k] - grad_2[k] * lr;
      for (let k = 0; k < 4; k++) w1[k] = w1[k] - grad_1[3 - k] * lr; // rot180 of a 2×2 reverses its flat order
    }
  }
  const after = evaluate();
  return {
    w1: [
      [w1[0], w1[1]],
      [w1[2], w1[3]],
    ],
    w2: Array.from(w2, (v) => [v]),
    costBefore: before.cost,
    costAfter: after.cost,
    startOut: before.out,
    finalOut: after.out,
  };
}
