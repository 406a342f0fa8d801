// Callbacks for the Trainer (fit / fitAsync): EarlyStopping, ModelCheckpoint, ReduceLROnPlateau and a
// CSV / JSON-lines logger. They watch a metric of the epoch logs (`monitor`, e.g. "valLoss") and follow
// Keras' rules. Nothing here touches files: checkpoints and log lines go to functions the caller
// supplies (in Node, saveModel — atomic — and an appendFileSync; in a browser, IndexedDB or a download),
// so the module stays browser-safe. Each stateful callback has state()/restore() for exact resume.

import type { Param } from "./layer.ts";
import type { Optimizer } from "./optim.ts";
import type { Sequential } from "./sequential.ts";
import type { Callbacks, History, Logs, TrainBeginInfo } from "./trainer.ts";

export type Monitor = Exclude<keyof Logs, "batch" | "epoch" | "seen">;
export type MonitorMode = "min" | "max" | "auto";

export interface MonitorOptions {
  /** The epoch-log field watched (default "valLoss"). */
  monitor?: Monitor;
  /** "min": lower is better; "max": higher is better; "auto" (default): "min" for losses, "max" otherwise. */
  mode?: MonitorMode;
  /** An improvement must beat the best by more than this (default 0). */
  minDelta?: number;
}

const MONITORS: readonly Monitor[] = ["loss", "accuracy", "valLoss", "valAccuracy", "lr", "seconds"];

function nonNegativeNumber(where: string, name: string, v: unknown): number {
  if (typeof v !== "number" || !(v >= 0) || !Number.isFinite(v)) {
    throw new RangeError(`${where}: ${name} must be a finite number ≥ 0, got ${String(v)}`);
  }
  return v;
}

function nonNegativeInteger(where: string, name: string, v: unknown): number {
  if (typeof v !== "number" || !Number.isInteger(v) || v < 0) {
    throw new RangeError(`${where}: ${name} must be an integer ≥ 0, got ${String(v)}`);
  }
  return v;
}

/**
 * A restored state's fields, checked before any is assigned (a bad state changes nothing): the state must
 * be an object and its best a number other than NaN (±Infinity: nothing seen yet), which every later
 * comparison would lose, silently stopping or never saving.
 */
function restoredBest(where: string, state: unknown): number {
  if (typeof state !== "object" || state === null)
    throw new TypeError(`${where}: expected a state object (from state()), got ${String(state)}`);
  const best = (state as { best?: unknown }).best;
  if (typeof best !== "number" || Number.isNaN(best)) {
    // the likeliest null: state() saved as JSON, which writes ±Infinity as null
    const hint = best === null ? " (JSON.stringify writes ±Infinity as null: turn it back before restoring)" : "";
    throw new RangeError(`${where}: best must be a number (±Infinity before any epoch), got ${String(best)}${hint}`);
  }
  return best;
}

/** The best-so-far bookkeeping shared by the three monitoring callbacks. */
class Watch {
  readonly monitor: Monitor;
  readonly lowerIsBetter: boolean;
  readonly minDelta: number;
  best: number;

  constructor(
    private readonly where: string,
    opts: MonitorOptions,
  ) {
    const monitor = opts.monitor ?? "valLoss";
    if (!MONITORS.includes(monitor)) {
      throw new RangeError(`${where}: monitor must be one of ${MONITORS.join(", ")}, got ${JSON.stringify(monitor)}`);
    }
    const mode = opts.mode ?? "auto";
    if (mode !== "min" && mode !== "max" && mode !== "auto") {
      throw new RangeError(`${where}: mode must be "min", "max" or "auto", got ${JSON.stringify(mode)}`);
    }
    this.monitor = monitor;
    this.lowerIsBetter = mode === "min" || (mode === "auto" && monitor.toLowerCase().includes("loss"));
    this.minDelta = nonNegativeNumber(where, "minDelta", opts.minDelta ?? 0);
    this.best = this.lowerIsBetter ? Infinity : -Infinity;
  }

  reset(): void {
    this.best = this.lowerIsBetter ? Infinity : -Infinity;
  }

  /** The monitored value of these logs; a missing one is an error naming what the logs have. */
  value(epoch: number, logs: Logs): number {
    const v = logs[this.monitor];
    if (typeof v !== "number") {
      const present = MONITORS.filter((m) => typeof logs[m] === "number").join(", ");
      const hint = this.monitor.startsWith("val") ? " (pass validationData to fit)" : "";
      const where = `${this.where}: the logs of epoch ${epoch + 1}`;
      throw new Error(`${where} have no "${this.monitor}"${hint}; they have ${present}`);
    }
    return v;
  }

  improves(v: number): boolean {
    return this.lowerIsBetter ? v < this.best - this.minDelta : v > this.best + this.minDelta;
  }
}

function thenUndefined(r: unknown): unknown {
  const thenable = typeof (r as { then?: unknown } | null)?.then === "function";
  return thenable ? (r as PromiseLike<unknown>).then(() => undefined) : undefined;
}

function requireModel(where: string, info: TrainBeginInfo): Sequential {
  if (!info.model) throw new Error(`${where}: needs the model: use it with fit/fitAsync or a Trainer`);
  return info.model;
}

// ---------------------------------------------------------------------------------------------

export interface EarlyStoppingOptions extends MonitorOptions {
  /** Stop after this many epochs in a row without improvement (default 0, like 1: at the first one). */
  patience?: number;
  /** At the end of training, put back the weights of the best epoch (default false). */
  restoreBestWeights?: boolean;
}

/** Stop training when the monitored metric has not improved for `patience` epochs. */
export class EarlyStopping implements Callbacks {
  readonly patience: number;
  readonly restoreBestWeights: boolean;
  /** The epoch whose value was best so far (−1 before the first), and when training was stopped (or −1). */
  bestEpoch = -1;
  stoppedEpoch = -1;
  private readonly watch: Watch;
  private wait = 0;
  private model: Sequential | null = null;
  private bestWeights: Float32Array[] | Float64Array[] | null = null;

  constructor(opts: EarlyStoppingOptions = {}) {
    this.watch = new Watch("EarlyStopping", opts);
    this.patience = nonNegativeInteger("EarlyStopping", "patience", opts.patience ?? 0);
    this.restoreBestWeights = opts.restoreBestWeights ?? false;
  }

  get best(): number {
    return this.watch.best;
  }

  onTrainBegin(info: TrainBeginInfo): void {
    this.model = requireModel("EarlyStopping", info);
    this.stoppedEpoch = -1;
  }

  onEpochEnd(epoch: number, logs: Logs): boolean {
    const v = this.watch.value(epoch, logs);
    if (this.watch.improves(v)) {
      this.watch.best = v;
      this.bestEpoch = epoch;
      this.wait = 0;
      if (this.restoreBestWeights) this.bestWeights = snapshot(this.model!.params());
      return true;
    }
    this.wait++;
    if (this.wait >= this.patience) {
      this.stoppedEpoch = epoch;
      return false;
    }
    return true;
  }

  onTrainEnd(_history: History): void {
    if (this.restoreBestWeights && this.bestWeights) {
      const params = this.model!.params();
      params.forEach((p, i) => {
        p.value.data.set(this.bestWeights![i]);
      });
    }
  }

  state(): { best: number; bestEpoch: number; wait: number } {
    return { best: this.watch.best, bestEpoch: this.bestEpoch, wait: this.wait };
  }

  /** Continue counting from state() (the best weights themselves are not part of it). */
  restore(state: { best: number; bestEpoch: number; wait: number }): void {
    const best = restoredBest("EarlyStopping.restore", state);
    const wait = nonNegativeInteger("EarlyStopping.restore", "wait", state.wait);
    if (state.bestEpoch !== -1) nonNegativeInteger("EarlyStopping.restore", "bestEpoch (or -1)", state.bestEpoch);
    this.watch.best = best;
    this.bestEpoch = state.bestEpoch;
    this.wait = wait;
  }
}

function snapshot(params: readonly Param[]): Float32Array[] | Float64Array[] {
  return params.map((p) => p.value.data.slice()) as Float32Array[] | Float64Array[];
}

// ---------------------------------------------------------------------------------------------

export interface CheckpointInfo {
  epoch: number;
  logs: Logs;
  /** The monitored value (undefined when saving every epoch without a monitor). */
  value?: number;
}

export interface ModelCheckpointOptions extends MonitorOptions {
  /**
   * Writes the model: in Node e.g. `(m) => saveModel(m, dir, {optimizer})`, which is atomic; in a browser
   * saveModelToIndexedDB. May return a promise (awaited by fitAsync; fit refuses one).
   */
  save: (model: Sequential, info: CheckpointInfo) => unknown;
  /** Save only when the monitored metric improves (default true); false saves after every epoch. */
  saveBestOnly?: boolean;
}

/** Save the model after each epoch that improves the monitored metric (or after every epoch). */
export class ModelCheckpoint implements Callbacks {
  readonly saveBestOnly: boolean;
  /** Epochs saved so far. */
  readonly saved: number[] = [];
  private readonly watch: Watch;
  private readonly save: ModelCheckpointOptions["save"];
  private model: Sequential | null = null;

  constructor(opts: ModelCheckpointOptions) {
    if (typeof opts.save !== "function") {
      throw new TypeError("ModelCheckpoint: save must be a function (model, info) => …");
    }
    this.save = opts.save;
    this.saveBestOnly = opts.saveBestOnly ?? true;
    this.watch = new Watch("ModelCheckpoint", opts);
  }

  get best(): number {
    return this.watch.best;
  }

  onTrainBegin(info: TrainBeginInfo): void {
    this.model = requireModel("ModelCheckpoint", info);
  }

  onEpochEnd(epoch: number, logs: Logs): unknown {
    let value: number | undefined;
    if (this.saveBestOnly) {
      value = this.watch.value(epoch, logs);
      if (!this.watch.improves(value)) return undefined;
      this.watch.best = value;
    }
    this.saved.push(epoch);
    // A save function's own return value must not read as "stop training" (false).
    return thenUndefined(this.save(this.model!, value === undefined ? { epoch, logs } : { epoch, logs, value }));
  }

  state(): { best: number } {
    return { best: this.watch.best };
  }

  restore(state: { best: number }): void {
    this.watch.best = restoredBest("ModelCheckpoint.restore", state);
  }
}

// ---------------------------------------------------------------------------------------------

export interface ReduceLROnPlateauOptions extends MonitorOptions {
  /** lr ← max(lr·factor, minLr) on a plateau (default 0.1; in (0, 1)). */
  factor?: number;
  /** Epochs without improvement before reducing (default 10). */
  patience?: number;
  /** Epochs after a reduction during which no plateau is counted (default 0). */
  cooldown?: number;
  /** The lr is never reduced below this (default 0). */
  minLr?: number;
}

/**
 * Multiply the optimizer's lr by `factor` when the monitored metric has not improved for `patience`
 * epochs (Keras' rules, cooldown included). Use it without a `schedule`, which would reset lr each epoch.
 */
export class ReduceLROnPlateau implements Callbacks {
  readonly factor: number;
  readonly patience: number;
  readonly cooldown: number;
  readonly minLr: number;
  /** (epoch, new lr) of each reduction. */
  readonly reductions: [number, number][] = [];
  private readonly watch: Watch;
  private wait = 0;
  private cooldownLeft = 0;
  private optimizer: Optimizer | null = null;

  constructor(opts: ReduceLROnPlateauOptions = {}) {
    const where = "ReduceLROnPlateau";
    this.watch = new Watch(where, opts);
    const factor = opts.factor ?? 0.1;
    if (typeof factor !== "number" || !(factor > 0 && factor < 1)) {
      throw new RangeError(`${where}: factor must be a number in (0, 1), got ${String(factor)}`);
    }
    this.factor = factor;
    this.patience = nonNegativeInteger(where, "patience", opts.patience ?? 10);
    this.cooldown = nonNegativeInteger(where, "cooldown", opts.cooldown ?? 0);
    this.minLr = nonNegativeNumber(where, "minLr", opts.minLr ?? 0);
  }

  onTrainBegin(info: TrainBeginInfo): void {
    if (!info.optimizer) {
      throw new Error("ReduceLROnPlateau: needs the optimizer: use it with fit/fitAsync or a Trainer");
    }
    this.optimizer = info.optimizer;
  }

  onEpochEnd(epoch: number, logs: Logs): void {
    const v = this.watch.value(epoch, logs);
    if (this.cooldownLeft > 0) {
      this.cooldownLeft--;
      this.wait = 0;
    }
    if (this.watch.improves(v)) {
      this.watch.best = v;
      this.wait = 0;
    } else if (this.cooldownLeft === 0) {
      this.wait++;
      if (this.wait >= this.patience) {
        const optimizer = this.optimizer!;
        if (optimizer.lr > this.minLr) {
          optimizer.lr = Math.max(optimizer.lr * this.factor, this.minLr);
          this.reductions.push([epoch, optimizer.lr]);
          this.cooldownLeft = this.cooldown;
        }
        this.wait = 0;
      }
    }
  }

  state(): { best: number; wait: number; cooldownLeft: number } {
    return { best: this.watch.best, wait: this.wait, cooldownLeft: this.cooldownLeft };
  }

  restore(state: { best: number; wait: number; cooldownLeft: number }): void {
    const best = restoredBest("ReduceLROnPlateau.restore", state);
    const wait = nonNegativeInteger("ReduceLROnPlateau.restore", "wait", state.wait);
    this.cooldownLeft = nonNegativeInteger("ReduceLROnPlateau.restore", "cooldownLeft", state.cooldownLeft);
    this.watch.best = best;
    this.wait = wait;
  }
}

// ---------------------------------------------------------------------------------------------

export type LogField = keyof Logs;

export interface MetricsLoggerOptions {
  /** Receives each line, newline included (e.g. `(l) => appendFileSync(path, l)`); may return a promise. */
  write: (line: string) => unknown;
  /** "csv" (default) or "jsonl" (one JSON object per line). */
  format?: "csv" | "jsonl";
  /** Log each epoch (default) or each batch. */
  every?: "epoch" | "batch";
  /** CSV columns (default: epoch[, batch, seen], loss, accuracy, valLoss, valAccuracy, lr, seconds). */
  columns?: readonly LogField[];
  /** Write the CSV header line before the first row (default true; false when appending on resume). */
  header?: boolean;
}

const LOG_FIELDS: readonly LogField[] = [
  "epoch",
  "batch",
  "seen",
  "loss",
  "accuracy",
  "valLoss",
  "valAccuracy",
  "lr",
  "seconds",
];
const EPOCH_COLUMNS: readonly LogField[] = ["epoch", "loss", "accuracy", "valLoss", "valAccuracy", "lr", "seconds"];
const BATCH_COLUMNS: readonly LogField[] = ["epoch", "batch", "seen", "loss", "accuracy", "lr"];

/** Writes the logs of every epoch (or batch) as CSV rows or JSON lines through `write`. Epochs count from 0. */
export class MetricsLogger implements Callbacks {
  readonly format: "csv" | "jsonl";
  readonly every: "epoch" | "batch";
  readonly columns: readonly LogField[];
  private readonly write: (line: string) => unknown;
  private headerDue: boolean;

  constructor(opts: MetricsLoggerOptions) {
    if (typeof opts.write !== "function") {
      throw new TypeError("MetricsLogger: write must be a function (line) => …");
    }
    this.write = opts.write;
    this.format = opts.format ?? "csv";
    if (this.format !== "csv" && this.format !== "jsonl") {
      throw new RangeError(`MetricsLogger: format must be "csv" or "jsonl", got ${JSON.stringify(this.format)}`);
    }
    this.every = opts.every ?? "epoch";
    if (this.every !== "epoch" && this.every !== "batch") {
      throw new RangeError(`MetricsLogger: every must be "epoch" or "batch", got ${JSON.stringify(this.every)}`);
    }
    this.columns = opts.columns ?? (this.every === "batch" ? BATCH_COLUMNS : EPOCH_COLUMNS);
    for (const c of this.columns) {
      if (!LOG_FIELDS.includes(c)) {
        throw new RangeError(`MetricsLogger: unknown column ${JSON.stringify(c)} (known: ${LOG_FIELDS.join(", ")})`);
      }
    }
    this.headerDue = opts.header ?? true;
  }

  onBatchEnd(_batch: number, logs: Logs): unknown {
    return this.every === "batch" ? this.emit(logs) : undefined;
  }

  onEpochEnd(_epoch: number, logs: Logs): unknown {
    return this.every === "epoch" ? this.emit(logs) : undefined;
  }

  /** The text for one log entry (the header first, once, in CSV). */
  format1(logs: Logs): string {
    if (this.format === "jsonl") return JSON.stringify(logs) + "\n";
    const row = this.columns.map((c) => (logs[c] === undefined ? "" : String(logs[c]))).join(",") + "\n";
    if (!this.headerDue) return row;
    this.headerDue = false;
    return this.columns.join(",") + "\n" + row;
  }

  private emit(logs: Logs): unknown {
    return thenUndefined(this.write(this.format1(logs)));
  }
}
