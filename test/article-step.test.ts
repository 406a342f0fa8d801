// The article's per-sample step (articleStep, src/examples/article.ts), which page 1 of the playground
// calls one sample at a time: looped by hand over epochs and samples it must give runArticle's numbers
// bit for bit, so what the page shows after N epochs is what `handprop seed --epochs N --json` prints.

import { test } from "node:test";
import assert from "node:assert/strict";
import {
  X as ARTICLE_X,
  Y as ARTICLE_Y,
  articleEvaluate as evaluate,
  articleGradients as gradients,
  articleInitialWeights as initialWeights,
  articleStep as step,
  runArticle,
  type ArticleOptions,
  type ArticleResult,
} from "../src/examples/article.ts";
import type { NDArray } from "../src/nd/ndarray.ts";
import { fdlibmExp, fdlibmExpm1, fdlibmTanh } from "../src/nd/fdlibm.ts";
import { RandomState } from "../src/nd/random.ts";

const ys = Array.from(ARTICLE_Y.data);

function runWithSteps(opts: ArticleOptions): ArticleResult {
  let { w1, w2 } = initialWeights(opts.seed);
  const before = evaluate(ARTICLE_X, ys, w1, w2);
  for (let e = 0; e < opts.epochs; e++) {
    for (let i = 0; i < ARTICLE_X.length; i++) ({ w1, w2 } = step(ARTICLE_X[i], ys[i], w1, w2, opts.lr));
  }
  const after = evaluate(ARTICLE_X, ys, w1, w2);
  return {
    w1: w1.toArray() as number[][],
    w2: w2.toArray() as number[][],
    costBefore: before.cost,
    costAfter: after.cost,
    startOut: before.out,
    finalOut: after.out,
  };
}

test("step() looped over epochs reproduces runArticle bit for bit", () => {
  const cases: ArticleOptions[] = [
    { seed: 598765, epochs: 0, lr: 0.7 },
    { seed: 598765, epochs: 1, lr: 0.7 },
    { seed: 598765, epochs: 7, lr: 0.7 },
    { seed: 598765, epochs: 1000, lr: 0.7 },
    { seed: 1, epochs: 50, lr: 0.3 },
    { seed: 4294967295, epochs: 20, lr: 1.5 },
  ];
  for (const c of cases) assert.deepEqual(runWithSteps(c), runArticle(c), JSON.stringify(c));
});

test("the w1 gradient is rot180 of the convolution the page animates, and matches finite differences", () => {
  const { w1, w2 } = initialWeights(598765);
  const loss = (a: NDArray, b: NDArray, i: number) => gradients(ARTICLE_X[i], ys[i], a, b).cost;
  for (let i = 0; i < 4; i++) {
    const t = gradients(ARTICLE_X[i], ys[i], w1, w2);
    for (let p = 0; p < 2; p++)
      for (let q = 0; q < 2; q++) assert.equal(t.grad_1.get(p, q), t.grad_1_conv.get(1 - p, 1 - q));
    const h = 1e-5;
    for (const [w, g] of [
      [w1, t.grad_1],
      [w2, t.grad_2],
    ] as const) {
      for (let k = 0; k < w.size; k++) {
        const plus = w.copy();
        const minus = w.copy();
        plus.data[k] += h;
        minus.data[k] -= h;
        const fd =
          w === w1
            ? (loss(plus, w2, i) - loss(minus, w2, i)) / (2 * h)
            : (loss(w1, plus, i) - loss(w1, minus, i)) / (2 * h);
        assert.ok(
          Math.abs(fd - g.data[k]) <= 1e-9 + 1e-6 * Math.abs(fd),
          `image ${i}, weight ${k}: ${g.data[k]} vs ${fd}`,
        );
      }
    }
  }
});

test("the portable exp/expm1/tanh equal Node's Math functions bit for bit", () => {
  const rng = new RandomState(2024);
  const bits = new Float64Array(1);
  const words = new Uint32Array(bits.buffer);
  const args: number[] = [
    0,
    -0,
    1,
    -1,
    2,
    22,
    -22,
    709.78,
    709.79,
    -745.13,
    -745.14,
    1e-300,
    2 ** -28,
    2 ** -54,
    5e-324,
    Infinity,
    -Infinity,
    NaN,
  ];
  for (const scale of [1e-6, 1, 3, 60, 1500]) for (const u of rng.uniform(-scale, scale, 100000).data) args.push(u);
  for (let i = 0; i < 100000; i++) {
    words[0] = rng.randint(0, 2 ** 32);
    words[1] = rng.randint(0, 2 ** 32);
    args.push(bits[0]);
  }
  for (const [name, mine, ref] of [
    ["exp", fdlibmExp, Math.exp],
    ["expm1", fdlibmExpm1, Math.expm1],
    ["tanh", fdlibmTanh, Math.tanh],
  ] as const) {
    let diffs = 0;
    let first = "";
    for (const v of args) {
      if (!Object.is(mine(v), ref(v))) {
        if (diffs++ === 0) first = `${name}(${v}) = ${mine(v)}, Math.${name} gives ${ref(v)}`;
      }
    }
    assert.equal(diffs, 0, `${diffs} of ${args.length} differ; first: ${first}`);
  }
});
