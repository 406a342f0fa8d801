// Page 1: the article's network, every number live. The state lives in ArticleSession (session.ts);
// this file builds the views once and refreshes them with render() after every change.

import "../style.css";
import { rot90 } from "handprop";
import type { NDArray } from "handprop";
import { byId, fmt, fmtSig, h, setText } from "../dom.ts";
import { renderTex } from "../tex.ts";
import { LineChart } from "../chart.ts";
import { ALL_WEIGHTS, ArticleSession, sameWeight, weightName, type WeightRef } from "./session.ts";
import { derivationTex, forwardWindowTex, kernelGradWindowTex } from "./derive.ts";
import type { StepTrace } from "handprop";

const IMAGE_COLORS = ["#2563eb", "#d9480f", "#0f9d58", "#9333ea"];
const MAX_EPOCHS = 100000;
const WINDOW_MS = 1400; // one convolution window position per this many milliseconds
const reducedMotion = window.matchMedia("(prefers-reduced-motion: reduce)").matches;

const session = new ArticleSession();
let selectedImage = 2; // x3: a lit image makes a more telling first view than the blank x1
let selectedWeight: WeightRef = { m: "w1", p: 0, q: 0 };
let epochTarget = 1000;
let running: { mode: "play" | "fast"; target: number } | null = null;

// ---------------------------------------------------------------- small view builders

/** A matrix of numbers in brackets; returns the container and its cells (row-major). */
function matrix(rows: number, cols: number, cls = ""): { el: HTMLElement; cells: HTMLElement[] } {
  const el = h("div", { class: `mat ${cls}`, style: `grid-template-columns: repeat(${cols}, auto)` });
  const cells: HTMLElement[] = [];
  for (let k = 0; k < rows * cols; k++) {
    const c = h("div", { class: "cell" }, "0");
    cells.push(c);
    el.append(c);
  }
  return { el, cells };
}

/** Fill matrix cells: fixed decimals, or significant digits (for gradients, which span many scales). */
function fillMatrix(cells: HTMLElement[], a: NDArray, digits = 4, sig = false): void {
  cells.forEach((c, k) => {
    const v = a.data[k];
    setText(c, sig ? fmtSig(v, digits) : fmt(v, digits));
    c.title = String(v);
  });
}

function block(content: HTMLElement, caption: string): HTMLElement {
  const cap = h("div", { class: "cap" });
  cap.innerHTML = caption;
  return h("div", { class: "mat-block" }, content, cap);
}

function op(sym: string, label = "", arrow = false): HTMLElement {
  return h(
    "div",
    { class: "op" },
    h("span", { class: arrow ? "arrow" : "sym" }, sym),
    label ? h("span", {}, label) : null,
  );
}

/** A 3×3 pixel grid; clickable when onToggle is given. */
function pixels(size: number, onToggle?: (k: number) => void): { el: HTMLElement; px: HTMLElement[] } {
  const el = h("div", { class: `pix${onToggle ? "" : " static"}`, style: `--px: ${size}px` });
  const px: HTMLElement[] = [];
  for (let k = 0; k < 9; k++) {
    const b = onToggle
      ? h("button", { "class": "p", "type": "button", "aria-label": `pixel ${Math.floor(k / 3)},${k % 3}` })
      : h("div", { class: "p" });
    if (onToggle) {
      b.addEventListener("click", (e) => {
        e.stopPropagation();
        onToggle(k);
      });
    }
    px.push(b);
    el.append(b);
  }
  return { el, px };
}

function paintPixels(px: HTMLElement[], values: ArrayLike<number>, showValue = false): void {
  px.forEach((p, k) => {
    p.classList.toggle("on", values[k] === 1);
    if (!showValue) return;
    let v = p.querySelector<HTMLElement>(".v");
    if (!v) {
      v = h("span", { class: "v" });
      p.prepend(v);
    }
    setText(v, String(values[k]));
  });
}

function setTags(px: HTMLElement[], tags: (string | null)[], cls: "win" | "win-bwd"): void {
  px.forEach((p, k) => {
    const t = tags[k];
    p.classList.toggle(cls, t !== null);
    let tag = p.querySelector<HTMLElement>(".tag");
    if (t === null) {
      tag?.remove();
      return;
    }
    if (!tag) {
      tag = h("span", { class: `tag${cls === "win-bwd" ? " bwd" : ""}` });
      p.append(tag);
    }
    setText(tag, t);
  });
}

// ---------------------------------------------------------------- data: the four images

interface ImageView {
  card: HTMLElement;
  px: HTMLElement[];
  target: HTMLInputElement;
  out: HTMLElement;
  fill: HTMLElement;
  marker: HTMLElement;
  next: HTMLElement;
}
const imageViews: ImageView[] = [];

function buildImages(): void {
  const root = byId("images");
  for (let i = 0; i < 4; i++) {
    const { el: grid, px } = pixels(30, (k) => {
      session.togglePixel(i, k);
      selectedImage = i;
      render();
    });
    const target = h("input", {
      "type": "number",
      "step": "0.01",
      "id": `target-${i}`,
      "aria-label": `target for x${i + 1}`,
    });
    target.addEventListener("input", () => {
      const v = Number(target.value);
      const ok = target.value.trim() !== "" && Number.isFinite(v);
      target.classList.toggle("invalid", !ok);
      if (ok) {
        session.setTarget(i, v);
        render();
      }
    });
    target.addEventListener("click", (e) => {
      e.stopPropagation();
    });
    const next = h("span", { class: "next", hidden: true }, "next");
    const fill = h("div", { class: "fill" });
    const marker = h("div", { class: "target", title: "target" });
    const out = h("div", { class: "out-line", id: `out-${i}` });
    const card = h(
      "div",
      {
        "class": "image-card",
        "id": `image-${i}`,
        "role": "button",
        "tabindex": 0,
        "aria-label": `inspect image x${i + 1}`,
      },
      h("div", { class: "title" }, `x${i + 1}`, next),
      grid,
      h("label", {}, "target y", target),
      h("div", { class: "out-bar", title: "output o (fill) and target y (mark), on a 0–1.2 scale" }, fill, marker),
      out,
    );
    card.addEventListener("click", () => {
      selectedImage = i;
      render();
    });
    card.addEventListener("keydown", (e) => {
      if (e.key === "Enter" || e.key === " ") {
        selectedImage = i;
        render();
      }
    });
    imageViews.push({ card, px, target, out, fill, marker, next });
    root.append(card);
  }
}

// ---------------------------------------------------------------- weights

interface WeightView {
  ref: WeightRef;
  input: HTMLInputElement;
  grad: HTMLElement;
}
const weightViews: WeightView[] = [];

function weightId(w: WeightRef): string {
  return w.m === "w1" ? `w1-${w.p}-${w.q}` : `w2-${w.k}`;
}

function buildWeights(): void {
  const root = byId("weights");
  const makeInput = (ref: WeightRef): HTMLElement => {
    const input = h("input", {
      "type": "text",
      "inputmode": "decimal",
      "id": weightId(ref),
      "spellcheck": "false",
      "autocomplete": "off",
      "aria-label": weightName(ref),
    });
    const grad = h("span", { class: "g", title: "∂L/∂w for the inspected image" });
    input.addEventListener("focus", () => {
      selectedWeight = ref;
      render();
    });
    input.addEventListener("input", () => {
      const v = Number(input.value);
      const ok = input.value.trim() !== "" && Number.isFinite(v);
      input.classList.toggle("invalid", !ok);
      if (ok) {
        session.setWeight(ref, v);
        render();
      }
    });
    input.addEventListener("blur", () => {
      input.classList.remove("invalid");
      render();
    });
    weightViews.push({ ref, input, grad });
    return h(
      "div",
      { class: `w${ref.m === "w2" ? " inline" : ""}` },
      h("span", { class: "wlabel" }, weightName(ref)),
      input,
      grad,
    );
  };
  const w1 = h("div", { class: "wgrid", style: "grid-template-columns: repeat(2, auto)" });
  for (let p = 0; p < 2; p++) for (let q = 0; q < 2; q++) w1.append(makeInput({ m: "w1", p, q }));
  const w2 = h("div", { class: "wgrid", style: "grid-template-columns: auto" });
  for (let k = 0; k < 4; k++) w2.append(makeInput({ m: "w2", k }));
  root.append(h("div", {}, h("h3", {}, "w1 · 2×2 kernel"), w1), h("div", {}, h("h3", {}, "w2 · 4×1"), w2));
}

// ---------------------------------------------------------------- training controls and charts

const seedInput = byId("seed", HTMLInputElement);
const lrInput = byId("lr", HTMLInputElement);
const epochsInput = byId("epochs", HTMLInputElement);
const playBtn = byId("btn-play", HTMLButtonElement);
const finishBtn = byId("btn-finish", HTMLButtonElement);
let lossChart: LineChart;
let outChart: LineChart;

function readInt(input: HTMLInputElement, min: number, max: number): number | null {
  const v = Number(input.value);
  const ok = input.value.trim() !== "" && Number.isInteger(v) && v >= min && v <= max;
  input.classList.toggle("invalid", !ok);
  return ok ? v : null;
}

function stop(): void {
  running = null;
}

function tick(): void {
  if (!running) return;
  const r = running;
  if (r.mode === "fast") {
    const t0 = performance.now();
    while (session.epoch < r.target && performance.now() - t0 < 30) session.stepEpoch();
  } else {
    const perFrame = Math.max(1, Math.ceil(epochTarget / 360)); // about six seconds at 60 frames/s
    for (let k = 0; k < perFrame && session.epoch < r.target; k++) session.stepEpoch();
  }
  if (session.epoch >= r.target) running = null;
  render();
  if (running) requestAnimationFrame(tick);
}

function start(mode: "play" | "fast"): void {
  if (session.epoch >= epochTarget && session.sample === 0) return;
  if (running?.mode === mode) return;
  const wasRunning = running !== null;
  running = { mode, target: epochTarget };
  if (!wasRunning) requestAnimationFrame(tick);
  render();
}

function buildControls(): void {
  seedInput.value = String(session.seed);
  lrInput.value = String(session.lr);
  epochsInput.value = String(epochTarget);
  seedInput.addEventListener("input", () => {
    const s = readInt(seedInput, 0, 0xffffffff);
    if (s === null) return;
    stop();
    session.reset(s);
    selectedImage = 0;
    render();
  });
  lrInput.addEventListener("input", () => {
    const v = Number(lrInput.value);
    const ok = lrInput.value.trim() !== "" && Number.isFinite(v) && v >= 0;
    lrInput.classList.toggle("invalid", !ok);
    if (ok) {
      session.setLr(v);
      render();
    }
  });
  epochsInput.addEventListener("input", () => {
    const v = readInt(epochsInput, 0, MAX_EPOCHS);
    if (v === null) return;
    epochTarget = v;
    if (running) running.target = v;
    render();
  });
  byId("btn-reset").addEventListener("click", () => {
    stop();
    const s = readInt(seedInput, 0, 0xffffffff);
    session.reset(s ?? session.seed);
    selectedImage = 0;
    render();
  });
  byId("btn-step-sample").addEventListener("click", () => {
    stop();
    session.stepSample();
    selectedImage = session.sample;
    render();
  });
  byId("btn-step-epoch").addEventListener("click", () => {
    stop();
    session.stepEpoch();
    render();
  });
  playBtn.addEventListener("click", () => {
    if (running?.mode === "play") {
      stop();
      render();
    } else start("play");
  });
  finishBtn.addEventListener("click", () => {
    start("fast");
  });

  lossChart = new LineChart(byId("loss-chart"), {
    title: "Total cost (log scale)",
    xLabel: "epoch",
    series: [{ label: "Σ½(o−y)²", color: "#4f46e5", format: (v) => fmtSig(v, 5) }],
    scales: { y: { log: true } },
    height: 230,
  });
  outChart = new LineChart(byId("out-chart"), {
    title: "Outputs o converging to targets y",
    xLabel: "epoch",
    series: [
      ...IMAGE_COLORS.map((color, i) => ({ label: `o${i + 1}`, color, format: (v: number) => v.toFixed(4) })),
      ...IMAGE_COLORS.map((color, i) => ({
        label: `y${i + 1}`,
        color,
        dash: [4, 4],
        width: 1,
        format: (v: number) => v.toFixed(2),
      })),
    ],
    scales: { y: { range: [0, 1.2] } },
    height: 230,
    legend: false,
  });
  byId("out-legend").append(
    ...IMAGE_COLORS.map((color, i) =>
      h("span", {}, h("span", { class: "swatch", style: `background: ${color}` }), `o${i + 1}`),
    ),
    h("span", { class: "faint" }, "dashed: targets y (1.1 is out of a sigmoid's reach)"),
  );
}

// ---------------------------------------------------------------- forward pass

interface ForwardView {
  tabs: HTMLButtonElement[];
  xPx: HTMLElement[];
  xCap: HTMLElement;
  w1: HTMLElement[];
  z1: HTMLElement[];
  a1: HTMLElement[];
  vec: HTMLElement[];
  w2: HTMLElement[];
  z2: HTMLElement;
  o: HTMLElement;
  y: HTMLElement;
  cost: HTMLElement;
  winPx: HTMLElement[];
  flipped: HTMLElement[];
  pos: HTMLElement;
  eq: HTMLElement;
}
let fv: ForwardView;
let fwPos = 0; // window position 0..3 = (i, j) row-major
let fwPinned = false;

function buildForward(): void {
  const tabsRoot = byId("image-tabs");
  const tabs: HTMLButtonElement[] = [];
  for (let i = 0; i < 4; i++) {
    const b = h("button", { class: "tab", role: "tab", type: "button", id: `tab-${i}` }, `x${i + 1}`);
    b.addEventListener("click", () => {
      selectedImage = i;
      render();
    });
    tabs.push(b);
    tabsRoot.append(b);
  }
  const x = pixels(22);
  const w1 = matrix(2, 2);
  const z1 = matrix(2, 2);
  const a1 = matrix(2, 2);
  const vec = matrix(1, 4);
  const w2 = matrix(4, 1);
  const z2 = h("span", { class: "scalar", id: "fw-z2" });
  const o = h("span", { class: "scalar big", id: "fw-o" });
  const y = h("span", { class: "scalar", id: "fw-y" });
  const cost = h("span", { class: "scalar", id: "fw-cost" });
  const xCap = h("span", { class: "mono" });
  z1.cells.forEach((c, k) => {
    c.addEventListener("mouseenter", () => {
      fwPinned = true;
      fwPos = k;
      render();
    });
    c.addEventListener("mouseleave", () => {
      fwPinned = false;
    });
  });
  const xBlock = block(x.el, "");
  xBlock.querySelector(".cap")!.append(xCap);
  byId("pipeline").append(
    h("div", { class: "pipe-label" }, "layer 1 · convolution"),
    xBlock,
    op("⊛", "convolve2d"),
    block(w1.el, '<span class="mono">w1</span>'),
    op("="),
    block(z1.el, '<span class="mono">z1</span> = layer_1'),
    op("→", "tanh", true),
    block(a1.el, '<span class="mono">a1</span> = layer_1_act'),
  );
  byId("pipeline2").append(
    h("div", { class: "pipe-label" }, "layer 2 · dense + cost"),
    block(vec.el, "vec(a1) = layer_1_act_vec"),
    op("·"),
    block(w2.el, '<span class="mono">w2</span>'),
    op("="),
    block(z2, '<span class="mono">z2</span> = layer_2'),
    op("→", "σ", true),
    block(o, '<span class="mono">o</span> = layer_2_act'),
    op("vs"),
    block(y, '<span class="mono">y</span> target'),
    op("→", "½(o−y)²", true),
    block(cost, '<span class="mono">L</span> cost'),
  );
  const win = pixels(56);
  byId("fw-window").append(win.el);
  const flipped = matrix(2, 2);
  byId("fw-flipped").append(flipped.el);
  fv = {
    tabs,
    xPx: x.px,
    xCap,
    w1: w1.cells,
    z1: z1.cells,
    a1: a1.cells,
    vec: vec.cells,
    w2: w2.cells,
    z2,
    o,
    y,
    cost,
    winPx: win.px,
    flipped: flipped.cells,
    pos: byId("fw-pos"),
    eq: byId("fw-eq"),
  };
}

function renderForward(t: StepTrace): void {
  const i = selectedImage;
  const x = session.xs()[i];
  fv.tabs.forEach((b, k) => {
    b.setAttribute("aria-selected", String(k === i));
  });
  paintPixels(fv.xPx, x.data);
  setText(fv.xCap, `X = x${i + 1}`);
  fillMatrix(fv.w1, session.w1);
  fillMatrix(fv.z1, t.layer_1);
  fillMatrix(fv.a1, t.layer_1_act);
  fillMatrix(fv.vec, t.layer_1_act_vec);
  fillMatrix(fv.w2, session.w2);
  setText(fv.z2, fmt(t.layer_2.data[0]));
  setText(fv.o, fmt(t.layer_2_act.data[0], 6));
  fv.o.dataset.value = String(t.layer_2_act.data[0]);
  setText(fv.y, fmt(session.targets[i], 2));
  setText(fv.cost, fmt(t.cost, 6));
  fv.cost.dataset.value = String(t.cost);

  // The sliding window: position (wi, wj); pixel X[wi+r, wj+c] meets w1[1−r, 1−c].
  const wi = Math.floor(fwPos / 2);
  const wj = fwPos % 2;
  paintPixels(fv.winPx, x.data, true);
  const tags: (string | null)[] = new Array<string | null>(9).fill(null);
  for (let r = 0; r < 2; r++) for (let c = 0; c < 2; c++) tags[(wi + r) * 3 + (wj + c)] = `w1[${1 - r},${1 - c}]`;
  setTags(fv.winPx, tags, "win");
  fv.z1.forEach((c, k) => c.classList.toggle("hl", k === fwPos));
  fv.a1.forEach((c, k) => c.classList.toggle("hl", k === fwPos));
  const rotated = rot90(session.w1, 2);
  fillMatrix(fv.flipped, rotated);
  fv.flipped.forEach((c, k) => {
    c.title = `rot180(w1)[${Math.floor(k / 2)},${k % 2}] = w1[${1 - Math.floor(k / 2)},${1 - (k % 2)}] = ${String(rotated.data[k])}`;
  });
  setText(fv.pos, `[${wi},${wj}]`);
  renderTex(fv.eq, forwardWindowTex(t, x, session.w1, wi, wj));
}

// ---------------------------------------------------------------- backward pass

interface BackwardView {
  chips: { ref: WeightRef; el: HTMLButtonElement }[];
  context: HTMLElement;
  derivation: HTMLElement;
  value: HTMLElement;
  update: HTMLElement;
  conv: HTMLElement;
  winPx: HTMLElement[];
  g: HTMLElement[];
  rg: HTMLElement[];
  c: HTMLElement[];
  dw: HTMLElement[];
  pos: HTMLElement;
  eq: HTMLElement;
}
let bv: BackwardView;
let bwPos = 0;
let bwPinned = false;

function buildBackward(): void {
  const chipsRoot = byId("weight-chips");
  const chips = ALL_WEIGHTS.map((ref) => {
    const el = h(
      "button",
      { "class": "chip", "type": "button", "id": `chip-${weightId(ref)}`, "aria-pressed": "false" },
      weightName(ref),
    );
    el.addEventListener("click", () => {
      selectedWeight = ref;
      render();
    });
    chipsRoot.append(el);
    return { ref, el };
  });
  const win = pixels(56);
  byId("bw-window").append(win.el);
  const g = matrix(2, 2);
  const rg = matrix(2, 2);
  const c = matrix(2, 2);
  const dw = matrix(2, 2);
  c.cells.forEach((cell, k) => {
    cell.addEventListener("mouseenter", () => {
      bwPinned = true;
      bwPos = k;
      render();
    });
    cell.addEventListener("mouseleave", () => {
      bwPinned = false;
    });
  });
  byId("bw-pipeline").append(
    block(g.el, '<span class="mono">G = ∂L/∂z1</span>'),
    op("→", "rot180", true),
    block(rg.el, '<span class="mono">rot180(G)</span>'),
    op("→", "convolve2d(X, ·)", true),
    block(c.el, '<span class="mono">C</span>'),
    op("→", "rot180", true),
    block(dw.el, '<span class="mono">∂L/∂w1</span>'),
  );
  bv = {
    chips,
    context: byId("bw-context"),
    derivation: byId("bw-derivation"),
    value: byId("grad-value"),
    update: byId("grad-update"),
    conv: byId("bw-conv"),
    winPx: win.px,
    g: g.cells,
    rg: rg.cells,
    c: c.cells,
    dw: dw.cells,
    pos: byId("bw-pos"),
    eq: byId("bw-eq"),
  };
}

function gradOf(t: StepTrace, w: WeightRef): number {
  return w.m === "w1" ? t.grad_1.get(w.p, w.q) : t.grad_2.get(w.k, 0);
}

function renderBackward(t: StepTrace): void {
  const i = selectedImage;
  const x = session.xs()[i];
  const w = selectedWeight;
  for (const c of bv.chips) c.el.setAttribute("aria-pressed", String(sameWeight(c.ref, w)));
  const when =
    session.sample === i
      ? `the next training step (x${i + 1}) subtracts lr × this gradient`
      : `the next training step uses x${session.sample + 1}`;
  setText(
    bv.context,
    `Gradient of L = ½(o − y)² for image x${i + 1} at the current weights (epoch ${session.epoch}); ${when}.`,
  );
  renderTex(bv.derivation, derivationTex(t, x, session.targets[i], session.w2, w));
  const g = gradOf(t, w);
  setText(bv.value, `∂L/∂${weightName(w)} = ${fmtSig(g, 10)}`);
  bv.value.dataset.value = String(g);
  bv.value.dataset.weight = weightName(w);
  bv.value.dataset.image = String(i);
  const cur = session.getWeight(w);
  setText(
    bv.update,
    `SGD: ${weightName(w)} ← ${fmtSig(cur, 6)} − ${fmtSig(session.lr, 4)} × ${fmtSig(g, 4)} = ${fmtSig(cur - session.lr * g, 6)}`,
  );

  bv.conv.hidden = w.m !== "w1";
  if (w.m !== "w1") return;
  const a = Math.floor(bwPos / 2);
  const b = bwPos % 2;
  paintPixels(bv.winPx, x.data, true);
  const tags: (string | null)[] = new Array<string | null>(9).fill(null);
  for (let r = 0; r < 2; r++) for (let c = 0; c < 2; c++) tags[(a + r) * 3 + (b + c)] = `G[${r},${c}]`;
  setTags(bv.winPx, tags, "win-bwd");
  fillMatrix(bv.g, t.grad_1_temp_1, 4, true);
  fillMatrix(bv.rg, rot90(t.grad_1_temp_1, 2), 4, true);
  fillMatrix(bv.c, t.grad_1_conv, 4, true);
  fillMatrix(bv.dw, t.grad_1, 4, true);
  bv.c.forEach((c, k) => c.classList.toggle("hl-bwd", k === bwPos));
  bv.dw.forEach((c, k) => {
    c.classList.toggle("hl-bwd", k === 3 - bwPos);
    c.classList.toggle("sel", k === 2 * w.p + w.q); // the weight being derived (filled), and the window's cell (outlined)
  });
  setText(bv.pos, `[${a},${b}]`);
  renderTex(bv.eq, kernelGradWindowTex(t, x, a, b));
}

// ---------------------------------------------------------------- render everything

function render(): void {
  const { cost, out } = session.evaluate();
  const t = session.trace(selectedImage);

  imageViews.forEach((v, i) => {
    paintPixels(v.px, session.images[i]);
    v.card.classList.toggle("selected", i === selectedImage);
    v.next.hidden = i !== session.sample;
    if (document.activeElement !== v.target) v.target.value = String(session.targets[i]);
    setText(v.out, `o = ${fmt(out[i], 6)}`);
    v.out.dataset.value = String(out[i]);
    v.fill.style.width = `${Math.max(0, Math.min(1, out[i] / 1.2)) * 100}%`;
    v.marker.style.left = `${Math.max(0, Math.min(1, session.targets[i] / 1.2)) * 100}%`;
  });

  for (const v of weightViews) {
    const val = session.getWeight(v.ref);
    v.input.dataset.value = String(val);
    if (document.activeElement !== v.input) {
      v.input.value = fmtSig(val, 8).replace("−", "-");
      v.input.classList.remove("invalid");
    }
    v.input.classList.toggle("selected", sameWeight(v.ref, selectedWeight));
    setText(v.grad, `∂L/∂ = ${fmtSig(gradOf(t, v.ref), 4)}`);
  }

  setText(
    byId("weights-note"),
    `Orange: ∂L/∂w for image x${selectedImage + 1} at these weights. The seed draws them as np.random.seed(s); w1 = randn(2,2)·4; w2 = randn(4,1)·4.`,
  );

  const status = byId("status");
  status.dataset.epoch = String(session.epoch);
  status.dataset.sample = String(session.sample);
  status.dataset.running = String(running !== null);
  setText(byId("stat-epoch"), String(session.epoch));
  setText(byId("stat-next"), `x${session.sample + 1}`);
  const costEl = byId("total-cost");
  setText(costEl, fmtSig(cost, 10));
  costEl.dataset.value = String(cost);

  const cli = session.cliCommand();
  const badge = byId("cli-badge");
  badge.classList.toggle("off", cli === null);
  setText(badge, cli === null ? (session.edited ? "edited by hand" : "mid-epoch") : "✓ same as handprop seed");
  const equiv = byId("cli-equiv");
  if (cli === null) equiv.replaceChildren();
  else if (equiv.dataset.cli !== cli)
    equiv.replaceChildren("These weights are exactly what ", h("code", {}, cli), " prints.");
  equiv.dataset.cli = cli ?? "";

  const atEnd = session.epoch >= epochTarget && session.sample === 0;
  setText(playBtn, running?.mode === "play" ? "❚❚ Pause" : "▶ Play");
  playBtn.disabled = atEnd && running === null;
  playBtn.title = atEnd
    ? `Already at epoch ${epochTarget}: raise “epochs” or Reset`
    : "Animate training up to the epoch count";
  finishBtn.disabled = atEnd || running?.mode === "fast";
  setText(finishBtn, `Run to epoch ${epochTarget}`);

  const hist = session.history;
  lossChart.setData(hist.x, [hist.cost]);
  outChart.setData(hist.x, [...hist.outs, ...session.targets.map((y) => hist.x.map(() => y))]);

  renderForward(t);
  renderBackward(t);
}

// ---------------------------------------------------------------- start

buildImages();
buildWeights();
buildControls();
buildForward();
buildBackward();
render();

// The two convolution windows step through their four positions unless pinned by hovering.
if (!reducedMotion) {
  setInterval(() => {
    if (!fwPinned) fwPos = (fwPos + 1) % 4;
    if (!bwPinned) bwPos = (bwPos + 1) % 4;
    if (!running) {
      const t = session.trace(selectedImage);
      renderForward(t);
      renderBackward(t);
    }
  }, WINDOW_MS);
}
