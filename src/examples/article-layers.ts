// The article's network rebuilt from handprop's layers, to show the library and the article's
// step-by-step script agree number for number (test/article.test.ts).
//
//   Conv2D(1→1, 2×2, no bias) → Tanh → Flatten → Dense(4→1, no bias) → Sigmoid,   ½-MSE, SGD, batch 1
//
// One translation is needed: the article convolves (scipy.signal.convolve2d flips the kernel) while
// Conv2D cross-correlates, as every framework does. convolve2d(X, w1) = correlate2d(X, rot180(w1)),
// so the layer's kernel is rot180(w1), and the trained w1 is read back as rot180(kernel)
// (derivation.md §0 and §1).

import { NDArray } from "../nd/ndarray.ts";
import { mul, rot90 } from "../nd/ops.ts";
import { RandomState } from "../nd/random.ts";
import { Conv2D } from "../nn/conv.ts";
import { Dense } from "../nn/dense.ts";
import { Flatten } from "../nn/flatten.ts";
import { Sigmoid, Tanh } from "../nn/activations.ts";
import { MSE } from "../nn/losses.ts";
import { SGD } from "../nn/optim.ts";
import { Sequential } from "../nn/sequential.ts";
import { ARTICLE_DEFAULTS, X, Y, type ArticleOptions, type ArticleResult } from "./article.ts";

/** The article's network with the given weights (w1 2×2 as the article convolves with it, w2 4×1). */
export function articleModel(w1: NDArray, w2: NDArray): Sequential {
  const conv = new Conv2D({ inChannels: 1, outChannels: 1, kernelSize: 2, bias: false, dtype: "float64" });
  const dense = new Dense({ inFeatures: 4, outFeatures: 1, bias: false, dtype: "float64" });
  conv.params()[0].value.data.set(rot90(w1, 2).data);
  dense.params()[0].value.data.set(w2.data);
  return new Sequential([conv, new Tanh(), new Flatten(), dense, new Sigmoid()], {
    inputShape: [1, 3, 3],
    name: "article",
  });
}

/** The four images as a batch (4, 1, 3, 3) and the targets (4, 1). */
export function articleData(): { x: NDArray; y: NDArray } {
  const x = new NDArray(new Float64Array(36), [4, 1, 3, 3]);
  X.forEach((img, i) => {
    x.data.set(img.data, i * 9);
  });
  return { x, y: Y.copy() };
}

/** runArticle's experiment done with layers, a loss and an optimizer instead of hand-written steps. */
export function runArticleWithLayers(opts: ArticleOptions = ARTICLE_DEFAULTS): ArticleResult {
  const rng = new RandomState(opts.seed);
  const w1 = mul(rng.randn(2, 2), 4);
  const w2 = mul(rng.randn(4, 1), 4);
  const model = articleModel(w1, w2);
  const { x, y } = articleData();
  const loss = new MSE({ reduction: "half_sum" });
  const evaluate = () => {
    const out = model.predict(x);
    let cost = 0;
    for (let i = 0; i < 4; i++) cost += 0.5 * (out.data[i] - y.data[i]) ** 2;
    return { cost, out: Array.from(out.data) };
  };
  const before = evaluate();
  model.fit(x, y, { epochs: opts.epochs, batchSize: 1, shuffle: false, loss, optimizer: new SGD({ lr: opts.lr }) });
  const after = evaluate();
  const [conv, , , dense] = model.layers;
  const kernel = conv.params()[0].value;
  return {
    w1: rot90(new NDArray(kernel.data, [2, 2]), 2).toArray() as number[][],
    w2: Array.from(dense.params()[0].value.data, (v) => [v]),
    costBefore: before.cost,
    costAfter: after.cost,
    startOut: before.out,
    finalOut: after.out,
  };
}
