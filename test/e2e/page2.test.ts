// Page 2 (MNIST) in Chromium: it loads cleanly and offline, a drawn stroke is classified, and
// training in the Web Worker lowers the loss while the page stays responsive.

import { after, before, test } from "node:test";
import assert from "node:assert/strict";
import type { Page } from "playwright-core";
import { openSite, SKIP_E2E, type Site } from "./harness.ts";
import { existsSync } from "node:fs";

const PRETRAINED = existsSync(new URL("../../web/public/models/lenet5/model.json", import.meta.url));

let site: Site | null = null;
let page: Page;

before(async () => {
  if (SKIP_E2E) return;
  site = await openSite();
  page = await site.newPage("mnist.html");
  await page.waitForSelector("#fmaps canvas");
});

after(async () => {
  await site?.close();
});

function assertNoErrors(p: Page): void {
  assert.deepEqual(site!.errors.get(p), [], "console errors, page errors or off-origin requests");
}

/** Draw a "7" on the pad with the mouse (pointer events, as a person would). */
async function drawSeven(p: Page): Promise<void> {
  const box = await p.locator("#pad").boundingBox();
  assert.ok(box, "the drawing pad is visible");
  const at = (x: number, y: number) => [box.x + (x / 280) * box.width, box.y + (y / 280) * box.height] as const;
  await p.mouse.move(...at(70, 70));
  await p.mouse.down();
  for (const [x, y] of [
    [140, 68],
    [210, 70],
    [180, 140],
    [150, 210],
    [130, 250],
  ])
    await p.mouse.move(...at(x, y), { steps: 6 });
  await p.mouse.up();
}

test("page 2 loads offline with no console errors", { skip: SKIP_E2E }, async () => {
  assert.equal(await page.title(), "handprop · MNIST in your browser");
  // The LeNet-5 trained by the README's default run ships in web/public/models/lenet5/ and is loaded at start.
  if (PRETRAINED)
    await page.waitForFunction(() => document.getElementById("model-badge")!.textContent === "pretrained", null, {
      timeout: 20000,
    });
  else assert.equal(await page.textContent("#model-badge"), "untrained");
  assert.equal(await page.getAttribute("#prediction", "data-digit"), "");
  assertNoErrors(page);
});

test("a drawn stroke is classified, with ten probabilities summing to 1", { skip: SKIP_E2E }, async () => {
  await drawSeven(page);
  await page.waitForFunction(() => document.getElementById("prediction")!.dataset.digit !== "");
  const digit = Number(await page.getAttribute("#prediction", "data-digit"));
  const probs = JSON.parse((await page.getAttribute("#prediction", "data-probs")) ?? "[]") as number[];
  assert.equal(probs.length, 10);
  assert.ok(Math.abs(probs.reduce((a, b) => a + b, 0) - 1) < 1e-9);
  assert.equal(probs.indexOf(Math.max(...probs)), digit);
  assert.equal(await page.textContent("#pred-digit"), String(digit));
  // What the model sees: the 28×28 preview holds ink, centred by mass.
  const ink = await page.evaluate(() => {
    const c = document.getElementById("preview") as HTMLCanvasElement;
    const d = c.getContext("2d")!.getImageData(0, 0, 28, 28).data;
    let m = 0;
    let mx = 0;
    let my = 0;
    for (let i = 0; i < 784; i++) {
      m += d[4 * i];
      mx += d[4 * i] * (i % 28);
      my += d[4 * i] * Math.floor(i / 28);
    }
    return { m, cx: mx / m, cy: my / m };
  });
  assert.ok(ink.m > 0, "the preview has ink");
  assert.ok(Math.abs(ink.cx - 13.5) <= 1 && Math.abs(ink.cy - 13.5) <= 1, `centre of mass (${ink.cx}, ${ink.cy})`);
  assertNoErrors(page);
});

test("training in the worker lowers the loss and the page stays responsive", { skip: SKIP_E2E }, async () => {
  await page.fill("#epochs", "1");
  await page.click("#btn-fresh"); // train from random weights, not from the pretrained model
  await page.click("#btn-train");
  await page.waitForFunction(() => Number(document.getElementById("train-status")!.dataset.reports ?? 0) >= 8, null, {
    timeout: 30000,
  });
  // While the worker trains, the main thread answers within a frame or two.
  const lag = await page.evaluate(
    () =>
      new Promise<number>((resolve) => {
        const t0 = performance.now();
        setTimeout(() => {
          resolve(performance.now() - t0);
        }, 0);
      }),
  );
  assert.ok(lag < 250, `main thread answered after ${lag.toFixed(0)} ms while training`);
  assert.equal(await page.getAttribute("#train-status", "data-state"), "training");
  // Then let it run a little longer (or finish), stop it, and compare the loss reports.
  await page.waitForFunction(
    () => {
      const s = document.getElementById("train-status")!.dataset;
      return s.state !== "training" || Number(s.reports) >= 30;
    },
    null,
    { timeout: 60000 },
  );
  if ((await page.getAttribute("#train-status", "data-state")) === "training") await page.click("#btn-train");
  await page.waitForFunction(
    () => ["stopped", "done"].includes(document.getElementById("train-status")!.dataset.state ?? ""),
    null,
    { timeout: 30000 },
  );
  const first = Number(await page.getAttribute("#train-status", "data-first-loss"));
  const last = Number(await page.getAttribute("#train-status", "data-last-loss"));
  assert.ok(last < first / 2, `loss went from ${first} to ${last}`);
  assert.equal(await page.textContent("#model-badge"), "trained here");
  // The page's copy of the model received the trained weights: the drawing is re-classified.
  assert.notEqual(await page.getAttribute("#prediction", "data-digit"), "");
  await site!.screenshot(page, "page2-trained");
  assertNoErrors(page);
});

test("page 2 fits a 400 px wide screen", { skip: SKIP_E2E }, async () => {
  await page.setViewportSize({ width: 400, height: 800 });
  await page.waitForFunction(() => document.documentElement.clientWidth === 400);
  // Charts re-size from a ResizeObserver a frame or two after the viewport changes: let them settle.
  await page
    .waitForFunction(() => document.documentElement.scrollWidth <= 400, null, { timeout: 3000 })
    .catch(() => undefined);
  const width = await page.evaluate(() => document.documentElement.scrollWidth);
  assert.ok(width <= 400, `page is ${width}px wide at a 400px viewport`);
  await site!.screenshot(page, "page2-narrow");
  assertNoErrors(page);
});

const GRAPH_MODEL =
  "a graph model (resnet-mini .handprop) loads from the file input: feature maps of every image-shaped node, in order";

test(GRAPH_MODEL, { skip: SKIP_E2E }, async () => {
  const { buildModel, modelToFile } = await import("../../src/index.ts");
  const resnet = buildModel("resnet-mini", { seed: 3 });
  const octets = "application/octet-stream";
  const file = { name: "resnet.handprop", mimeType: octets, buffer: Buffer.from(modelToFile(resnet)) };
  await page.setInputFiles("#model-file", file);
  await page.waitForFunction(() => document.getElementById("model-status")!.dataset.state === "loaded", null, {
    timeout: 20000,
  });
  const shapes = resnet.build([1, 28, 28]);
  const nodes = (resnet as unknown as { nodes: { name: string; layer: { type: string } }[] }).nodes;
  const expected = nodes.filter((_, k) => shapes[k].length === 3).map((n) => `${n.name} (${n.layer.type})`);
  const titles = await page.$$eval("#fmaps .fmap-title .mono", (els) => els.map((e) => e.textContent));
  assert.deepEqual(titles, expected);
  assert.ok(
    expected.some((t) => t.includes("(Add)")),
    "the residual sums are shown",
  );
  await drawSeven(page);
  await page.waitForFunction(() => document.getElementById("prediction")!.dataset.digit !== "");
  const probs = JSON.parse((await page.getAttribute("#prediction", "data-probs")) ?? "[]") as number[];
  assert.equal(probs.length, 10);
  assert.ok(Math.abs(probs.reduce((a, b) => a + b, 0) - 1) < 1e-9);
  assertNoErrors(page);
});
