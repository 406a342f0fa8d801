// The backward explainer's arithmetic, free of the DOM (test/e2e/backward.test.ts runs it in Node too).
//
// trace() runs one sample forward and backward through a float64 copy of a Sequential, layer by layer
// with the library's own forward/backward, and keeps every activation and every ∂L/∂activation. explain()
// then re-derives the gradient of one element from the forward values alone — the chain-rule terms of
// docs/derivation.md §2.1 (Dense), §2.2 (Conv2D), §2.3 (max pooling), §2.5 (ReLU), §2.6 (softmax + CE) —
// so the page can show the terms and check that they sum to the library's number.
// finiteDifference() is the third opinion: a central difference of the loss.
//
// Graph models (resnet-mini) trace the same way, node by node in the Model's execution order: tensor
// t = k + 1 is the output of node k, and a node may read several tensors. The explainer then adds the
// rules of a graph (derivation.md §5.7): Add copies δ to each of its inputs ("splitting"), and a tensor
// read by two nodes gets the SUM of the two gradients they send back (§0's fan-out rule), shown as two
// terms; plus BatchNorm2D in inference mode and GlobalAvgPool2D, which resnet-mini needs.

import {
  Add,
  BatchNorm2D,
  Conv2D,
  Dense,
  Flatten,
  GlobalAvgPool2D,
  MaxPool2D,
  Model,
  NDArray,
  ReLU,
  samePadding,
  SoftmaxCrossEntropy,
  type Layer,
  type Sequential,
} from "handprop";

/** One tensor of the chain: t = 0 is the input, t = l + 1 the output of layer l, the last one the logits. */
export interface Trace {
  model: Sequential;
  label: number;
  /** acts[t]: copies of the forward values, shape (1, …). */
  acts: NDArray[];
  /** grads[t] = ∂L/∂acts[t], copies of what the library's backward returned. */
  grads: NDArray[];
  probs: Float64Array;
  loss: number;
  /** inputsOf[k]: the tensors node k reads ([[k]] for every node of a Sequential). */
  inputsOf: number[][];
  /** contribs[k][j]: the gradient node k's backward sent to its j-th input (before fan-out sums). */
  contribs: NDArray[][];
  /** Node names (graph models) or "layer k", for the page and for the fan-out terms. */
  names: string[];
}

/** The tensors each node reads: [[0], [1], …] for a Sequential, the graph's wiring for a Model. */
export function wiring(model: Sequential): { inputsOf: number[][]; names: string[] } {
  if (model instanceof Model) {
    const ids = new Map(model.nodes.map((n, k) => [n, k + 1]));
    return {
      inputsOf: model.nodes.map((n) => n.inputs.map((t) => (t.node === null ? 0 : ids.get(t.node)!))),
      names: model.nodes.map((n) => n.name),
    };
  }
  return { inputsOf: model.layers.map((_, k) => [k]), names: model.layers.map((l, k) => `${k}: ${l.type}`) };
}

/** The nodes reading tensor t, with the input slot they read it in. */
export function readersOf(tr: Trace, t: number): { node: number; slot: number }[] {
  const out: { node: number; slot: number }[] = [];
  tr.inputsOf.forEach((ids, node) => {
    ids.forEach((id, slot) => {
      if (id === t) out.push({ node, slot });
    });
  });
  return out;
}

/** Forward from the traced values with tensor `from` replaced by `x` (nodes before it are not re-run). */
function forwardFrom(
  model: Sequential,
  inputsOf: number[][],
  acts: readonly NDArray[],
  from: number,
  x: NDArray,
): NDArray {
  const v = acts.slice();
  v[from] = x;
  for (let k = Math.max(0, from - 1); k < model.layers.length; k++) {
    if (k + 1 === from) continue;
    const ins = inputsOf[k].map((id) => v[id]);
    v[k + 1] =
      ins.length === 1 && !(model.layers[k] instanceof Add)
        ? model.layers[k].forward(ins[0])
        : model.layers[k].forwardInputs(ins);
  }
  return v[v.length - 1];
}

/** An element the user can pick: an activation of tensor t, or a parameter of layer `layer`. */
export type Ref =
  { kind: "act"; t: number; index: number } | { kind: "param"; layer: number; param: "weight" | "bias"; index: number };

export interface Term {
  /** TeX for the two factors, e.g. "W_{3,7}" and "\delta_{7}". */
  factorTex: string;
  deltaTex: string;
  factor: number;
  delta: number;
  product: number;
  /** The upstream element whose gradient is δ here (click to derive it in turn). */
  upstream?: Ref;
  /** Element of the forward tensor the factor is read from (for highlighting), when it is one. */
  source?: { t: number; index: number };
}

export interface Explanation {
  ref: Ref;
  /** The library's ∂L/∂(element), from backward. */
  value: number;
  /** Σ terms, computed here from the forward values and the upstream gradients. */
  sum: number;
  /** Which rule applies ("softmax-ce", "dense-input", "relu", "maxpool", "flatten", "conv-input", …). */
  rule: string;
  /** The general formula (TeX) and a sentence saying why. */
  formula: string;
  why: string;
  terms: Term[];
  /** Extra numbers a rule shows: the ten probabilities, the pooling window, the ReLU input. */
  extra?: Record<string, number | number[] | boolean>;
}

function copy64(a: NDArray): NDArray {
  return new NDArray(Float64Array.from(a.data), a.shape.slice());
}

/** A float64 copy of the model (same config and weights); the page's own model stays float32. */
export function float64Copy(
  model: Sequential,
  rebuild: (config: ReturnType<Sequential["config"]>) => Sequential,
): Sequential {
  const m = rebuild(model.config());
  m.setDtype("float64");
  const src = model.params();
  m.params().forEach((p, i) => {
    p.value.data.set(src[i].value.data);
  });
  return m;
}

/** Forward and backward of one sample (input of shape (1, C, H, W)) with cross-entropy against `label`. */
export function trace(model: Sequential, input: NDArray, label: number): Trace {
  const { inputsOf, names } = wiring(model);
  const acts: NDArray[] = [copy64(input)];
  model.layers.forEach((layer, k) => {
    const ins = inputsOf[k].map((id) => acts[id]);
    acts.push(copy64(ins.length === 1 ? layer.forward(ins[0]) : layer.forwardInputs(ins)));
  });
  const h = acts[acts.length - 1];
  const loss = new SoftmaxCrossEntropy();
  const value = loss.forward(h, [label]);
  const probs = Float64Array.from(SoftmaxCrossEntropy.softmax(h).data);
  model.zeroGrad();
  const grads: (NDArray | undefined)[] = new Array<NDArray | undefined>(acts.length);
  const contribs: NDArray[][] = new Array<NDArray[]>(model.layers.length);
  grads[acts.length - 1] = copy64(loss.backward());
  // Reverse execution order: every reader of a node's output has sent its gradient before the node runs;
  // a tensor read twice gets the sum (derivation.md §0, fan-out).
  for (let k = model.layers.length - 1; k >= 0; k--) {
    const layer = model.layers[k];
    const dy = grads[k + 1]!;
    const dxs = inputsOf[k].length === 1 && !(layer instanceof Add) ? [layer.backward(dy)] : layer.backwardInputs(dy);
    contribs[k] = dxs.map(copy64);
    inputsOf[k].forEach((id, j) => {
      const g = grads[id];
      if (g === undefined) grads[id] = copy64(dxs[j]);
      else for (let i = 0; i < g.data.length; i++) g.data[i] += dxs[j].data[i];
    });
  }
  return { model, label, acts, grads: grads as NDArray[], probs, loss: value, inputsOf, contribs, names };
}

/** Loss of the model's tail: from tensor `from` (= x, acts[from] of `tr` otherwise) on, cross-entropy against label. */
export function lossFrom(model: Sequential, from: number, x: NDArray, label: number, tr?: Trace): number {
  const inputsOf = tr ? tr.inputsOf : wiring(model).inputsOf;
  const acts = tr ? tr.acts : new Array<NDArray>(model.layers.length + 1);
  return new SoftmaxCrossEntropy().forward(forwardFrom(model, inputsOf, acts, from, x), [label]);
}

/** The loss with one element (activation or parameter) moved by `delta`, everything else as traced. */
export function lossAt(tr: Trace, ref: Ref, delta: number): number {
  const { model, label } = tr;
  if (ref.kind === "act") {
    const x = copy64(tr.acts[ref.t]);
    x.data[ref.index] += delta;
    return lossFrom(model, ref.t, x, label, tr);
  }
  const p = paramOf(model.layers[ref.layer], ref.param);
  const v = p.data[ref.index];
  p.data[ref.index] = v + delta;
  try {
    return lossFrom(model, 0, tr.acts[0], label, tr);
  } finally {
    p.data[ref.index] = v;
  }
}

/** Central difference (L(v+ε) − L(v−ε)) / 2ε of the loss in one element, on the float64 model. */
export function finiteDifference(tr: Trace, ref: Ref, eps = 1e-6): number {
  return (lossAt(tr, ref, eps) - lossAt(tr, ref, -eps)) / (2 * eps);
}

/**
 * The one-sided differences [(L(v) − L(v−ε))/ε, (L(v+ε) − L(v))/ε] and whether they disagree: a kink
 * within ε (a ReLU input at 0, a tied pooling window downstream), where backward returns one
 * subgradient and a central difference the average of the two sides.
 */
export function oneSided(tr: Trace, ref: Ref, eps = 1e-6): { left: number; right: number; kink: boolean } {
  const at = lossAt(tr, ref, 0);
  const left = (at - lossAt(tr, ref, -eps)) / eps;
  const right = (lossAt(tr, ref, eps) - at) / eps;
  const kink = Math.abs(left - right) > 1e-4 * Math.max(Math.abs(left), Math.abs(right)) + 1e-6;
  return { left, right, kink };
}

function paramOf(layer: Layer, which: "weight" | "bias"): NDArray {
  if (!(layer instanceof Conv2D || layer instanceof Dense)) {
    throw new RangeError(`explainer: ${layer.type} has no ${which}`);
  }
  const p = which === "weight" ? layer.weight : layer.bias;
  if (!p) throw new RangeError(`explainer: this ${layer.type} has no bias`);
  return p.value;
}

function paramGrad(layer: Layer, which: "weight" | "bias"): NDArray {
  if (!(layer instanceof Conv2D || layer instanceof Dense)) {
    throw new RangeError(`explainer: ${layer.type} has no ${which}`);
  }
  const p = which === "weight" ? layer.weight : layer.bias;
  if (!p) throw new RangeError(`explainer: this ${layer.type} has no bias`);
  return p.grad;
}

/** Multi-index of a flat index in a shape without the batch axis. */
export function unravel(index: number, shape: readonly number[]): number[] {
  const out = new Array<number>(shape.length);
  let r = index;
  for (let k = shape.length - 1; k >= 0; k--) {
    out[k] = r % shape[k];
    r = Math.floor(r / shape[k]);
  }
  return out;
}

/** [top, left] zero padding of a Conv2D for an input of height H and width W (derivation.md §2.2). */
export function convPadding(layer: Conv2D, H: number, W: number): [number, number] {
  const p = layer.padding;
  const [kh, kw] = layer.kernelSize;
  if (p === "valid") return [0, 0];
  if (p === "same") {
    const top = samePadding(H, kh, layer.stride[0], layer.dilation[0])[0];
    const left = samePadding(W, kw, layer.stride[1], layer.dilation[1])[0];
    return [top, left];
  }
  return typeof p === "number" ? [p, p] : [p[0], p[1]];
}

const idx = (...ix: number[]): string => ix.join(",");

/** Gradients of the tensors, with `sum` of independent terms, for one element. */
export function explain(tr: Trace, ref: Ref): Explanation {
  return ref.kind === "act" ? explainActivation(tr, ref) : explainParam(tr, ref);
}

/** One term factor·δ of a derivation. */
function term(
  factorTex: string,
  deltaTex: string,
  factor: number,
  delta: number,
  upstream?: Ref,
  source?: Term["source"],
): Term {
  const t: Term = { factorTex, deltaTex, factor, delta, product: factor * delta };
  if (upstream) t.upstream = upstream;
  if (source) t.source = source;
  return t;
}

function finish(
  ref: Ref,
  value: number,
  rule: string,
  formula: string,
  why: string,
  terms: Term[],
  extra?: Explanation["extra"],
): Explanation {
  let sum = 0;
  for (const t of terms) sum += t.product;
  return { ref, value, sum, rule, formula, why, terms, ...(extra ? { extra } : {}) };
}

function explainActivation(tr: Trace, ref: Extract<Ref, { kind: "act" }>): Explanation {
  const { t, index } = ref;
  const last = tr.acts.length - 1;
  const value = tr.grads[t].data[index];
  if (t === last) {
    const onehot = index === tr.label ? 1 : 0;
    // derivation.md §2.6: ∂L/∂z_k = p_k − [k = y]
    const terms: Term[] = [
      { factorTex: `p_{${index}}`, deltaTex: "1", factor: tr.probs[index], delta: 1, product: tr.probs[index] },
      { factorTex: `-[${index} = y]`, deltaTex: "1", factor: -onehot, delta: 1, product: -onehot },
    ];
    return finish(
      ref,
      value,
      "softmax-ce",
      "\\frac{\\partial L}{\\partial z_k} = p_k - [k = y]",
      "Softmax followed by cross-entropy: the gradient of the logits is the predicted probability minus the " +
        "one-hot target.",
      terms,
      { probs: Array.from(tr.probs), label: tr.label },
    );
  }
  const readers = readersOf(tr, t);
  if (readers.length > 1) return explainFanOut(tr, ref, readers, value);
  const k = readers[0].node; // the consumer of acts[t]
  const layer = tr.model.layers[k];
  const x = tr.acts[t];
  const dy = tr.grads[k + 1];
  const inShape = x.shape.slice(1);
  const up = (i: number): Ref => ({ kind: "act", t: k + 1, index: i });
  if (layer instanceof Add) {
    // derivation.md §5.7: y = x₁ + x₂ + …, ∂y/∂x_j = 1, so each input gets a copy of δ
    const others = tr.inputsOf[k].length - 1;
    return finish(
      ref,
      value,
      "add",
      "y = \\sum_j x^{(j)} \\;\\Rightarrow\\; \\frac{\\partial L}{\\partial x^{(j)}} = \\delta",
      `Add (${tr.names[k]}) sums its inputs, so nudging this input moves the output one for one: the gradient is ` +
        `copied unchanged to this input and to the ${others === 1 ? "other one" : `other ${others}`} — ` +
        "a residual connection splits δ between its two paths.",
      [term("1", `\\delta_{${index}}`, 1, dy.data[index], up(index))],
      { inputs: others + 1 },
    );
  }
  if (layer instanceof BatchNorm2D) {
    const [C, H, W] = inShape;
    const c = Math.floor(index / (H * W)) % C;
    const variance = layer.runningVar.value.data[c];
    const gamma = layer.gamma ? layer.gamma.value.data[c] : 1;
    const scale = gamma / Math.sqrt(variance + layer.eps);
    // derivation.md §2.4, inference mode: running μ, σ² are constants, so ∂L/∂x = γ/√(σ² + ε)·δ per channel
    return finish(
      ref,
      value,
      "batchnorm-inference",
      "\\frac{\\partial L}{\\partial x_{c,i,j}} = " +
        "\\frac{\\gamma_c}{\\sqrt{\\sigma_c^2 + \\varepsilon}}\\,\\delta_{c,i,j}",
      `BatchNorm in inference mode uses the running mean and variance of channel ${c}: it is an affine map ` +
        "per channel, so the gradient is δ scaled by γ/√(σ² + ε).",
      [
        term(
          `\\gamma_{${c}}/\\sqrt{\\sigma_{${c}}^2+\\varepsilon}`,
          `\\delta_{${index}}`,
          scale,
          dy.data[index],
          up(index),
        ),
      ],
      { gamma, variance, eps: layer.eps },
    );
  }
  if (layer instanceof GlobalAvgPool2D) {
    const [, H, W] = inShape;
    const c = Math.floor(index / (H * W));
    // derivation.md §2.3: y_c = (1/HW) Σ x_c  ⇒  ∂L/∂x_{c,i,j} = δ_c/(H·W)
    return finish(
      ref,
      value,
      "global-avg-pool",
      "\\frac{\\partial L}{\\partial x_{c,i,j}} = \\frac{\\delta_c}{H\\cdot W}",
      `Global average pooling: output ${c} is the mean of the ${H}×${W} cells of channel ${c}, so every cell ` +
        `gets δ/${H * W}.`,
      [term(`1/(${H}\\cdot ${W})`, `\\delta_{${c}}`, 1 / (H * W), dy.data[c], up(c))],
    );
  }
  if (layer instanceof Dense) {
    const W = layer.weight.value.data;
    const F = layer.outFeatures;
    const terms: Term[] = [];
    // derivation.md §2.1: dx = dy·Wᵀ, so ∂L/∂x_i = Σ_j W_ij δ_j
    for (let j = 0; j < F; j++) {
      const w = W[index * F + j];
      const d = dy.data[j];
      terms.push(term(`W_{${index},${j}}`, `\\delta_{${j}}`, w, d, up(j)));
    }
    return finish(
      ref,
      value,
      "dense-input",
      "\\frac{\\partial L}{\\partial x_i} = \\sum_j W_{ij}\\,\\delta_j = (W\\delta)_i",
      `Dense ${layer.inFeatures}→${F}: x_i feeds every output j with weight W_ij, so its gradient is row i of W ` +
        "times δ.",
      terms,
    );
  }
  if (layer instanceof ReLU) {
    const xi = x.data[index];
    const on = xi > 0;
    const d = dy.data[index];
    // derivation.md §2.5: ∂L/∂x = δ · [x > 0]
    const terms: Term[] = [term("[x > 0]", "\\delta", on ? 1 : 0, d, up(index))];
    return finish(
      ref,
      value,
      "relu",
      "\\frac{\\partial L}{\\partial x} = \\delta\\cdot[x > 0]",
      on
        ? "The unit is active (x > 0): ReLU is the identity here and passes the gradient through unchanged."
        : "The unit is dead (x ≤ 0): ReLU outputs a constant 0 around it, so nudging x changes nothing and the " +
            "gradient is 0.",
      terms,
      { input: xi, active: on },
    );
  }
  if (layer instanceof Flatten) {
    const terms: Term[] = [term("1", `\\delta_{${index}}`, 1, dy.data[index], up(index))];
    return finish(
      ref,
      value,
      "flatten",
      "\\frac{\\partial L}{\\partial x_{c,i,j}} = \\delta_{(c\\cdot H + i)\\cdot W + j}",
      "Flatten only renames elements (row-major), so each gradient is copied back to its place.",
      terms,
    );
  }
  if (layer instanceof MaxPool2D) {
    const [, H, W] = inShape;
    const [, Ho, Wo] = dy.shape.slice(1);
    const [kh, kw] = layer.kernelSize;
    const [sh, sw] = layer.stride;
    const [ph, pw] = layer.padding;
    const [c, a, b] = unravel(index, inShape);
    const terms: Term[] = [];
    const windows: number[] = [];
    let tie = false;
    for (let i = 0; i < Ho; i++) {
      for (let j = 0; j < Wo; j++) {
        const r0 = i * sh - ph;
        const c0 = j * sw - pw;
        if (a < r0 || a >= r0 + kh || b < c0 || b >= c0 + kw) continue;
        // the window's winner: first maximum in row-major order (strict ">"), as the library picks it
        let best = -Infinity;
        let arg = -1;
        for (let u = 0; u < kh; u++) {
          for (let v = 0; v < kw; v++) {
            const r = r0 + u;
            const q = c0 + v;
            if (r < 0 || r >= H || q < 0 || q >= W) continue;
            const val = x.data[(c * H + r) * W + q];
            if (arg < 0 || val > best) {
              best = val;
              arg = (c * H + r) * W + q;
            }
          }
        }
        windows.push(arg);
        // a second cell equal to the maximum: the loss has a kink here (one-sided derivatives differ)
        for (let u = 0; u < kh; u++) {
          for (let v = 0; v < kw; v++) {
            const r = r0 + u;
            const q = c0 + v;
            const at = (c * H + r) * W + q;
            if (r >= 0 && r < H && q >= 0 && q < W && at !== arg && x.data[at] === best) tie = true;
          }
        }
        const o = (c * Ho + i) * Wo + j;
        const won = arg === index ? 1 : 0;
        const winner = `[\\text{winner of window }(${i},${j})]`;
        terms.push(term(winner, `\\delta_{${idx(c, i, j)}}`, won, dy.data[o], up(o), { t, index: arg }));
      }
    }
    return finish(
      ref,
      value,
      "maxpool",
      "\\frac{\\partial L}{\\partial x_i} = \\sum_{o:\\ \\arg\\max(\\text{window } o) = i} \\delta_o",
      terms.some((q) => q.factor === 1)
        ? "This input is the maximum of its window: the pooled output is a copy of it, so it receives the " +
            "window's whole gradient."
        : "This input lost its window to a larger neighbour: the pooled output does not depend on it, so its " +
            "gradient is 0.",
      terms,
      { winners: windows, tie },
    );
  }
  if (layer instanceof Conv2D) {
    const [C, H, W] = inShape;
    const [O, Ho, Wo] = dy.shape.slice(1);
    const [kh, kw] = layer.kernelSize;
    const [sh, sw] = layer.stride;
    const [dh, dw] = layer.dilation;
    const [pt, pl] = convPadding(layer, H, W);
    const Wt = layer.weight.value.data;
    const [c, a, b] = unravel(index, inShape);
    const terms: Term[] = [];
    // derivation.md §2.2: ∂L/∂x[c,a,b] = Σ_o Σ_{u,v} W[o,c,u,v] δ[o,i,j] where i·s − p + u·d = a:
    // the full convolution of δ with the flipped kernel
    for (let o = 0; o < O; o++) {
      for (let u = 0; u < kh; u++) {
        const ti = a + pt - u * dh;
        if (ti < 0 || ti % sh !== 0 || ti / sh >= Ho) continue;
        const i = ti / sh;
        for (let v = 0; v < kw; v++) {
          const tj = b + pl - v * dw;
          if (tj < 0 || tj % sw !== 0 || tj / sw >= Wo) continue;
          const j = tj / sw;
          const w = Wt[((o * C + c) * kh + u) * kw + v];
          const oi = (o * Ho + i) * Wo + j;
          const d = dy.data[oi];
          terms.push(term(`W_{${idx(o, c, u, v)}}`, `\\delta_{${idx(o, i, j)}}`, w, d, up(oi)));
        }
      }
    }
    return finish(
      ref,
      value,
      "conv-input",
      "\\frac{\\partial L}{\\partial x_{c,a,b}} = \\sum_{o}\\sum_{u,v} W_{o,c,u,v}\\,\\delta_{o,\\,a+p-u,\\,b+p-v}" +
        " = \\Big(\\sum_o \\delta_o * W_{o,c}\\Big)_{a,b}",
      "Every output whose window covers this pixel sends back its δ times the weight that met the pixel: the full " +
        "convolution of δ with the kernel flipped.",
      terms,
      { padding: [pt, pl] },
    );
  }
  throw new RangeError(`explainer: layer ${k} (${layer.type}) is not one the explainer knows`);
}

/**
 * A tensor read by several nodes (derivation.md §0, fan-out): its gradient is the sum of what each
 * reader's backward sent it. One term per reader; clicking a term's upstream follows that path when
 * the reader is elementwise (Add, ReLU, BatchNorm: same index in its output).
 */
function explainFanOut(
  tr: Trace,
  ref: Extract<Ref, { kind: "act" }>,
  readers: { node: number; slot: number }[],
  value: number,
): Explanation {
  const terms = readers.map(({ node, slot }) => {
    const layer = tr.model.layers[node];
    const elementwise = layer instanceof Add || layer instanceof ReLU || layer instanceof BatchNorm2D;
    const d = tr.contribs[node][slot].data[ref.index];
    const name = tr.names[node].replace(/_/g, "\\_");
    return term(
      "1",
      `\\delta^{(\\text{${name}})}`,
      1,
      d,
      elementwise ? { kind: "act", t: node + 1, index: ref.index } : undefined,
    );
  });
  return finish(
    ref,
    value,
    "fan-out",
    "\\frac{\\partial L}{\\partial u} = \\sum_{v \\text{ reads } u} \\frac{\\partial L}{\\partial u}\\Big|_{v}",
    `This tensor is read by ${readers.length} nodes (${readers.map((r) => tr.names[r.node]).join(", ")}): ` +
      "nudging it moves the loss along every path, so its gradient is the sum of the gradients the readers send " +
      "back — the two halves of a residual connection meeting again.",
    terms,
    { readers: readers.length },
  );
}

function explainParam(tr: Trace, ref: Extract<Ref, { kind: "param" }>): Explanation {
  const layer = tr.model.layers[ref.layer];
  const value = paramGrad(layer, ref.param).data[ref.index];
  const xt = tr.inputsOf[ref.layer][0]; // the tensor the layer reads
  const x = tr.acts[xt];
  const dy = tr.grads[ref.layer + 1];
  const up = (i: number): Ref => ({ kind: "act", t: ref.layer + 1, index: i });
  if (layer instanceof Dense) {
    const F = layer.outFeatures;
    if (ref.param === "bias") {
      const j = ref.index;
      return finish(
        ref,
        value,
        "dense-bias",
        "\\frac{\\partial L}{\\partial b_j} = \\delta_j",
        "The bias is added straight to output j, so it gets that output's gradient.",
        [term("1", `\\delta_{${j}}`, 1, dy.data[j], up(j))],
      );
    }
    const i = Math.floor(ref.index / F);
    const j = ref.index % F;
    // derivation.md §2.1: dW = xᵀ·δ, one sample: ∂L/∂W_ij = x_i δ_j
    return finish(
      ref,
      value,
      "dense-weight",
      "\\frac{\\partial L}{\\partial W_{ij}} = x_i\\,\\delta_j \\quad (\\partial L/\\partial W = x^{\\top}\\delta)",
      "W_ij multiplies input i into output j: its gradient is that input times that output's gradient (an outer " +
        "product over the batch).",
      [term(`x_{${i}}`, `\\delta_{${j}}`, x.data[i], dy.data[j], up(j), { t: xt, index: i })],
    );
  }
  if (layer instanceof Conv2D) {
    const [C, H, W] = x.shape.slice(1);
    const [O, Ho, Wo] = dy.shape.slice(1);
    const [kh, kw] = layer.kernelSize;
    const [sh, sw] = layer.stride;
    const [dh, dw] = layer.dilation;
    const [pt, pl] = convPadding(layer, H, W);
    const terms: Term[] = [];
    if (ref.param === "bias") {
      const o = ref.index;
      for (let i = 0; i < Ho; i++) {
        for (let j = 0; j < Wo; j++) {
          const oi = (o * Ho + i) * Wo + j;
          terms.push(term("1", `\\delta_{${idx(o, i, j)}}`, 1, dy.data[oi], up(oi)));
        }
      }
      return finish(
        ref,
        value,
        "conv-bias",
        "\\frac{\\partial L}{\\partial b_o} = \\sum_{i,j}\\delta_{o,i,j}",
        "The bias is added at every position of feature map o, so it collects the gradient of all of them.",
        terms,
      );
    }
    const [o, c, u, v] = unravel(ref.index, [O, C, kh, kw]);
    // derivation.md §2.2: ∂L/∂W[o,c,u,v] = Σ_{i,j} δ[o,i,j] · x_pad[c, i·s + u·d, j·s + v·d]:
    // a correlation of x with δ
    for (let i = 0; i < Ho; i++) {
      for (let j = 0; j < Wo; j++) {
        const r = i * sh - pt + u * dh;
        const q = j * sw - pl + v * dw;
        const inside = r >= 0 && r < H && q >= 0 && q < W;
        const xv = inside ? x.data[(c * H + r) * W + q] : 0;
        const oi = (o * Ho + i) * Wo + j;
        const d = dy.data[oi];
        terms.push({
          factorTex: inside ? `x_{${idx(c, r, q)}}` : "0_{\\text{pad}}",
          deltaTex: `\\delta_{${idx(o, i, j)}}`,
          factor: xv,
          delta: d,
          product: xv * d,
          upstream: up(oi),
          ...(inside ? { source: { t: xt, index: (c * H + r) * W + q } } : {}),
        });
      }
    }
    return finish(
      ref,
      value,
      "conv-weight",
      "\\frac{\\partial L}{\\partial W_{o,c,u,v}} = \\sum_{i,j}\\delta_{o,i,j}\\;x_{c,\\,i+u-p,\\,j+v-p}" +
        " = (x_c \\star \\delta_o)_{u,v}",
      "The kernel weight (u, v) meets, at every output position (i, j), the input pixel shifted by (u, v): its " +
        "gradient is the correlation of the input with δ, read at (u, v). Positions that fall in the zero padding " +
        "contribute 0.",
      terms,
      { padding: [pt, pl] },
    );
  }
  throw new RangeError(`explainer: layer ${ref.layer} (${layer.type}) has no parameters`);
}

/** Terms sorted by |product|, the first `k` of them, and how many were left out. */
export function topTerms(terms: readonly Term[], k: number): { top: Term[]; rest: number; restSum: number } {
  const sorted = terms.slice().sort((p, q) => Math.abs(q.product) - Math.abs(p.product));
  const top = sorted.slice(0, k);
  let restSum = 0;
  for (const t of sorted.slice(k)) restSum += t.product;
  return { top, rest: Math.max(0, terms.length - k), restSum };
}

/** L2 norm of an array's data. */
export function norm(a: ArrayLike<number>): number {
  let s = 0;
  for (let i = 0; i < a.length; i++) s += a[i] * a[i];
  return Math.sqrt(s);
}
