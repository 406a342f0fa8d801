// Fuzzing a checkpoint's training state (model.json's "training", what --resume reads): edited field
// by field, it is refused with a ModelFormatError naming the file and the field, or accepted only
// when it is consistent with the data it resumes on.
import { test } from "node:test";
import assert from "node:assert/strict";
import fc from "fast-check";
import { RandomState } from "../src/nd/random.ts";
import { NDArray } from "../src/nd/ndarray.ts";
import { Augmenter } from "../src/data/augment.ts";
import { ModelFormatError, serializeRandomState, type Json } from "../src/node/model-io.ts";
import { checkStateAgainstData, readTrainState, type TrainState } from "../src/cli/train.ts";
import { applyJsonEdits, assertTypedError, fuzz, jsonEdit, outcome } from "./fuzz-mutate.ts";

const N = 64;
const base: TrainState = {
  task: "mnist",
  modelName: "mlp",
  epochs: 3,
  epochsDone: 1,
  batchesDone: 1,
  batchSize: 32,
  optimizer: "adam",
  lr: 0.002,
  schedule: "cosine",
  seed: 0,
  dataset: {
    name: "mnist",
    dataDir: null,
    limit: N,
    validation: 32,
    trainImages: N,
    normalization: { scale: 1 / 255, mean: 0.1307, std: 0.3081 },
  },
  history: [{ epoch: 1, loss: 0.9, trainAccuracy: 0.7, valLoss: 0.8, valAccuracy: 0.75, seconds: 0.1 }],
  partialEpoch: { lossSum: 20, correct: 25, seen: 32, seconds: 0.05 },
  shuffleState: serializeRandomState(new RandomState(0).getState()),
  // the newer fields (second fuzzing round): label smoothing, augmentation and its generator, the callbacks'
  // counters, the log
  labelSmoothing: 0.1,
  augment: { shift: 2, rotation: 10, scale: [0.9, 1.1], shear: 10, fill: -0.42, elastic: { alpha: 34, sigma: 4 } },
  augmentState: serializeRandomState(new RandomState(5).getState()),
  earlyStopping: { patience: 3, best: 0.8, bestEpoch: 0, wait: 0 },
  saveBest: { best: 0.75 },
  reduceLrOnPlateau: { patience: 2, best: 0.8, wait: 0, cooldownLeft: 0 },
  log: "/tmp/metrics.csv",
  stoppedEarly: null,
  testAccuracy: null,
  testImages: null,
  startedAt: "2026-11-28T00:00:00.000Z",
  updatedAt: "2026-11-28T00:00:00.000Z",
};

test("the unedited training state is accepted", () => {
  checkStateAgainstData(
    readTrainState(structuredClone(base) as unknown as { [key: string]: Json }, "fz/model.json"),
    N,
    "fz/model.json",
    "data",
  );
});

const images = new NDArray(
  Float32Array.from({ length: 2 * 28 * 28 }, (_, i) => (i % 7) / 7),
  [2, 1, 28, 28],
);

test("fuzz: training state edited field by field", async (t) => {
  const runs = await fuzz(fc.array(jsonEdit, { minLength: 1, maxLength: 3 }), (edits) => {
    const raw = applyJsonEdits(base, edits) as unknown as { [key: string]: Json };
    const r = outcome(() => {
      const s = readTrainState(raw, "fz/model.json");
      checkStateAgainstData(s, N, "fz/model.json", "data");
      return s;
    });
    if (!r.ok) {
      assertTypedError(r.error, ModelFormatError, /^fz\/model\.json: "?training[."]/);
      return;
    }
    // Accepted: what the loop relies on holds.
    const s = r.value;
    assert.ok(s.epochsDone <= s.epochs && s.batchesDone < Math.ceil(N / s.batchSize));
    assert.equal(s.history.length, s.epochsDone);
    assert.ok(s.dataset.normalization.std > 0 && Number.isFinite(s.lr) && s.lr > 0);
    if (s.batchesDone > 0) assert.equal(s.partialEpoch?.seen, s.batchesDone * s.batchSize);
    assert.ok(s.earlyStopping == null || s.earlyStopping.patience >= 1);
    // the augmenter it resumes with builds and runs (finite output is not guaranteed yet: see fuzz2-files)
    if (s.augment) {
      const aug = new Augmenter({ ...s.augment, seed: 0 });
      if (s.augmentState) aug.setState(s.augmentState);
      aug.apply(images);
    }
  });
  t.diagnostic(`${runs} inputs`);
});
