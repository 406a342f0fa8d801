// Page 2 (MNIST) in Chromium: it loads cleanly and offline, a drawn stroke is classified, training in
// the Web Worker lowers the loss while the page stays responsive, the zoo's resnet-mini (a graph Model)
// and mobilenet-mini train there too, a loaded graph model predicts what Node predicts, and the worker
// trains on every core at a speed compared with Node's (issue 15, point 5: see the last test).

import { after, before, test } from "node:test";
import assert from "node:assert/strict";
import type { Page } from "playwright-core";
import { openSite, SKIP_E2E, type Site } from "./harness.ts";
import { spawnSync } from "node:child_process";
import { existsSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { REPO_ROOT } from "../../src/cli/serve.ts";
import { saveModel } from "../../src/node/model-io.ts";
import {
  buildModel,
  digitInput,
  getThreads,
  MNIST_STANDARDIZE,
  modelFromFile,
  preprocessDigit,
  modelToFile,
  setThreads,
  softmax,
} from "../../src/index.ts";
import { loadSplit } from "../../web/src/mnist/data.ts";
import { freshModel, snapshot } from "../../web/src/mnist/snapshot.ts";
import { runTraining } from "../../web/src/mnist/training.ts";
import type { TrainRequest } from "../../web/src/mnist/protocol.ts";

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
  await setThreads(1);
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
  // A test image of the page's subset: the page's probabilities are Node's for the same file and image.
  await page.click("#btn-sample");
  await page.waitForFunction(() => /^test image #\d+/.test(document.getElementById("sample-label")!.textContent));
  const k = Number(/#(\d+)/.exec((await page.textContent("#sample-label")) ?? "")![1]);
  await page.waitForFunction(() => document.getElementById("prediction")!.dataset.digit !== "");
  const probs = JSON.parse((await page.getAttribute("#prediction", "data-probs")) ?? "[]") as number[];
  assert.equal(probs.length, 10);
  assert.ok(Math.abs(probs.reduce((a, b) => a + b, 0) - 1) < 1e-9);
  const test = await loadSplit(new URL("data/", site!.url).href, "test");
  const inNode = modelFromFile(modelToFile(resnet), "resnet.handprop").model;
  inNode.setDtype("float32");
  const logits = inNode.predict(digitInput(test.images.slice(k * 784, (k + 1) * 784), MNIST_STANDARDIZE));
  const inNodeProbs = Array.from(softmax(logits.data));
  const worst = Math.max(...inNodeProbs.map((p, d) => Math.abs(p - probs[d])));
  assert.ok(worst <= 1e-6, `test image #${k}: page and Node probabilities differ by ${worst}`);
  assert.equal(
    Number(await page.getAttribute("#prediction", "data-digit")),
    inNodeProbs.indexOf(Math.max(...inNodeProbs)),
  );
  assertNoErrors(page);
});

/** `handprop predict --json --top 10` on one file: the ten probabilities, by digit. */
function predictCli(model: string, image: string): number[] {
  const bin = join(REPO_ROOT, "bin", "handprop.mjs");
  const r = spawnSync(process.execPath, [bin, "predict", "--model", model, "--json", "--top", "10", image], {
    encoding: "utf8",
    timeout: 60_000,
  });
  assert.equal(r.status, 0, r.stderr);
  const { predictions } = JSON.parse(r.stdout) as { predictions: { top: { digit: number; probability: number }[] }[] };
  const probs = new Array<number>(10).fill(NaN);
  for (const t of predictions[0].top) probs[t.digit] = t.probability;
  return probs;
}

test(
  "a graph model given by URL (mnist.html?model=…) predicts what handprop predict does with its file and folder",
  {
    skip: SKIP_E2E,
  },
  async () => {
    const resnet = buildModel("resnet-mini", { seed: 5 });
    const bytes = Buffer.from(modelToFile(resnet));
    // the file is served at the page's origin, as a deployment would put it next to the page
    await site!.context.route("**/models/resnet-url.handprop", (route) =>
      route.fulfill({ status: 200, contentType: "application/octet-stream", body: bytes }),
    );
    const p = await site!.newPage("mnist.html?model=models/resnet-url.handprop");
    await p.waitForFunction(() => document.getElementById("model-status")!.dataset.state === "loaded", null, {
      timeout: 20000,
    });
    assert.match(
      (await p.textContent("#model-status")) ?? "",
      /resnet-mini, 151,738 parameters, loaded from .*resnet-url/,
    );
    await p.click("#btn-sample");
    await p.waitForFunction(() => /^test image #\d+/.test(document.getElementById("sample-label")!.textContent));
    await p.waitForFunction(() => document.getElementById("prediction")!.dataset.digit !== "");
    const k = Number(/#(\d+)/.exec((await p.textContent("#sample-label")) ?? "")![1]);
    const inPage = JSON.parse((await p.getAttribute("#prediction", "data-probs")) ?? "[]") as number[];
    // The same image as a PGM file, and the model saved both ways handprop predict reads.
    const tmp = mkdtempSync(join(tmpdir(), "handprop-page2-"));
    try {
      const test = await loadSplit(new URL("data/", site!.url).href, "test");
      const image = join(tmp, `test-${k}.pgm`);
      writeFileSync(
        image,
        Buffer.concat([Buffer.from("P5\n28 28\n255\n"), test.images.subarray(k * 784, (k + 1) * 784)]),
      );
      const file = join(tmp, "resnet.handprop");
      writeFileSync(file, bytes);
      const folder = join(tmp, "resnet");
      saveModel(resnet, folder);
      // The page classifies a test image's pixels as they are; handprop predict first puts a file through
      // the digit preprocessing (src/data/digits.ts: levels, a 20-pixel box, the centre of mass), which
      // changes some MNIST images slightly. So each is checked against the library on its own input: the
      // page on the raw pixels, the CLI on the preprocessed ones (equal for most images, not all).
      const inNode = modelFromFile(bytes, "resnet-url.handprop").model;
      inNode.setDtype("float32");
      const own = test.images.slice(k * 784, (k + 1) * 784);
      const probsOf = (px: ArrayLike<number>) =>
        Array.from(softmax(inNode.predict(digitInput(px, MNIST_STANDARDIZE)).data));
      const library = probsOf(own);
      const framed = probsOf(preprocessDigit({ width: 28, height: 28, data: Float64Array.from(own) }).pixels);
      const gap = (a: number[], b: number[]) => Math.max(...a.map((q, d) => Math.abs(q - b[d])));
      assert.ok(
        gap(inPage, library) <= 1e-6,
        `test image #${k}: the page and the library differ by ${gap(inPage, library)}: ` +
          `page ${JSON.stringify(inPage)}, library ${JSON.stringify(library)}`,
      );
      for (const model of [file, folder]) {
        const inCli = predictCli(model, image);
        assert.ok(
          gap(inCli, framed) <= 1e-6,
          `test image #${k}, ${model}: handprop predict and the library on the preprocessed image differ by ` +
            `${gap(inCli, framed)}: ${JSON.stringify(inCli)} against ${JSON.stringify(framed)}`,
        );
      }
    } finally {
      rmSync(tmp, { recursive: true, force: true });
    }
    assert.deepEqual(site!.errors.get(p), [], "console errors, page errors or off-origin requests");
    await p.close();
  },
);

/** Stop the worker's run if it is still going and wait until the page says it ended. */
async function stopTraining(p: Page): Promise<void> {
  if ((await p.getAttribute("#train-status", "data-state")) === "training") await p.click("#btn-train");
  await p.waitForFunction(
    () => ["stopped", "done"].includes(document.getElementById("train-status")!.dataset.state ?? ""),
    null,
    { timeout: 60_000, polling: 100 },
  );
}

/** Choose a zoo model in the page, train it a few batches in the worker, stop, check what came back. */
async function trainZooModel(name: string): Promise<void> {
  await page.selectOption("#model-name", name); // fresh weights of the chosen model
  await page.waitForFunction((n) => document.getElementById("model-status")!.textContent.startsWith(n), name);
  const titles = await page.$$eval("#fmaps .fmap-title .mono", (els) => els.map((e) => e.textContent));
  assert.ok(titles.length > 0, "its feature maps are shown");
  if (name === "resnet-mini")
    assert.ok(
      titles.some((t) => t.includes("(Add)")),
      "the residual sums are shown",
    );
  else
    assert.ok(
      titles.some((t) => t.startsWith("dwconv")),
      "the depthwise convolutions are shown",
    );
  await page.fill("#batch", "16");
  // as many epochs as the page allows, so that the run is still going when it is stopped (one epoch of the
  // page's subset can end before the stop arrives on a fast machine)
  await page.fill("#epochs", "20");
  await page.click("#btn-train");
  await page.waitForFunction(() => Number(document.getElementById("train-status")!.dataset.reports) >= 4, null, {
    timeout: 60_000,
  });
  await stopTraining(page);
  await page.fill("#batch", "32");
  await page.fill("#epochs", "1");
  assert.equal(await page.getAttribute("#train-status", "data-state"), "stopped");
  assert.equal(await page.textContent("#model-badge"), "trained here");
  const st = await page.$eval("#train-status", (el) => {
    const d = (el as HTMLElement).dataset;
    return { firstLoss: d.firstLoss, lastLoss: d.lastLoss, threads: d.threads };
  });
  for (const key of ["firstLoss", "lastLoss"] as const) {
    const v = Number(st[key]);
    assert.ok(Number.isFinite(v) && v > 0, `${key} ${st[key]}`);
  }
  assert.ok(Number(st.threads) >= 1, "the thread count is reported");
  // The page's copy received the trained weights and classifies with them.
  await page.click("#btn-sample");
  await page.waitForFunction(() => document.getElementById("prediction")!.dataset.digit !== "");
  const probs = JSON.parse((await page.getAttribute("#prediction", "data-probs")) ?? "[]") as number[];
  assert.equal(probs.length, 10);
  assert.ok(probs.every(Number.isFinite) && Math.abs(probs.reduce((a, b) => a + b, 0) - 1) < 1e-9);
  assertNoErrors(page);
}

const TRAINS = "trains in the worker: finite losses, the weights reach the page, valid predictions";
test(`the zoo's resnet-mini (a graph Model) ${TRAINS}`, { skip: SKIP_E2E }, () => trainZooModel("resnet-mini"));
test(`the zoo's mobilenet-mini (depthwise-separable) ${TRAINS}`, { skip: SKIP_E2E }, () =>
  trainZooModel("mobilenet-mini"),
);

// ---------------------------------------------------------------- speed against Node (issue 15, point 5)
//
// The page trains LeNet-5 in its Web Worker with the kernels' thread pool inside that worker (cross-origin
// isolated, one thread per core); Node runs the very same training function (web/src/mnist/training.ts)
// on the same images, served by the same server, with setThreads at the page's count. Rounds alternate
// page, Node, page, Node …; a round's images/s is the median of its progress reports (4 batches of 32
// each) after the first two (start-up), and the figure is the median over rounds of page ÷ Node. The
// target is ≥ 0.7; the test asserts a floor of 0.4, since the machines are shared, and prints the ratio.
// HANDPROP_SPEED_ROUNDS=N runs more rounds (default 5); HANDPROP_SPEED_THREADS=N compares at N threads
// (the page's "threads" field) instead of one per core.

const ROUNDS = Math.max(1, Number(process.env.HANDPROP_SPEED_ROUNDS ?? "5") || 5);
const SPEED_THREADS = Number(process.env.HANDPROP_SPEED_THREADS ?? "0") || 0;
/** Progress reports per round, and how many of the first ones are start-up (not counted). */
const REPORTS = 24;
const WARMUP_REPORTS = 2;
const FLOOR = 0.4;

function median(xs: readonly number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  const m = s.length >> 1;
  return s.length % 2 === 1 ? s[m] : (s[m - 1] + s[m]) / 2;
}

/** utime + stime of a /proc stat line, in ms: /proc counts clock ticks of 10 ms (USER_HZ, `getconf CLK_TCK` = 100). */
function statCpuMs(stat: string): number {
  const fields = stat.slice(stat.lastIndexOf(") ") + 2).split(" ");
  return (Number(fields[11]) + Number(fields[12])) * 10;
}

/**
 * CPU time (ms) used so far by each of Chromium's renderer processes ("p:pid": all its threads, the page's
 * main thread and compositor too) and by each of their Web Worker threads ("w:pid/tid", named
 * DedicatedWorker: the training worker and its kernel workers); null where there is no /proc. On a
 * shared machine wall-clock speed depends on what else runs, CPU time for the same work much less.
 */
function rendererCpuMs(): Map<string, number> | null {
  if (!existsSync("/proc/self/stat")) return null;
  const cpu = new Map<string, number>();
  for (const pid of readdirSync("/proc").filter((d) => /^\d+$/.test(d))) {
    try {
      if (!readFileSync(`/proc/${pid}/cmdline`, "utf8").includes("--type=renderer")) continue;
      cpu.set(`p:${pid}`, statCpuMs(readFileSync(`/proc/${pid}/stat`, "utf8")));
      for (const tid of readdirSync(`/proc/${pid}/task`)) {
        const stat = readFileSync(`/proc/${pid}/task/${tid}/stat`, "utf8");
        if (stat.includes("(DedicatedWorker")) cpu.set(`w:${pid}/${tid}`, statCpuMs(stat));
      }
    } catch {
      // the process or thread exited meanwhile
    }
  }
  return cpu;
}

/**
 * CPU time between two rendererCpuMs() samples, of the processes ("p:") or worker threads ("w:"): what
 * started meanwhile counts from 0; what ended meanwhile is not seen (never subtracted).
 */
function cpuBetween(before: Map<string, number>, after: Map<string, number>, kind: "p:" | "w:"): number {
  let ms = 0;
  for (const [key, v] of after) if (key.startsWith(kind)) ms += v - (before.get(key) ?? 0);
  return ms;
}

function nodeCpuMs(): number {
  const u = process.cpuUsage();
  return (u.user + u.system) / 1000;
}

interface Round {
  /** The progress reports' images/s, start-up reports left out. */
  speeds: number[];
  /** CPU time of the whole round (loading, the first test evaluation, REPORTS reports' training). */
  cpuMs: number | null;
  /** The page only: its Web Workers' share of cpuMs. */
  workerCpuMs?: number;
}

/** One page round: fresh LeNet-5, train until REPORTS reports, stop; the reports' images/s and the threads. */
async function pageRound(): Promise<Round & { threads: number }> {
  await page.selectOption("#model-name", "lenet5");
  if (SPEED_THREADS > 0) await page.fill("#threads", String(SPEED_THREADS));
  await page.click("#btn-fresh");
  const cpu0 = rendererCpuMs();
  await page.click("#btn-train");
  // polled every 100 ms, not every animation frame (Playwright's default), which would make the page
  // render frames it otherwise would not, CPU taken from the training threads
  await page.waitForFunction((n) => Number(document.getElementById("train-status")!.dataset.reports) >= n, REPORTS, {
    timeout: 60_000,
    polling: 100,
  });
  await stopTraining(page);
  const cpu1 = rendererCpuMs();
  const data = await page.$eval("#train-status", (el) => {
    const d = (el as HTMLElement).dataset;
    return { speeds: d.speeds, threads: d.threads };
  });
  const speeds = (data.speeds ?? "").split(",").map(Number);
  const speedsKept = speeds.slice(WARMUP_REPORTS, REPORTS);
  if (cpu0 === null || cpu1 === null) return { speeds: speedsKept, threads: Number(data.threads), cpuMs: null };
  const [cpuMs, workerCpuMs] = [cpuBetween(cpu0, cpu1, "p:"), cpuBetween(cpu0, cpu1, "w:")];
  return { speeds: speedsKept, threads: Number(data.threads), cpuMs, workerCpuMs };
}

/** One Node round: the page's training function on the same data and settings, stopped after REPORTS. */
async function nodeRound(threads: number): Promise<Round> {
  if (getThreads() !== threads) assert.equal(await setThreads(threads), threads, "Node's kernel threads started");
  const req: TrainRequest = {
    type: "train",
    model: snapshot(freshModel(0)),
    normalization: MNIST_STANDARDIZE,
    dataUrl: new URL("data/", site!.url).href,
    epochs: 1,
    lr: 0.002,
    batchSize: 32,
    seed: 0,
    threads,
  };
  const speeds: number[] = [];
  const stop = new AbortController();
  const cpu0 = nodeCpuMs();
  await runTraining(req, stop.signal, (m) => {
    if (m.type !== "progress") return;
    speeds.push(m.imagesPerSecond);
    if (speeds.length >= REPORTS) stop.abort();
  });
  return { speeds: speeds.slice(WARMUP_REPORTS, REPORTS), cpuMs: nodeCpuMs() - cpu0 };
}

test(
  "LeNet-5 training in the page's worker runs at ≥ 40% of Node's images/s, same threads",
  { skip: SKIP_E2E },
  async (t) => {
    // The page's defaults: batch 32, lr 0.002, seed 0, one thread per core (cross-origin isolated).
    assert.equal(await page.inputValue("#batch"), "32");
    assert.equal(await page.evaluate(() => crossOriginIsolated), true, "the served page is cross-origin isolated");
    const rows: { page: number; node: number; ratio: number; cpuRatio: number; workerCpuRatio: number }[] = [];
    let threads = 0;
    for (let r = 0; r < ROUNDS; r++) {
      const p = await pageRound();
      threads = p.threads;
      const n = await nodeRound(threads);
      const [pageSpeed, nodeSpeed] = [median(p.speeds), median(n.speeds)];
      // the same work in both: Node's CPU time ÷ the page's is the page's speed per CPU-second relative to Node's
      const cpuRatio = p.cpuMs === null || n.cpuMs === null ? NaN : n.cpuMs / p.cpuMs;
      const workerCpuRatio = p.workerCpuMs === undefined || n.cpuMs === null ? NaN : n.cpuMs / p.workerCpuMs;
      rows.push({ page: pageSpeed, node: nodeSpeed, ratio: pageSpeed / nodeSpeed, cpuRatio, workerCpuRatio });
      t.diagnostic(
        `round ${r + 1}: page ${pageSpeed.toFixed(0)} img/s, Node ${nodeSpeed.toFixed(0)} img/s, ratio ` +
          `${(pageSpeed / nodeSpeed).toFixed(3)}; CPU time page ${p.cpuMs ?? "?"} ms ` +
          `(workers ${p.workerCpuMs ?? "?"} ms), ` +
          `Node ${n.cpuMs?.toFixed(0) ?? "?"} ms`,
      );
    }
    const cores = await page.evaluate(() => navigator.hardwareConcurrency);
    assert.equal(threads, SPEED_THREADS > 0 ? Math.min(SPEED_THREADS, cores) : cores, "the page's thread count");
    assert.match((await page.textContent("#st-threads")) ?? "", new RegExp(`^${threads}( of ${cores})?$`));
    const ratios = rows.map((r) => r.ratio);
    const ratio = median(ratios);
    const spread = `${Math.min(...ratios).toFixed(2)}–${Math.max(...ratios).toFixed(2)}`;
    const summary =
      `page 2 LeNet-5 training, ${threads} thread(s): page ${median(rows.map((r) => r.page)).toFixed(0)} img/s, ` +
      `Node ${median(rows.map((r) => r.node)).toFixed(0)} img/s, median ratio page/Node ${ratio.toFixed(3)} ` +
      `(rounds ${spread}, ${ROUNDS} rounds; target ≥ 0.7); per CPU-second for the same work, page/Node ` +
      `${median(rows.map((r) => r.cpuRatio)).toFixed(3)} (the renderer's threads) and ` +
      `${median(rows.map((r) => r.workerCpuRatio)).toFixed(3)} (its Web Workers only)`;
    t.diagnostic(summary);
    process.stderr.write(`${summary}\n`);
    assert.ok(ratio >= FLOOR, summary);
    assert.deepEqual(site!.errors.get(page), [], "console errors, page errors or off-origin requests");
  },
);

test(
  "one epoch on 1 thread and on one thread per core ends in the same model (same predictions, bit for bit)",
  {
    skip: SKIP_E2E,
  },
  async () => {
    const cores = await page.evaluate(() => navigator.hardwareConcurrency);
    assert.match((await page.textContent("#thread-note")) ?? "", /bit-identical for every thread count/);
    await page.selectOption("#model-name", "lenet5");
    await page.fill("#batch", "64");
    /** A whole epoch from fresh weights on `threads` threads; then the page's probabilities for its current input. */
    const nextFrames = () =>
      page.evaluate(() => new Promise((resolve) => requestAnimationFrame(() => requestAnimationFrame(resolve))));
    const trainEpoch = async (threads: number) => {
      await page.fill("#threads", String(threads));
      await page.click("#btn-fresh");
      await nextFrames();
      const untrained = await page.getAttribute("#prediction", "data-probs");
      await page.click("#btn-train");
      await page.waitForFunction(() => document.getElementById("train-status")!.dataset.state === "done", null, {
        timeout: 180_000,
        polling: 200,
      });
      // the last weights arrive before "done"; the classification they queue runs on the next frame
      await nextFrames();
      const st = await page.$eval("#train-status", (el) => (el as HTMLElement).dataset.threads);
      return { threads: Number(st), untrained, probs: await page.getAttribute("#prediction", "data-probs") };
    };
    const one = await trainEpoch(1);
    const all = await trainEpoch(cores);
    await page.fill("#batch", "32");
    assert.equal(one.threads, 1);
    assert.equal(all.threads, cores);
    assert.ok(one.probs !== null && one.probs.length > 0, "a digit is classified");
    assert.notEqual(one.probs, one.untrained, "the trained weights reached the page");
    assert.equal(all.probs, one.probs, `${cores} threads' model predicts exactly what 1 thread's does`);
    assertNoErrors(page);
  },
);
