// Callbacks on scripted metric sequences (driven by hand, epoch by epoch), then inside fit and fitAsync.
import { test } from "node:test";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import assert from "node:assert/strict";
import { NDArray } from "../src/nd/ndarray.ts";
import { Dense } from "../src/nn/dense.ts";
import { MSE, SoftmaxCrossEntropy } from "../src/nn/losses.ts";
import { SGD } from "../src/nn/optim.ts";
import { Sequential } from "../src/nn/sequential.ts";
import type { Logs, TrainBeginInfo } from "../src/nn/trainer.ts";
import { loadModel, saveModel } from "../src/node/model-io.ts";
import { EarlyStopping, MetricsLogger, ModelCheckpoint, ReduceLROnPlateau } from "../src/nn/callbacks.ts";

function tiny(): Sequential {
  return new Sequential([new Dense({ inFeatures: 2, outFeatures: 2 })], { inputShape: [2], seed: 1 });
}

function begin(model: Sequential, optimizer = new SGD({ lr: 1 })): TrainBeginInfo {
  return { epochs: 100, batchesPerEpoch: 1, samples: 1, model, optimizer };
}

const logs = (epoch: number, valLoss: number, extra: Partial<Logs> = {}): Logs => ({
  epoch,
  loss: 1,
  lr: 0.1,
  valLoss,
  ...extra,
});

/** Feed valLoss values epoch by epoch until a callback says stop; returns the epochs run. */
type EpochEnd = { onEpochEnd(e: number, l: Logs): unknown };
function script(cb: EpochEnd, values: number[], each?: (epoch: number) => void): number {
  for (let e = 0; e < values.length; e++) {
    each?.(e);
    if (cb.onEpochEnd(e, logs(e, values[e])) === false) return e + 1;
  }
  return values.length;
}

test("EarlyStopping: patience counts epochs without improvement beyond minDelta", () => {
  const es = new EarlyStopping({ monitor: "valLoss", patience: 2, minDelta: 0.01 });
  es.onTrainBegin(begin(tiny()));
  // 1.0 best, 0.995 is not better by more than 0.01 (wait 1), 0.9 best (wait 0), 0.95 (1), 0.91 (2) → stop
  assert.equal(script(es, [1.0, 0.995, 0.9, 0.95, 0.91, 0.5]), 5);
  assert.equal(es.best, 0.9);
  assert.equal(es.bestEpoch, 2);
  assert.equal(es.stoppedEpoch, 4);
  const zero = new EarlyStopping({ monitor: "valLoss" });
  zero.onTrainBegin(begin(tiny()));
  assert.equal(script(zero, [3, 2, 2.5, 1]), 3);
});

test("EarlyStopping: mode max for accuracies (auto), restoreBestWeights puts back the best epoch's weights", () => {
  const model = tiny();
  const es = new EarlyStopping({ monitor: "valAccuracy", patience: 2, restoreBestWeights: true });
  es.onTrainBegin(begin(model));
  const w = model.params()[0].value.data;
  const accs = [0.5, 0.8, 0.7, 0.9, 0.85, 0.6];
  let e = 0;
  for (; e < accs.length; e++) {
    w.fill(e); // the "weights" of epoch e
    if (!es.onEpochEnd(e, { epoch: e, loss: 1, lr: 1, valAccuracy: accs[e] })) break;
  }
  assert.equal(e, 5); // 0.85 and 0.6 after the best 0.9
  assert.equal(es.bestEpoch, 3);
  es.onTrainEnd({ epochs: [] });
  assert.deepEqual(Array.from(w), [3, 3, 3, 3]);
});

test("EarlyStopping: a monitored field missing from the logs is a clear error; bad options are refused", () => {
  const es = new EarlyStopping();
  es.onTrainBegin(begin(tiny()));
  const message = /epoch 1 have no "valLoss" \(pass validationData to fit\); they have loss, lr/;
  assert.throws(() => es.onEpochEnd(0, { epoch: 0, loss: 1, lr: 1 }), message);
  assert.throws(() => new EarlyStopping({ patience: -1 }), /patience must be an integer ≥ 0/);
  assert.throws(() => new EarlyStopping({ monitor: "val_loss" as never }), /monitor must be one of/);
});

test("ModelCheckpoint saves only the improving epochs (best-so-far), or every epoch", () => {
  const model = tiny();
  const saves: [number, number | undefined][] = [];
  const ck = new ModelCheckpoint({ save: (m, info) => saves.push([info.epoch, info.value]) });
  ck.onTrainBegin(begin(model));
  script(ck, [1.0, 1.2, 0.8, 0.8, 0.3]);
  assert.deepEqual(saves, [
    [0, 1.0],
    [2, 0.8],
    [4, 0.3],
  ]);
  assert.deepEqual(ck.saved, [0, 2, 4]);
  const every: number[] = [];
  const all = new ModelCheckpoint({ save: (_m, info) => every.push(info.epoch), saveBestOnly: false });
  all.onTrainBegin(begin(model));
  assert.equal(script(all, [1, 2, 3]), 3); // save's own return value never stops training
  assert.deepEqual(every, [0, 1, 2]);
});

test("ReduceLROnPlateau: factor after patience epochs, cooldown, minLr (Keras' rules)", () => {
  const opt = new SGD({ lr: 1 });
  const r = new ReduceLROnPlateau({ factor: 0.5, patience: 2, cooldown: 2, minLr: 0.2 });
  r.onTrainBegin(begin(tiny(), opt));
  const lrs: number[] = [];
  // As Keras, the cooldown counter is decremented before the plateau test, so cooldown c skips c − 1 epochs:
  // epoch 0 best 1.0 | 1 wait 1 | 2 wait 2 → lr 0.5, cooldown 2 | 3 cooling | 4 wait 1 | 5 wait 2 → 0.25
  // | 6 cooling | 7 improves | 8 wait 1 | 9 wait 2 → max(0.125, 0.2) = 0.2 | 10 | 11 wait 1 | 12 at minLr: unchanged
  script(r, [1, 1, 1, 1, 1, 1, 1, 0.5, 0.6, 0.6, 0.6, 0.6, 0.6, 0.6], () => lrs.push(opt.lr));
  assert.deepEqual(r.reductions, [
    [2, 0.5],
    [5, 0.25],
    [9, 0.2],
  ]);
  assert.equal(opt.lr, 0.2);
  assert.deepEqual(lrs.slice(0, 4), [1, 1, 1, 0.5]);
  assert.throws(() => new ReduceLROnPlateau({ factor: 1 }), /factor must be a number in \(0, 1\)/);
});

test("MetricsLogger: CSV with a header once, empty cells for missing fields; JSON lines; per batch", () => {
  const lines: string[] = [];
  const csv = new MetricsLogger({ write: (l) => lines.push(l) });
  csv.onEpochEnd(0, logs(0, 0.5, { accuracy: 0.75, seconds: 2 }));
  csv.onEpochEnd(1, { epoch: 1, loss: 0.25, lr: 0.05 });
  assert.deepEqual(lines, [
    "epoch,loss,accuracy,valLoss,valAccuracy,lr,seconds\n0,1,0.75,0.5,,0.1,2\n",
    "1,0.25,,,,0.05,\n",
  ]);
  const json: string[] = [];
  const jl = new MetricsLogger({ write: (l) => json.push(l), format: "jsonl", every: "batch" });
  jl.onBatchEnd(3, { epoch: 0, batch: 3, loss: 0.5, lr: 0.1, seen: 64 });
  jl.onEpochEnd(0, logs(0, 1));
  assert.deepEqual(
    json.map((l) => JSON.parse(l) as unknown),
    [{ epoch: 0, batch: 3, loss: 0.5, lr: 0.1, seen: 64 }],
  );
  const columns = ["val_loss" as never];
  assert.throws(() => new MetricsLogger({ write: () => 0, columns }), /unknown column "val_loss"/);
});

// A 2-class problem where a tiny linear model gets better, then a validation set that it cannot fit.
const x = new NDArray(Float32Array.from([1, 0, 0, 1, 1, 0.1, 0.1, 1]), [4, 2]);
const y = [0, 1, 0, 1];

test("in fit: EarlyStopping stops the run, ReduceLROnPlateau lowers the lr, the logger sees each epoch", () => {
  const model = tiny().compile({ loss: new SoftmaxCrossEntropy(), optimizer: new SGD({ lr: 0.1 }) });
  const rows: string[] = [];
  const flipped = [1, 0, 1, 0]; // validation labels opposite to training: valLoss rises from the start
  const h = model.fit(x, y, {
    epochs: 50,
    batchSize: 4,
    validationData: [x, flipped],
    callbacks: [
      new ReduceLROnPlateau({ patience: 1, factor: 0.5 }),
      new EarlyStopping({ patience: 3 }),
      new MetricsLogger({ write: (l) => rows.push(l), format: "jsonl" }),
    ],
  });
  assert.equal(h.epochs.length, 4); // best at epoch 0, then 3 epochs without improvement
  assert.equal(rows.length, 4);
  assert.deepEqual(
    h.epochs.map((e) => e.lr),
    [0.1, 0.1, 0.05, 0.025],
  );
});

test("in fitAsync: ModelCheckpoint awaits an asynchronous save before training goes on", async () => {
  const model = tiny().compile({ loss: new MSE(), optimizer: new SGD({ lr: 0.1 }) });
  const targets = new NDArray(Float32Array.from([1, 0, 0, 1, 1, 0, 0, 1]), [4, 2]);
  const events: string[] = [];
  const save = async (_m: Sequential, info: { epoch: number }) => {
    await new Promise((r) => setTimeout(r, 2));
    events.push(`saved ${info.epoch}`);
  };
  await model.fitAsync(x, targets, {
    epochs: 3,
    batchSize: 4,
    callbacks: [new ModelCheckpoint({ monitor: "loss", save }), { onEpochBegin: (e) => events.push(`begin ${e}`) }],
  });
  assert.deepEqual(events, ["begin 0", "saved 0", "begin 1", "saved 1", "begin 2", "saved 2"]);
  const callbacks = [new ModelCheckpoint({ monitor: "loss", save })];
  assert.throws(() => model.fit(x, targets, { callbacks }), /use fitAsync/);
});

test("ModelCheckpoint with saveModel (atomic, in Node): the folder holds the best epoch's model", () => {
  const dir = mkdtempSync(join(tmpdir(), "handprop-ckpt-"));
  try {
    const model = tiny().compile({ loss: new SoftmaxCrossEntropy(), optimizer: new SGD({ lr: 0.1 }) });
    let bestWeights: number[] = [];
    const ck = new ModelCheckpoint({
      monitor: "valLoss",
      save: (m) => {
        saveModel(m, dir);
        bestWeights = m.params().flatMap((p) => Array.from(p.value.data));
      },
    });
    model.fit(x, y, { epochs: 6, batchSize: 4, validationData: [x, [1, 0, 1, 0]], callbacks: [ck] });
    assert.deepEqual(ck.saved, [0]); // valLoss rises after the first epoch: only that one is saved
    const loaded = loadModel(dir).model;
    assert.deepEqual(
      loaded.params().flatMap((p) => Array.from(p.value.data)),
      bestWeights,
    );
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
