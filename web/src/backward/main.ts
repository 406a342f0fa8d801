// Page 3: the backward explainer. A LeNet-5 (the page-2 model) runs one digit forward and backward in
// float64 (engine.ts); any element can be picked — by clicking a map, a logit or a kernel, or with the
// keyboard-reachable form — and its gradient is derived term by term (derivation.md §2) next to the
// library's value and a finite difference. The model can be kept (IndexedDB, .handprop file) and exported.

import "../style.css";
import "./backward.css";
import {
  Conv2D,
  Dense,
  downloadModel,
  layerFromConfig,
  loadModelFromIndexedDB,
  Model,
  modelFromConfig,
  modelFromFile,
  normalizationFromTraining,
  saveModelToIndexedDB,
  sequentialFromConfig,
  toOnnx,
  toTfjsArtifacts,
  type SaveMeta,
  type Sequential,
} from "handprop";
import { byId, fmtSig, h, setText } from "../dom.ts";
import { renderTex, texFactor, texNum } from "../tex.ts";
import { loadSplit, type DigitSet } from "../mnist/data.ts";
import { DrawingPad } from "../mnist/draw.ts";
import { freshModel, loadPretrained, MNIST_STANDARDIZE, toInput, type Normalization } from "../mnist/model.ts";
import { paint, range } from "../mnist/viz.ts";
import { LineChart } from "../chart.ts";
import { watchTraining, weightedLayers, type StepRecord } from "./watch.ts";
import {
  explain,
  finiteDifference,
  oneSided,
  float64Copy,
  norm,
  topTerms,
  trace,
  unravel,
  type Explanation,
  type Ref,
  type Trace,
} from "./engine.ts";

const dataUrl = new URL("data/", document.baseURI).href;
const IDB_KEY = "backward-page";
/** Derivations with at most this many terms are written out in full; longer ones are summarised. */
const FULL_TERMS = 12;
const TOP_TERMS = 6;
/** The largest model file the page reads (LeNet-5 is 0.25 MB). */
const MAX_FILE_BYTES = 64 * 1024 * 1024;

let model: Sequential = freshModel(0);
let normalization: Normalization = MNIST_STANDARDIZE;
let pretrained: { model: Sequential; normalization: Normalization } | null = null;
let pixels: ArrayLike<number> = new Float64Array(784);
let testSet: DigitSet | null = null;
let tr: Trace | null = null;
let selected: Ref = { kind: "act", t: 12, index: 0 };

// ---------------------------------------------------------------- naming

/** A float64 copy of a Sequential or of a graph Model (resnet-mini), same weights. */
function copy64(m: Sequential): Sequential {
  return float64Copy(m, (c) => (m instanceof Model ? modelFromConfig(c, layerFromConfig) : sequentialFromConfig(c)));
}

function layerName(l: number): string {
  const layer = model.layers[l];
  // graph models: the node's name too, since the layers no longer form one chain
  return model instanceof Model ? `${l} ${layer.type} '${model.nodes[l].name}'` : `${l} ${layer.type}`;
}

function tensorLabel(t: number): string {
  if (t === 0) return "input x";
  if (tr && t === tr.acts.length - 1) return `logits z (out of ${layerName(t - 1)})`;
  return `a${t} (out of ${layerName(t - 1)})`;
}

function refKey(r: Ref): string {
  return r.kind === "act" ? `a:${r.t}` : `p:${r.layer}:${r.param}`;
}

function shapeOf(r: Ref): number[] {
  if (!tr) return [];
  if (r.kind === "act") return tr.acts[r.t].shape.slice(1);
  const layer = tr.model.layers[r.layer] as Conv2D | Dense;
  const p = r.param === "weight" ? layer.weight : layer.bias!;
  return p.value.shape.slice();
}

function refTex(r: Ref): string {
  const ix = unravel(r.index, shapeOf(r)).join(",");
  if (r.kind === "param") return `${r.param === "weight" ? "W" : "b"}^{(${r.layer})}_{${ix}}`;
  if (tr && r.t === tr.acts.length - 1) return `z_{${ix}}`;
  return r.t === 0 ? `x_{${ix}}` : `a^{(${r.t})}_{${ix}}`;
}

// ---------------------------------------------------------------- forward + backward

function recompute(): void {
  const m64 = copy64(model);
  const label = Number(byId("bw-label", HTMLSelectElement).value);
  tr = trace(m64, toInput(pixels, normalization), label);
  const z = tr.acts[tr.acts.length - 1].data;
  let pred = 0;
  for (let k = 1; k < z.length; k++) if (z[k] > z[pred]) pred = k;
  const summary = byId("bw-summary");
  summary.dataset.loss = String(tr.loss);
  summary.dataset.predicted = String(pred);
  summary.dataset.probs = JSON.stringify(Array.from(tr.probs));
  summary.dataset.input = JSON.stringify(Array.from(tr.acts[0].data));
  const lossText = `loss L = −log p_y = ${fmtSig(tr.loss, 5)} for y = ${label}`;
  setText(summary, `predicted ${pred} (p = ${tr.probs[pred].toFixed(3)}); ${lossText}`);
  fillTensorSelect();
  drawInputs();
  drawLogits();
  drawMaps();
  drawNorms();
  show(selected);
}

// ---------------------------------------------------------------- element picker

/** The architecture the picker and charts were built for: a loaded model may have other layers. */
let builtFor = "";

function fillTensorSelect(): void {
  const sel = byId("bw-tensor", HTMLSelectElement);
  const arch = JSON.stringify(model.config().layers);
  if (arch === builtFor || !tr) return;
  builtFor = arch;
  sel.replaceChildren();
  selected = { kind: "act", t: tr.acts.length - 1, index: tr.label };
  const option = (value: string, text: string, shape: readonly number[]): HTMLOptionElement =>
    h("option", { value }, `∂L/∂ ${text} (${shape.join("×")})`);
  for (let t = 0; t < tr.acts.length; t++) sel.append(option(`a:${t}`, tensorLabel(t), tr.acts[t].shape.slice(1)));
  model.layers.forEach((layer, l) => {
    if (!(layer instanceof Conv2D || layer instanceof Dense)) return;
    sel.append(option(`p:${l}:weight`, `weight of ${layerName(l)}`, layer.weight.value.shape));
    if (layer.bias) sel.append(option(`p:${l}:bias`, `bias of ${layerName(l)}`, layer.bias.value.shape));
  });
}

function refFromForm(): Ref {
  const [kind, a, b] = byId("bw-tensor", HTMLSelectElement).value.split(":");
  const index = Math.max(0, Math.floor(Number(byId("bw-index", HTMLInputElement).value) || 0));
  const ref: Ref =
    kind === "a"
      ? { kind: "act", t: Number(a), index }
      : { kind: "param", layer: Number(a), param: b as "weight" | "bias", index };
  const size = shapeOf(ref).reduce((p, q) => p * q, 1);
  ref.index = Math.min(index, size - 1);
  return ref;
}

function select(r: Ref): void {
  selected = r;
  byId("bw-tensor", HTMLSelectElement).value = refKey(r);
  byId("bw-index", HTMLInputElement).value = String(r.index);
  show(r);
}

// ---------------------------------------------------------------- the derivation

function show(r: Ref): void {
  if (!tr) return;
  const box = byId("bw-derivation");
  let e: Explanation;
  try {
    e = explain(tr, r);
  } catch (err) {
    box.replaceChildren(h("p", { class: "small" }, (err as Error).message));
    return;
  }
  const fd = finiteDifference(tr, r);
  const name = refTex(r);
  const shape = shapeOf(r);
  box.dataset.value = String(e.value);
  box.dataset.sum = String(e.sum);
  box.dataset.fd = String(fd);
  box.dataset.rule = e.rule;
  box.dataset.ref = JSON.stringify(r);
  const formula = h("div");
  renderTex(formula, e.formula);
  const numeric = h("div");
  renderTex(numeric, numericTex(e, name));
  const parts: Node[] = [
    h(
      "p",
      { class: "small muted" },
      `${r.kind === "act" ? tensorLabel(r.t) : `${r.param} of ${layerName(r.layer)}`}, ` +
        `element (${unravel(r.index, shape).join(", ")}) of (${shape.join("×")}) — rule: ${e.rule}`,
    ),
    formula,
    h("p", { class: "small" }, e.why),
    numeric,
  ];
  if (e.rule === "softmax-ce") parts.push(softmaxTable());
  const checks = h(
    "div",
    { class: "bw-checks" },
    h("span", {}, "library backward()"),
    h("span", { class: "mono", id: "bw-value" }, fmtSig(e.value, 12)),
    h("span", {}, `Σ of the ${e.terms.length} term${e.terms.length === 1 ? "" : "s"}`),
    h("span", { class: "mono", id: "bw-sum" }, fmtSig(e.sum, 12)),
    h("span", {}, "finite difference"),
    h("span", { class: "mono", id: "bw-fd" }, `${fmtSig(fd, 8)}  (central, ε = 10⁻⁶, float64)`),
  );
  parts.push(checks);
  const sides = oneSided(tr, r);
  box.dataset.kink = String(sides.kink);
  if (sides.kink) {
    parts.push(
      h(
        "p",
        { class: "small", id: "bw-kink" },
        "A kink: moving this element by ±10⁻⁶ changes the loss at different rates " +
          `(left ${fmtSig(sides.left, 6)}, right ${fmtSig(sides.right, 6)}) — somewhere downstream a ReLU input ` +
          "crosses 0 or a pooling window has tied maxima. Backward returns one of the one-sided derivatives (a " +
          "subgradient); the central difference averages them.",
      ),
    );
  }
  if (e.extra?.tie === true) {
    parts.push(
      h(
        "p",
        { class: "small muted" },
        "The window's maximum is tied (e.g. equal values over a blank background): the loss has a kink here, the " +
          "library routes the gradient to the first maximum, and the central finite difference sees the average of " +
          "the two sides.",
      ),
    );
  }
  parts.push(termTable(e));
  box.replaceChildren(...parts);
  highlight(e);
  for (const b of document.querySelectorAll<HTMLButtonElement>("#bw-logits button")) {
    const pressed = r.kind === "act" && r.t === tr.acts.length - 1 && Number(b.dataset.k) === r.index;
    b.setAttribute("aria-pressed", String(pressed));
  }
}

/** Two terms per line, so a derivation fits a narrow card. */
const PER_LINE = 2;

function numericTex(e: Explanation, name: string): string {
  const term = (t: Explanation["terms"][number]): string =>
    t.factorTex === "1"
      ? texFactor(t.delta)
      : t.deltaTex === "1"
        ? texFactor(t.factor)
        : `${texFactor(t.factor)}\\cdot${texFactor(t.delta)}`;
  let pieces: string[];
  if (e.terms.length <= FULL_TERMS) pieces = e.terms.map(term);
  else {
    const { top, rest, restSum } = topTerms(e.terms, TOP_TERMS);
    pieces = [...top.map(term), `\\underbrace{${texNum(restSum, 4)}}_{\\text{the other ${rest} terms}}`];
  }
  if (pieces.length === 0) pieces = ["0"];
  const lines: string[] = [];
  for (let i = 0; i < pieces.length; i += PER_LINE) lines.push(pieces.slice(i, i + PER_LINE).join(" + "));
  const lhs = `\\frac{\\partial L}{\\partial ${name}}`;
  const body = lines.map((l, i) => (i === 0 ? `${lhs} &= ${l}` : `&\\quad + ${l}`)).join(" \\\\ ");
  return `\\begin{aligned} ${body} \\\\ &= ${texNum(e.sum, 8)} \\end{aligned}`;
}

function softmaxTable(): HTMLElement {
  const t = tr!;
  const z = t.acts[t.acts.length - 1].data;
  const g = t.grads[t.grads.length - 1].data;
  const row = (label: string, f: (k: number) => string): HTMLElement =>
    h("tr", {}, h("th", {}, label), ...Array.from({ length: 10 }, (_, k) => h("td", {}, f(k))));
  return h(
    "table",
    { "class": "section-gap", "aria-label": "the ten probabilities" },
    row("k", (k) => String(k)),
    row("z_k", (k) => fmtSig(z[k], 3)),
    row("p_k", (k) => fmtSig(t.probs[k], 3)),
    row("onehot", (k) => (k === t.label ? "1" : "0")),
    row("p − onehot", (k) => fmtSig(g[k], 3)),
  );
}

function termTable(e: Explanation): HTMLElement {
  const shown = e.terms.length <= FULL_TERMS ? e.terms : topTerms(e.terms, TOP_TERMS).top;
  const head = h("tr", {}, ...["factor", "value", "upstream δ", "value", "product", ""].map((c) => h("th", {}, c)));
  const rows = shown.map((t) => {
    const up = t.upstream;
    return h(
      "tr",
      {},
      h("td", {}, plain(t.factorTex)),
      h("td", {}, fmtSig(t.factor, 5)),
      h("td", {}, plain(t.deltaTex)),
      h("td", {}, fmtSig(t.delta, 5)),
      h("td", {}, fmtSig(t.product, 5)),
      h("td", {}, up ? derivButton(up) : ""),
    );
  });
  return h(
    "details",
    { class: "section-gap", open: true },
    h(
      "summary",
      { class: "small muted" },
      e.terms.length <= FULL_TERMS ? "the terms" : `the ${TOP_TERMS} largest of ${e.terms.length} terms`,
    ),
    h("table", {}, head, ...rows),
  );
}

/** A term's TeX as plain text for the table: x_{0,3,4} → x[0,3,4], \\delta → δ. */
function plain(tex: string): string {
  return tex
    .replace(/\\text\{([^}]*)\}/g, "$1")
    .replace(/\\delta/g, "δ")
    .replace(/_\{([^}]*)\}/g, "[$1]")
    .replace(/[\\{}]/g, "");
}

function derivButton(up: Ref): HTMLButtonElement {
  const b = h("button", { title: "derive this upstream gradient in turn" }, "derive δ");
  b.addEventListener("click", () => {
    select(up);
  });
  return b;
}

// ---------------------------------------------------------------- pictures

function drawInputs(): void {
  const t = tr!;
  const x = t.acts[0].data;
  const [lo, hi] = range(x);
  paint(byId("bw-digit", HTMLCanvasElement), x, 0, 28, 28, lo, hi, "gray");
  const g = t.grads[0].data;
  const [glo, ghi] = range(g);
  paint(byId("bw-saliency", HTMLCanvasElement), g, 0, 28, 28, 0, Math.max(Math.abs(glo), Math.abs(ghi)), "diverging");
}

function drawLogits(): void {
  const t = tr!;
  const z = t.acts[t.acts.length - 1].data;
  const g = t.grads[t.grads.length - 1].data;
  const box = byId("bw-logits");
  box.replaceChildren(
    ...Array.from({ length: 10 }, (_, k) => {
      const attrs = {
        "data-k": k,
        "class": k === t.label ? "target" : undefined,
        "aria-pressed": "false",
        "title": `explain ∂L/∂z_${k}`,
      };
      const b = h("button", attrs, `${k}: z ${fmtSig(z[k], 3)}`, h("br"), `∂ ${fmtSig(g[k], 3)}`);
      b.addEventListener("click", () => {
        select({ kind: "act", t: t.acts.length - 1, index: k });
      });
      return b;
    }),
  );
}

/** Map a click on a canvas showing an h×w grid to a cell. */
function cellAt(canvas: HTMLCanvasElement, ev: MouseEvent, rows: number, cols: number): [number, number] {
  const r = canvas.getBoundingClientRect();
  const i = Math.min(rows - 1, Math.max(0, Math.floor(((ev.clientY - r.top) / r.height) * rows)));
  const j = Math.min(cols - 1, Math.max(0, Math.floor(((ev.clientX - r.left) / r.width) * cols)));
  return [i, j];
}

/** Where each tensor's channels are drawn: canvases (activation, gradient) per channel, for highlighting. */
const mapCanvases = new Map<number, { act: HTMLCanvasElement; grad: HTMLCanvasElement }[]>();
const kernelCanvases = new Map<number, HTMLCanvasElement[]>();

function drawMaps(): void {
  const t = tr!;
  const box = byId("bw-maps");
  mapCanvases.clear();
  kernelCanvases.clear();
  const sections: HTMLElement[] = [];
  for (let k = 1; k < t.acts.length; k++) {
    const shape = t.acts[k].shape.slice(1);
    const a = t.acts[k].data;
    const g = t.grads[k].data;
    const [alo, ahi] = range(a);
    const [glo, ghi] = range(g);
    const gmax = Math.max(Math.abs(glo), Math.abs(ghi));
    const title = `${tensorLabel(k)} · ${shape.join("×")} · ‖∂L/∂a‖ = ${fmtSig(norm(g), 3)}`;
    const sec = h("div", { class: "bw-layer" }, h("h3", {}, title));
    if (shape.length === 3) {
      const [C, H, W] = shape;
      const pairs = h("div", { class: "bw-pairs" });
      const list: { act: HTMLCanvasElement; grad: HTMLCanvasElement }[] = [];
      for (let c = 0; c < C; c++) {
        const ac = h("canvas", { "class": "px", "aria-label": `${tensorLabel(k)} channel ${c}` });
        const gc = h("canvas", { "class": "px", "aria-label": `gradient of ${tensorLabel(k)} channel ${c}` });
        paint(ac, a, c * H * W, H, W, alo, ahi, "viridis");
        paint(gc, g, c * H * W, H, W, 0, gmax, "diverging");
        for (const cv of [ac, gc]) {
          cv.addEventListener("click", (ev) => {
            const [i, j] = cellAt(cv, ev, H, W);
            select({ kind: "act", t: k, index: (c * H + i) * W + j });
          });
        }
        const wa = h("div", { class: "bw-cell" }, ac);
        const wg = h("div", { class: "bw-cell" }, gc);
        pairs.append(h("div", { "class": `bw-pair${H <= 10 ? " small" : ""}`, "data-t": k, "data-c": c }, wa, wg));
        list.push({ act: ac, grad: gc });
      }
      mapCanvases.set(k, list);
      sec.append(pairs);
    } else {
      const n = shape[0];
      const cols = Math.min(n, 20);
      const rows = Math.ceil(n / cols);
      const ac = h("canvas", { class: "px" });
      const gc = h("canvas", { class: "px" });
      const pad = (d: ArrayLike<number>): Float64Array => {
        const out = new Float64Array(rows * cols);
        out.set(Array.from(d));
        return out;
      };
      paint(ac, pad(a), 0, rows, cols, alo, ahi, "viridis");
      paint(gc, pad(g), 0, rows, cols, 0, gmax, "diverging");
      for (const cv of [ac, gc]) {
        cv.style.height = `${(200 / cols) * rows}px`;
        cv.addEventListener("click", (ev) => {
          const [i, j] = cellAt(cv, ev, rows, cols);
          select({ kind: "act", t: k, index: Math.min(n - 1, i * cols + j) });
        });
      }
      mapCanvases.set(k, [{ act: ac, grad: gc }]);
      const cells = [ac, gc].map((cv) => h("div", { class: "bw-cell" }, cv));
      sec.append(h("div", { class: "bw-pairs bw-vec" }, ...cells));
    }
    const layer = t.model.layers[k - 1];
    if (layer instanceof Conv2D) sec.append(kernels(k - 1, layer));
    sections.push(sec);
  }
  box.replaceChildren(...sections);
}

function kernels(l: number, layer: Conv2D): HTMLElement {
  const [O, C, kh, kw] = layer.weight.value.shape;
  const g = layer.weight.grad.data;
  const [lo, hi] = range(g);
  const gmax = Math.max(Math.abs(lo), Math.abs(hi));
  const grid = h("div", { class: "bw-kernels" });
  const list: HTMLCanvasElement[] = [];
  for (let o = 0; o < O; o++) {
    for (let c = 0; c < C; c++) {
      const cv = h("canvas", { "class": "px", "title": `∂L/∂W[${o},${c}]`, "data-o": o, "data-c": c });
      paint(cv, g, (o * C + c) * kh * kw, kh, kw, 0, gmax, "diverging");
      cv.addEventListener("click", (ev) => {
        const [u, v] = cellAt(cv, ev, kh, kw);
        select({ kind: "param", layer: l, param: "weight", index: ((o * C + c) * kh + u) * kw + v });
      });
      list.push(cv);
      grid.append(h("div", { class: "bw-cell" }, cv));
    }
  }
  kernelCanvases.set(l, list);
  const summary = `kernel gradients ∂L/∂W of ${layerName(l)} (${O}×${C} kernels ${kh}×${kw}; click a weight)`;
  return h("details", { class: "section-gap" }, h("summary", { class: "small muted" }, summary), grid);
}

/** Outline rows r0..r1 × cols c0..c1 (inclusive, clipped) of a canvas's h×w grid. */
function outline(
  canvas: HTMLCanvasElement | undefined,
  rows: number,
  cols: number,
  r0: number,
  c0: number,
  r1: number,
  c1: number,
  cls = "",
): void {
  if (!canvas?.parentElement) return;
  const [a, b] = [Math.max(0, r0), Math.max(0, c0)];
  const [c, d] = [Math.min(rows - 1, r1), Math.min(cols - 1, c1)];
  if (c < a || d < b) return;
  const el = h("div", { class: `bw-hl ${cls}` });
  el.style.top = `${(a / rows) * 100}%`;
  el.style.left = `${(b / cols) * 100}%`;
  el.style.height = `${((c - a + 1) / rows) * 100}%`;
  el.style.width = `${((d - b + 1) / cols) * 100}%`;
  canvas.parentElement.append(el);
}

function highlight(e: Explanation): void {
  for (const el of document.querySelectorAll(".bw-hl")) el.remove();
  const t = tr!;
  const r = e.ref;
  const canvasOf = (k: number, c: number, which: "act" | "grad"): HTMLCanvasElement | undefined =>
    k === 0 ? byId("bw-digit", HTMLCanvasElement) : mapCanvases.get(k)?.[c]?.[which];
  const mark = (k: number, index: number, cls: string, which: "act" | "grad"): void => {
    const shape = t.acts[k].shape.slice(1);
    if (shape.length === 3) {
      const [c, i, j] = unravel(index, shape);
      outline(canvasOf(k, c, which), shape[1], shape[2], i, j, i, j, cls);
    } else {
      const cols = Math.min(shape[0], 20);
      const [i, j] = [Math.floor(index / cols), index % cols];
      outline(canvasOf(k, 0, which), Math.ceil(shape[0] / cols), cols, i, j, i, j, cls);
    }
  };
  if (r.kind === "act") {
    mark(r.t, r.index, "sel", "act");
    if (r.t > 0) mark(r.t, r.index, "sel", "grad");
  }
  const convLayer = r.kind === "param" ? t.model.layers[r.layer] : null;
  if (e.rule === "conv-weight" && r.kind === "param" && convLayer instanceof Conv2D) {
    // the input region that meets δ_o for this (u, v): the Ho×Wo block shifted by (u − p, v − p)
    const layer = convLayer;
    const [, C, kh, kw] = layer.weight.value.shape;
    const [o, c, u, v] = unravel(r.index, [layer.outChannels, C, kh, kw]);
    const xt = t.inputsOf[r.layer][0]; // the tensor the conv reads (not acts[layer] in a graph)
    const [, H, W] = t.acts[xt].shape.slice(1);
    const [, Ho, Wo] = t.acts[r.layer + 1].shape.slice(1);
    const [pt, pl] = (e.extra?.padding as number[] | undefined) ?? [0, 0];
    const [r0, c0] = [u - pt, v - pl];
    const [r1, c1] = [r0 + (Ho - 1) * layer.stride[0], c0 + (Wo - 1) * layer.stride[1]];
    outline(canvasOf(xt, c, "act"), H, W, r0, c0, r1, c1);
    outline(canvasOf(r.layer + 1, o, "grad"), Ho, Wo, 0, 0, Ho - 1, Wo - 1);
    outline(kernelCanvases.get(r.layer)?.[o * C + c], kh, kw, u, v, u, v, "sel");
    return;
  }
  // otherwise: outline the upstream gradients the terms read (and the forward elements they multiply)
  for (const term of e.terms.length <= 200 ? e.terms : topTerms(e.terms, 50).top) {
    if (term.upstream?.kind === "act" && term.product !== 0) mark(term.upstream.t, term.upstream.index, "", "grad");
    if (term.source) mark(term.source.t, term.source.index, "", "act");
  }
}

function drawNorms(): void {
  const t = tr!;
  const rows: { label: string; value: number; param: boolean }[] = [];
  for (let k = t.acts.length - 1; k >= 0; k--) {
    const name = k === 0 ? "x" : k === t.acts.length - 1 ? "z" : `a${k}`;
    rows.push({ label: `∂L/∂${name}`, value: norm(t.grads[k].data), param: false });
    const layer = k > 0 ? t.model.layers[k - 1] : null;
    if (layer instanceof Conv2D || layer instanceof Dense) {
      rows.push({ label: `∂L/∂W ${layerName(k - 1)}`, value: norm(layer.weight.grad.data), param: true });
      if (layer.bias) {
        rows.push({ label: `∂L/∂b ${layerName(k - 1)}`, value: norm(layer.bias.grad.data), param: true });
      }
    }
  }
  const positive = rows.map((r) => r.value).filter((v) => v > 0);
  const hi = Math.log10(Math.max(...positive, 1e-12));
  const lo = Math.min(hi - 1, Math.log10(Math.min(...positive, 1)) - 0.5);
  const box = byId("bw-norms");
  box.replaceChildren(
    ...rows.flatMap((r) => {
      const w = r.value > 0 ? ((Math.log10(r.value) - lo) / (hi - lo)) * 100 : 0;
      const bar = h("div", { class: `bar${r.param ? " param" : ""}` });
      bar.style.width = `${Math.max(0, Math.min(100, w)).toFixed(1)}%`;
      return [
        h("span", { class: "mono small" }, r.label),
        h("div", { class: "track" }, bar),
        h("span", { "class": "num", "data-norm": r.value }, fmtSig(r.value, 3)),
      ];
    }),
  );
}

// ---------------------------------------------------------------- keep and share

function status(text: string, state: string): void {
  const el = byId("bw-share-status");
  el.dataset.state = state;
  setText(el, text);
}

async function guarded(what: string, f: () => Promise<string> | string): Promise<void> {
  status(`${what}…`, "busy");
  try {
    status(await f(), "ok");
  } catch (e) {
    status(`${what} failed: ${(e as Error).message}`, "error");
  }
}

/** A loaded model must map one 1×28×28 digit to 10 logits; `source` names it in the error. */
function checkDigitModel(m: Sequential, source: string): void {
  const shapes = m.build([1, 28, 28]);
  const out = shapes[shapes.length - 1];
  if (out.length !== 1 || out[0] !== 10) {
    throw new Error(`${source}: expected 10 outputs for a 1×28×28 input, got (${out.join(", ")})`);
  }
}

function useModel(m: Sequential, scaling: Normalization, label: string): void {
  m.setDtype("float32");
  model = m;
  normalization = scaling;
  setText(byId("bw-model-badge"), label);
  byId("bw-model-badge").classList.toggle("off", label !== "pretrained");
  recompute();
}

/** What the saved file records about the input scaling, where `handprop predict` and this page read it. */
function trainingMeta(): SaveMeta {
  const { scale, mean, std } = normalization;
  return { training: { dataset: { normalization: { scale, mean, std } } } };
}

function offerDownload(bytes: BlobPart, name: string, type: string): void {
  const url = URL.createObjectURL(new Blob([bytes], { type }));
  const a = h("a", { href: url, download: name });
  a.style.display = "none";
  document.body.append(a);
  a.click();
  a.remove();
  setTimeout(() => {
    URL.revokeObjectURL(url);
  }, 1000);
}

function wireShare(): void {
  byId("bw-fresh").addEventListener("click", () => {
    const seed = Math.max(0, Math.floor(Number(byId("bw-seed", HTMLInputElement).value) || 0));
    useModel(freshModel(seed), MNIST_STANDARDIZE, `fresh, seed ${seed}`);
    status(`fresh LeNet-5 from seed ${seed}`, "ok");
  });
  byId("bw-pretrained").addEventListener("click", () => {
    if (!pretrained) return;
    useModel(copy64(pretrained.model), pretrained.normalization, "pretrained");
  });
  byId("bw-save-idb").addEventListener("click", () => {
    void guarded("save to IndexedDB", async () => {
      await saveModelToIndexedDB(model, IDB_KEY, { meta: trainingMeta() });
      return `saved in this browser (IndexedDB "handprop"/"models"/"${IDB_KEY}")`;
    });
  });
  byId("bw-load-idb").addEventListener("click", () => {
    void guarded("load from IndexedDB", async () => {
      const loaded = await loadModelFromIndexedDB(IDB_KEY);
      checkDigitModel(loaded.model, `IndexedDB/${IDB_KEY}`);
      const scaling = normalizationFromTraining(loaded.training, `IndexedDB/${IDB_KEY}`).normalization;
      useModel(loaded.model, scaling, "from IndexedDB");
      return `loaded the model saved in this browser`;
    });
  });
  byId("bw-download").addEventListener("click", () => {
    void guarded("download", () => {
      const bytes = downloadModel(model, "lenet5.handprop", trainingMeta());
      return `lenet5.handprop: ${bytes.length.toLocaleString("en-US")} bytes`;
    });
  });
  byId("bw-file", HTMLInputElement).addEventListener("change", (ev) => {
    const input = ev.target as HTMLInputElement;
    const file = input.files?.[0];
    if (!file) return;
    void guarded(`load ${file.name}`, async () => {
      if (file.size > MAX_FILE_BYTES) {
        throw new Error(`${file.name}: ${file.size} bytes, more than the 64 MiB this page accepts`);
      }
      const loaded = modelFromFile(new Uint8Array(await file.arrayBuffer()), file.name);
      checkDigitModel(loaded.model, file.name);
      useModel(loaded.model, normalizationFromTraining(loaded.training, file.name).normalization, `from ${file.name}`);
      input.value = "";
      return `loaded ${file.name}`;
    });
  });
  byId("bw-onnx").addEventListener("click", () => {
    void guarded("ONNX export", () => {
      const bytes = toOnnx(model, { inputShape: [1, 28, 28] });
      offerDownload(bytes.slice().buffer, "lenet5.onnx", "application/octet-stream");
      return `lenet5.onnx: ${bytes.length.toLocaleString("en-US")} bytes`;
    });
  });
  byId("bw-tfjs").addEventListener("click", () => {
    void guarded("TF.js export", () => {
      const art = toTfjsArtifacts(model, { inputShape: [1, 28, 28] });
      offerDownload(JSON.stringify(art.modelJson), "model.json", "application/json");
      offerDownload(art.weightData, "weights.bin", "application/octet-stream");
      return `TF.js: model.json + weights.bin (${art.weightData.byteLength.toLocaleString("en-US")} bytes)`;
    });
  });
}

// ---------------------------------------------------------------- training you can watch

const LAYER_COLORS = ["#2563eb", "#0891b2", "#16a34a", "#d97706", "#dc2626", "#7c3aed", "#db2777"];
let charts: { norms: LineChart; ratios: LineChart } | null = null;
let chartsFor = "";
let training = false;
let stopRequested = false;
let trainSet: DigitSet | null = null;

function makeCharts(): { norms: LineChart; ratios: LineChart } {
  const series = weightedLayers(model).map(({ index, layer }, i) => ({
    label: `${index} ${layer.type}`,
    color: LAYER_COLORS[i % LAYER_COLORS.length],
    width: 1.5,
    format: (v: number) => fmtSig(v, 3),
  }));
  const log = { y: { log: true } };
  return {
    norms: new LineChart(byId("bw-chart-norms"), {
      title: "‖∂L/∂W‖ per layer",
      xLabel: "step",
      series,
      scales: log,
    }),
    ratios: new LineChart(byId("bw-chart-ratios"), {
      title: "update/weight ‖ΔW‖/‖W‖",
      xLabel: "step",
      series,
      scales: log,
    }),
  };
}

function numberField(id: string, lo: number, hi: number, fallback: number): number {
  const v = Number(byId(id, HTMLInputElement).value);
  return Number.isFinite(v) ? Math.max(lo, Math.min(hi, v)) : fallback;
}

async function train(): Promise<void> {
  const button = byId("bw-train", HTMLButtonElement);
  if (training) {
    stopRequested = true;
    return;
  }
  const statusEl = byId("bw-train-status");
  training = true;
  stopRequested = false;
  button.textContent = "■ Stop";
  statusEl.dataset.state = "training";
  try {
    trainSet ??= await loadSplit(dataUrl, "train");
    const arch = JSON.stringify(model.config().layers);
    if (charts && chartsFor !== arch) {
      charts.norms.plot.destroy();
      charts.ratios.plot.destroy();
      charts = null;
    }
    charts ??= makeCharts();
    chartsFor = arch;
    const xs: number[] = [];
    const norms: number[][] = weightedLayers(model).map(() => []);
    const ratios: number[][] = weightedLayers(model).map(() => []);
    let firstLoss = NaN;
    const steps = Math.floor(numberField("bw-steps", 1, 5000, 150));
    const taken = await watchTraining(model, trainSet, {
      steps,
      batchSize: Math.floor(numberField("bw-batch", 1, 256, 32)),
      lr: numberField("bw-lr", 0, 1, 0.002),
      seed: Math.floor(numberField("bw-train-seed", 0, 2 ** 31, 0)),
      normalization,
      onStep: (r: StepRecord) => {
        if (Number.isNaN(firstLoss)) firstLoss = r.loss;
        xs.push(r.step);
        r.gradNorms.forEach((v, i) => norms[i].push(v));
        r.updateRatios.forEach((v, i) => ratios[i].push(v));
        if (r.step % 5 === 0 || r.step === steps) {
          charts!.norms.setData(xs, norms);
          charts!.ratios.setData(xs, ratios);
        }
        statusEl.dataset.steps = String(r.step);
        statusEl.dataset.firstLoss = String(firstLoss);
        statusEl.dataset.lastLoss = String(r.loss);
        statusEl.dataset.gradNorms = JSON.stringify(r.gradNorms);
        statusEl.dataset.updateRatios = JSON.stringify(r.updateRatios);
        setText(statusEl, `step ${r.step}/${steps} · batch loss ${fmtSig(r.loss, 4)}`);
        return !stopRequested;
      },
    });
    charts.norms.setData(xs, norms);
    charts.ratios.setData(xs, ratios);
    statusEl.dataset.state = taken < steps ? "stopped" : "done";
    setText(byId("bw-model-badge"), "trained here");
    byId("bw-model-badge").classList.add("off");
    recompute();
  } catch (e) {
    statusEl.dataset.state = "error";
    setText(statusEl, `training failed: ${(e as Error).message}`);
  } finally {
    training = false;
    button.textContent = "▶ Train";
  }
}

// ---------------------------------------------------------------- start

async function setSample(i: number): Promise<void> {
  testSet ??= await loadSplit(dataUrl, "test");
  const k = Math.max(0, Math.min(testSet.count - 1, i));
  pixels = testSet.images.subarray(k * 784, (k + 1) * 784);
  pad.showDigit(pixels);
  setText(byId("bw-truth"), `test image ${k}: a ${testSet.labels[k]}`);
  pickRunnerUp();
}

/**
 * Target the class the model ranks second: against a confident, correct prediction the loss is ~0 and
 * every gradient with it, so the runner-up shows what the model would have to change (the user can
 * still pick any label, the true one included).
 */
function pickRunnerUp(): void {
  const label = byId("bw-label", HTMLSelectElement);
  label.value = "0";
  recompute();
  const p = tr!.probs;
  const order = Array.from(p.keys()).sort((a, b) => p[b] - p[a]);
  label.value = String(order[1]);
  recompute();
}

const pad = new DrawingPad(byId("bw-pad", HTMLCanvasElement), (final) => {
  const drawn = pad.toMnist();
  if (drawn && final) {
    pixels = drawn;
    setText(byId("bw-truth"), "your drawing");
    pickRunnerUp();
  }
});

async function start(): Promise<void> {
  wireShare();
  byId("bw-train").addEventListener("click", () => {
    void train();
  });
  byId("bw-label").addEventListener("change", recompute);
  byId("bw-sample").addEventListener("change", () => {
    void setSample(Number(byId("bw-sample", HTMLInputElement).value) || 0);
  });
  byId("bw-random").addEventListener("click", () => {
    const i = Math.floor(Math.random() * (testSet?.count ?? 1000));
    byId("bw-sample", HTMLInputElement).value = String(i);
    void setSample(i);
  });
  byId("bw-clear").addEventListener("click", () => {
    pad.clear();
  });
  byId("bw-explain").addEventListener("click", () => {
    select(refFromForm());
  });
  byId("bw-tensor").addEventListener("change", () => {
    select(refFromForm());
  });
  const digit = byId("bw-digit", HTMLCanvasElement);
  digit.addEventListener("click", (ev) => {
    const [i, j] = cellAt(digit, ev, 28, 28);
    select({ kind: "act", t: 0, index: i * 28 + j });
  });
  try {
    const p = await loadPretrained(document.baseURI);
    if (p) {
      pretrained = { model: copy64(p.model), normalization: p.normalization };
      byId("bw-pretrained").hidden = false;
      model = p.model;
      normalization = p.normalization;
      setText(byId("bw-model-badge"), "pretrained");
    } else {
      setText(byId("bw-model-badge"), "untrained (seed 0)");
      byId("bw-model-badge").classList.add("off");
    }
  } catch (e) {
    status(`pretrained model: ${(e as Error).message}`, "error");
  }
  await setSample(0);
  selected = { kind: "act", t: tr!.acts.length - 1, index: tr!.label };
  select(selected);
  document.body.dataset.ready = "true";
}

void start();
