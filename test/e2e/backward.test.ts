// Page 3 (the backward explainer). In Node first: for one element of every rule, the derivation's terms
// (computed from forward values) sum to the library's backward and agree with a finite difference.
// Then in Chromium: the page shows, for one element of each layer type of LeNet-5, a gradient equal to
// the library's (recomputed here in Node from the page's own input) and to a finite difference; a click
// on a logit and on a kernel picks them; the model survives IndexedDB → reload → load; the .handprop,
// ONNX and TF.js downloads are readable by handprop's own readers; watching training records
// per-layer gradient norms and update ratios while the loss falls; the page fits 400 px.

import { after, before, test } from "node:test";
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import type { Download, Page } from "playwright-core";
import { openSite, SKIP_E2E, type Site } from "./harness.ts";
import {
  buildModel,
  deserializeModel,
  fromTfjsArtifacts,
  modelToFile,
  modelFromFile,
  MNIST_STANDARDIZE,
  NDArray,
  ONNX_IR_VERSION,
  sequentialFromConfig,
  digitInput,
  layerFromConfig,
  Model,
  modelFromConfig,
  Add,
  type Sequential,
} from "../../src/index.ts";
import { readFields } from "../../src/io/protobuf.ts";
import {
  explain,
  finiteDifference,
  float64Copy,
  lossFrom,
  oneSided,
  trace,
  type Ref,
  type Trace,
} from "../../web/src/backward/engine.ts";

const MODEL_DIR = new URL("../../web/public/models/lenet5/", import.meta.url);

function pretrained(): Sequential {
  const json = readFileSync(new URL("model.json", MODEL_DIR), "utf8");
  const loaded = deserializeModel(json, new Uint8Array(readFileSync(new URL("weights.bin", MODEL_DIR))));
  return float64Copy(loaded.model, (c) => sequentialFromConfig(c));
}

/**
 * A digit-like input without the MNIST files: a thick stroke of uneven ink, normalised like the page
 * does. Uneven, so that no pooling window holds two equal maxima (a tie is a kink: the finite difference
 * would see the average of its two sides).
 */
function strokeInput(): NDArray {
  const px = new Float64Array(784);
  const ink = (k: number): number => 150 + 100 * Math.abs(Math.sin(k * 1.618));
  for (let i = 4; i < 24; i++) {
    for (let w = -2; w <= 2; w++) px[i * 28 + 14 + w + Math.round((i - 14) / 4)] = ink(i * 5 + w);
  }
  for (let j = 8; j < 20; j++) px[6 * 28 + j] = ink(100 + j);
  return digitInput(px, MNIST_STANDARDIZE);
}

/**
 * The element of tensor t (or of a parameter) with the largest |gradient| at which the loss is smooth:
 * not in a tied pooling window and with equal one-sided differences (at a kink — a ReLU input at 0 or
 * tied maxima downstream — backward is one subgradient and a central difference averages two).
 */
type Unindexed = { kind: "act"; t: number } | { kind: "param"; layer: number; param: "weight" | "bias" };

function largest(tr: Trace, ref: Unindexed): Ref {
  const data = ref.kind === "act" ? tr.grads[ref.t].data : gradOf(tr, ref);
  const order = Array.from({ length: data.length }, (_, i) => i).sort((a, b) => Math.abs(data[b]) - Math.abs(data[a]));
  for (const i of order.slice(0, 200)) {
    const candidate: Ref = { ...ref, index: i };
    if (explain(tr, candidate).extra?.tie === true || oneSided(tr, candidate).kink) continue;
    return candidate;
  }
  throw new Error(`no smooth element among the 200 largest gradients of ${JSON.stringify(ref)}`);
}

function gradOf(tr: Trace, ref: { layer: number; param: "weight" | "bias" }): ArrayLike<number> {
  const p = tr.model.params().find((q) => q.name === `${ref.layer}.${ref.param}`);
  assert.ok(p, `no parameter ${ref.layer}.${ref.param}`);
  return p.grad.data;
}

/**
 * One element per rule of LeNet-5: softmax+CE, Dense (input, weight, bias), ReLU (live and dead), Flatten,
 * MaxPool, Conv2D (input, weight, bias).
 */
function elements(tr: Trace): { what: string; ref: Ref }[] {
  const relu = tr.acts[1].data; // input of ReLU layer 1: find a dead unit (x < −0.1)
  let dead = 0;
  while (dead < relu.length - 1 && !(relu[dead] < -0.1)) dead++;
  return [
    { what: "softmax-ce (logit)", ref: { kind: "act", t: 12, index: tr.label } },
    { what: "dense-input (84 → 10)", ref: largest(tr, { kind: "act", t: 11 }) },
    { what: "relu (live)", ref: largest(tr, { kind: "act", t: 10 }) },
    { what: "relu (dead)", ref: { kind: "act", t: 1, index: dead } },
    { what: "dense-input (400 → 120)", ref: largest(tr, { kind: "act", t: 7 }) },
    { what: "flatten", ref: largest(tr, { kind: "act", t: 6 }) },
    { what: "maxpool 2", ref: largest(tr, { kind: "act", t: 5 }) },
    { what: "conv-input (conv 2, valid)", ref: largest(tr, { kind: "act", t: 3 }) },
    { what: "maxpool 1", ref: largest(tr, { kind: "act", t: 2 }) },
    { what: "conv-input (pixel, conv 1, same padding)", ref: largest(tr, { kind: "act", t: 0 }) },
    { what: "dense-weight", ref: largest(tr, { kind: "param", layer: 9, param: "weight" }) },
    { what: "dense-bias", ref: largest(tr, { kind: "param", layer: 11, param: "bias" }) },
    { what: "conv-weight (conv 1, same padding)", ref: largest(tr, { kind: "param", layer: 0, param: "weight" }) },
    { what: "conv-weight (conv 2)", ref: largest(tr, { kind: "param", layer: 3, param: "weight" }) },
    { what: "conv-bias", ref: largest(tr, { kind: "param", layer: 3, param: "bias" }) },
  ];
}

function close(actual: number, expected: number, rel: number, abs: number, what: string): void {
  assert.ok(Math.abs(actual - expected) <= abs + rel * Math.abs(expected), `${what}: ${actual} vs ${expected}`);
}

test("every rule's terms sum to the library's backward and match a finite difference (Node)", () => {
  const tr = trace(pretrained(), strokeInput(), 3);
  const rules = new Set<string>();
  for (const { what, ref } of elements(tr)) {
    const e = explain(tr, ref);
    rules.add(e.rule);
    close(e.sum, e.value, 1e-12, 1e-15, `${what}: Σ terms vs backward`);
    close(finiteDifference(tr, ref), e.value, 1e-5, 1e-8, `${what}: finite difference vs backward`);
    if (what === "relu (dead)") assert.equal(e.value, 0);
    else assert.notEqual(e.value, 0, `${what}: pick an element with a gradient`);
  }
  assert.deepEqual([...rules].sort(), [
    "conv-bias",
    "conv-input",
    "conv-weight",
    "dense-bias",
    "dense-input",
    "dense-weight",
    "flatten",
    "maxpool",
    "relu",
    "softmax-ce",
  ]);
  // lossFrom(0) is the trace's loss: the finite differences perturb the same function
  assert.equal(lossFrom(tr.model, 0, tr.acts[0], tr.label), tr.loss);
});

/** A float64 copy of a zoo model, Sequential or graph Model. */
function copy64(model: Sequential): Sequential {
  const rebuild = (c: ReturnType<Sequential["config"]>): Sequential =>
    model instanceof Model ? modelFromConfig(c, layerFromConfig) : sequentialFromConfig(c);
  return float64Copy(model, rebuild);
}

/** resnet-mini's residual elements: an Add input (splitting) and a tensor read by a conv and an Add (fan-out sum). */
function residualElements(tr: Trace): { what: string; ref: Ref }[] {
  const add = tr.model.layers.findIndex((l) => l instanceof Add);
  assert.ok(add >= 0, "resnet-mini has an Add");
  const [branch, shortcut] = tr.inputsOf[add];
  const gap = tr.model.layers.findIndex((l) => l.type === "GlobalAvgPool2D");
  const bn = tr.model.layers.findIndex((l) => l.type === "BatchNorm2D");
  return [
    { what: "add (residual branch)", ref: largest(tr, { kind: "act", t: branch }) },
    { what: "fan-out (block input: conv and shortcut)", ref: largest(tr, { kind: "act", t: shortcut }) },
    { what: "global-avg-pool", ref: largest(tr, { kind: "act", t: gap }) },
    { what: "batchnorm-inference", ref: largest(tr, { kind: "act", t: bn }) },
  ];
}

test("resnet-mini: Add splits δ, a tensor read twice sums both gradients, BN and GAP (Node)", () => {
  const tr = trace(copy64(buildModel("resnet-mini", { seed: 5 })), strokeInput(), 3);
  const rules = new Set<string>();
  for (const { what, ref } of residualElements(tr)) {
    const e = explain(tr, ref);
    rules.add(e.rule);
    close(e.sum, e.value, 1e-12, 1e-15, `${what}: Σ terms vs backward`);
    close(finiteDifference(tr, ref), e.value, 1e-5, 1e-8, `${what}: finite difference vs backward`);
    assert.notEqual(e.value, 0, `${what}: pick an element with a gradient`);
    if (e.rule === "fan-out") assert.equal(e.terms.length, 2, "the block input is read by the conv and the Add");
  }
  assert.deepEqual([...rules].sort(), ["add", "batchnorm-inference", "fan-out", "global-avg-pool"]);
  assert.equal(lossFrom(tr.model, 0, tr.acts[0], tr.label, tr), tr.loss);
});

// ---------------------------------------------------------------- in the browser

let site: Site | null = null;
let page: Page;

before(async () => {
  if (SKIP_E2E) return;
  site = await openSite();
  page = await site.newPage("backward.html");
  await page.waitForSelector("body[data-ready='true']", { timeout: 30000 });
});

after(async () => {
  await site?.close();
});

function assertNoErrors(p: Page): void {
  assert.deepEqual(site!.errors.get(p), [], "console errors, page errors or off-origin requests");
}

async function shown(): Promise<{ ref: Ref; value: number; sum: number; fd: number; rule: string }> {
  const d = await page.evaluate(() => {
    const { ref, value, sum, fd, rule } = document.getElementById("bw-derivation")!.dataset;
    return { ref, value, sum, fd, rule };
  });
  const ref = JSON.parse(d.ref ?? "null") as Ref;
  return { ref, value: Number(d.value), sum: Number(d.sum), fd: Number(d.fd), rule: d.rule ?? "" };
}

async function pick(ref: Ref): Promise<void> {
  await page.selectOption("#bw-tensor", ref.kind === "act" ? `a:${ref.t}` : `p:${ref.layer}:${ref.param}`);
  await page.fill("#bw-index", String(ref.index));
  await page.click("#bw-explain");
  const want = JSON.stringify(ref);
  await page.waitForFunction((w) => document.getElementById("bw-derivation")!.dataset.ref === w, want);
}

/** The page's input and label, traced in Node with the library (float64 copy of the shipped model). */
async function nodeTrace(model: Sequential = pretrained()): Promise<Trace> {
  const input = JSON.parse((await page.getAttribute("#bw-summary", "data-input")) ?? "[]") as number[];
  assert.equal(input.length, 784);
  const label = Number(await page.inputValue("#bw-label"));
  return trace(model, new NDArray(Float64Array.from(input), [1, 1, 28, 28]), label);
}

const LIBRARY_AND_FD =
  "page 3 loads offline, and shows for every layer type the library's gradient and a matching finite difference";

test(LIBRARY_AND_FD, { skip: SKIP_E2E }, async () => {
  assert.equal(await page.title(), "handprop · the backward pass, explained");
  assert.ok((await page.locator("#bw-derivation .katex").count()) > 0, "KaTeX rendered");
  const tr = await nodeTrace();
  for (const { what, ref } of elements(tr)) {
    await pick(ref);
    const s = await shown();
    const library = explain(tr, ref).value; // the library's backward in Node on the same input
    close(s.value, library, 1e-9, 1e-13, `${what}: page vs library`);
    close(s.sum, s.value, 1e-12, 1e-15, `${what}: page's Σ terms vs its backward`);
    close(s.fd, library, 1e-5, 1e-8, `${what}: page's finite difference`);
    close(finiteDifference(tr, ref), s.value, 1e-5, 1e-8, `${what}: Node's finite difference vs page`);
  }
  assertNoErrors(page);
});

test("clicking a logit and a kernel weight explains them", { skip: SKIP_E2E }, async () => {
  await page.click("#bw-logits button[data-k='4']");
  let s = await shown();
  assert.deepEqual(s.ref, { kind: "act", t: 12, index: 4 });
  assert.equal(s.rule, "softmax-ce");
  await page.click("#bw-maps details summary"); // open conv 1's kernel gradients
  await page.click("#bw-maps .bw-kernels canvas[data-o='2']", { position: { x: 2, y: 2 } });
  s = await shown();
  assert.deepEqual(s.ref, { kind: "param", layer: 0, param: "weight", index: 2 * 25 });
  assert.equal(s.rule, "conv-weight");
  assert.ok((await page.locator(".bw-hl").count()) >= 3, "input region, δ map and kernel cell highlighted");
  await site!.screenshot(page, "backward-conv-weight", false);
  assertNoErrors(page);
});

test("save to IndexedDB, reload, load: the same prediction", { skip: SKIP_E2E }, async () => {
  const probs = async (): Promise<number[]> =>
    JSON.parse((await page.getAttribute("#bw-summary", "data-probs")) ?? "[]") as number[];
  const ok = (words: string): Promise<unknown> =>
    page.waitForFunction((w) => {
      const el = document.getElementById("bw-share-status")!;
      return el.dataset.state === "ok" && (el.textContent ?? "").includes(w);
    }, words);
  await page.fill("#bw-seed", "3");
  await page.click("#bw-fresh");
  const fresh = await probs();
  await page.click("#bw-save-idb");
  await ok("saved in this browser");
  await page.reload({ waitUntil: "load" });
  await page.waitForSelector("body[data-ready='true']");
  assert.notDeepEqual(await probs(), fresh, "after the reload the page shows the shipped model");
  await page.click("#bw-load-idb");
  await ok("loaded the model saved");
  assert.deepEqual(await probs(), fresh);
  assertNoErrors(page);
});

test("the .handprop, ONNX and TF.js downloads are read back by handprop", { skip: SKIP_E2E }, async () => {
  const probs = JSON.parse((await page.getAttribute("#bw-summary", "data-probs")) ?? "[]") as number[];
  const input = JSON.parse((await page.getAttribute("#bw-summary", "data-input")) ?? "[]") as number[];
  const x = new NDArray(Float64Array.from(input), [1, 1, 28, 28]);
  const predict = (m: Sequential): number[] =>
    Array.from(
      trace(
        float64Copy(m, (c) => sequentialFromConfig(c)),
        x,
        0,
      ).probs,
    );
  /** Click a button and collect the `count` downloads it starts, sorted by file name. */
  const downloads = async (button: string, count: number): Promise<Download[]> => {
    const got: Download[] = [];
    const all = new Promise<void>((resolve) => {
      const on = (d: Download): void => {
        got.push(d);
        if (got.length === count) {
          page.off("download", on);
          resolve();
        }
      };
      page.on("download", on);
    });
    await page.click(button);
    await all;
    return got.sort((a, b) => a.suggestedFilename().localeCompare(b.suggestedFilename()));
  };
  const bytes = async (d: Download): Promise<Buffer> => readFileSync(await d.path());
  // Chromium's Math.exp may differ from Node's in the last place: compare to 1e-12, not bit for bit.
  const [file] = await downloads("#bw-download", 1);
  assert.equal(file.suggestedFilename(), "lenet5.handprop");
  predict(modelFromFile(new Uint8Array(await bytes(file)), "lenet5.handprop").model).forEach((p, k) => {
    close(p, probs[k], 1e-12, 1e-15, `.handprop model p_${k}`);
  });

  const onnx = await bytes((await downloads("#bw-onnx", 1))[0]);
  assert.ok(onnx.length > 200_000, `ONNX is ${onnx.length} bytes`);
  const fields = readFields(new Uint8Array(onnx));
  const ir = fields.find((f) => f.field === 1);
  assert.equal(ir?.value, BigInt(ONNX_IR_VERSION), "ModelProto.ir_version");
  assert.ok(
    fields.some((f) => f.field === 7 && f.value instanceof Uint8Array),
    "ModelProto.graph present",
  );

  const [modelJson, weights] = await downloads("#bw-tfjs", 2);
  assert.equal(modelJson.suggestedFilename(), "model.json");
  assert.equal(weights.suggestedFilename(), "weights.bin");
  const json = JSON.parse((await bytes(modelJson)).toString("utf8")) as unknown;
  const bin = await bytes(weights);
  const tfModel = fromTfjsArtifacts(json, new Uint8Array(bin), { source: "weights.bin" });
  predict(tfModel).forEach((p, k) => {
    close(p, probs[k], 1e-6, 1e-9, `TF.js model p_${k}`);
  });
  assertNoErrors(page);
});

const OTHER_MODEL =
  "a .handprop file of another zoo model loads from the file input and is explained; a bad file is an error";

test(OTHER_MODEL, { skip: SKIP_E2E }, async () => {
  const other = buildModel("cnn-small", { seed: 2 });
  const octets = "application/octet-stream";
  const smallFile = { name: "small.handprop", mimeType: octets, buffer: Buffer.from(modelToFile(other)) };
  await page.setInputFiles("#bw-file", smallFile);
  await page.waitForFunction(() => {
    const text = document.getElementById("bw-share-status")!.textContent ?? "";
    return text.includes("loaded small");
  });
  assert.equal(await page.locator("#bw-tensor option[value='p:7:weight']").count(), 1, "cnn-small's Dense is layer 7");
  const tr = await nodeTrace(float64Copy(other, (c) => sequentialFromConfig(c)));
  for (const ref of [largest(tr, { kind: "param", layer: 3, param: "weight" }), largest(tr, { kind: "act", t: 2 })]) {
    await pick(ref);
    const s = await shown();
    close(s.value, explain(tr, ref).value, 1e-9, 1e-13, `cnn-small ${JSON.stringify(ref)}`);
    close(s.fd, s.value, 1e-5, 1e-8, `cnn-small ${JSON.stringify(ref)}: finite difference`);
  }
  const broken = { name: "broken.handprop", mimeType: octets, buffer: Buffer.from("HANDPROP, not really") };
  await page.setInputFiles("#bw-file", broken);
  await page.waitForFunction(() => document.getElementById("bw-share-status")!.dataset.state === "error");
  assert.match((await page.textContent("#bw-share-status")) ?? "", /broken\.handprop/);
  assertNoErrors(page);
});

const WATCH = "training you can watch: per-layer gradient norms and update ratios every step, loss going down";

test(WATCH, { skip: SKIP_E2E }, async () => {
  await page.fill("#bw-seed", "1");
  await page.click("#bw-fresh");
  await page.fill("#bw-steps", "60");
  await page.click("#bw-train");
  await page.waitForFunction(() => Number(document.getElementById("bw-train-status")!.dataset.steps) >= 5);
  const lag = await page.evaluate(
    () =>
      new Promise<number>((resolve) => {
        const t0 = performance.now();
        setTimeout(() => {
          resolve(performance.now() - t0);
        }, 0);
      }),
  );
  assert.ok(lag < 500, `the page answered after ${lag.toFixed(0)} ms while training`);
  const done = (): boolean => document.getElementById("bw-train-status")!.dataset.state === "done";
  await page.waitForFunction(done, null, { timeout: 60000 });
  const d = await page.evaluate(() => {
    const { steps, firstLoss, lastLoss, gradNorms, updateRatios } = document.getElementById("bw-train-status")!.dataset;
    return { steps, firstLoss, lastLoss, gradNorms, updateRatios };
  });
  assert.equal(d.steps, "60");
  const norms = JSON.parse(d.gradNorms ?? "[]") as number[];
  const ratios = JSON.parse(d.updateRatios ?? "[]") as number[];
  assert.equal(norms.length, 5, "two Conv2D and three Dense layers");
  assert.ok(
    norms.every((v) => Number.isFinite(v) && v > 0),
    `gradient norms ${norms.join(", ")}`,
  );
  assert.ok(
    ratios.every((v) => v > 0 && v < 1),
    `update ratios ${ratios.join(", ")}`,
  );
  assert.ok(Number(d.lastLoss) < Number(d.firstLoss), `batch loss went from ${d.firstLoss} to ${d.lastLoss}`);
  assert.equal(await page.textContent("#bw-model-badge"), "trained here");
  assert.ok((await page.locator("#bw-chart-norms canvas").count()) > 0, "the gradient-norm chart is drawn");
  await site!.screenshot(page, "backward-trained", false);
  assertNoErrors(page);
});

test("page 3 fits a 400 px wide screen", { skip: SKIP_E2E }, async () => {
  await page.setViewportSize({ width: 400, height: 800 });
  await page.waitForFunction(() => document.documentElement.clientWidth === 400);
  const fits = (): boolean => document.documentElement.scrollWidth <= 400;
  await page.waitForFunction(fits, null, { timeout: 3000 }).catch(() => undefined);
  const width = await page.evaluate(() => document.documentElement.scrollWidth);
  assert.ok(width <= 400, `page is ${width}px wide at a 400px viewport`);
  await site!.screenshot(page, "backward-narrow");
  assertNoErrors(page);
});

const RESIDUAL =
  "resnet-mini (a graph model) loads from a .handprop file; behind a residual connection the page shows the fan-out " +
  "sum and Add's copy, equal to the library's backward and a finite difference";

test(RESIDUAL, { skip: SKIP_E2E }, async () => {
  const resnet = buildModel("resnet-mini", { seed: 5 });
  const octets = "application/octet-stream";
  const file = { name: "resnet.handprop", mimeType: octets, buffer: Buffer.from(modelToFile(resnet)) };
  await page.setInputFiles("#bw-file", file);
  await page.waitForFunction(
    () => (document.getElementById("bw-share-status")!.textContent ?? "").includes("loaded resnet"),
    null,
    { timeout: 30000 },
  );
  const tr = await nodeTrace(copy64(resnet));
  const wanted = residualElements(tr).filter((e) => e.what.startsWith("add") || e.what.startsWith("fan-out"));
  for (const { what, ref } of wanted) {
    await pick(ref);
    const s = await shown();
    const e = explain(tr, ref);
    assert.equal(s.rule, e.rule, what);
    close(s.value, e.value, 1e-9, 1e-13, `resnet-mini ${what}: page vs library backward`);
    close(s.sum, s.value, 1e-9, 1e-13, `resnet-mini ${what}: Σ terms vs backward`);
    close(s.fd, s.value, 1e-5, 1e-8, `resnet-mini ${what}: finite difference`);
    if (e.rule === "fan-out") {
      // both readers' gradients are shown, one row each, next to their sum
      const rows = await page.$$eval("#bw-derivation table tr", (trs) => trs.slice(1).map((r) => r.textContent ?? ""));
      assert.equal(rows.length, 2, "one term per reader of the tensor");
      for (const row of rows) assert.match(row, /δ\^\(/);
    }
  }
  // the graph model survives IndexedDB → reload → load (model format version 2)
  const probs = async (): Promise<number[]> =>
    JSON.parse((await page.getAttribute("#bw-summary", "data-probs")) ?? "[]") as number[];
  const ok = (words: string): Promise<unknown> =>
    page.waitForFunction((w) => {
      const el = document.getElementById("bw-share-status")!;
      return el.dataset.state === "ok" && (el.textContent ?? "").includes(w);
    }, words);
  const before = await probs();
  await page.click("#bw-save-idb");
  await ok("saved in this browser");
  await page.reload({ waitUntil: "load" });
  await page.waitForSelector("body[data-ready='true']");
  await page.click("#bw-load-idb");
  await ok("loaded the model saved");
  assert.deepEqual(await probs(), before);
  assert.equal(await page.locator("#bw-tensor option[value='a:1']").count(), 1);
  assertNoErrors(page);
});
