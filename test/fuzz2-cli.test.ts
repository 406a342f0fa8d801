// `handprop train --resume` and `handprop eval` handed a checkpoint of another model (a valid model
// file whose architecture does not map MNIST's 1×28×28 images to 10 class scores): refused up front,
// naming the checkpoint's model.json, with every file of the checkpoint left as it was. They used to
// fail at the first batch in a loss or layer error that named no file.
import { before, test } from "node:test";
import assert from "node:assert/strict";
import { cpSync, writeFileSync, readdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { execFileSync } from "node:child_process";
import { loadModel, saveModel } from "../src/node/model-io.ts";
import { Sequential } from "../src/nn/sequential.ts";
import { Flatten } from "../src/nn/flatten.ts";
import { Dense } from "../src/nn/dense.ts";
import { Conv2D } from "../src/nn/conv.ts";
import { Adam } from "../src/nn/optim.ts";
import { Input, Model } from "../src/nn/graph.ts";
import { runMany, smallMlpTrainArgs, writeSmallMnist } from "./cli-run.ts";
import { tempDirForFile } from "./helpers.ts";

const tmp = tempDirForFile("handprop-fuzz2-cli-");
const data = join(tmp, "data");
const good = join(tmp, "good");

before(async () => {
  writeSmallMnist(data, 96, 50);
  const train = smallMlpTrainArgs(data);
  const [r] = await runMany([[...train, "--test-limit", "50", "--epochs", "1", "--threads", "1", "--out", good]]);
  assert.equal(r.code, 0, r.err);
});

/** Every file of a folder, by name. */
function contents(dir: string): Record<string, string> {
  return Object.fromEntries(readdirSync(dir).map((f) => [f, readFileSync(join(dir, f)).toString("base64")]));
}

test("a checkpoint of another model: --resume and eval refuse it naming its model.json, nothing written", async () => {
  const training = loadModel(good, { withOptimizer: true }).training!;
  const x = Input([1, 28, 28]);
  const graph = new Model({
    inputs: x,
    outputs: new Dense({ outFeatures: 7 }).apply(new Flatten().apply(x)),
    seed: 0,
  });
  const variants: [string, Sequential, RegExp][] = [
    [
      "five-classes",
      new Sequential([new Flatten(), new Dense({ inFeatures: 784, outFeatures: 5 })], {
        inputShape: [1, 28, 28],
        seed: 0,
      }),
      /five-classes\/model\.json: the model maps \(1, 28, 28\) images to \(5\), expected \(10\): one score per digit/,
    ],
    [
      "rgb-input",
      new Sequential([new Flatten(), new Dense({ inFeatures: 3 * 8 * 8, outFeatures: 10 })], {
        inputShape: [3, 8, 8],
        seed: 0,
      }),
      /rgb-input\/model\.json: the model takes samples of shape \(3, 8, 8\), but the images are \(1, 28, 28\): not an/,
    ],
    [
      "image-output",
      new Sequential([new Conv2D({ inChannels: 1, outChannels: 10, kernelSize: 28 })], {
        inputShape: [1, 28, 28],
        seed: 0,
      }),
      /image-output\/model\.json: the model maps \(1, 28, 28\) images to \(10, 1, 1\), expected \(10\)/,
    ],
    ["graph-seven", graph, /graph-seven\/model\.json: the model maps \(1, 28, 28\) images to \(7\), expected \(10\)/],
  ];
  const dirs = variants.map(([name, model]) => {
    const dir = join(tmp, name);
    saveModel(model, dir, { optimizer: new Adam({ lr: 0.001 }), training: { ...training, epochs: 2 } });
    return dir;
  });
  const before = dirs.map(contents);
  const runs = await runMany(
    dirs.flatMap((dir) => [
      ["train", "mnist", "--resume", dir, "--data", data, "--threads", "1"],
      ["eval", "--model", dir, "--data", data, "--limit", "50"],
    ]),
  );
  variants.forEach(([name, , message], i) => {
    for (const [k, command] of ["train --resume", "eval"].entries()) {
      const r = runs[2 * i + k];
      assert.equal(r.code, 1, `${name}, ${command}: ${r.err}`);
      assert.match(r.err, message, `${name}, ${command}`);
    }
    assert.deepEqual(contents(dirs[i]), before[i], `${name}: the checkpoint changed`);
  });
});

test("a checkpoint's stored metrics log must be a handprop log: never appended to another file", async () => {
  const notes = join(tmp, "notes.csv");
  writeFileSync(notes, "my,own,data\n1,2,3\n");
  const rc = join(tmp, "bashrc");
  writeFileSync(rc, "export PATH=$PATH\n");
  const fifo = join(tmp, "pipe.csv");
  execFileSync("mkfifo", [fifo]);
  const ours = join(tmp, "ours.csv");
  writeFileSync(ours, "epoch,loss,accuracy,valLoss,valAccuracy,lr,seconds\n0,1,0.5,1,0.5,0.002,1\n");
  const cases: [string, string, RegExp | null][] = [
    [
      "log-notes",
      notes,
      /"training\.log" names .*notes\.csv, which does not begin as a handprop metrics log: give --log FILE/,
    ],
    ["log-bashrc", rc, /"training\.log" names .*bashrc, which is not a \.csv or \.jsonl file/],
    ["log-fifo", fifo, /"training\.log" names .*pipe\.csv, which is not a regular file/],
    ["log-ours", ours, null],
  ];
  const dirs = cases.map(([name, log]) => {
    const dir = join(tmp, name);
    cpSync(good, dir, { recursive: true });
    const m = JSON.parse(readFileSync(join(dir, "model.json"), "utf8")) as { training: Record<string, unknown> };
    m.training.log = log;
    m.training.epochs = 2;
    writeFileSync(join(dir, "model.json"), JSON.stringify(m));
    return dir;
  });
  const before = [readFileSync(notes, "utf8"), readFileSync(rc, "utf8")];
  const runs = await runMany(dirs.map((dir) => ["train", "mnist", "--resume", dir, "--data", data, "--threads", "1"]));
  cases.forEach(([name, , message], i) => {
    if (message === null) assert.equal(runs[i].code, 0, `${name}: ${runs[i].err}`);
    else {
      assert.equal(runs[i].code, 1, `${name}: ${runs[i].err}`);
      assert.match(runs[i].err, message, name);
    }
  });
  assert.deepEqual([readFileSync(notes, "utf8"), readFileSync(rc, "utf8")], before);
  assert.equal(readFileSync(ours, "utf8").trim().split("\n").length, 3, "a handprop log is continued");
});

test("names from a model file reach the terminal escaped: eval, export, and a resumed run's error", async () => {
  // A model's and its nodes' names are any strings of the file: ESC sequences in them were printed raw
  // (eval's and export's summary lines, errors naming a node through main's catch).
  const esc = "\u001b[2J\u0007";
  const training = loadModel(good, { withOptimizer: true }).training!;
  const x = Input([1, 28, 28], { name: `in${esc}` });
  const logits = new Dense({ outFeatures: 10 }).apply(new Flatten().apply(x, `flat${esc}`), `dense${esc}`);
  const model = new Model({ inputs: x, outputs: logits, seed: 0, name: `evil${esc}` });
  const dir = join(tmp, "escapes");
  saveModel(model, dir, { optimizer: new Adam({ lr: 0.001 }), training: { ...training, epochs: 2, schedule: "none" } });
  const m = JSON.parse(readFileSync(join(dir, "model.json"), "utf8")) as { optimizer: { lr: number } };
  m.optimizer.lr = 1e39; // diverges at once: the error names the node
  writeFileSync(join(dir, "model.json"), JSON.stringify(m));
  const [evalRun, exportRun, resumeRun] = await runMany([
    ["eval", "--model", dir, "--data", data, "--limit", "50"],
    ["export", "--format", "onnx", "--model", dir, "--out", join(tmp, "escapes.onnx")],
    ["train", "mnist", "--resume", dir, "--data", data, "--threads", "1"],
  ]);
  assert.equal(evalRun.code, 0, evalRun.err);
  assert.match(evalRun.out, /\(evil\\e\[2J\\x07\): test accuracy/);
  assert.equal(exportRun.code, 0, exportRun.err);
  assert.match(exportRun.out, /exported evil\\e\[2J\\x07 to/);
  assert.equal(resumeRun.code, 1, resumeRun.err);
  assert.match(resumeRun.err, /dense\\e\[2J\\x07/);
  for (const r of [evalRun, exportRun, resumeRun]) {
    // eslint-disable-next-line no-control-regex
    assert.ok(!/[\u001b\u0007]/.test(r.out + r.err), `raw control characters in ${JSON.stringify(r.out + r.err)}`);
  }
});
