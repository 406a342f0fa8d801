// Page 2: draw a digit, see it classified and what each layer makes of it; train the model in a
// Web Worker (worker.ts) and watch the page's copy of the weights improve as snapshots arrive.

import "../style.css";
import { Model, argmax, buildModel, loadModelFromUrl, modelFromFile, normalizationFromTraining } from "handprop";
import type { LoadedModel, NDArray, Sequential } from "handprop";
import { byId, h, setText } from "../dom.ts";
import { LineChart } from "../chart.ts";
import { loadSplit, type DigitSet } from "./data.ts";
import { DrawingPad } from "./draw.ts";
import {
  forwardAll,
  freshModel,
  fromSnapshot,
  loadPretrained,
  MNIST_STANDARDIZE,
  setWeights,
  snapshot,
  softmax,
  toInput,
  type Normalization,
} from "./model.ts";
import type { ModelSnapshot } from "./protocol.ts";
import type { FromWorker, ToWorker } from "./protocol.ts";
import { paint, range } from "./viz.ts";

const dataUrl = new URL("data/", document.baseURI).href;

let model: Sequential = freshModel(0);
let normalization: Normalization = MNIST_STANDARDIZE;
let pretrained: { snap: ModelSnapshot; normalization: Normalization; label: string } | null = null;
let input: ArrayLike<number> | null = null; // the current 28×28 digit, values in [0, 255]
let testSet: DigitSet | null = null;
let worker: Worker | null = null;
let workerReady: Promise<void> | null = null; // resolves when the worker says it is listening
let training = false;
let epochsDone = 0; // epochs completed across training runs since the last weight reset
const history = {
  x: [] as number[],
  loss: [] as (number | null)[],
  acc: [] as (number | null)[],
  test: [] as (number | null)[],
};

// ---------------------------------------------------------------- prediction and feature maps

const bars: { bar: HTMLElement; pct: HTMLElement }[] = [];
function buildBars(): void {
  const root = byId("bars");
  for (let d = 0; d < 10; d++) {
    const bar = h("div", { class: "bar", style: "width: 0%" });
    const pct = h("span", { class: "pct" }, "");
    root.append(h("span", {}, String(d)), h("div", { class: "track" }, bar), pct);
    bars.push({ bar, pct });
  }
}

/** Layers whose kernels and outputs the page shows: a convolution and what follows it (activation, BN). */
const CONVOLUTIONS = new Set(["Conv2D", "DepthwiseConv2D"]);
/** The most filters per layer the page draws: a deep layer's 64 × 64 kernels would be 4,096 canvases. */
const MAX_FILTERS = 16;
const MAX_FILTER_CHANNELS = 8;

interface Stage {
  label: string;
  layer: number;
}

/**
 * Which layer outputs to show: each conv (after its activation) and each pooling layer; for a graph
 * model (resnet-mini), every node whose output is image-shaped (C, H, W), in execution (topological) order.
 */
function stagesOf(m: Sequential): Stage[] {
  const stages: Stage[] = [];
  if (m instanceof Model) {
    const shapes = m.build([1, 28, 28]);
    m.nodes.forEach((n, k) => {
      if (shapes[k].length === 3) stages.push({ label: `${n.name} (${n.layer.type})`, layer: k });
    });
    return stages;
  }
  let conv = 0;
  let pool = 0;
  m.layers.forEach((l, i) => {
    if (CONVOLUTIONS.has(l.type)) {
      let end = i;
      const names = [`${l.type === "Conv2D" ? "conv" : "dwconv"}${++conv}`];
      while (
        end + 1 < m.layers.length &&
        ["ReLU", "LeakyReLU", "Tanh", "Sigmoid", "BatchNorm2D"].includes(m.layers[end + 1].type)
      ) {
        end++;
        names.push(m.layers[end].type.toLowerCase());
      }
      stages.push({ label: names.join(" → "), layer: end });
    } else if (l.type === "MaxPool2D" || l.type === "AvgPool2D") {
      stages.push({ label: `pool${++pool} (${l.type === "MaxPool2D" ? "max" : "avg"})`, layer: i });
    }
  });
  return stages;
}

let stageViews: { stage: Stage; title: HTMLElement; canvases: HTMLCanvasElement[] }[] = [];

function buildFeatureMaps(): void {
  const root = byId("fmaps");
  root.replaceChildren();
  const shapes = model.build([1, 28, 28]);
  stageViews = stagesOf(model).map((stage) => {
    const [c, hh, ww] = shapes[stage.layer];
    const title = h("div", { class: "fmap-title" });
    title.innerHTML = `<span class="mono">${stage.label}</span> · ${c} maps of ${hh}×${ww}`;
    const grid = h("div", { class: `fmap-grid${hh <= 12 ? " small" : ""}` });
    const canvases: HTMLCanvasElement[] = [];
    for (let k = 0; k < c; k++) {
      const cv = h("canvas", { class: "px", width: ww, height: hh, title: `${stage.label}, channel ${k}` });
      canvases.push(cv);
      grid.append(cv);
    }
    root.append(h("div", { class: "fmap-row" }, title, grid));
    return { stage, title, canvases };
  });
}

function renderFilters(): void {
  const root = byId("filters");
  root.replaceChildren();
  let n = 0;
  model.layers.forEach((l, i) => {
    if (!CONVOLUTIONS.has(l.type)) return;
    n++; // numbered as in the feature maps' titles, 1×1 convolutions included
    const w = l.params()[0].value; // (out, in / groups, kh, kw): a depthwise kernel has one input channel
    const [o, c, kh, kw] = w.shape;
    if (kh * kw === 1) return; // a 1×1 kernel is one number per channel pair: nothing to look at
    const name = model instanceof Model ? model.nodes[i].name : `${l.type === "Conv2D" ? "conv" : "dwconv"}${n}`;
    const shownO = Math.min(o, MAX_FILTERS);
    const shownC = Math.min(c, MAX_FILTER_CHANNELS);
    const [lo, hi] = range(w.data);
    const m = Math.max(Math.abs(lo), Math.abs(hi));
    const title = h("div", { class: "fmap-title" });
    const layout = c > 1 ? " (rows: input channel, columns: filter)" : "";
    const subset = shownO < o || shownC < c ? `; the first ${shownO} filters × ${shownC} channels shown` : "";
    title.innerHTML = `<span class="mono">${name}</span> · ${o} filters of ${c}×${kh}×${kw}${layout}${subset}`;
    const cols = c === 1 ? Math.min(shownO, 8) : shownO;
    const grid = h("div", {
      class: "filters-grid",
      style: `grid-template-columns: repeat(${cols}, minmax(0, ${c === 1 ? "48px" : "1fr"}))`,
    });
    const size = kh * kw;
    for (let ci = 0; ci < shownC; ci++) {
      for (let oi = 0; oi < shownO; oi++) {
        const cv = h("canvas", { class: "px", title: `${name} filter ${oi}, input channel ${ci}` });
        paint(cv, w.data, (oi * c + ci) * size, kh, kw, -m, m, "diverging");
        grid.append(cv);
      }
    }
    root.append(h("div", { class: "fmap-row" }, title, grid));
  });
}

function classify(): void {
  const pred = byId("prediction");
  const preview = byId("preview", HTMLCanvasElement);
  if (!input) {
    setText(byId("pred-digit"), "–");
    setText(byId("pred-text"), "draw a digit");
    pred.dataset.digit = "";
    delete pred.dataset.probs;
    bars.forEach((b) => {
      b.bar.style.width = "0%";
      setText(b.pct, "");
    });
    paint(preview, new Uint8Array(784), 0, 28, 28, 0, 255, "gray");
    for (const v of stageViews)
      for (const cv of v.canvases)
        paint(cv, new Float32Array(cv.width * cv.height), 0, cv.height, cv.width, 0, 1, "viridis");
    return;
  }
  paint(preview, input, 0, 28, 28, 0, 255, "gray");
  // Layer by layer, keeping every output (each layer's buffer stays valid until its next forward).
  const outs: NDArray[] = forwardAll(model, toInput(input, normalization));
  const a = outs[outs.length - 1];
  const probs = Array.from(softmax(a.data));
  const best = argmax(probs);
  setText(byId("pred-digit"), String(best));
  setText(byId("pred-text"), `${(probs[best] * 100).toFixed(1)}% sure`);
  pred.dataset.digit = String(best);
  pred.dataset.probs = JSON.stringify(probs);
  bars.forEach((b, d) => {
    b.bar.style.width = `${(probs[d] * 100).toFixed(1)}%`;
    b.bar.classList.toggle("top", d === best);
    setText(b.pct, `${(probs[d] * 100).toFixed(1)}%`);
  });
  for (const v of stageViews) {
    const out = outs[v.stage.layer];
    const [, c, hh, ww] = out.shape;
    const [lo, hi] = range(out.data);
    for (let k = 0; k < c; k++) paint(v.canvases[k], out.data, k * hh * ww, hh, ww, Math.min(0, lo), hi, "viridis");
  }
}

let classifyQueued = false;
function queueClassify(): void {
  if (classifyQueued) return;
  classifyQueued = true;
  requestAnimationFrame(() => {
    classifyQueued = false;
    classify();
  });
}

// ---------------------------------------------------------------- model state

function describeModel(kind: "fresh" | "trained" | "pretrained", detail = ""): void {
  const badge = byId("model-badge");
  badge.classList.toggle("off", kind === "fresh");
  setText(badge, kind === "fresh" ? "untrained" : kind === "pretrained" ? "pretrained" : "trained here");
  const params = model.countParams().trainable.toLocaleString("en-US");
  const text = {
    fresh: `${model.name}, ${params} parameters, random weights (seed ${byId("seed", HTMLInputElement).value}): its guesses are noise until it is trained.`,
    trained: `${model.name}, ${params} parameters, trained in this browser${detail}.`,
    pretrained: `${model.name}, ${params} parameters, ${detail}.`,
  }[kind];
  setText(byId("model-status"), text);
}

function setModel(m: Sequential): void {
  model = m;
  byId("summary").textContent = model.summary([1, 28, 28]);
  buildFeatureMaps();
  renderFilters();
  queueClassify();
}

function resetHistory(): void {
  epochsDone = 0;
  history.x.length = history.loss.length = history.acc.length = history.test.length = 0;
  chart.setData([], [[], [], []]);
  for (const id of ["st-epoch", "st-batch", "st-loss", "st-acc", "st-test", "st-speed"]) setText(byId(id), "–");
  byId("progress").style.width = "0%";
  const st = byId("train-status");
  delete st.dataset.firstLoss;
  delete st.dataset.lastLoss;
  st.dataset.reports = "0";
  st.dataset.speeds = "";
  pendingProgress.length = 0;
}

function freshWeights(): void {
  const seed = Number(byId("seed", HTMLInputElement).value) || 0;
  const name = byId("model-name", HTMLSelectElement).value;
  normalization = MNIST_STANDARDIZE;
  setModel(name === "lenet5" ? freshModel(seed) : buildModel(name, { seed }));
  resetHistory();
  describeModel("fresh");
}

// ---------------------------------------------------------------- training in the worker

const CORES = Math.max(1, Math.floor(navigator.hardwareConcurrency || 1));

/** What the page says about the threads: how many, and that they change no result (or why only one). */
function describeThreads(threads: number, reason: string | null): void {
  const same = "the trained weights are bit-identical for every thread count";
  setText(
    byId("thread-note"),
    reason === null
      ? `Training runs the WebAssembly kernels on ${threads} thread${threads === 1 ? "" : "s"} inside the worker ` +
          `(${CORES} core${CORES === 1 ? "" : "s"} here); ${same}.`
      : `Training runs on ${threads} thread${threads === 1 ? "" : "s"}: ${reason}. Threads would change no ` +
          `result: ${same}.`,
  );
}

{
  const el = byId("threads", HTMLInputElement);
  el.max = String(CORES);
  el.value = String(crossOriginIsolated ? CORES : 1);
  el.disabled = !crossOriginIsolated;
  describeThreads(
    Number(el.value),
    crossOriginIsolated || CORES === 1
      ? null
      : "the page is not cross-origin isolated (served without COOP/COEP headers), so SharedArrayBuffer is unavailable",
  );
}

const chart = new LineChart(byId("train-chart"), {
  title: "Training",
  xLabel: "epoch",
  series: [
    { label: "loss", color: "#4f46e5", spanGaps: true, format: (v) => v.toFixed(3) },
    { label: "train acc", color: "#0f9d58", scale: "acc", spanGaps: true, format: (v) => `${(v * 100).toFixed(1)}%` },
    {
      label: "test acc",
      color: "#d9480f",
      scale: "acc",
      points: true,
      spanGaps: true,
      dash: [5, 4],
      format: (v) => `${(v * 100).toFixed(1)}%`,
    },
  ],
  scales: { y: {}, acc: { range: [0, 1] } },
  axes: [
    { scale: "y", label: "loss" },
    { scale: "acc", label: "accuracy", format: (v) => `${Math.round(v * 100)}%` },
  ],
  height: 230,
});

/**
 * Redraw the chart and the progress numbers at most every CHART_EVERY_MS: progress arrives every few
 * tens of milliseconds at full speed, and a redraw per report (style, layout and paint of the page) made
 * the page's main thread use about as much CPU as the training worker itself, CPU the worker's kernel
 * threads need (measured per thread in /proc during the speed test's rounds).
 */
const CHART_EVERY_MS = 250;
let chartTimer: ReturnType<typeof setTimeout> | null = null;
let chartDrawn = 0;
/** Progress reports not yet shown. */
const pendingProgress: Extract<FromWorker, { type: "progress" }>[] = [];
function drawChart(): void {
  chartTimer = null;
  chartDrawn = performance.now();
  chart.setData(history.x, [history.loss, history.acc, history.test]);
  if (pendingProgress.length === 0) return;
  const msg = pendingProgress[pendingProgress.length - 1];
  // The run's numbers as data attributes (the tests read them): first and last loss, the reports, and
  // every report's images/s, for whoever wants more than the latest.
  const st = byId("train-status");
  st.dataset.firstLoss ??= String(pendingProgress[0].loss);
  st.dataset.lastLoss = String(msg.loss);
  st.dataset.reports = String(Number(st.dataset.reports ?? "0") + pendingProgress.length);
  const speeds = pendingProgress.map((p) => p.imagesPerSecond.toFixed(1)).join(",");
  st.dataset.speeds = st.dataset.speeds ? `${st.dataset.speeds},${speeds}` : speeds;
  pendingProgress.length = 0;
  setText(byId("st-epoch"), String(epochsDone + msg.epoch + 1));
  setText(byId("st-batch"), `${msg.batch}/${msg.batches}`);
  setText(byId("st-loss"), msg.loss.toFixed(3));
  setText(byId("st-acc"), `${(msg.accuracy * 100).toFixed(1)}%`);
  setText(byId("st-speed"), `${Math.round(msg.imagesPerSecond)} img/s`);
  const total = Number(byId("epochs", HTMLInputElement).value) || 1;
  byId("progress").style.width = `${Math.min(100, ((msg.epoch + msg.batch / msg.batches) / total) * 100).toFixed(1)}%`;
}
/** Draw what is queued now (before state that the drawing reads, such as epochsDone, changes). */
function flushChart(): void {
  if (chartTimer === null) return;
  clearTimeout(chartTimer);
  drawChart();
}
function queueChart(): void {
  if (chartTimer !== null) return;
  chartTimer = setTimeout(drawChart, Math.max(0, chartDrawn + CHART_EVERY_MS - performance.now()));
}

function setTraining(on: boolean): void {
  training = on;
  const btn = byId("btn-train", HTMLButtonElement);
  setText(btn, on ? "■ Stop" : "▶ Train");
  btn.disabled = false;
  for (const el of [
    byId("btn-fresh", HTMLButtonElement),
    byId("btn-pretrained", HTMLButtonElement),
    byId("model-name", HTMLSelectElement),
  ])
    el.disabled = on;
  byId("threads", HTMLInputElement).disabled = on || !crossOriginIsolated;
  byId("train-status").dataset.state = on ? "training" : "idle";
}

function onWorkerMessage(msg: FromWorker): void {
  const st = byId("train-status");
  switch (msg.type) {
    case "ready":
      break;
    case "threads":
      setText(byId("st-threads"), msg.threads === msg.cores ? String(msg.threads) : `${msg.threads} of ${msg.cores}`);
      st.dataset.threads = String(msg.threads);
      describeThreads(msg.threads, msg.reason);
      break;
    case "loaded":
      setText(
        byId("model-status"),
        `Training on ${msg.train.toLocaleString("en-US")} images; testing on ${msg.test.toLocaleString("en-US")} after each epoch.`,
      );
      break;
    case "progress": {
      const x = epochsDone + msg.epoch + msg.batch / msg.batches;
      history.x.push(x);
      history.loss.push(msg.loss);
      history.acc.push(msg.accuracy);
      history.test.push(null);
      pendingProgress.push(msg);
      queueChart();
      break;
    }
    case "weights":
      setWeights(model, msg.weights);
      renderFilters();
      queueClassify();
      break;
    case "epoch": {
      const x = epochsDone + msg.epoch + 1;
      const n = history.x.length;
      if (n > 0 && history.x[n - 1] === x)
        history.test[n - 1] = msg.testAccuracy; // same x as the last progress report
      else {
        history.x.push(x);
        history.loss.push(null);
        history.acc.push(null);
        history.test.push(msg.testAccuracy);
      }
      queueChart();
      setText(byId("st-test"), `${(msg.testAccuracy * 100).toFixed(1)}%`);
      st.dataset.testAccuracy = String(msg.testAccuracy);
      if (msg.epoch < 0) break; // the evaluation before the first epoch
      describeModel(
        "trained",
        `: ${x} epoch${x === 1 ? "" : "s"}, ${(msg.testAccuracy * 100).toFixed(1)}% on the 1,000 test images (${msg.seconds.toFixed(1)} s for the last epoch)`,
      );
      break;
    }
    case "done": {
      flushChart();
      const last = history.x.length > 0 ? history.x[history.x.length - 1] : 0;
      epochsDone = Math.ceil(last - 1e-9);
      setTraining(false);
      if (msg.stopped)
        describeModel(
          "trained",
          `, stopped after ${last.toFixed(2)} epochs (the page keeps the weights it last received)`,
        );
      st.dataset.state = msg.stopped ? "stopped" : "done";
      break;
    }
    case "error":
      setTraining(false);
      setText(byId("model-status"), `Training failed: ${msg.message}`);
      st.dataset.state = "error";
      break;
  }
}

function startTraining(): void {
  if (training) {
    const stopMsg: ToWorker = { type: "stop" };
    worker?.postMessage(stopMsg);
    byId("btn-train", HTMLButtonElement).disabled = true;
    return;
  }
  const num = (id: string, fallback: number) => {
    const v = Number(byId(id, HTMLInputElement).value);
    return Number.isFinite(v) && v > 0 ? v : fallback;
  };
  if (!worker) {
    const w = new Worker(new URL("./worker.ts", import.meta.url), { type: "module" });
    workerReady = new Promise<void>((resolve) => {
      w.addEventListener("message", (e: MessageEvent<FromWorker>) => {
        if (e.data.type === "ready") resolve();
      });
    });
    w.onmessage = (e: MessageEvent<FromWorker>) => {
      onWorkerMessage(e.data);
    };
    w.onerror = (e) => {
      setTraining(false);
      setText(byId("model-status"), `The training worker failed: ${e.message}`);
    };
    worker = w;
  }
  const snap = snapshot(model);
  const req: ToWorker = {
    type: "train",
    model: snap,
    normalization,
    dataUrl,
    epochs: Math.round(num("epochs", 1)),
    lr: num("lr", 0.002),
    batchSize: Math.round(num("batch", 32)),
    seed: Math.round(Number(byId("seed", HTMLInputElement).value) || 0),
    threads: Math.round(num("threads", CORES)),
  };
  const target = worker;
  void workerReady?.then(() => {
    target.postMessage(
      req,
      snap.weights.map((w) => w.buffer),
    );
  });
  setTraining(true);
  setText(byId("model-status"), "Loading the training images…");
}

// ---------------------------------------------------------------- start

const pad = new DrawingPad(byId("pad", HTMLCanvasElement), () => {
  byId("pad-hint").hidden = true;
  setText(byId("sample-label"), "");
  input = pad.toMnist();
  queueClassify();
});

buildBars();
setModel(model);
describeModel("fresh");
resetHistory();

byId("btn-clear").addEventListener("click", () => {
  pad.clear();
  byId("pad-hint").hidden = false;
  setText(byId("sample-label"), "");
  input = null;
  queueClassify();
});
byId("btn-sample").addEventListener("click", () => {
  void (async () => {
    testSet ??= await loadSplit(dataUrl, "test");
    const k = Math.floor(Math.random() * testSet.count);
    input = testSet.images.slice(k * 784, k * 784 + 784);
    pad.showDigit(input);
    byId("pad-hint").hidden = true;
    setText(byId("sample-label"), `test image #${k}, label ${testSet.labels[k]}`);
    queueClassify();
  })().catch((e: unknown) => {
    setText(byId("sample-label"), `could not load the test images: ${e instanceof Error ? e.message : String(e)}`);
  });
});
byId("btn-train").addEventListener("click", startTraining);
byId("btn-fresh").addEventListener("click", freshWeights);
byId("model-name").addEventListener("change", freshWeights);
/** The largest model file the page reads. */
const MAX_FILE_BYTES = 64 * 1024 * 1024;

/** Show a model read from a `.handprop` file or URL (`name` goes into messages); errors are shown on the page. */
async function showModelFile(name: string, read: () => Promise<LoadedModel>): Promise<void> {
  const status = byId("model-status");
  try {
    const loaded = await read();
    const shapes = loaded.model.build([1, 28, 28]);
    const out = shapes[shapes.length - 1];
    if (out.length !== 1 || out[0] !== 10) {
      throw new Error(`expected 10 outputs for a 1×28×28 input, got (${out.join(", ")})`);
    }
    const scaling = normalizationFromTraining(loaded.training, name).normalization;
    loaded.model.setDtype("float32");
    normalization = scaling;
    setModel(loaded.model);
    resetHistory();
    describeModel("pretrained", `loaded from ${name}`);
    status.dataset.state = "loaded";
  } catch (e) {
    status.dataset.state = "error";
    setText(status, `${name}: ${e instanceof Error ? e.message : String(e)}`);
  }
}

byId("model-file", HTMLInputElement).addEventListener("change", (ev) => {
  const el = ev.target as HTMLInputElement;
  const file = el.files?.[0];
  if (!file) return;
  void showModelFile(file.name, async () => {
    if (file.size > MAX_FILE_BYTES) throw new Error(`${file.size} bytes, more than the 64 MiB this page accepts`);
    return modelFromFile(new Uint8Array(await file.arrayBuffer()), file.name);
  }).finally(() => {
    el.value = "";
  });
});
/**
 * mnist.html?model=URL loads that `.handprop` file or model folder's model.json (relative to the page;
 * the library's loadModelFromUrl, bounded) instead of the pretrained model.
 */
const modelUrl = new URLSearchParams(location.search).get("model");
if (modelUrl !== null) {
  const url = new URL(modelUrl, document.baseURI);
  setText(byId("model-status"), `Loading ${url.href}…`);
  void showModelFile(url.href, () => loadModelFromUrl(url.href, { maxBytes: MAX_FILE_BYTES }));
}
byId("btn-pretrained").addEventListener("click", () => {
  if (!pretrained) return;
  byId("model-name", HTMLSelectElement).value = "lenet5";
  normalization = pretrained.normalization;
  setModel(fromSnapshot(pretrained.snap));
  resetHistory();
  describeModel("pretrained", pretrained.label);
});

loadPretrained(document.baseURI)
  .then((p) => {
    if (!p) return;
    pretrained = { snap: snapshot(p.model), normalization: p.normalization, label: p.label };
    byId("btn-pretrained").hidden = false;
    if (modelUrl === null) byId("btn-pretrained").click(); // ?model=URL asked for another model
  })
  .catch((e: unknown) => {
    if (modelUrl !== null) return; // the status line is the asked-for model's
    setText(
      byId("model-status"),
      `The pretrained model could not be loaded (${e instanceof Error ? e.message : String(e)}); train one here instead.`,
    );
  });
