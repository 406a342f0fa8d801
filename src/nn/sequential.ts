// Sequential: a stack of layers, and the training loop around it.
//
// forward runs the layers in order; backward runs their backward passes in reverse, each receiving
// the gradient the layer above returned (the chain rule, derivation.md §0):
//     dx_{i} = layer_i.backward(dx_{i+1}),   dx_{L} = ∂loss/∂prediction.
// fit = for each epoch, for each (seeded) shuffled mini-batch: zeroGrad → forward → loss → backward →
// optimizer.step. Every random choice — initial weights, dropout masks, shuffling — comes from
// RandomStates seeded from the model's and fit's seeds, so the same seeds give bit-identical training.

import { NDArray, allocate, formatShape, shapeSize, type DType } from "../nd/ndarray.ts";
import { RandomState } from "../nd/random.ts";
import { Layer, ShapeError, type ForwardOptions, type LayerConfig, type Param } from "./layer.ts";
import type { Differentiable } from "./gradcheck.ts";
import type { Loss, Target } from "./losses.ts";
import type { Optimizer } from "./optim.ts";

export interface SequentialOptions {
  /** Shape of one input sample, e.g. [1, 28, 28]. When given, the model is validated at construction. */
  inputShape?: readonly number[];
  /** Re-initialise every layer's weights, in order, from RandomState(seed). */
  seed?: number;
  /** Convert all parameters to this dtype (default: leave as constructed, float32). */
  dtype?: DType;
  name?: string;
}

/** What the training loop reports after each batch and epoch. */
export interface Logs {
  epoch: number;
  batch?: number;
  loss: number;
  accuracy?: number;
  valLoss?: number;
  valAccuracy?: number;
  lr: number;
  seconds?: number;
  /** Samples seen so far in this epoch. */
  seen?: number;
}

export interface Callbacks {
  onTrainBegin?(info: { epochs: number; batchesPerEpoch: number; samples: number }): void;
  onEpochBegin?(epoch: number): void;
  /** Return false to stop training after this batch. */
  onBatchEnd?(batch: number, logs: Logs): unknown;
  /** Return false to stop training after this epoch. */
  onEpochEnd?(epoch: number, logs: Logs): unknown;
}

/** A learning-rate schedule: lr for an epoch (0-based) given the optimizer's base lr. */
export interface Schedule {
  lrAt(epoch: number, baseLr: number): number;
}

export interface FitOptions {
  epochs?: number;
  batchSize?: number;
  /** Shuffle the samples each epoch (default true), with RandomState(seed). */
  shuffle?: boolean;
  seed?: number;
  validationData?: [NDArray, Target];
  callbacks?: Callbacks | Callbacks[];
  loss?: Loss;
  optimizer?: Optimizer;
  schedule?: Schedule;
  /** Start at this epoch (for resuming): the shuffles of the skipped epochs are drawn and discarded. */
  initialEpoch?: number;
}

export interface History {
  epochs: Logs[];
}

/** Training stopped because a loss or gradient was not finite; names where. */
export class TrainingError extends Error {
  override name = "TrainingError";
}

/** What Sequential.config() returns (a graph Model adds its connections, see graph.ts). */
export interface SequentialConfig extends LayerConfig {
  name: string;
  inputShape: number[] | null;
  layers: LayerConfig[];
}

// A Sequential is itself a Layer, so models nest: a Sequential inside a Sequential or a graph Model.
export class Sequential extends Layer implements Differentiable {
  readonly type: string = "Sequential";
  readonly layers: Layer[];
  readonly name: string;
  inputShape: number[] | null = null;
  loss: Loss | null = null;
  optimizer: Optimizer | null = null;
  /** Set to true from a callback to stop fit after the current batch. */
  stopTraining = false;

  constructor(layers: Layer[], opts: SequentialOptions = {}) {
    super();
    if (!Array.isArray(layers) || layers.length === 0) throw new RangeError("Sequential: needs at least one layer");
    this.layers = layers;
    this.name = opts.name ?? "sequential";
    layers.forEach((l, i) => (l.index = i));
    // build first: layers whose input size comes from the input shape create their weights there, and
    // then the seed redraws every layer's, first layer first, as for fully specified layers.
    if (opts.inputShape) this.build(opts.inputShape);
    if (opts.seed !== undefined) {
      const pending = layers.find((l) => !l.isBuilt());
      if (pending) {
        throw new Error(`${this.name}: ${pending.describe()} takes its input size from the input shape, which is not given: pass inputShape (or give the layer's inChannels/inFeatures) so that seed can draw its weights`);
      }
      this.initialize(new RandomState(opts.seed));
    }
    if (opts.dtype) this.setDtype(opts.dtype);
  }

  override isBuilt(): boolean {
    return this.layers.every((l) => l.isBuilt());
  }

  /** The output sample shape for an input sample shape (validates the whole stack, see build). */
  outputShape(inputShape: readonly number[]): number[] {
    const shapes = this.build(inputShape);
    return shapes[shapes.length - 1];
  }

  /** Re-draw every layer's initial weights from rng, first layer first. */
  override initialize(rng: RandomState): void {
    for (const l of this.layers) l.initialize(rng);
  }

  /**
   * Validate the model for one input sample shape and return every layer's output shape. Bad layer
   * options (a kernel larger than its padded input, a Dense of the wrong width) fail here, naming
   * the layer, rather than deep inside a training loop.
   */
  build(inputShape: readonly number[]): number[][] {
    const shapes: number[][] = [];
    let s = inputShape.slice();
    for (const l of this.layers) {
      s = l.outputShape(s);
      shapes.push(s);
    }
    this.inputShape = inputShape.slice();
    return shapes;
  }

  override forward(x: NDArray, opts: ForwardOptions = {}): NDArray {
    if (this.inputShape && (x.ndim !== this.inputShape.length + 1 || this.inputShape.some((d, i) => x.shape[i + 1] !== d))) {
      throw new ShapeError(`${this.name}: expected input of shape (N, ${this.inputShape.join(", ")}), got ${formatShape(x.shape)}`);
    }
    let h = x;
    for (const l of this.layers) h = l.forward(h, opts);
    return h;
  }

  // Chain rule through the stack: each layer turns ∂L/∂(its output) into ∂L/∂(its input).
  override backward(dy: NDArray): NDArray {
    // nested in a model that does not read this model's dx: neither does anyone read the first layer's
    const first = this.layers[0];
    const skipBefore = first.skipInputGrad;
    first.skipInputGrad ||= this.skipInputGrad;
    let d = dy;
    try {
      for (let i = this.layers.length - 1; i >= 0; i--) d = this.layers[i].backward(d);
    } finally {
      first.skipInputGrad = skipBefore;
    }
    return d;
  }

  /** All parameters, named "<layer index>.<name>" (the arrays are the layers' own). */
  override params(): Param[] {
    const out: Param[] = [];
    this.layers.forEach((l, i) => {
      for (const p of l.params()) out.push(Object.assign(Object.create(p) as Param, { name: `${i}.${p.name}` }));
    });
    return out;
  }

  /** The layers' own Param objects (stable identities, for optimizers). */
  private ownParams(): Param[] {
    return this.layers.flatMap((l) => (l instanceof Sequential ? l.ownParams() : l.params()));
  }

  override zeroGrad(): void {
    for (const l of this.layers) l.zeroGrad();
  }

  override setDtype(dtype: DType): void {
    for (const l of this.layers) l.setDtype(dtype);
  }

  get dtype(): DType {
    return this.ownParams()[0]?.value.dtype ?? "float32";
  }

  compile(opts: { loss: Loss; optimizer: Optimizer }): this {
    this.loss = opts.loss;
    this.optimizer = opts.optimizer;
    return this;
  }

  countParams(): { trainable: number; nonTrainable: number } {
    let trainable = 0;
    let nonTrainable = 0;
    for (const p of this.ownParams()) {
      if (p.trainable) trainable += p.value.size;
      else nonTrainable += p.value.size;
    }
    return { trainable, nonTrainable };
  }

  /** A Keras-style table of layers, output shapes and parameter counts. */
  summary(inputShape: readonly number[] | null = this.inputShape): string {
    if (!inputShape) throw new Error(`${this.name}.summary: the input shape is unknown: pass it, or give inputShape when constructing the model`);
    const shapes = this.build(inputShape);
    const rows = this.layers.map((l, i) => {
      const count = l.params().reduce((s, p) => s + p.value.size, 0);
      return [`${l.type.toLowerCase()}_${i} (${l.type})`, `(None, ${shapes[i].join(", ")})`, count.toLocaleString("en-US")];
    });
    const widths = [Math.max(29, ...rows.map((r) => r[0].length + 2)), 26, 12];
    const line = (cells: string[]) => " " + cells.map((c, i) => c.padEnd(widths[i])).join("").trimEnd();
    const total = widths.reduce((a, b) => a + b, 1);
    const { trainable, nonTrainable } = this.countParams();
    const fmt = (n: number) => n.toLocaleString("en-US");
    return [
      `Model: "${this.name}"`,
      "_".repeat(total),
      line(["Layer (type)", "Output Shape", "Param #"]),
      "=".repeat(total),
      ...rows.flatMap((r, i) => [line(r), i < rows.length - 1 ? "" : null].filter((s): s is string => s !== null)),
      "=".repeat(total),
      `Total params: ${fmt(trainable + nonTrainable)}`,
      `Trainable params: ${fmt(trainable)}`,
      `Non-trainable params: ${fmt(nonTrainable)}`,
      "_".repeat(total),
    ].join("\n");
  }

  /** Predictions for x in inference mode, batch by batch; the result is a fresh array. */
  predict(x: NDArray, opts: { batchSize?: number } = {}): NDArray {
    const N = x.shape[0];
    const bs = opts.batchSize ?? 256;
    let out: NDArray | null = null;
    const batch = new BatchBuffer(x);
    for (let start = 0; start < N; start += bs) {
      const n = Math.min(bs, N - start);
      const y = this.forward(batch.range(start, n), { training: false });
      if (!out) out = new NDArray(allocate(y.dtype, N * (y.size / n)), [N, ...y.shape.slice(1)]);
      out.data.set(y.data, start * (y.size / n));
    }
    return out ?? new NDArray(allocate(this.dtype, 0), [0]);
  }

  /** Mean loss (and accuracy, for classification losses) over a dataset, in inference mode. */
  evaluate(x: NDArray, y: Target, opts: { batchSize?: number; loss?: Loss } = {}): { loss: number; accuracy?: number } {
    const loss = opts.loss ?? this.loss;
    if (!loss) throw new Error(`${this.name}.evaluate: no loss: call compile({loss, optimizer}) or pass {loss}`);
    const N = x.shape[0];
    checkTargets(x, y, "evaluate");
    const bs = opts.batchSize ?? 256;
    const xb = new BatchBuffer(x);
    const yb = new TargetBuffer(y);
    let lossSum = 0;
    let correct = 0;
    let counted = 0;
    for (let start = 0; start < N; start += bs) {
      const n = Math.min(bs, N - start);
      const pred = this.forward(xb.range(start, n), { training: false });
      const t = yb.range(start, n);
      lossSum += loss.forward(pred, t) * n;
      const c = countCorrect(loss, pred, t);
      if (c !== null) {
        correct += c;
        counted += n;
      }
    }
    return counted > 0 ? { loss: lossSum / N, accuracy: correct / counted } : { loss: lossSum / N };
  }

  /**
   * One optimisation step on one batch: zeroGrad → forward → loss → backward → finite checks →
   * optimizer.step. Returns the batch's mean loss and, for classification losses, the number of
   * correct predictions. `where` ("epoch 3, batch 17") goes into the error if a loss or gradient is
   * not finite. fit is a loop over this; the training CLI calls it directly.
   */
  trainBatch(x: NDArray, y: Target, loss: Loss, optimizer: Optimizer, where = "a batch"): { loss: number; correct: number | null } {
    this.zeroGrad();
    const pred = this.forward(x, { training: true });
    const l = loss.forward(pred, y);
    if (!Number.isFinite(l)) {
      throw new TrainingError(`${this.name}: loss is ${l} at ${where}: lower the learning rate or check the data for NaN/Inf`);
    }
    // Nobody reads the first layer's dx here: let it skip computing it.
    const first = this.layers[0];
    const skipBefore = first.skipInputGrad;
    first.skipInputGrad = true;
    try {
      this.backward(loss.backward());
    } finally {
      first.skipInputGrad = skipBefore;
    }
    const params = this.ownParams();
    for (const p of params) {
      if (!p.trainable) continue;
      const g = p.grad.data;
      for (let i = 0; i < g.length; i++) {
        if (!Number.isFinite(g[i])) {
          const owner = this.layers.find((layer) => layer.params().includes(p));
          throw new TrainingError(`${this.name}: gradient of ${owner?.describe() ?? "a layer"} ${p.name} is ${g[i]} at ${where}`);
        }
      }
    }
    optimizer.step(params);
    return { loss: l, correct: countCorrect(loss, pred, y) };
  }

  /** Train with mini-batch gradient descent. Throws TrainingError on a non-finite loss or gradient. */
  fit(x: NDArray, y: Target, opts: FitOptions = {}): History {
    const loss = opts.loss ?? this.loss;
    const optimizer = opts.optimizer ?? this.optimizer;
    if (!loss || !optimizer) throw new Error(`${this.name}.fit: no loss or optimizer: call compile({loss, optimizer}) or pass them to fit`);
    const epochs = opts.epochs ?? 1;
    const batchSize = opts.batchSize ?? 32;
    if (!Number.isInteger(epochs) || epochs < 0) throw new RangeError(`fit: epochs must be a non-negative integer, got ${epochs}`);
    if (!Number.isInteger(batchSize) || batchSize < 1) throw new RangeError(`fit: batchSize must be a positive integer, got ${batchSize}`);
    checkTargets(x, y, "fit");
    if (opts.validationData) checkTargets(opts.validationData[0], opts.validationData[1], "fit (validationData)");
    const callbacks = opts.callbacks === undefined ? [] : Array.isArray(opts.callbacks) ? opts.callbacks : [opts.callbacks];
    const N = x.shape[0];
    const batches = Math.ceil(N / batchSize);
    const rng = new RandomState(opts.seed ?? 0);
    const baseLr = optimizer.lr;
    const xb = new BatchBuffer(x);
    const yb = new TargetBuffer(y);
    const order = Array.from({ length: N }, (_, i) => i);
    const history: History = { epochs: [] };
    const initialEpoch = opts.initialEpoch ?? 0;
    this.stopTraining = false;
    for (const cb of callbacks) cb.onTrainBegin?.({ epochs, batchesPerEpoch: batches, samples: N });
    for (let epoch = 0; epoch < epochs && !this.stopTraining; epoch++) {
      // Shuffle every epoch, including skipped ones, so a resumed run sees the same batches.
      const perm = opts.shuffle === false ? order : rng.permutation(N);
      if (epoch < initialEpoch) continue;
      if (opts.schedule) optimizer.lr = opts.schedule.lrAt(epoch, baseLr);
      for (const cb of callbacks) cb.onEpochBegin?.(epoch);
      const t0 = performance.now();
      let lossSum = 0;
      let correct = 0;
      let counted = 0;
      for (let b = 0; b < batches && !this.stopTraining; b++) {
        const start = b * batchSize;
        const n = Math.min(batchSize, N - start);
        const xs = xb.gather(perm, start, n);
        const ts = yb.gather(perm, start, n);
        const r = this.trainBatch(xs, ts, loss, optimizer, `epoch ${epoch + 1}, batch ${b + 1}`);
        lossSum += r.loss * n;
        if (r.correct !== null) {
          correct += r.correct;
          counted += n;
        }
        const seen = start + n;
        const logs: Logs = { epoch, batch: b, loss: lossSum / seen, lr: optimizer.lr, seen, ...(counted ? { accuracy: correct / counted } : {}) };
        for (const cb of callbacks) if (cb.onBatchEnd?.(b, logs) === false) this.stopTraining = true;
      }
      const seen = Math.min(N, batches * batchSize);
      const logs: Logs = { epoch, loss: lossSum / seen, lr: optimizer.lr, seconds: (performance.now() - t0) / 1000 };
      if (counted) logs.accuracy = correct / counted;
      if (opts.validationData) {
        const v = this.evaluate(opts.validationData[0], opts.validationData[1], { loss });
        logs.valLoss = v.loss;
        if (v.accuracy !== undefined) logs.valAccuracy = v.accuracy;
      }
      history.epochs.push(logs);
      for (const cb of callbacks) if (cb.onEpochEnd?.(epoch, logs) === false) this.stopTraining = true;
    }
    return history;
  }

  config(): SequentialConfig {
    return { type: "Sequential", name: this.name, inputShape: this.inputShape, layers: this.layers.map((l) => l.config()) };
  }

  override toJSON(): SequentialConfig {
    return this.config();
  }
}

/** Number of correct predictions for classification losses, null for regression losses. */
export function countCorrect(loss: Loss, pred: NDArray, target: Target): number | null {
  if (loss.type === "SoftmaxCrossEntropy") {
    const [N, K] = pred.shape;
    const labels = labelsOf(target, N, K);
    let c = 0;
    for (let n = 0; n < N; n++) {
      let best = 0;
      for (let k = 1; k < K; k++) if (pred.data[n * K + k] > pred.data[n * K + best]) best = k;
      if (best === labels[n]) c++;
    }
    return c;
  }
  if (loss.type === "BinaryCrossEntropy") {
    const threshold = (loss.config() as { fromLogits?: boolean }).fromLogits ? 0 : 0.5;
    const t = target instanceof NDArray ? target.data : target;
    let c = 0;
    for (let i = 0; i < pred.size; i++) if ((pred.data[i] > threshold ? 1 : 0) === (t[i] > 0.5 ? 1 : 0)) c++;
    return (c / pred.size) * pred.shape[0];
  }
  return null;
}

/** Integer labels from labels or one-hot/probability rows (argmax). */
function labelsOf(target: Target, N: number, K: number): ArrayLike<number> {
  if (!(target instanceof NDArray)) return target;
  if (target.ndim === 1) return target.data;
  const out = new Int32Array(N);
  for (let n = 0; n < N; n++) {
    let best = 0;
    for (let k = 1; k < K; k++) if (target.data[n * K + k] > target.data[n * K + best]) best = k;
    out[n] = best;
  }
  return out;
}

function targetCount(y: Target): number {
  return y instanceof NDArray ? y.shape[0] : y.length;
}

function checkTargets(x: NDArray, y: Target, where: string): void {
  if (x.ndim < 1) throw new ShapeError(`${where}: x must have a batch axis, got shape ${formatShape(x.shape)}`);
  if (targetCount(y) !== x.shape[0]) {
    throw new ShapeError(`${where}: x has ${x.shape[0]} samples but y has ${targetCount(y)} (x ${formatShape(x.shape)}, y ${y instanceof NDArray ? formatShape(y.shape) : `(${y.length},)`})`);
  }
}

/** Copies selected samples of x into a reused batch buffer (one per batch size seen). */
class BatchBuffer {
  private readonly sample: number;
  private readonly bufs = new Map<number, NDArray>();
  constructor(private readonly src: NDArray) {
    this.sample = shapeSize(src.shape.slice(1));
  }
  private buf(n: number): NDArray {
    let b = this.bufs.get(n);
    if (!b) {
      b = new NDArray(allocate(this.src.dtype, n * this.sample), [n, ...this.src.shape.slice(1)]);
      this.bufs.set(n, b);
    }
    return b;
  }
  gather(order: ArrayLike<number>, start: number, n: number): NDArray {
    const b = this.buf(n);
    const s = this.sample;
    for (let i = 0; i < n; i++) {
      const k = order[start + i];
      b.data.set(this.src.data.subarray(k * s, k * s + s), i * s);
    }
    return b;
  }
  range(start: number, n: number): NDArray {
    const b = this.buf(n);
    b.data.set(this.src.data.subarray(start * this.sample, (start + n) * this.sample));
    return b;
  }
}

/** The same for targets: NDArray rows or integer labels. */
class TargetBuffer {
  private readonly x: BatchBuffer | null;
  private readonly labels: Int32Array | null;
  private readonly bufs = new Map<number, Int32Array>();
  constructor(private readonly src: Target) {
    // Integer labels stay labels; any other plain array (soft BCE targets) becomes an (N,) float64 array.
    const asLabels = !(src instanceof NDArray) && Array.prototype.every.call(src, (v: number) => Number.isInteger(v));
    const asArray = src instanceof NDArray ? src : asLabels ? null : new NDArray(Float64Array.from(src), [src.length]);
    this.x = asArray ? new BatchBuffer(asArray) : null;
    this.labels = asLabels ? Int32Array.from(src as ArrayLike<number>) : null;
  }
  private buf(n: number): Int32Array {
    let b = this.bufs.get(n);
    if (!b) this.bufs.set(n, (b = new Int32Array(n)));
    return b;
  }
  gather(order: ArrayLike<number>, start: number, n: number): Target {
    if (this.x) return this.x.gather(order, start, n);
    const b = this.buf(n);
    for (let i = 0; i < n; i++) b[i] = this.labels![order[start + i]];
    return b;
  }
  range(start: number, n: number): Target {
    if (this.x) return this.x.range(start, n);
    const b = this.buf(n);
    b.set(this.labels!.subarray(start, start + n));
    return b;
  }
}
