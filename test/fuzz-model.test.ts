// Fuzzing the model format (model.json + weights.bin + optimizer.bin, serializeModel's output mutated
// byte by byte and field by field): every input ends in a valid load or a ModelFormatError naming the
// file, within a time and memory bound (test/fuzz-mutate.ts). A valid load must hold finite weights
// and serialize back. Also through the files (loadModel), for the size checks done before reading.
import { test } from "node:test";
import assert from "node:assert/strict";
import fc from "fast-check";
import { mkdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { NDArray } from "../src/nd/ndarray.ts";
import { SoftmaxCrossEntropy } from "../src/nn/losses.ts";
import { Adam } from "../src/nn/optim.ts";
import { Sequential } from "../src/nn/sequential.ts";
import { Conv2D } from "../src/nn/conv.ts";
import { BatchNorm2D } from "../src/nn/batchnorm.ts";
import { ReLU } from "../src/nn/activations.ts";
import { MaxPool2D } from "../src/nn/pool.ts";
import { Flatten } from "../src/nn/flatten.ts";
import { Dropout } from "../src/nn/dropout.ts";
import { Dense } from "../src/nn/dense.ts";
import {
  ModelFormatError,
  deserializeModel,
  loadModel,
  serializeModel,
  type LoadedModel,
} from "../src/node/model-io.ts";
import {
  FUZZ_MS,
  applyByteEdits,
  applyJsonEdits,
  assertTypedError,
  byteEdit,
  fuzz,
  jsonEdit,
  outcome,
} from "./fuzz-mutate.ts";
import { tempDirForFile } from "./helpers.ts";

const tmp = tempDirForFile("handprop-fuzz-model-");

// Every kind of state: conv, batch-norm running statistics, a Dropout generator, Adam's moments.
const model = new Sequential(
  [
    new Conv2D({ inChannels: 1, outChannels: 2, kernelSize: 3, padding: "same" }),
    new BatchNorm2D({ numFeatures: 2 }),
    new ReLU(),
    new MaxPool2D({ kernelSize: 2 }),
    new Flatten(),
    new Dropout({ rate: 0.3 }),
    new Dense({ inFeatures: 2 * 4 * 4, outFeatures: 3 }),
  ],
  { inputShape: [1, 8, 8], seed: 1, name: "fuzzed" },
);
const optimizer = new Adam({ lr: 0.01 });
model.trainBatch(
  new NDArray(
    Float32Array.from({ length: 2 * 64 }, (_, i) => Math.sin(i)),
    [2, 1, 8, 8],
  ),
  new Int32Array([0, 2]),
  new SoftmaxCrossEntropy(),
  optimizer,
);
const base = serializeModel(model, { optimizer, training: { epochsDone: 1 } });
const baseJson = JSON.parse(base.json) as unknown;
const names = { manifest: "fz/model.json", weights: "fz/weights.bin", optimizer: "fz/optimizer.bin" };

/** A load that succeeded must be usable: finite parameters, and it saves again. */
function checkLoaded(loaded: LoadedModel): void {
  for (const p of loaded.model.params())
    assert.ok(p.value.data.every(Number.isFinite), `${p.name}: non-finite value accepted`);
  serializeModel(loaded.model, loaded.optimizer ? { optimizer: loaded.optimizer } : {});
}

function checkParse(json: string | Uint8Array, weights: Uint8Array, opt: Uint8Array): void {
  const r = outcome(() => deserializeModel(json, weights, opt, names));
  if (r.ok) checkLoaded(r.value);
  else assertTypedError(r.error, ModelFormatError, /fz\/(model|weights|optimizer)\.(json|bin)/);
}

test("fuzz: model.json edited field by field (hostile values, deletions)", async (t) => {
  const runs = await fuzz(fc.array(jsonEdit, { minLength: 1, maxLength: 4 }), (edits) => {
    checkParse(JSON.stringify(applyJsonEdits(baseJson, edits)), base.weights, base.optimizer!);
  });
  t.diagnostic(`${runs} inputs`);
});

test("fuzz: model.json, weights.bin and optimizer.bin edited byte by byte", async (t) => {
  const json = new TextEncoder().encode(base.json);
  const edits = fc.array(byteEdit, { maxLength: 4 });
  const runs = await fuzz(fc.tuple(edits, edits, edits), ([j, w, o]) => {
    checkParse(applyByteEdits(json, j), applyByteEdits(base.weights, w), applyByteEdits(base.optimizer!, o));
  });
  t.diagnostic(`${runs} inputs`);
});

test("fuzz: model folders on disk (loadModel), edited files", async (t) => {
  let n = 0;
  const edits = fc.array(byteEdit, { maxLength: 3 });
  const runs = await fuzz(fc.tuple(fc.array(jsonEdit, { maxLength: 2 }), edits, edits), ([je, w, o]) => {
    const dir = join(tmp, `m${n++ % 4}`);
    mkdirSync(dir, { recursive: true });
    writeFileSync(join(dir, "model.json"), JSON.stringify(applyJsonEdits(baseJson, je)));
    writeFileSync(join(dir, "weights.bin"), applyByteEdits(base.weights, w));
    writeFileSync(join(dir, "optimizer.bin"), applyByteEdits(base.optimizer!, o));
    const r = outcome(() => loadModel(dir, { withOptimizer: true }));
    if (r.ok) checkLoaded(r.value);
    else assertTypedError(r.error, ModelFormatError, dir);
  });
  t.diagnostic(`${runs} inputs`);
  assert.ok(FUZZ_MS > 0);
});
