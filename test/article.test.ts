// The article's experiment, reproduced: the step-by-step script, the same network built from layers,
// and the CLI, against NumPy runs (test/fixtures/gen_article.py) and the article's printed output.
import { test } from "node:test";
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { articleReport, runArticle, type ArticleResult } from "../src/examples/article.ts";
import { runArticleWithLayers } from "../src/examples/article-layers.ts";
import { runArticleFast } from "../research/article-fast.ts";
import { loadFixture } from "./helpers.ts";

interface Case extends ArticleResult {
  seed: number;
  epochs: number;
  lr: number;
}
const cases = loadFixture<Case[]>("article.json");

function maxRel(a: ArticleResult, b: ArticleResult): number {
  const flat = (r: ArticleResult) => [
    ...r.w1.flat(),
    ...r.w2.flat(),
    r.costBefore,
    r.costAfter,
    ...r.startOut,
    ...r.finalOut,
  ];
  const x = flat(a);
  const y = flat(b);
  assert.equal(x.length, y.length);
  return Math.max(...x.map((v, i) => Math.abs(v - y[i]) / Math.max(Math.abs(y[i]), 1e-300)));
}

test("the article's report is printed exactly as NumPy printed it", () => {
  const expected = readFileSync(new URL("./fixtures/article_output.txt", import.meta.url), "utf8");
  assert.equal(articleReport(runArticle()) + "\n", expected.replace(/\n+$/, "\n"));
});

test("step-by-step script equals NumPy to 1e-9 relative for every seed/epochs/lr fixture", () => {
  for (const c of cases) {
    const r = runArticle({ seed: c.seed, epochs: c.epochs, lr: c.lr });
    const d = maxRel(r, c);
    assert.ok(d <= 1e-9, `seed ${c.seed} epochs ${c.epochs} lr ${c.lr}: max rel diff ${d}`);
  }
});

test("the network rebuilt from Conv2D/Tanh/Flatten/Dense/Sigmoid + MSE + SGD matches the article's script to 1e-9", () => {
  for (const c of cases.filter((k) => k.epochs <= 1000)) {
    const lib = runArticleWithLayers({ seed: c.seed, epochs: c.epochs, lr: c.lr });
    const d = maxRel(lib, c);
    assert.ok(d <= 1e-9, `seed ${c.seed} epochs ${c.epochs}: layers vs NumPy max rel diff ${d}`);
  }
});

test("the unrolled scalar version (article-fast.ts) is bit-identical to the step-by-step one", () => {
  for (const c of cases) {
    const opts = { seed: c.seed, epochs: c.epochs, lr: c.lr };
    assert.deepEqual(runArticleFast(opts), runArticle(opts), `seed ${c.seed} epochs ${c.epochs} lr ${c.lr}`);
  }
});
