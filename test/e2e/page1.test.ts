// Page 1 (the article's network) in Chromium: it loads cleanly and offline, training lowers the cost,
// the weights after N epochs are exactly the CLI's, and every weight's derivation ends in the
// finite-difference gradient. Screenshots go to test-artifacts/.

import { after, before, test } from "node:test";
import assert from "node:assert/strict";
import { execFile } from "node:child_process";
import { promisify } from "node:util";
import { join } from "node:path";
import type { Page } from "playwright-core";
import { openSite, SKIP_E2E, type Site } from "./harness.ts";
import { REPO_ROOT } from "../../src/cli/serve.ts";
import { array } from "../../src/nd/ops.ts";
import { articleForward as forward } from "../../src/examples/article.ts";
import { runArticle, type ArticleResult } from "../../src/examples/article.ts";

let site: Site | null = null;
let page: Page;

/** `handprop seed … --json`, run as a separate process (started early: they run while the page builds). */
const runCli = (args: string[]): Promise<ArticleResult> =>
  promisify(execFile)(process.execPath, [join(REPO_ROOT, "bin", "handprop.mjs"), "seed", ...args, "--json"], {
    encoding: "utf8",
  }).then(({ stdout }) => JSON.parse(stdout) as ArticleResult);
let cliResults: Record<"article" | "other", Promise<ArticleResult>>;

before(async () => {
  if (SKIP_E2E) return;
  cliResults = {
    article: runCli(["--seed", "598765", "--lr", "0.7", "--epochs", "1000"]),
    other: runCli(["--seed", "7", "--lr", "0.45", "--epochs", "60"]),
  };
  site = await openSite();
  page = await site.newPage("index.html");
  await page.waitForSelector("#bw-derivation .katex");
});

after(async () => {
  await site?.close();
});

const num = async (selector: string, attr = "data-value"): Promise<number> => {
  const v = await page.getAttribute(selector, attr);
  assert.ok(v !== null, `${selector} has no ${attr}`);
  return Number(v);
};

async function readWeights(): Promise<{ w1: number[][]; w2: number[][] }> {
  const w1 = [
    [await num("#w1-0-0"), await num("#w1-0-1")],
    [await num("#w1-1-0"), await num("#w1-1-1")],
  ];
  const w2 = [[await num("#w2-0")], [await num("#w2-1")], [await num("#w2-2")], [await num("#w2-3")]];
  return { w1, w2 };
}

/** Set seed/lr/epochs, reset, run to the epoch count at full speed and wait for it to finish. */
async function trainTo(seed: number, lr: number, epochs: number): Promise<void> {
  await page.fill("#seed", String(seed));
  await page.fill("#lr", String(lr));
  await page.fill("#epochs", String(epochs));
  await page.click("#btn-reset");
  await page.click("#btn-finish");
  await page.waitForFunction(
    (n) => {
      const s = document.getElementById("status")!.dataset;
      return s.running === "false" && s.epoch === String(n);
    },
    epochs,
    { timeout: 20000 },
  );
}

function assertNoErrors(p: Page): void {
  assert.deepEqual(site!.errors.get(p), [], "console errors, page errors or off-origin requests");
}

test("page 1 loads offline with no console errors and shows the article's numbers", { skip: SKIP_E2E }, async () => {
  assert.equal(await page.title(), "handprop · backprop by hand, live");
  // Before training: the article's "Cost before Training" and its initial weights (seed 598765).
  const initial = runArticle({ seed: 598765, lr: 0.7, epochs: 0 }); // what the CLI calls (the N-epoch test runs the CLI itself)
  assert.equal(await num("#total-cost"), initial.costBefore);
  assert.deepEqual(await readWeights(), { w1: initial.w1, w2: initial.w2 });
  assert.equal((await page.locator(".katex").count()) > 0, true, "KaTeX rendered");
  // KaTeX's fonts are bundled and actually used: at least one KaTeX face has loaded.
  const katexFont = await page.evaluate(async () => {
    await document.fonts.ready;
    return Array.from(document.fonts).some((f) => f.family.includes("KaTeX") && f.status === "loaded");
  });
  assert.ok(katexFont, "a KaTeX font loaded from the build");
  assertNoErrors(page);
});

test("stepping training lowers the displayed cost", { skip: SKIP_E2E }, async () => {
  await page.click("#btn-reset");
  const before = await num("#total-cost");
  await page.click("#btn-step-sample");
  assert.equal(await page.getAttribute("#status", "data-sample"), "1");
  for (let k = 0; k < 3; k++) await page.click("#btn-step-epoch");
  assert.equal(await page.getAttribute("#status", "data-epoch"), "3");
  const after3 = await num("#total-cost");
  assert.ok(after3 < before, `cost ${after3} after 3 epochs should be below ${before}`);
  assert.equal(after3, runArticle({ seed: 598765, lr: 0.7, epochs: 3 }).costAfter);
  // Play animates epoch after epoch until paused.
  await page.click("#btn-play");
  await page.waitForFunction(() => Number(document.getElementById("status")!.dataset.epoch) >= 12);
  await page.click("#btn-play");
  assert.equal(await page.getAttribute("#status", "data-running"), "false");
  const paused = await page.getAttribute("#status", "data-epoch");
  await page.waitForTimeout(200);
  assert.equal(await page.getAttribute("#status", "data-epoch"), paused);
  assert.ok((await num("#total-cost")) < after3);
  assertNoErrors(page);
});

test("the weights after N epochs equal `handprop seed --epochs N --json`", { skip: SKIP_E2E }, async () => {
  for (const [seed, lr, epochs, run] of [
    [598765, 0.7, 1000, "article"],
    [7, 0.45, 60, "other"],
  ] as const) {
    await trainTo(seed, lr, epochs);
    const expected = await cliResults[run];
    assert.deepEqual(
      await readWeights(),
      { w1: expected.w1, w2: expected.w2 },
      `seed ${seed}, lr ${lr}, ${epochs} epochs`,
    );
    assert.equal(await num("#total-cost"), expected.costAfter);
    for (let i = 0; i < 4; i++) assert.equal(await num(`#out-${i}`), expected.finalOut[i]);
    assert.equal(await page.textContent("#cli-badge"), "✓ same as handprop seed");
  }
  assertNoErrors(page);
});

test("each weight's derivation ends in its finite-difference gradient (to 1e-6)", { skip: SKIP_E2E }, async () => {
  await trainTo(598765, 0.7, 120); // mid-descent: gradients of every size
  const { w1, w2 } = await readWeights();
  const images = [
    [
      [0, 0, 0],
      [1, 1, 1],
      [1, 1, 1],
    ],
    [
      [1, 1, 1],
      [0, 0, 0],
      [0, 0, 0],
    ],
  ];
  const targets = [0.88, 0.77];
  const everyWeight = ["w1-0-0", "w1-0-1", "w1-1-0", "w1-1-1", "w2-0", "w2-1", "w2-2", "w2-3"];
  for (const [img, tab, chips] of [
    [0, 2, everyWeight],
    [1, 1, everyWeight.slice(0, 4)],
  ] as const) {
    await page.click(`#tab-${tab}`);
    const x = array(images[img]);
    const loss = (a: number[][], b: number[][]) => forward(x, targets[img], array(a), array(b)).cost;
    for (const chip of chips) {
      await page.click(`#chip-${chip}`);
      const shown = await num("#grad-value");
      assert.equal(await page.getAttribute("#grad-value", "data-image"), String(tab));
      // Central difference in float64, h = 1e-6 (truncation ~h², rounding ~1e-16/h).
      const h = 1e-6;
      const plus = structuredClone({ w1, w2 });
      const minus = structuredClone({ w1, w2 });
      const [m, ...idx] = chip.split("-");
      const [r, c] = m === "w1" ? [Number(idx[0]), Number(idx[1])] : [Number(idx[0]), 0];
      plus[m as "w1" | "w2"][r][c] += h;
      minus[m as "w1" | "w2"][r][c] -= h;
      const fd = (loss(plus.w1, plus.w2) - loss(minus.w1, minus.w2)) / (2 * h);
      const err = Math.abs(shown - fd) / Math.max(Math.abs(fd), Math.abs(shown), 1e-3);
      assert.ok(err <= 1e-6, `${chip} on x${tab + 1}: page ${shown}, finite difference ${fd}, error ${err}`);
      const tex = await page.getAttribute("#bw-derivation", "data-tex");
      assert.ok(tex?.includes("\\frac{\\partial L}"), "the derivation is rendered from TeX");
    }
  }
  await page.click("#chip-w1-0-1");
  await site!.screenshot(page, "page1-trained");
  assertNoErrors(page);
});

test(
  "editing a pixel, a target or a weight updates the numbers and leaves the CLI's path",
  { skip: SKIP_E2E },
  async () => {
    await page.click("#btn-reset");
    const cost0 = await num("#total-cost");
    await page.fill("#w2-1", "0.5");
    assert.equal(await num("#w2-1"), 0.5);
    assert.notEqual(await num("#total-cost"), cost0);
    assert.equal(await page.textContent("#cli-badge"), "edited by hand");
    await page.click("#image-0 .pix .p >> nth=4"); // the centre pixel of x1
    assert.equal(await page.getAttribute("#image-0", "class"), "image-card selected");
    await page.fill("#target-3", "0.95");
    await page.click("#btn-step-epoch");
    assert.equal(await page.getAttribute("#status", "data-epoch"), "1");
    assertNoErrors(page);
  },
);

test("page 1 fits a 400 px wide screen", { skip: SKIP_E2E }, async () => {
  await page.setViewportSize({ width: 400, height: 800 });
  await page.waitForFunction(() => document.documentElement.clientWidth === 400);
  // Charts re-size from a ResizeObserver a frame or two after the viewport changes: let them settle.
  await page
    .waitForFunction(() => document.documentElement.scrollWidth <= 400, null, { timeout: 3000 })
    .catch(() => undefined);
  const width = await page.evaluate(() => document.documentElement.scrollWidth);
  assert.ok(width <= 400, `page is ${width}px wide at a 400px viewport`);
  await site!.screenshot(page, "page1-narrow");
  assertNoErrors(page);
});
