// Regression tests for issue 11's CLI defects, each named after its defect number: non-finite
// training (3), the lock on --out (7), empty inputs (10), stored normalization (11), overwrites (12),
// flag validation (13), tampered training state (15). Every command line runs through main() in ONE
// child process (one start-up), on a small MNIST folder made from the real files.
import { before, test } from "node:test";
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { availableParallelism } from "node:os";
import { cpSync, existsSync, mkdirSync, readFileSync, symlinkSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { readIdx, writeIdx } from "../src/node/idx.ts";
import { defaultMnistDir } from "../src/node/mnist.ts";
import { MNIST_FILES } from "../src/data/mnist.ts";
import type { ModelManifest } from "../src/node/model-io.ts";
import { tempDirForFile } from "./helpers.ts";

const tmp = tempDirForFile("handprop-reliability-cli-");
const data = join(tmp, "data");
const good = join(tmp, "good");

interface Run {
  code: number | null;
  out: string;
  err: string;
}

/** Run command lines through main() in one child process, in order; returns each one's exit code and output. */
async function runMany(argLists: string[][]): Promise<Run[]> {
  const mainUrl = new URL("../src/cli/main.ts", import.meta.url).href;
  const script = `
    const { main } = await import(${JSON.stringify(mainUrl)});
    const results = [];
    for (const args of JSON.parse(process.env.HANDPROP_TEST_ARGS)) {
      let out = "", err = "";
      const [o, e] = [process.stdout.write.bind(process.stdout), process.stderr.write.bind(process.stderr)];
      process.stdout.write = (s) => ((out += s), true);
      process.stderr.write = (s) => ((err += s), true);
      let code;
      try { code = await main(args); } finally { process.stdout.write = o; process.stderr.write = e; }
      results.push({ code, out, err });
    }
    process.stdout.write(JSON.stringify(results));`;
  const r = await new Promise<Run>((resolve, reject) => {
    const child = spawn(process.execPath, ["--import", "tsx", "--input-type=module", "-e", script], {
      env: { ...process.env, HANDPROP_TEST_ARGS: JSON.stringify(argLists) },
    });
    let out = "";
    let err = "";
    child.stdout.setEncoding("utf8").on("data", (s: string) => (out += s));
    child.stderr.setEncoding("utf8").on("data", (s: string) => (err += s));
    child.on("error", reject);
    child.on("close", (code) => {
      resolve({ code, out, err });
    });
  });
  assert.equal(r.code, 0, r.err);
  return JSON.parse(r.out) as Run[];
}

const TRAIN = [
  "train",
  "mnist",
  "--data",
  data,
  "--model",
  "mlp",
  "--limit",
  "64",
  "--val",
  "32",
  "--test-limit",
  "50",
  "--batch-size",
  "32",
  "--epochs",
  "1",
  "--threads",
  "1",
];

/** A copy of the good checkpoint with its model.json edited. */
function tampered(name: string, edit: (m: ModelManifest & { training: Record<string, unknown> }) => void): string {
  const dir = join(tmp, name);
  cpSync(good, dir, { recursive: true });
  const m = JSON.parse(readFileSync(join(dir, "model.json"), "utf8")) as ModelManifest & {
    training: Record<string, unknown>;
  };
  edit(m);
  writeFileSync(join(dir, "model.json"), JSON.stringify(m));
  return dir;
}

before(async () => {
  // 96 training images (64 train + 32 validation) and 50 test images of the real data.
  mkdirSync(data);
  const src = defaultMnistDir();
  for (const [file, n] of [
    [MNIST_FILES.trainImages, 96],
    [MNIST_FILES.trainLabels, 96],
    [MNIST_FILES.testImages, 50],
    [MNIST_FILES.testLabels, 50],
  ] as const) {
    const a = readIdx(join(src, file));
    writeIdx(join(data, file), [n, ...a.shape.slice(1)], a.data.slice(0, n * (a.data.length / a.shape[0])));
  }
  const [r] = await runMany([[...TRAIN, "--out", good]]);
  assert.equal(r.code, 0, r.err);
});

test("defects 3, 7, 10, 11, 12, 13, 15 through the CLI", async () => {
  const diverged = join(tmp, "diverged");
  const hugeLr = tampered("huge-lr", (m) => {
    m.optimizer!.lr = 1e39; // the optimizer's own rate (the schedule is "none")
    m.training.epochs = 2;
    m.training.schedule = "none";
  });
  const hugeLrWeights = readFileSync(join(hugeLr, "weights.bin"));
  const locked = join(tmp, "locked");
  mkdirSync(locked);
  writeFileSync(
    join(locked, ".handprop.lock"),
    JSON.stringify({
      pid: process.pid,
      host: (await import("node:os")).hostname(),
      startedAt: "2026-11-28T00:00:00.000Z",
      command: "handprop train",
    }),
  );
  const std0 = tampered("std0", (m) => {
    (m.training.dataset as { normalization: { std: number } }).normalization.std = 0;
  });
  const meanStr = tampered("mean-string", (m) => {
    (m.training.dataset as { normalization: { mean: unknown } }).normalization.mean = "0.1";
  });
  const batches = tampered("batches", (m) => {
    m.training.batchesDone = 99999;
    m.training.epochs = 2;
    m.training.partialEpoch = { lossSum: 1, correct: 0, seen: 99999 * 32, seconds: 1 };
  });
  const beyond = tampered("beyond", (m) => {
    m.training.epochsDone = 5;
  });
  const sizes = tampered("sizes", (m) => {
    (m.training.dataset as { trainImages: number }).trainImages = 999;
    m.training.epochs = 2;
  });
  const badKey = tampered("bad-key", (m) => {
    (m.training.shuffleState as { key: unknown[] }).key[3] = "x";
  });
  const link = join(tmp, "link-to-good");
  symlinkSync(good, link);
  const onnx = join(tmp, "exists.onnx");
  writeFileSync(onnx, "not a model");
  const other = tampered("other-model", () => {});
  const aFile = join(tmp, "a-file");
  writeFileSync(aFile, "x");
  const maxThreads = 4 * availableParallelism();

  const cases: [string, string[], number, RegExp][] = [
    [
      "3: a diverging run stops, nothing saved",
      [
        ...TRAIN.filter((a) => a !== "mlp").map((a) => (a === "--model" ? "--model=cnn-small" : a)),
        "--optimizer",
        "sgd",
        "--lr",
        "1e38",
        "--schedule",
        "none",
        "--out",
        diverged,
      ],
      1,
      /training stopped: .*(became -?Infinity|is NaN|is -?Infinity).* at epoch 1, batch 1.*; no checkpoint was written to .*diverged/,
    ],
    [
      "3: a diverging resume keeps the checkpoint it resumed from",
      ["train", "mnist", "--resume", hugeLr, "--threads", "1"],
      1,
      /training stopped: .*; the last good checkpoint in .*huge-lr \(the checkpoint this run resumed from\) is kept/,
    ],
    [
      "7: a folder locked by a live process",
      [...TRAIN, "--out", locked],
      1,
      new RegExp(
        `locked is in use by pid ${process.pid} on .*handprop train, started 2026-11-28T00:00:00\\.000Z: wait for it to finish`,
      ),
    ],
    [
      "10: eval --limit 0 names --limit",
      ["eval", "--model", good, "--data", data, "--limit", "0"],
      2,
      /^handprop eval: --limit must be at least 1, got 0\n$/,
    ],
    [
      "11: eval with std 0",
      ["eval", "--model", std0, "--data", data],
      1,
      /std0\/model\.json: training\.dataset\.normalization\.std must be a finite number > 0, got 0/,
    ],
    [
      "11: export with a string mean",
      ["export", "--format", "onnx", "--model", meanStr, "--out", join(tmp, "m.onnx")],
      1,
      /mean-string\/model\.json: training\.dataset\.normalization\.mean must be a finite number, got "0\.1"/,
    ],
    [
      "11: resume with std 0",
      ["train", "mnist", "--resume", std0],
      1,
      /std0\/model\.json: training\.dataset\.normalization\.std must be a finite number > 0, got 0/,
    ],
    [
      "12: export onto the model's own weights.bin",
      ["export", "--format", "onnx", "--model", good, "--out", join(good, "weights.bin")],
      2,
      /--out must be another folder than --model: .*weights\.bin is inside the model folder/,
    ],
    [
      "12: export through a symlink to the model folder",
      ["export", "--format", "tfjs", "--model", good, "--out", link],
      2,
      /--out must be another folder than --model: .*link-to-good is the model folder itself/,
    ],
    [
      "12: export over an existing file",
      ["export", "--format", "onnx", "--model", good, "--out", onnx],
      2,
      /exists\.onnx already exists; overwrite it with --force/,
    ],
    [
      "12: export over an existing file with --force",
      ["export", "--format", "onnx", "--model", good, "--out", onnx, "--force"],
      0,
      /^$/,
    ],
    [
      "12: resume into a folder holding another model",
      ["train", "mnist", "--resume", good, "--out", other],
      2,
      /--out .*other-model already holds another model; resuming .*good into it would replace it/,
    ],
    ["13: --out ''", [...TRAIN, "--out", ""], 2, /^handprop train: --out expects a path, got ''\n$/],
    ["13: --out an existing file", [...TRAIN, "--out", aFile], 2, /--out .*a-file is a file, not a folder/],
    [
      "13: --threads 512",
      [...TRAIN.slice(0, -2), "--threads", "512", "--out", join(tmp, "t")],
      2,
      new RegExp(`--threads 512 is more than ${maxThreads} \\(4 × the \\d+ core\\(s\\) here, and at most 1024\\)`),
    ],
    ["13: seed --lr -5", ["seed", "--lr", "-5"], 2, /^handprop seed: --lr must be > 0, got -5\n$/],
    [
      "13: gradcheck --configs 0",
      ["gradcheck", "--configs", "0"],
      2,
      /^handprop gradcheck: --configs must be at least 1, got 0\n$/,
    ],
    [
      "13: gradcheck --tolerance -1",
      ["gradcheck", "--tolerance", "-1"],
      2,
      /^handprop gradcheck: --tolerance must be > 0, got -1\n$/,
    ],
    [
      "13: export --model ''",
      ["export", "--format", "onnx", "--model", "", "--out", onnx],
      2,
      /--model expects a path, got ''/,
    ],
    [
      "15: batchesDone beyond the epoch",
      ["train", "mnist", "--resume", batches],
      1,
      /batches\/model\.json: "training\.batchesDone" is 99999, but an epoch of 64 images in batches of 32 has 2 batches/,
    ],
    [
      "15: epochsDone beyond epochs",
      ["train", "mnist", "--resume", beyond],
      1,
      /beyond\/model\.json: "training\.epochsDone" must be at most "epochs" \(1\), got 5/,
    ],
    [
      "15: another data size",
      ["train", "mnist", "--resume", sizes],
      1,
      /sizes\/model\.json: "training\.dataset\.trainImages" is 999, but the data in .* gives 64 training images/,
    ],
    [
      "14/15: a bad shuffle-state key",
      ["train", "mnist", "--resume", badKey],
      1,
      /bad-key\/model\.json: "training\.shuffleState\.key\[3\]" must be an integer in \[0, 2\^32\), got "x"/,
    ],
  ];
  const results = await runMany(cases.map(([, args]) => args));
  for (const [i, [what, , code, pattern]] of cases.entries()) {
    const r = results[i];
    assert.equal(r.code, code, `${what}: exit code (stderr: ${r.err})`);
    assert.match(r.err, pattern, what);
  }
  assert.ok(!existsSync(join(diverged, "model.json")), "3: no checkpoint of diverged weights");
  assert.ok(readFileSync(join(hugeLr, "weights.bin")).equals(hugeLrWeights), "3: the resumed checkpoint is untouched");
  assert.ok(!existsSync(join(hugeLr, ".handprop.lock")), "7: the lock is released on failure");
  assert.ok(
    readFileSync(join(good, "model.json"), "utf8").includes('"format": "handprop-model"'),
    "12: the model survived",
  );
  assert.ok(existsSync(join(other, "weights.bin")));
});
