// Sequential: a stack of layers, and the training loop around it.
//
// forward runs the layers in order; backward runs their backward passes in reverse, each receiving
// the gradient the layer above returned (the chain rule, derivation.md §0):
//     dx_{i} = layer_i.backward(dx_{i+1}),   dx_{L} = ∂loss/∂prediction.
// fit = for each epoch, for each (seeded) shuffled mini-batch: zeroGrad → forward → loss → backward →
// optimizer.step. Every random choice — initial weights, dropout masks, shuffling — comes from
// RandomStates seeded from the model's and fit's seeds, so the same seeds give bit-identical training.
// The loop itself is the Trainer's (src/nn/trainer.ts); fit and fitAsync build one and run it.

import { NDArray, allocate, formatShape, type DType } from "../nd/ndarray.ts";
import { RandomState } from "../nd/random.ts";
import { ownedArray, setInternalOutputs } from "../kernels/backend.ts";
import {
  Layer,
  ParamBudgetError,
  ShapeError,
  checkSampleSize,
  type BackwardOptions,
  type ForwardOptions,
  type LayerConfig,
  type Param,
} from "./layer.ts";
import type { Differentiable } from "./gradcheck.ts";
import type { Loss, Target } from "./losses.ts";
import type { Optimizer } from "./optim.ts";
import { BatchBuffer, TargetBuffer, checkInputArray, checkOneDtype, checkTargets, sampleShapeIs } from "./batches.ts";
import { evaluateMetrics, type EvaluateMetricsOptions, type EvaluationMetrics } from "./metrics.ts";
import {
  Trainer,
  trainStep,
  type AsyncRunOptions,
  type BatchSource,
  type History,
  type StepOptions,
  type TrainerOptions,
} from "./trainer.ts";

export { TrainingError } from "./trainer.ts";
export type { Logs, Callbacks, Schedule, History } from "./trainer.ts";

export interface SequentialOptions {
  /** Shape of one input sample, e.g. [1, 28, 28]. When given, the model is validated at construction. */
  inputShape?: readonly number[];
  /** Re-initialise every layer's weights, in order, from RandomState(seed). */
  seed?: number;
  /** Convert all parameters to this dtype (default: leave as constructed, float32). */
  dtype?: DType;
  name?: string;
}

/** The Trainer's options (trainer.ts), plus how many epochs fit runs and where it starts. */
export interface FitOptions extends TrainerOptions {
  epochs?: number;
  /** Start at this epoch (for resuming): the shuffles of the skipped epochs are drawn and discarded. */
  initialEpoch?: number;
}

export type FitAsyncOptions = FitOptions & AsyncRunOptions;

/** What Sequential.config() returns (a graph Model adds its connections, see graph.ts). */
export interface SequentialConfig extends LayerConfig {
  name: string;
  inputShape: number[] | null;
  layers: LayerConfig[];
}

/**
 * Refuse a layer object that would run twice in one pass of a model: listed twice, or also inside a nested
 * Sequential or Model (at any depth). Its second forward would replace what the first saved for backward: the
 * gradients would be silently wrong. `entries`: the model's layers, each with where it sits, for the error.
 */
export function checkLayersRunOnce(owner: string, entries: readonly (readonly [Layer, string])[]): void {
  const where = new Map<Layer, string>();
  const claim = (layer: Layer, at: string): void => {
    const other = where.get(layer);
    if (other !== undefined) {
      throw new Error(
        `${owner}: ${at} (${layer.type}) is the same layer object as ${other}; a layer runs once per pass ` +
          `(weight sharing is not supported): create another layer`,
      );
    }
    where.set(layer, at);
    if (layer instanceof Sequential) {
      layer.layers.forEach((l, i) => {
        claim(l, `layers[${String(i)}] of ${at}`);
      });
    }
  };
  for (const [layer, at] of entries) claim(layer, at);
}

/**
 * A stack of layers run in order, with training (`compile`, `fit`, `fitAsync`), `evaluate`, `evaluateMetrics`,
 * `predict` and `summary`. It is itself a Layer, so models nest: a Sequential inside a Sequential or a graph Model.
 */
export class Sequential extends Layer implements Differentiable {
  readonly type: string = "Sequential";
  readonly layers: Layer[];
  readonly name: string;
  inputShape: number[] | null = null;
  loss: Loss | null = null;
  optimizer: Optimizer | null = null;
  /** Set to true from a callback to stop fit after the current batch. */
  stopTraining = false;

  /**
   * `opts.inputShape` (one sample's shape, e.g. `[1, 28, 28]`) validates the stack at once, naming a layer that does
   * not fit; `opts.seed` draws the initial weights; `opts.dtype` converts every layer.
   */
  constructor(layers: Layer[], opts: SequentialOptions = {}) {
    super();
    if (!Array.isArray(layers) || layers.length === 0) throw new RangeError("Sequential: needs at least one layer");
    this.layers = layers;
    this.name = opts.name ?? "sequential";
    checkLayersRunOnce(
      this.name,
      layers.map((l, i) => [l, `layers[${String(i)}]`]),
    );
    layers.forEach((l, i) => (l.index = i));
    // build first: layers whose input size comes from the input shape create their weights there, and
    // then the seed redraws every layer's, first layer first, as for fully specified layers.
    if (opts.inputShape) this.build(opts.inputShape);
    if (!opts.dtype) checkOneDtype(layers, this.name);
    if (opts.seed !== undefined) {
      const pending = layers.find((l) => !l.isBuilt());
      if (pending) {
        throw new Error(
          `${this.name}: ${pending.describe()} takes its input size from the input shape, which is not given: pass inputShape (or give the layer's inChannels/inFeatures) so that seed can draw its weights`,
        );
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
    checkSampleSize(this.name, s, "takes samples of shape");
    for (const l of this.layers) {
      try {
        s = l.outputShape(s);
      } catch (e) {
        // a lazy layer creating its parameters here: name it (makeParam's refusal knows only "weight")
        throw e instanceof ParamBudgetError ? e.within(l.describe()) : e;
      }
      checkSampleSize(l.describe(), s);
      shapes.push(s);
    }
    this.inputShape = inputShape.slice();
    return shapes;
  }

  override forward(x: NDArray, opts: ForwardOptions = {}): NDArray {
    if (this.inputShape && !sampleShapeIs(x, this.inputShape)) {
      throw new ShapeError(
        `${this.name}: expected input of shape (N, ${this.inputShape.join(", ")}), got ${formatShape(x.shape)}`,
      );
    }
    let h = x;
    const layers = this.layers;
    const outer = setInternalOutputs(true);
    try {
      for (let i = 0; i < layers.length; i++) h = layers[i].forward(h, opts); // indexed: no iterator per step
    } finally {
      setInternalOutputs(outer);
    }
    return outer ? h : this.owned(0, h);
  }

  // Inside a pass every layer's output is read only by the next layers of this model, and not after that
  // layer's next pass: the kernels may keep it in their own memory (setInternalOutputs). What a model
  // returns to its caller is the caller's to keep: an internal array is copied out, into a buffer per
  // direction reused from call to call (ownedArray; nested models pass theirs on as they are).
  private ownedBuffers: (NDArray | null)[] = [null, null];

  /** a as the caller may keep it (slot 0: forward's output, 1: backward's dx). */
  protected owned(slot: number, a: NDArray): NDArray {
    const copy = ownedArray(a, this.ownedBuffers[slot]);
    if (copy !== a) this.ownedBuffers[slot] = copy;
    return copy;
  }

  // Chain rule through the stack: each layer turns ∂L/∂(its output) into ∂L/∂(its input).
  // opts.needDx = false: the caller does not read the returned dx, so the first layer may skip it (and,
  // nested in a model that does not read this model's dx, neither does anyone read its first layer's).
  override backward(dy: NDArray, opts: BackwardOptions = {}): NDArray {
    let d = dy;
    const outer = setInternalOutputs(true);
    try {
      for (let i = this.layers.length - 1; i >= 0; i--) d = this.layers[i].backward(d, i === 0 ? opts : NEED_DX);
    } finally {
      setInternalOutputs(outer);
    }
    return outer || opts.needDx === false ? d : this.owned(1, d); // needDx false: nobody reads d
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
    const layers = this.layers;
    for (let i = 0; i < layers.length; i++) layers[i].zeroGrad();
  }

  override setDtype(dtype: DType): void {
    for (const l of this.layers) l.setDtype(dtype);
  }

  get dtype(): DType {
    return this.ownParams()[0]?.value.dtype ?? "float32";
  }

  /** Set the loss and optimizer that `fit`, `fitAsync` and `evaluate` use; returns the model. */
  compile(opts: { loss: Loss; optimizer: Optimizer }): this {
    this.loss = opts.loss;
    this.optimizer = opts.optimizer;
    return this;
  }

  /** The number of trainable parameters and of the rest (batch-norm running statistics). */
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
    if (!inputShape)
      throw new Error(
        `${this.name}.summary: the input shape is unknown: pass it, or give inputShape when constructing the model`,
      );
    const shapes = this.build(inputShape);
    const rows = this.layers.map((l, i) => {
      const count = l.params().reduce((s, p) => s + p.value.size, 0);
      return [
        `${l.type.toLowerCase()}_${i} (${l.type})`,
        `(None, ${shapes[i].join(", ")})`,
        count.toLocaleString("en-US"),
      ];
    });
    const widths = [Math.max(29, ...rows.map((r) => r[0].length + 2)), 26, 12];
    const line = (cells: string[]) =>
      " " +
      cells
        .map((c, i) => c.padEnd(widths[i]))
        .join("")
        .trimEnd();
    const total = widths.reduce((a, b) => a + b, 1);
    const body = rows.flatMap((r, i) =>
      [line(r), i < rows.length - 1 ? "" : null].filter((s): s is string => s !== null),
    );
    return this.summaryFrame(line(["Layer (type)", "Output Shape", "Param #"]), body, total);
  }

  /** The Keras frame around a summary's rows (this one's and graph.ts's): title, header, totals. */
  protected summaryFrame(header: string, body: readonly string[], width: number): string {
    const { trainable, nonTrainable } = this.countParams();
    const fmt = (n: number) => n.toLocaleString("en-US");
    return [
      `Model: "${this.name}"`,
      "_".repeat(width),
      header,
      "=".repeat(width),
      ...body,
      "=".repeat(width),
      `Total params: ${fmt(trainable + nonTrainable)}`,
      `Trainable params: ${fmt(trainable)}`,
      `Non-trainable params: ${fmt(nonTrainable)}`,
      "_".repeat(width),
    ].join("\n");
  }

  /** Predictions for x in inference mode, batch by batch; the result is a fresh array. */
  predict(x: NDArray, opts: { batchSize?: number } = {}): NDArray {
    checkInputArray(x, `${this.name}.predict`);
    const N = x.shape[0];
    const bs = opts.batchSize ?? 256;
    if (!Number.isInteger(bs) || bs < 1)
      throw new RangeError(`${this.name}.predict: batchSize must be a positive integer, got ${String(bs)}`);
    if (N === 0) {
      // No sample to run: the output is (0, ...the per-sample output shape), derived from the layers.
      let s = x.shape.slice(1);
      if (this.inputShape && (s.length !== this.inputShape.length || this.inputShape.some((d, i) => s[i] !== d))) {
        throw new ShapeError(
          `${this.name}: expected input of shape (N, ${this.inputShape.join(", ")}), got ${formatShape(x.shape)}`,
        );
      }
      for (const l of this.layers) s = l.outputShape(s);
      return new NDArray(allocate(this.dtype, 0), [0, ...s]);
    }
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
    checkTargets(x, y, "evaluate");
    const N = x.shape[0];
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
      const c = loss.countCorrect(pred, t);
      if (c !== null) {
        correct += c;
        counted += n;
      }
    }
    return counted > 0 ? { loss: lossSum / N, accuracy: correct / counted } : { loss: lossSum / N };
  }

  /** Confusion matrix, top-k accuracy, per-class precision/recall/F1 and their averages (src/nn/metrics.ts). */
  evaluateMetrics(x: NDArray, y: Target, opts: EvaluateMetricsOptions = {}): EvaluationMetrics {
    return evaluateMetrics(this, x, y, opts);
  }

  /**
   * One optimisation step on one batch: zeroGrad → forward → loss → backward → finite checks →
   * optimizer.step (src/nn/trainer.ts, trainStep). Returns the batch's mean loss and, for classification
   * losses, the number of correct predictions. `where` ("epoch 3, batch 17") goes into the error if a
   * loss or gradient is not finite.
   */
  trainBatch(
    x: NDArray,
    y: Target,
    loss: Loss,
    optimizer: Optimizer,
    where: string | (() => string) = "a batch",
    opts?: StepOptions,
  ): { loss: number; correct: number | null } {
    return trainStep(this, x, y, loss, optimizer, where, opts); // explicit parameters: no array per step
  }

  /** Train with mini-batch gradient descent (a Trainer run). Throws TrainingError on a non-finite loss or gradient. */
  fit(x: NDArray, y: Target, opts: FitOptions = {}): History {
    const { trainer, epochs } = this.trainerFor({ x, y }, opts);
    return trainer.fit(epochs);
  }

  /**
   * fit as a promise: yields to the event loop between batches (every `yieldEveryMs`, default 16),
   * awaits callbacks that return promises, and on `signal` stops after the batch in progress and
   * rejects with a DOMException named "AbortError" (the model then holds that batch's weights).
   * Data: in-memory arrays (same seed, same weights as fit) or a BatchSource of {x, y} batches, an
   * (async) iterable — or a function returning a fresh one per epoch — used in the order given.
   */
  fitAsync(x: NDArray, y: Target, opts?: FitAsyncOptions): Promise<History>;
  fitAsync(source: BatchSource, opts?: FitAsyncOptions): Promise<History>;
  async fitAsync(a: NDArray | BatchSource, b?: Target | FitAsyncOptions, c?: FitAsyncOptions): Promise<History> {
    const fromArrays = a instanceof NDArray;
    // fitAsync(x, y) with an x that is not an NDArray: y's presence says which form was meant.
    if (!fromArrays && (b instanceof NDArray || Array.isArray(b) || ArrayBuffer.isView(b))) checkInputArray(a, "fit");
    const opts = (fromArrays ? c : (b as FitAsyncOptions | undefined)) ?? {};
    const { trainer, epochs } = this.trainerFor(fromArrays ? { x: a, y: b as Target } : a, opts);
    return trainer.fitAsync(epochs, opts);
  }

  private trainerFor(
    data: { x: NDArray; y: Target } | BatchSource,
    opts: FitOptions,
  ): { trainer: Trainer; epochs: number } {
    const epochs = opts.epochs ?? 1;
    if (!Number.isInteger(epochs) || epochs < 0)
      throw new RangeError(`fit: epochs must be a non-negative integer, got ${epochs}`);
    const trainer = new Trainer(this, data, opts);
    // Skipped epochs still draw their shuffles, so a resumed run sees the same batches.
    for (let e = 0; e < Math.min(opts.initialEpoch ?? 0, epochs); e++) trainer.skipEpoch();
    return { trainer, epochs };
  }

  config(): SequentialConfig {
    return {
      type: "Sequential",
      name: this.name,
      inputShape: this.inputShape,
      layers: this.layers.map((l) => l.config()),
    };
  }

  override toJSON(): SequentialConfig {
    return this.config();
  }
}

/** The options every layer but the first gets in backward: one frozen object, not a fresh {} per call. */
const NEED_DX: BackwardOptions = Object.freeze({ needDx: true });
