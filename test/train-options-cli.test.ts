// `handprop train mnist` with --augment/--elastic, --early-stopping, --save-best, --reduce-lr-on-plateau
// --label-smoothing and --log: interrupted mid-epoch and resumed = uninterrupted, byte for byte (weights, optimizer, the
// best model, the log), the callbacks' effects, and the usage errors of the new flags.
import { test } from "node:test";
import assert from "node:assert/strict";
import { existsSync, readFileSync } from "node:fs";
import { join } from "node:path";
import type { ModelManifest } from "../src/node/model-io.ts";
import { runCli, runMany, runTrainInterrupted } from "./cli-run.ts";
import { tempDirForFile } from "./helpers.ts";

const tmp = tempDirForFile("handprop-train-options-");

const manifest = (dir: string): ModelManifest =>
  JSON.parse(readFileSync(join(dir, "model.json"), "utf8")) as ModelManifest;
const bytes = (dir: string, file: string): Buffer => readFileSync(join(dir, file));

// 320 images = 10 batches of 32 per epoch; 3 epochs.
const BASE = [
  "mnist",
  "--model",
  "cnn-small",
  "--limit",
  "320",
  "--val",
  "64",
  "--test-limit",
  "100",
  "--batch-size",
  "32",
  "--seed",
  "5",
  "--epochs",
  "3",
];
const AUGMENT = [
  "--augment",
  "affine",
  "--shift",
  "2",
  "--rotate",
  "12",
  "--scale",
  "0.1",
  "--shear",
  "8",
  "--elastic",
];
// patience 1 on the validation loss: with SGD at a high rate a plateau (and so a reduction) is likely,
// but the test only asserts what the logs say happened, and that the interrupted run agrees.
const CALLBACKS = [
  "--optimizer",
  "sgd",
  "--lr",
  "0.1",
  "--reduce-lr-on-plateau",
  "1",
  "--early-stopping",
  "2",
  "--save-best",
  "--label-smoothing",
  "0.1",
];

test("augmentation and callbacks: interrupted mid-epoch + resumed = uninterrupted, byte for byte", async () => {
  const straight = join(tmp, "straight");
  const interrupted = join(tmp, "interrupted");
  const plain = join(tmp, "plain");
  const [a, c1, p] = await Promise.all([
    runCli([
      "train",
      ...BASE,
      ...AUGMENT,
      ...CALLBACKS,
      "--out",
      straight,
      "--log",
      join(tmp, "straight.csv"),
      "--json",
    ]),
    // batch 16 = batch 6 of epoch 2 (the interrupter runs after the CLI's own yield: a batch or two more)
    runTrainInterrupted(
      [...BASE, ...AUGMENT, ...CALLBACKS, "--out", interrupted, "--log", join(tmp, "interrupted.csv")],
      16,
    ),
    runCli(["train", ...BASE, "--epochs", "1", "--out", plain]),
  ]);
  assert.equal(a.code, 0, a.err);
  assert.match(
    a.err,
    /augmentation affine \(shift ±2 px, rotation ±12°, scale 0\.9–1\.1, shear ±8°\) \+ elastic \(α 34, σ 4\)/,
  );
  assert.match(a.err, /label smoothing 0\.1, /);
  assert.equal(c1.code, 130, c1.err);
  const mc = manifest(interrupted).training as {
    epochsDone: number;
    batchesDone: number;
    augment: unknown;
    augmentState: unknown;
  };
  assert.equal(mc.epochsDone, 1);
  assert.ok(mc.batchesDone > 0 && mc.batchesDone < 10, `batchesDone ${mc.batchesDone}`);
  assert.ok(mc.augment !== null && mc.augmentState !== undefined);
  const c2 = await runCli(["train", "mnist", "--resume", interrupted, "--test-limit", "100", "--json"]);
  assert.equal(c2.code, 0, c2.err);
  assert.match(c2.err, /resuming cnn-small .* 1 epoch\(s\) and \d batch\(es\) done/);

  for (const file of ["weights.bin", "optimizer.bin"]) {
    assert.ok(
      bytes(interrupted, file).equals(bytes(straight, file)),
      `interrupted + resumed: ${file} differs from the uninterrupted run`,
    );
  }
  assert.ok(bytes(interrupted, "best/weights.bin").equals(bytes(straight, "best/weights.bin")), "best/ differs");
  // the log: the same rows, timing aside
  const untimed = (file: string): string[] =>
    readFileSync(join(tmp, file), "utf8")
      .trim()
      .split("\n")
      .map((r) => r.split(",").slice(0, -1).join(","));
  assert.deepEqual(untimed("interrupted.csv"), untimed("straight.csv"));
  const ja = JSON.parse(a.out) as { epochs: { loss: number; valAccuracy: number }[] };
  assert.deepEqual(
    (JSON.parse(c2.out) as typeof ja).epochs.map((e) => e.loss),
    ja.epochs.map((e) => e.loss),
  );

  // augmentation changes training: epoch 1 differs from the run without it
  assert.equal(p.code, 0, p.err);
  assert.notEqual(ja.epochs[0].loss, (manifest(plain).training as { history: { loss: number }[] }).history[0].loss);

  // the log: a header and one row per epoch done, epochs from 0, the lr each epoch ran at
  const t = manifest(straight).training as {
    history: { valAccuracy: number }[];
    epochs: number;
    stoppedEarly: number | null;
    saveBest: { best: number };
    reduceLrOnPlateau: { patience: number };
  };
  const rows = readFileSync(join(tmp, "straight.csv"), "utf8").trim().split("\n");
  assert.equal(rows[0], "epoch,loss,accuracy,valLoss,valAccuracy,lr,seconds");
  assert.equal(rows.length, 1 + t.history.length);
  assert.deepEqual(
    rows.slice(1).map((r) => Number(r.split(",")[0])),
    t.history.map((_, i) => i),
  );
  assert.ok(
    rows.slice(1).some((r) => Number(r.split(",")[5]) < 0.1),
    "a plateau reduced the lr (so the resume had to carry it)",
  );
  // --save-best: best/ holds the epoch of the best validation accuracy
  const best = manifest(join(straight, "best")).training as { bestEpoch: number };
  const accs = t.history.map((h) => h.valAccuracy);
  assert.equal(t.saveBest.best, Math.max(...accs));
  assert.equal(best.bestEpoch, accs.indexOf(Math.max(...accs)) + 1);
  assert.equal(
    t.stoppedEarly === null ? 3 : t.stoppedEarly,
    t.history.length,
    "early stopping ends the run after the epoch it stopped",
  );
});

test("early stopping ends the run, and --resume --epochs continues it", async () => {
  const dir = join(tmp, "early");
  // lr 0 (almost): the validation loss cannot improve after the first epoch, so patience 1 stops after epoch 2
  const r = await runCli([
    "train",
    ...BASE,
    "--epochs",
    "5",
    "--optimizer",
    "sgd",
    "--lr",
    "1e-30",
    "--schedule",
    "none",
    "--early-stopping",
    "1",
    "--out",
    dir,
    "--json",
  ]);
  assert.equal(r.code, 0, r.err);
  assert.match(
    r.err,
    /early stopping: the validation loss has not improved for 1 epoch\(s\) \(best [\d.]+ after epoch 1\)/,
  );
  const t = manifest(dir).training as { epochs: number; epochsDone: number; stoppedEarly: number };
  assert.deepEqual([t.epochs, t.epochsDone, t.stoppedEarly], [2, 2, 2]);
  const more = await runCli(["train", "mnist", "--resume", dir, "--epochs", "3", "--test-limit", "0"]);
  assert.equal(more.code, 0, more.err);
  assert.match(more.out, /resuming cnn-small from .*early: 2 epoch\(s\) done, training to 3/);
  assert.equal((manifest(dir).training as { epochsDone: number }).epochsDone, 3);
});

test("the new flags' usage errors", async () => {
  const existing = join(tmp, "existing");
  const first = await runCli(["train", ...BASE, "--epochs", "0", "--augment", "affine", "--out", existing]);
  assert.equal(first.code, 0, first.err);
  const cases: [string[], RegExp][] = [
    [["train", "mnist", "--shift", "2"], /handprop train: --shift needs --augment affine/],
    [["train", "mnist", "--augment", "rotate"], /--augment expects one of affine, none, got 'rotate'/],
    [["train", "mnist", "--augment", "affine", "--rotate", "200"], /--rotate must be ≤ 180, got 200/],
    [["train", "mnist", "--augment", "affine", "--scale", "-0.1"], /--scale must be ≥ 0, got -0\.1/],
    [["train", "mnist", "--early-stopping", "0"], /--early-stopping must be at least 1/],
    [["train", "mnist", "--label-smoothing", "0.7"], /--label-smoothing must be ≤ 0\.5, got 0\.7/],
    [
      ["train", "mnist", "--resume", existing, "--label-smoothing", "0.1"],
      /--label-smoothing 0\.1 differs from the checkpoint's \(0\)/,
    ],
    [
      ["train", "mnist", "--limit", "100", "--val", "0", "--save-best", "--out", join(tmp, "unused")],
      /--save-best watches the validation set: give --val N > 0/,
    ],
    [
      ["train", "mnist", "--reduce-lr-on-plateau", "2", "--schedule", "cosine", "--out", join(tmp, "unused")],
      /--reduce-lr-on-plateau sets the learning rate itself/,
    ],
    [["train", "mnist", "--log", join(tmp, "metrics.txt")], /--log .*metrics\.txt: name a \.csv or a \.jsonl file/],
    [
      ["train", "mnist", "--resume", existing, "--elastic"],
      /the augmentation flags give elastic .*, the checkpoint's is affine .*; leave them out to resume/,
    ],
    [
      ["train", "mnist", "--resume", existing, "--save-best"],
      /--save-best true differs from the checkpoint's \(null\)/,
    ],
  ];
  const results = await runMany(cases.map(([args]) => args));
  results.forEach((r, i) => {
    assert.equal(r.code, 2, `${cases[i][0].join(" ")}: ${r.err}`);
    assert.match(r.err, cases[i][1]);
  });
  assert.ok(!existsSync(join(tmp, "unused")));
});
