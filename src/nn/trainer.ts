// The training loop, written once: a steppable Trainer that Sequential.fit and fitAsync drive.
//
// One step = zeroGrad → forward → loss → backward → (L2 gradient, derivation.md §4.3) → finite checks →
// (clipping, §4.4) → optimizer.step. An epoch = the steps over one seeded permutation of the samples.
// The loop body is a generator that yields every callback's return value and a marker between batches;
// a synchronous driver (fit, step) and an asynchronous one (fitAsync: awaits promises, yields to the
// event loop, honours an AbortSignal) run the very same body, so both give the same weights.
//
// Exact resume: state() records the epoch, the next batch, the shuffling generator's state *before*
// this epoch's permutation was drawn (restore redraws it), the running sums and the augmenter's
// generator. Weights, optimizer slots and Dropout generators are the model's (saved with saveModel).

import type { NDArray, TypedArray } from "../nd/ndarray.ts";
import { firstNonFiniteAmong, kernels, keepResident } from "../kernels/backend.ts";
import { RandomState, type RandomStateInput, type RandomStateState } from "../nd/random.ts";
import type { BackwardOptions, ForwardOptions, Param } from "./layer.ts";
import type { Loss, Target } from "./losses.ts";
import type { Optimizer } from "./optim.ts";
import type { Sequential } from "./sequential.ts";
import { BatchBuffer, TargetBuffer, checkClassLabels, checkTargets, sampleShapeIs } from "./batches.ts";
import type { L2Regularizer } from "./regularizers.ts";
import type { LRSchedule } from "./schedules.ts";

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

/** What fit and fitAsync return: one entry of logs (loss, accuracy, validation metrics, lr, seconds) per epoch. */
export interface History {
  epochs: Logs[];
}

export interface TrainBeginInfo {
  epochs: number;
  /** NaN when the data come from an iterable source (unknown in advance). */
  batchesPerEpoch: number;
  samples: number;
  model?: Sequential;
  optimizer?: Optimizer;
  trainer?: Trainer;
}

/**
 * Hooks of the training loop. Under fitAsync a hook may return a promise, which is awaited; under fit
 * a promise is an error (it could not be awaited).
 */
export interface Callbacks {
  onTrainBegin?(info: TrainBeginInfo): unknown;
  onEpochBegin?(epoch: number): unknown;
  /** Return false (or a promise of false) to stop training after this batch. */
  onBatchEnd?(batch: number, logs: Logs): unknown;
  /** Return false (or a promise of false) to stop training after this epoch. */
  onEpochEnd?(epoch: number, logs: Logs): unknown;
  onTrainEnd?(history: History): unknown;
}

/** What the Trainer needs of a learning-rate schedule (schedules.ts's LRSchedule): lr for an epoch (0-based). */
export type Schedule = Pick<LRSchedule, "lrAt">;

/** Transforms a training batch (data augmentation) with its own seeded generator. */
export interface BatchAugmenter {
  apply(x: NDArray): NDArray;
  getState(): RandomStateState;
  setState(state: RandomStateInput): void;
}

/** Options of one training step. */
export interface StepOptions {
  /** Rescale all trainable gradients together when their global L2 norm exceeds this (§4.4). */
  clipNorm?: number;
  /** Clamp every gradient element to [−clipValue, clipValue] (§4.4). */
  clipValue?: number;
  /** Per-layer L2 penalty added to the loss and its gradient (§4.3). */
  regularizer?: L2Regularizer;
}

export interface TrainerOptions extends StepOptions {
  loss?: Loss;
  optimizer?: Optimizer;
  batchSize?: number;
  /** Shuffle the samples each epoch (default true), with RandomState(seed). */
  shuffle?: boolean;
  seed?: number;
  validationData?: [NDArray, Target];
  callbacks?: Callbacks | Callbacks[];
  schedule?: Schedule;
  augment?: BatchAugmenter;
}

export interface Batch {
  x: NDArray;
  y: Target;
}

/** Batches from elsewhere: an (async) iterable, or a function giving a fresh one for each epoch. */
export type BatchSource =
  AsyncIterable<Batch> | Iterable<Batch> | ((epoch: number) => AsyncIterable<Batch> | Iterable<Batch>);

export interface AsyncRunOptions {
  /** Stop after the batch in progress; the promise rejects with a DOMException named "AbortError". */
  signal?: AbortSignal;
  /** Yield to the event loop (a macrotask) whenever this many ms passed since the last yield (default 16). */
  yieldEveryMs?: number;
}

/** A generator's state as JSON. */
export interface SerializedGenerator {
  key: number[];
  pos: number;
  hasGauss: boolean;
  cachedGaussian: number;
}

/** Everything the Trainer needs, besides the model and optimizer, to continue bit for bit. */
export interface TrainerState {
  epoch: number;
  /** The next batch of `epoch` (0: the epoch has not begun). */
  batch: number;
  /** The shuffling generator before `epoch`'s permutation was drawn (when batch > 0), else now. */
  shuffle: SerializedGenerator;
  baseLr: number;
  sums: { loss: number; correct: number; counted: number; seen: number };
  augment?: SerializedGenerator;
}

/** Training stopped because a loss or gradient was not finite; names where. */
export class TrainingError extends Error {
  override name = "TrainingError";
}

/** Between two batches: where fitAsync may yield to the event loop or stop on abort. */
const BATCH_BOUNDARY = Symbol("batch boundary");

type Loop<T> = Generator<unknown, T, unknown>;

function isThenable(v: unknown): v is PromiseLike<unknown> {
  if ((typeof v !== "object" && typeof v !== "function") || v === null) return false;
  return typeof (v as { then?: unknown }).then === "function";
}

function runSync<T>(gen: Loop<T>): T {
  let r = gen.next();
  while (r.done !== true) {
    if (isThenable(r.value)) {
      gen.return(undefined as T);
      throw new TypeError("a callback or the data source returned a promise, which fit cannot await: use fitAsync");
    }
    r = gen.next(r.value === BATCH_BOUNDARY ? undefined : r.value);
  }
  return r.value;
}

function macrotask(): Promise<void> {
  return new Promise((resolve) => setTimeout(resolve, 0));
}

function abortError(signal: AbortSignal): DOMException {
  const reason = signal.reason instanceof Error ? `: ${signal.reason.message}` : "";
  return new DOMException(`training aborted after the batch in progress${reason}`, "AbortError");
}

async function runAsync<T>(gen: Loop<T>, opts: AsyncRunOptions): Promise<T> {
  const every = opts.yieldEveryMs ?? 16;
  if (!(every >= 0)) throw new RangeError(`fitAsync: yieldEveryMs must be ≥ 0, got ${every}`);
  const signal = opts.signal;
  if (signal?.aborted) throw abortError(signal);
  let lastYield = performance.now();
  let r = gen.next();
  while (r.done !== true) {
    if (r.value === BATCH_BOUNDARY) {
      if (performance.now() - lastYield >= every) {
        await macrotask();
        lastYield = performance.now();
      }
      if (signal?.aborted) {
        gen.return(undefined as T);
        throw abortError(signal);
      }
      r = gen.next();
    } else {
      r = gen.next(isThenable(r.value) ? await r.value : r.value);
    }
  }
  return r.value;
}

function serializeGenerator(s: RandomStateState): SerializedGenerator {
  return { key: Array.from(s.key), pos: s.pos, hasGauss: s.hasGauss, cachedGaussian: s.cachedGaussian };
}

function positiveFinite(where: string, name: string, v: number | undefined): void {
  if (v !== undefined && !(typeof v === "number" && v > 0 && Number.isFinite(v))) {
    throw new RangeError(`${where}: ${name} must be a positive finite number, got ${String(v)}`);
  }
}

// trainStep's option objects, made once: a step allocates nothing of its own but the {loss, correct} it returns.
const NO_STEP_OPTIONS: StepOptions = Object.freeze({});
const TRAINING: ForwardOptions = Object.freeze({ training: true });
const NO_DX: BackwardOptions = Object.freeze({ needDx: false });

/** Each model's flat parameter list, kept between steps so that a step allocates none. */
const paramLists = new WeakMap<Sequential, Param[]>();

/** The model's own Param objects (stable identities, for optimizers): the kept list while it still matches. */
function ownParams(model: Sequential): Param[] {
  const kept = paramLists.get(model);
  if (kept !== undefined && sameParams(model, kept)) return kept;
  const fresh = model.layers.flatMap((l) => l.params());
  paramLists.set(model, fresh);
  return fresh;
}

function sameParams(model: Sequential, kept: readonly Param[]): boolean {
  let k = 0;
  const layers = model.layers;
  for (let i = 0; i < layers.length; i++) {
    const ps = layers[i].params();
    for (let j = 0; j < ps.length; j++) if (kept[k++] !== ps[j]) return false;
  }
  return k === kept.length;
}

/** What a step checks for NaN and ±Infinity: the trainable params' gradients, then every param's value. */
interface CheckedArrays {
  trainable: Param[];
  grads: TypedArray[];
  values: TypedArray[];
}

/** Each parameter list's CheckedArrays, refilled every step (trainable flags may change; storage once). */
const checkedArrays = new WeakMap<Param[], CheckedArrays>();

/**
 * A step's start: every trainable param's value and grad kept where the kernels read and update them in
 * place (keepResident: on the wasm backend, no copies per step), then the arrays the step checks.
 */
function prepareParams(params: Param[]): CheckedArrays {
  let c = checkedArrays.get(params);
  if (c === undefined) checkedArrays.set(params, (c = { trainable: [], grads: [], values: [] }));
  let j = 0;
  for (let k = 0; k < params.length; k++) {
    const p = params[k];
    if (p.trainable) {
      keepResident(p.value);
      keepResident(p.grad);
      c.trainable[j] = p;
      c.grads[j++] = p.grad.data;
    }
    c.values[k] = p.value.data;
  }
  c.values.length = params.length;
  c.trainable.length = c.grads.length = j;
  return c;
}

/** The layer of `model` that owns p, described ("layer 3 (Dense)"), for error messages. */
function ownerOf(model: Sequential, p: Param): string {
  return model.layers.find((layer) => layer.params().includes(p))?.describe() ?? "a layer";
}

function place(where: string | (() => string)): string {
  return typeof where === "string" ? where : where();
}

/** Index of the first element of a that is NaN or ±Inf, or −1 (a plain loop: findIndex boxes every element). */

/** Clamp each trainable gradient element to [−c, c] (§4.4). */
export function clipGradientsByValue(params: readonly Param[], c: number): void {
  for (const p of params) {
    if (!p.trainable) continue;
    const g = p.grad.data;
    for (let i = 0; i < g.length; i++) g[i] = Math.min(c, Math.max(-c, g[i]));
  }
}

/**
 * Rescale all trainable gradients by c/‖g‖ when their global norm ‖g‖ = √(Σ g²) exceeds c (§4.4).
 * Returns the norm before clipping.
 */
export function clipGradientsByNorm(params: readonly Param[], c: number): number {
  let sumSquares = 0;
  for (const p of params) {
    if (!p.trainable) continue;
    const g = p.grad.data;
    for (let i = 0; i < g.length; i++) sumSquares += g[i] * g[i];
  }
  const norm = Math.sqrt(sumSquares);
  if (norm > c) {
    const scale = c / norm;
    for (const p of params) {
      if (!p.trainable) continue;
      const g = p.grad.data;
      for (let i = 0; i < g.length; i++) g[i] *= scale;
    }
  }
  return norm;
}

/**
 * One optimisation step on one batch (see the file header). Returns the batch's mean loss (plus the L2
 * penalty when there is one) and, for classification losses, the number of correct predictions.
 * `where` ("epoch 3, batch 17", or a function giving it, called only then) goes into the error if a loss or
 * gradient is not finite.
 */
export function trainStep(
  model: Sequential,
  x: NDArray,
  y: Target,
  loss: Loss,
  optimizer: Optimizer,
  where: string | (() => string) = "a batch",
  opts: StepOptions = NO_STEP_OPTIONS,
): { loss: number; correct: number | null } {
  const params = ownParams(model);
  const checked = prepareParams(params);
  model.zeroGrad();
  const pred = model.forward(x, TRAINING);
  let value = loss.forward(pred, y);
  if (!Number.isFinite(value)) {
    throw new TrainingError(
      `${model.name}: loss is ${value} at ${place(where)}: lower the learning rate or check the data for NaN/Inf`,
    );
  }
  model.backward(loss.backward(), NO_DX); // nobody reads the first layer's dx here
  if (opts.regularizer) value += opts.regularizer.addTo(model);
  // each check is one kernel call over all the arrays (they lie in the kernels' memory); the element is
  // looked for only once one is found
  const badGrad = firstNonFiniteAmong(checked.grads);
  if (badGrad >= 0) {
    const p = checked.trainable[badGrad];
    const bad = kernels.firstNonFinite(p.grad.data);
    throw new TrainingError(
      `${model.name}: gradient of ${ownerOf(model, p)} ${p.name} is ${p.grad.data[bad]} at ${place(where)}`,
    );
  }
  if (opts.clipValue !== undefined) clipGradientsByValue(params, opts.clipValue);
  if (opts.clipNorm !== undefined) clipGradientsByNorm(params, opts.clipNorm);
  optimizer.step(params);
  // A finite gradient times a huge learning rate can still overflow: stop before Inf is trained on or saved.
  const badValue = firstNonFiniteAmong(checked.values);
  if (badValue >= 0) {
    const p = params[badValue];
    const bad = kernels.firstNonFinite(p.value.data);
    throw new TrainingError(
      `${model.name}: ${ownerOf(model, p)} ${p.name}[${bad}] became ${p.value.data[bad]} ` +
        `after the optimizer step at ${place(where)}: lower the learning rate`,
    );
  }
  return { loss: value, correct: loss.countCorrect(pred, y) };
}

interface ArrayData {
  xb: BatchBuffer;
  yb: TargetBuffer;
  samples: number;
}

/**
 * A training run over in-memory arrays (shuffled per epoch) or a batch source. Drive it with step()
 * (one batch), runEpoch(), fit(epochs) or fitAsync(epochs, {signal}); stop() or a callback returning
 * false stops after the batch in progress. state()/restore() give exact resume for array data.
 */
export class Trainer {
  readonly model: Sequential;
  readonly loss: Loss;
  readonly optimizer: Optimizer;
  readonly batchSize: number;
  readonly callbacks: Callbacks[];
  readonly history: History = { epochs: [] };
  /** The current epoch (0-based). */
  epoch = 0;
  /** The next batch within the current epoch. */
  batch = 0;
  baseLr: number;
  private readonly opts: TrainerOptions;
  private readonly data: ArrayData | null;
  private readonly source: BatchSource | null;
  private readonly rng: RandomState;
  private order: ArrayLike<number> | null = null; // this epoch's sample order; null between epochs
  private epochStart: RandomStateState | null = null;
  private sums = { loss: 0, correct: 0, counted: 0, seen: 0 };
  private epochT0 = 0;
  private stopRequested = false;
  /** The batch in progress, for trainStep's errors: formatted only when one is thrown. */
  private readonly where = (): string => `epoch ${this.epoch + 1}, batch ${this.batch + 1}`;

  constructor(model: Sequential, data: Batch | BatchSource, opts: TrainerOptions = {}) {
    const loss = opts.loss ?? model.loss;
    const optimizer = opts.optimizer ?? model.optimizer;
    if (!loss || !optimizer) {
      throw new Error(`${model.name}.fit: no loss or optimizer: call compile({loss, optimizer}) or pass them to fit`);
    }
    const batchSize = opts.batchSize ?? 32;
    if (!Number.isInteger(batchSize) || batchSize < 1) {
      throw new RangeError(`fit: batchSize must be a positive integer, got ${batchSize}`);
    }
    positiveFinite("fit", "clipNorm", opts.clipNorm);
    positiveFinite("fit", "clipValue", opts.clipValue);
    if (opts.validationData) {
      checkTargets(opts.validationData[0], opts.validationData[1], "fit (validationData)");
      checkLabelsFor(model, loss, opts.validationData[0], opts.validationData[1], "fit (validationData)");
    }
    this.model = model;
    this.loss = loss;
    this.optimizer = optimizer;
    this.batchSize = batchSize;
    this.opts = opts;
    const cbs = opts.callbacks;
    this.callbacks = cbs === undefined ? [] : Array.isArray(cbs) ? cbs : [cbs];
    this.rng = new RandomState(opts.seed ?? 0);
    this.baseLr = optimizer.lr;
    if (isBatch(data)) {
      checkTargets(data.x, data.y, "fit");
      checkLabelsFor(model, loss, data.x, data.y, "fit");
      this.data = { xb: new BatchBuffer(data.x), yb: new TargetBuffer(data.y), samples: data.x.shape[0] };
      this.source = null;
    } else {
      this.data = null;
      this.source = data;
    }
  }

  /** Batches per epoch for array data; NaN for a batch source. */
  get batchesPerEpoch(): number {
    return this.data ? Math.ceil(this.data.samples / this.batchSize) : NaN;
  }

  /** True between the first and the last batch of an epoch. */
  get inEpoch(): boolean {
    return this.order !== null;
  }

  /** Stop after the batch in progress (fit/fitAsync return; the epoch stays open for resume). */
  stop(): void {
    this.stopRequested = true;
  }

  private get stopping(): boolean {
    return this.stopRequested || this.model.stopTraining;
  }

  /** Draw and discard an epoch's permutation without training, so a later epoch sees its usual order. */
  skipEpoch(): void {
    if (this.inEpoch) throw new Error("Trainer.skipEpoch: an epoch is in progress");
    if (this.data && this.opts.shuffle !== false) this.rng.permutation(this.data.samples);
    this.epoch++;
  }

  /** Train on one batch (beginning or ending the epoch around it as needed); array data only. */
  step(): Logs {
    return runSync(this.stepLoop());
  }

  /** Train to the end of the current (or next) epoch; returns the epoch's logs (a batch's after stop()). */
  runEpoch(): Logs {
    this.stopRequested = false;
    this.model.stopTraining = false;
    return runSync(this.epochLoop());
  }

  /** Train until `epochs` epochs in all are done (or a stop); returns the history of this call's epochs. */
  fit(epochs: number): History {
    return runSync(this.fitLoop(epochs));
  }

  /** fit, yielding to the event loop between batches and stopping on `signal` (see AsyncRunOptions). */
  fitAsync(epochs: number, opts: AsyncRunOptions = {}): Promise<History> {
    return runAsync(this.fitLoop(epochs), opts);
  }

  state(): TrainerState {
    const shuffle = this.inEpoch && this.epochStart ? this.epochStart : this.rng.getState();
    const out: TrainerState = {
      epoch: this.epoch,
      batch: this.batch,
      shuffle: serializeGenerator(shuffle),
      baseLr: this.baseLr,
      sums: { ...this.sums },
    };
    if (this.opts.augment) out.augment = serializeGenerator(this.opts.augment.getState());
    return out;
  }

  /** Continue from state(): the model and optimizer must be restored separately (loadModel). */
  restore(state: TrainerState): void {
    if (!this.data) throw new Error("Trainer.restore: only array data can be resumed");
    if (typeof state !== "object" || (state as TrainerState | null) === null)
      throw new TypeError(
        `Trainer.restore: expected a state object (from state()), got ${state === null ? "null" : typeof state}`,
      );
    const batches = this.batchesPerEpoch;
    const int = (name: string, v: unknown, max: number): number => {
      if (typeof v !== "number" || !Number.isInteger(v) || v < 0 || v > max) {
        throw new RangeError(`Trainer.restore: ${name} must be an integer in [0, ${max}], got ${String(v)}`);
      }
      return v;
    };
    const epoch = int("epoch", state.epoch, Number.MAX_SAFE_INTEGER);
    const batch = int("batch", state.batch, batches - 1);
    if (!(typeof state.baseLr === "number" && state.baseLr >= 0 && Number.isFinite(state.baseLr))) {
      throw new RangeError(`Trainer.restore: baseLr must be a finite number ≥ 0, got ${String(state.baseLr)}`);
    }
    if (state.augment && !this.opts.augment) {
      throw new Error("Trainer.restore: the state has an augmenter's generator but this trainer has no augment");
    }
    const sums = state.sums as Partial<TrainerState["sums"]> | undefined;
    for (const name of ["loss", "correct", "counted", "seen"] as const) {
      const v = sums?.[name];
      if (typeof v !== "number" || !(v >= 0) || !Number.isFinite(v)) {
        throw new RangeError(`Trainer.restore: sums.${name} must be a finite number ≥ 0, got ${String(v)}`);
      }
    }
    // Check both generators' states on scratch generators first, so a bad one changes nothing.
    new RandomState(0).setState(state.shuffle);
    if (state.augment) new RandomState(0).setState(state.augment);
    this.rng.setState(state.shuffle);
    if (state.augment) this.opts.augment!.setState(state.augment);
    this.epoch = epoch;
    this.baseLr = state.baseLr;
    this.order = null;
    this.batch = 0;
    if (batch > 0) {
      this.beginEpoch();
      this.batch = batch;
      this.sums = { ...state.sums };
    }
  }

  private beginEpoch(): void {
    this.epochStart = this.rng.getState();
    const N = this.data ? this.data.samples : 0;
    this.order = this.data && this.opts.shuffle !== false ? this.rng.permutation(N) : identity(N);
    if (this.opts.schedule) this.optimizer.lr = this.opts.schedule.lrAt(this.epoch, this.baseLr);
    this.sums = { loss: 0, correct: 0, counted: 0, seen: 0 };
    this.batch = 0;
    this.epochT0 = performance.now();
  }

  private *beginEpochLoop(): Loop<void> {
    this.beginEpoch();
    for (const cb of this.callbacks) yield cb.onEpochBegin?.(this.epoch);
  }

  private *batchLoop(x: NDArray, y: Target): Loop<Logs> {
    const n = x.shape[0];
    const xs = this.opts.augment ? this.opts.augment.apply(x) : x;
    const r = trainStep(this.model, xs, y, this.loss, this.optimizer, this.where, this.opts);
    const s = this.sums;
    s.loss += r.loss * n;
    if (r.correct !== null) {
      s.correct += r.correct;
      s.counted += n;
    }
    s.seen += n;
    const b = this.batch++;
    const logs: Logs = { epoch: this.epoch, batch: b, loss: s.loss / s.seen, lr: this.optimizer.lr, seen: s.seen };
    if (s.counted) logs.accuracy = s.correct / s.counted;
    for (const cb of this.callbacks) if ((yield cb.onBatchEnd?.(b, logs)) === false) this.model.stopTraining = true;
    return logs;
  }

  private *endEpochLoop(): Loop<Logs> {
    const s = this.sums;
    const seconds = (performance.now() - this.epochT0) / 1000;
    const logs: Logs = { epoch: this.epoch, loss: s.loss / s.seen, lr: this.optimizer.lr, seconds };
    if (s.counted) logs.accuracy = s.correct / s.counted;
    if (this.opts.validationData) {
      const v = this.model.evaluate(this.opts.validationData[0], this.opts.validationData[1], { loss: this.loss });
      logs.valLoss = v.loss;
      if (v.accuracy !== undefined) logs.valAccuracy = v.accuracy;
    }
    this.history.epochs.push(logs);
    this.order = null;
    const epoch = this.epoch++;
    this.batch = 0;
    for (const cb of this.callbacks) if ((yield cb.onEpochEnd?.(epoch, logs)) === false) this.model.stopTraining = true;
    return logs;
  }

  private *stepLoop(): Loop<Logs> {
    const data = this.data;
    if (!data) throw new Error("Trainer.step: a batch source is consumed by runEpoch/fit/fitAsync, not step");
    if (!this.inEpoch) yield* this.beginEpochLoop();
    const start = this.batch * this.batchSize;
    const n = Math.min(this.batchSize, data.samples - start);
    const logs = yield* this.batchLoop(data.xb.gather(this.order!, start, n), data.yb.gather(this.order!, start, n));
    if (this.batch === this.batchesPerEpoch) yield* this.endEpochLoop();
    return logs;
  }

  private *epochLoop(): Loop<Logs> {
    if (this.data) {
      const epoch = this.epoch;
      let last: Logs | null = null;
      while (this.epoch === epoch && !this.stopping) {
        last = yield* this.stepLoop();
        yield BATCH_BOUNDARY;
      }
      if (this.epoch !== epoch) return this.history.epochs[this.history.epochs.length - 1];
      // stop() leaves the epoch open (for resume): its last batch's logs; a callback's stop closes it.
      if (this.stopRequested && last !== null) return last;
      return yield* this.endEpochLoop();
    }
    const source = this.source!;
    if (!this.inEpoch) yield* this.beginEpochLoop();
    const iterable = typeof source === "function" ? source(this.epoch) : source;
    const iterator = Symbol.asyncIterator in iterable ? iterable[Symbol.asyncIterator]() : iterable[Symbol.iterator]();
    let finished = false;
    try {
      while (!this.stopping) {
        const r = (yield iterator.next()) as IteratorResult<Batch>;
        if (r.done === true) {
          finished = true;
          break;
        }
        const where = `epoch ${this.epoch + 1}, batch ${this.batch + 1} of the data source`;
        if (!isBatch(r.value)) throw new TypeError(`fit: ${where} is ${describeValue(r.value)}; expected {x, y}`);
        checkTargets(r.value.x, r.value.y, `fit (${where})`);
        yield* this.batchLoop(r.value.x, r.value.y);
        yield BATCH_BOUNDARY;
      }
    } finally {
      // Stopped, aborted or failed before the source ran out: let it release what it holds.
      if (!finished) void Promise.resolve(iterator.return?.()).catch(() => undefined);
    }
    if (this.sums.seen === 0 && !this.stopping) {
      throw new Error(
        `fit: the data source gave no batches in epoch ${this.epoch + 1} (an async generator can be iterated ` +
          "only once: pass a function returning a fresh one per epoch)",
      );
    }
    return yield* this.endEpochLoop();
  }

  private *fitLoop(epochs: number): Loop<History> {
    if (!Number.isInteger(epochs) || epochs < 0) {
      throw new RangeError(`fit: epochs must be a non-negative integer, got ${epochs}`);
    }
    this.model.stopTraining = false;
    this.stopRequested = false;
    const first = this.history.epochs.length;
    const samples = this.data ? this.data.samples : NaN;
    const info: TrainBeginInfo = {
      epochs,
      batchesPerEpoch: this.batchesPerEpoch,
      samples,
      model: this.model,
      optimizer: this.optimizer,
      trainer: this,
    };
    for (const cb of this.callbacks) yield cb.onTrainBegin?.(info);
    while (this.epoch < epochs && !this.stopping) {
      if (this.data) {
        yield* this.stepLoop();
        yield BATCH_BOUNDARY;
        // A stop from a callback closes the epoch (as fit always did); stop() leaves it open for resume.
        if (this.model.stopTraining && !this.stopRequested && this.inEpoch) yield* this.endEpochLoop();
      } else {
        yield* this.epochLoop();
      }
    }
    const history: History = { epochs: this.history.epochs.slice(first) };
    for (const cb of this.callbacks) yield cb.onTrainEnd?.(history);
    return history;
  }
}

function identity(n: number): Int32Array {
  const out = new Int32Array(n);
  for (let i = 0; i < n; i++) out[i] = i;
  return out;
}

/** A classification loss's labels over the whole of y (checkClassLabels), against the model's outputs if known. */
function checkLabelsFor(model: Sequential, loss: Loss, x: NDArray, y: Target, where: string): void {
  if (loss.type !== "SoftmaxCrossEntropy") return;
  // Only a model built for x's samples knows its classes already (building here would fix an input shape the
  // user left open); an x it cannot take is left to its first forward, which names the layer.
  const out =
    model.inputShape !== null && sampleShapeIs(x, model.inputShape) ? model.outputShape(model.inputShape) : [];
  checkClassLabels(y, out.length === 1 ? out[0] : null, where);
}

function isBatch(v: unknown): v is Batch {
  return typeof v === "object" && v !== null && "x" in v && "y" in v && typeof (v as { x: unknown }).x === "object";
}

function describeValue(v: unknown): string {
  if (v === null) return "null";
  return typeof v === "object" ? `an object with keys ${Object.keys(v).join(", ") || "(none)"}` : typeof v;
}
