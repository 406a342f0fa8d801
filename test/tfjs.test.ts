// The TF.js Layers format, verified against the real runtime: @tensorflow/tfjs-layers on the cpu
// backend loads what handprop exports and predicts the same numbers; models built and saved by TF.js
// load into handprop with the same predictions; bad files fail with errors naming the layer or field.
import { test } from "node:test";
import assert from "node:assert/strict";
import { mkdirSync, mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import * as tf from "@tensorflow/tfjs-core";
import * as tfl from "@tensorflow/tfjs-layers";
import { Sequential } from "../src/nn/sequential.ts";
import { buildModel } from "../src/nn/models.ts";
import { Conv2D } from "../src/nn/conv.ts";
import { Dense } from "../src/nn/dense.ts";
import { Flatten } from "../src/nn/flatten.ts";
import { AvgPool2D, GlobalAvgPool2D, MaxPool2D } from "../src/nn/pool.ts";
import { BatchNorm1D, BatchNorm2D } from "../src/nn/batchnorm.ts";
import { Dropout } from "../src/nn/dropout.ts";
import { LeakyReLU, ReLU, Sigmoid, Softmax, Tanh } from "../src/nn/activations.ts";
import { saveModel } from "../src/node/model-io.ts";
import { DepthwiseConv2D, SeparableConv2D } from "../src/nn/depthwise.ts";
import { Add, Concatenate, Multiply } from "../src/nn/merge.ts";
import { Conv2DTranspose } from "../src/nn/transpose.ts";
import { LayerNorm } from "../src/nn/norm.ts";
import { ELU, GELU, SiLU } from "../src/nn/activations.ts";
import { UpSampling2D, ZeroPadding2D } from "../src/nn/upsample.ts";
import { GlobalMaxPool2D } from "../src/nn/reshape.ts";
import { Input, Model } from "../src/nn/graph.ts";
import { spawnSync } from "node:child_process";
import { fromTfjsArtifacts, toTfjsArtifacts, type TfjsModelJson } from "../src/io/tfjs.ts";
import { loadTfjsModel, saveTfjsModel } from "../src/node/tfjs.ts";
import { randomInput, randomizeParams as randomize } from "./helpers.ts";
import { expectSameInTf, maxAbsDiff, randomizeTf, tfLoad, tfPredict, tfSave } from "./tfjs-helpers.ts";

const tmp = mkdtempSync(join(tmpdir(), "handprop-tfjs-"));
process.on("exit", () => {
  rmSync(tmp, { recursive: true, force: true });
});
let dirCount = 0;
const freshDir = () => join(tmp, `m${dirCount++}`);

/** A model touching every mapping: explicit paddings (ZeroPadding2D and → "same"), strides, dilation, BN, pools, activations. */
function variantModel(seed: number): Sequential {
  return randomize(
    new Sequential(
      [
        new Conv2D({ inChannels: 2, outChannels: 4, kernelSize: 5, padding: 1 }), // 12 → 10, exported as ZeroPadding2D + valid
        new BatchNorm2D({ numFeatures: 4, eps: 1e-3, momentum: 0.05 }),
        new Tanh(),
        new AvgPool2D({ kernelSize: 3, stride: 2, padding: 1 }), // countIncludePad: ZeroPadding2D + valid, 10 → 5
        new Conv2D({ inChannels: 4, outChannels: 6, kernelSize: 3, padding: 1, bias: false }), // = TF "same"
        new AvgPool2D({ kernelSize: 3, stride: 1, padding: 1, countIncludePad: false }), // = TF "same" (padding not counted)
        new Sigmoid(),
        new Conv2D({ inChannels: 6, outChannels: 6, kernelSize: 4, stride: 2, padding: "same" }), // 5 → 3, padding 1 top, 2 bottom
        new LeakyReLU({ alpha: 0.1 }),
        new Conv2D({ inChannels: 6, outChannels: 8, kernelSize: 3, dilation: 2, padding: "same" }),
        new Softmax({ axis: 1 }), // over channels: Activation softmax
        new MaxPool2D({ kernelSize: 3, stride: 2, padding: 1 }), // = TF "same", 3 → 2
        new Flatten(),
        new BatchNorm1D({ numFeatures: 32 }), // per-feature parameters permuted like the Dense rows
        new Dropout({ rate: 0.3 }),
        new Dense({ inFeatures: 32, outFeatures: 10 }),
        new ReLU(),
        new Dense({ inFeatures: 10, outFeatures: 5, bias: false }),
        new Softmax(),
      ],
      { inputShape: [2, 12, 12], seed, name: "variant" },
    ),
    seed + 1,
  );
}

test("LeNet-5 exported to files loads in TF.js and predicts the same (≤ 1e-5)", async (t) => {
  const model = randomize(buildModel("lenet5", { seed: 7 }), 8);
  const dir = freshDir();
  saveTfjsModel(model, dir);
  assert.deepEqual(readdirSync(dir).sort(), ["model.json", "weights.bin"], "no temp files left behind");

  const json = JSON.parse(readFileSync(join(dir, "model.json"), "utf8")) as TfjsModelJson;
  assert.equal(json.format, "layers-model");
  assert.match(json.generatedBy, /^handprop /);
  assert.equal(json.modelTopology.class_name, "Sequential");
  const first = json.modelTopology.config.layers[0];
  assert.equal(first.class_name, "Conv2D");
  assert.deepEqual(first.config.batch_input_shape, [null, 28, 28, 1]);
  assert.equal(first.config.dtype, "float32");
  assert.deepEqual(first.config.kernel_size, [5, 5]);
  assert.equal(first.config.padding, "same");
  assert.deepEqual(json.weightsManifest[0].paths, ["weights.bin"]);
  assert.deepEqual(json.weightsManifest[0].weights[0], {
    name: "conv2d_0/kernel",
    shape: [5, 5, 1, 6],
    dtype: "float32",
  });
  const weights = readFileSync(join(dir, "weights.bin"));
  assert.equal(weights.length, 4 * 61706);

  const tfModel = await tfLoad(json, weights.buffer.slice(weights.byteOffset, weights.byteOffset + weights.length));
  const x = randomInput([3, 1, 28, 28], 1);
  const d = maxAbsDiff(tfPredict(tfModel, x), model.predict(x).data);
  t.diagnostic(`max |TF.js − handprop| = ${d.toExponential(2)}`);
  assert.ok(d <= 1e-5, `max |TF.js − handprop| = ${d}`);
  tfModel.dispose();
});

test("a variant with BatchNorm, Dropout, AvgPool, Tanh/Sigmoid/LeakyReLU/Softmax, explicit padding, strides, dilation predicts the same in TF.js", async (t) => {
  const model = variantModel(3);
  const { modelJson, weightData } = toTfjsArtifacts(model);
  const classes = modelJson.modelTopology.config.layers.map((l) => l.class_name);
  assert.deepEqual(classes.slice(0, 5), [
    "ZeroPadding2D",
    "Conv2D",
    "BatchNormalization",
    "Activation",
    "ZeroPadding2D",
  ]);
  assert.ok(classes.includes("LeakyReLU") && classes.includes("Dropout"));
  const convs = modelJson.modelTopology.config.layers
    .filter((l) => l.class_name === "Conv2D")
    .map((l) => l.config.padding);
  assert.deepEqual(convs, ["valid", "same", "same", "same"]);
  const bn = modelJson.modelTopology.config.layers.find((l) => l.class_name === "BatchNormalization")!;
  assert.equal(bn.config.momentum, 0.95);
  assert.equal(bn.config.epsilon, 1e-3);

  const x = randomInput([4, 2, 12, 12], 2);
  await expectSameInTf(t, { modelJson, weightData }, model, x);
});

test("handprop → TF.js → handprop gives identical predictions and the same layers", () => {
  for (const model of [
    variantModel(11),
    randomize(buildModel("lenet5", { seed: 1 }), 2),
    randomize(buildModel("mlp", { seed: 1 }), 2),
  ]) {
    const dir = freshDir();
    saveTfjsModel(model, dir);
    const back = loadTfjsModel(dir);
    assert.deepEqual(back.inputShape, model.inputShape);
    assert.deepEqual(
      back.layers.map((l) => l.type),
      model.layers.map((l) => l.type),
    );
    const x = randomInput([3, ...model.inputShape!], 5);
    assert.deepEqual(back.predict(x).data, model.predict(x).data, `${model.name}: predictions differ`);
  }
});

test("DepthwiseConv2D exports as TF.js DepthwiseConv2D: same predictions in TF.js, and back into handprop exactly", async (t) => {
  const model = randomize(
    new Sequential(
      [
        new DepthwiseConv2D({ kernelSize: 3, depthMultiplier: 2, padding: "same" }), // 3 → 6 channels
        new ReLU(),
        new DepthwiseConv2D({ kernelSize: [3, 2], stride: 2, bias: false }),
        new DepthwiseConv2D({ kernelSize: 2, padding: [2, 1] }), // not TF "same": ZeroPadding2D + valid
        new Flatten(),
        new Dense({ outFeatures: 4 }),
      ],
      { inputShape: [3, 10, 9], seed: 4, name: "depthwise" },
    ),
    5,
  );
  const { modelJson, weightData } = toTfjsArtifacts(model);
  const classes = modelJson.modelTopology.config.layers.map((l) => l.class_name);
  assert.deepEqual(classes, [
    "DepthwiseConv2D",
    "Activation",
    "DepthwiseConv2D",
    "ZeroPadding2D",
    "DepthwiseConv2D",
    "Flatten",
    "Dense",
  ]);
  assert.deepEqual(modelJson.weightsManifest[0].weights[0], {
    name: "depthwise_conv2d_0/depthwise_kernel",
    shape: [3, 3, 3, 2],
    dtype: "float32",
  });
  const x = randomInput([2, 3, 10, 9], 6);
  await expectSameInTf(t, { modelJson, weightData }, model, x);
  // the importer reads the first two back (a ZeroPadding2D folds only into Conv2D and pooling)
  const head = randomize(
    new Sequential(
      model.layers.slice(0, 3).map((l) => l),
      { inputShape: [3, 10, 9], name: "head" },
    ),
    7,
  );
  const art = toTfjsArtifacts(head);
  const back = fromTfjsArtifacts(art.modelJson, art.weightData);
  assert.deepEqual(
    back.layers.map((l) => l.type),
    ["DepthwiseConv2D", "ReLU", "DepthwiseConv2D"],
  );
  assert.deepEqual(back.predict(x).data, head.predict(x).data);
});

test("SeparableConv2D, GELU, SiLU, ELU, ZeroPadding2D, nearest UpSampling2D and GlobalMaxPool2D predict the same in TF.js", async (t) => {
  const model = randomize(
    new Sequential(
      [
        new Conv2D({ outChannels: 4, kernelSize: 3 }),
        new GELU(),
        new ZeroPadding2D({
          padding: [
            [1, 0],
            [2, 1],
          ],
        }),
        new UpSampling2D({ size: [2, 3] }),
        new Conv2D({ outChannels: 3, kernelSize: 3, stride: 2 }),
        new SeparableConv2D({ outChannels: 5, kernelSize: [3, 2], depthMultiplier: 2, padding: "same" }),
        new SeparableConv2D({ outChannels: 3, kernelSize: 2, dilation: 2, bias: false }),
        new SiLU(),
        new ELU(),
        new GlobalMaxPool2D(),
        new Dense({ outFeatures: 3 }),
      ],
      { inputShape: [2, 7, 6], seed: 8, name: "activations" },
    ),
    9,
  );
  const { modelJson, weightData } = toTfjsArtifacts(model);
  const classes = modelJson.modelTopology.config.layers.map((l) => l.class_name);
  assert.deepEqual(classes, [
    "Conv2D",
    "Activation",
    "ZeroPadding2D",
    "UpSampling2D",
    "Conv2D",
    "SeparableConv2D",
    "SeparableConv2D",
    "Activation",
    "Activation",
    "GlobalMaxPooling2D",
    "Dense",
  ]);
  const x = randomInput([3, 2, 7, 6], 10);
  await expectSameInTf(t, { modelJson, weightData }, model, x);
  const bilinear = new Sequential([new UpSampling2D({ interpolation: "bilinear" })], { inputShape: [1, 3, 3] });
  assert.throws(
    () => toTfjsArtifacts(bilinear),
    /layer 0 \(UpSampling2D\): bilinear upsampling: TF\.js Layers' UpSampling2D samples without half-pixel/,
  );
  assert.throws(
    () => toTfjsArtifacts(new Sequential([new ELU({ alpha: 0.6 })], { inputShape: [3] })),
    /layer 0 \(ELU\): alpha 0\.6: TF\.js Layers' ELU supports alpha 1 only/,
  );
  const tanhGelu = new Sequential([new GELU({ approximate: "tanh" })], { inputShape: [3] });
  assert.throws(
    () => toTfjsArtifacts(tanhGelu),
    /layer 0 \(GELU\): GELU's tanh form \("gelu_new"\) does not load in TF\.js Layers 4\.22/,
  );
});

test("a graph Model (residual Add, channel Concatenate, Multiply gate) exports as a functional TF.js model that predicts the same", async (t) => {
  const x = Input([3, 8, 8]);
  const a = new ReLU().apply(
    new BatchNorm2D({}).apply(
      new Conv2D({ outChannels: 3, kernelSize: 3, padding: "same" }).apply(x, "conv_a"),
      "bn_a",
    ),
    "relu_a",
  );
  const res = new Add().apply([x, a], "add");
  const gate = new Sigmoid().apply(new Conv2D({ outChannels: 3, kernelSize: 1 }).apply(res, "conv_g"), "sig");
  const gated = new Multiply().apply([res, gate], "gated");
  const cat = new Concatenate({ axis: 1 }).apply(
    [
      res,
      gated,
      new Conv2D({ outChannels: 2, kernelSize: 3 }).apply(new ZeroPadding2D({ padding: 1 }).apply(x, "zp"), "conv_s"),
    ],
    "cat",
  );
  const flat = new Flatten().apply(new MaxPool2D({ kernelSize: 2 }).apply(cat, "pool"), "flat");
  const out = new Softmax().apply(new Dense({ outFeatures: 5 }).apply(flat, "logits"), "probs");
  const model = randomize(new Model({ inputs: x, outputs: out, seed: 3, name: "graph" }), 4);
  const { modelJson, weightData } = toTfjsArtifacts(model);
  assert.equal(modelJson.modelTopology.class_name, "Model");
  const concat = modelJson.modelTopology.config.layers.find((l) => l.class_name === "Concatenate")!;
  const reads = (concat.inbound_nodes as [string, number, number, object][][])[0].map((n) => n[0]);
  assert.deepEqual(
    reads.map((r) => r.replace(/_\d+$/, "")),
    ["add", "multiply", "conv2d"],
  );
  assert.equal(concat.config.axis, 3, "channels: NCHW axis 1 is NHWC axis 3");
  const tfModel = await tfLoad(modelJson, weightData);
  const input = randomInput([3, 3, 8, 8], 5);
  const d = maxAbsDiff(tfPredict(tfModel, input), model.predict(input).data);
  t.diagnostic(`max |TF.js − handprop| = ${d.toExponential(2)}`);
  assert.ok(d <= 1e-5, `max |TF.js − handprop| = ${d}`);
  tfModel.dispose();
});

test("a model built and saved by TF.js loads into handprop with the same predictions (≤ 1e-5)", async (t) => {
  const m = tfl.sequential({ name: "from_tfjs" });
  m.add(tfl.layers.conv2d({ inputShape: [10, 10, 2], filters: 4, kernelSize: 3, padding: "same", activation: "relu" }));
  m.add(tfl.layers.batchNormalization({ epsilon: 1e-3, momentum: 0.9 }));
  m.add(tfl.layers.maxPooling2d({ poolSize: 2 }));
  m.add(tfl.layers.zeroPadding2d({ padding: 1 }));
  m.add(tfl.layers.conv2d({ filters: 5, kernelSize: 3, strides: 2, activation: "tanh", useBias: false }));
  m.add(tfl.layers.leakyReLU({ alpha: 0.2 }));
  m.add(tfl.layers.averagePooling2d({ poolSize: 2, strides: 1, padding: "valid" }));
  m.add(tfl.layers.flatten());
  m.add(tfl.layers.dense({ units: 16, activation: "sigmoid" }));
  m.add(tfl.layers.dropout({ rate: 0.25 }));
  m.add(tfl.layers.batchNormalization({}));
  m.add(tfl.layers.dense({ units: 4, activation: "softmax" }));
  randomizeTf(m, 21);
  const artifacts = await tfSave(m);
  const weightData = artifacts.weightData as ArrayBuffer;

  // From memory (TF.js ModelArtifacts: weightSpecs) …
  const model = fromTfjsArtifacts(artifacts, weightData);
  assert.deepEqual(model.inputShape, [2, 10, 10]);
  assert.deepEqual(
    model.layers.map((l) => l.type),
    [
      "Conv2D",
      "ReLU",
      "BatchNorm2D",
      "MaxPool2D",
      "Conv2D",
      "Tanh",
      "LeakyReLU",
      "AvgPool2D",
      "Flatten",
      "Dense",
      "Sigmoid",
      "Dropout",
      "BatchNorm1D",
      "Dense",
      "Softmax",
    ],
  );
  const folded = model.layers[4];
  assert.ok(folded instanceof Conv2D);
  assert.deepEqual(folded.padding, [1, 1]); // the ZeroPadding2D, folded
  const x = randomInput([3, 2, 10, 10], 4);
  const expected = tfPredict(m, x);
  const d = maxAbsDiff(model.predict(x).data, expected);
  t.diagnostic(`max |handprop − TF.js| = ${d.toExponential(2)}`);
  assert.ok(d <= 1e-5, `max |handprop − TF.js| = ${d}`);

  // … and from files in TF.js's on-disk layout (model.json with a weightsManifest, weights in a .bin).
  const dir = freshDir();
  saveArtifactsAsFiles(artifacts, dir);
  const fromFiles = loadTfjsModel(dir);
  assert.deepEqual(fromFiles.predict(x).data, model.predict(x).data);
  m.dispose();
});

test("a functional model built by TF.js (residual add, concatenate, multiply) loads into handprop as a graph Model", async (t) => {
  const input = tfl.input({ shape: [8, 8, 3], name: "img" });
  const conv = tfl.layers
    .conv2d({ filters: 3, kernelSize: 3, padding: "same", activation: "relu", name: "conv_a" })
    .apply(input) as tfl.SymbolicTensor;
  const res = tfl.layers.add({ name: "res" }).apply([input, conv]) as tfl.SymbolicTensor;
  const gate = tfl.layers
    .conv2d({ filters: 3, kernelSize: 1, activation: "sigmoid", name: "gate" })
    .apply(res) as tfl.SymbolicTensor;
  const gated = tfl.layers.multiply({ name: "gated" }).apply([res, gate]) as tfl.SymbolicTensor;
  const side = tfl.layers
    .conv2d({ filters: 2, kernelSize: 3, name: "side" })
    .apply(tfl.layers.zeroPadding2d({ padding: 1, name: "zp" }).apply(input)) as tfl.SymbolicTensor;
  const cat = tfl.layers.concatenate({ axis: -1, name: "cat" }).apply([gated, side, res]) as tfl.SymbolicTensor;
  const pooled = tfl.layers
    .batchNormalization({ name: "bn" })
    .apply(tfl.layers.maxPooling2d({ poolSize: 2, name: "pool" }).apply(cat)) as tfl.SymbolicTensor;
  const out = tfl.layers
    .dense({ units: 4, activation: "softmax", name: "probs" })
    .apply(tfl.layers.flatten({ name: "flat" }).apply(pooled)) as tfl.SymbolicTensor;
  const m = tfl.model({ inputs: input, outputs: out, name: "functional" });
  randomizeTf(m, 31);
  const artifacts = await tfSave(m);
  const model = fromTfjsArtifacts(artifacts, artifacts.weightData as ArrayBuffer);
  assert.ok(model instanceof Model);
  assert.deepEqual(model.inputShape, [3, 8, 8]);
  assert.deepEqual(
    model.nodes.map((n) => n.name),
    [
      "conv_a_0",
      "conv_a",
      "res",
      "gate_0",
      "gate",
      "gated",
      "zp",
      "side",
      "cat",
      "pool",
      "bn",
      "flat",
      "probs_0",
      "probs",
    ],
  );
  const x = randomInput([3, 3, 8, 8], 9);
  const d = maxAbsDiff(model.predict(x).data, tfPredict(m, x));
  t.diagnostic(`max |handprop − TF.js| = ${d.toExponential(2)}`);
  assert.ok(d <= 1e-5, `max |handprop − TF.js| = ${d}`);
  // and back: handprop's functional export of it predicts the same in TF.js
  const again = toTfjsArtifacts(model);
  const tfAgain = await tfLoad(again.modelJson, again.weightData);
  assert.ok(maxAbsDiff(tfPredict(tfAgain, x), model.predict(x).data) <= 1e-5);
  assert.deepEqual(
    fromTfjsArtifacts(again.modelJson, again.weightData).predict(x).data,
    model.predict(x).data,
    "handprop → TF.js → handprop",
  );
  tfAgain.dispose();
  m.dispose();
});

test("the zoo's resnet-mini (functional) and mobilenet-mini (depthwise-separable) predict the same in TF.js", async (t) => {
  for (const name of ["resnet-mini", "mobilenet-mini"] as const) {
    const model = randomize(buildModel(name, { seed: 2 }), 3);
    const { modelJson, weightData } = toTfjsArtifacts(model);
    const tfModel = await tfLoad(modelJson, weightData);
    const x = randomInput([2, 1, 28, 28], 4);
    const d = maxAbsDiff(tfPredict(tfModel, x), model.predict(x).data);
    t.diagnostic(`${name}: max |TF.js − handprop| = ${d.toExponential(2)}`);
    assert.ok(d <= 1e-5, `${name}: max |TF.js − handprop| = ${d}`);
    tfModel.dispose();
  }
});

test("Conv2DTranspose (valid and same) and LayerNorm (over C·H·W, over W, over flattened features) predict the same in TF.js", async (t) => {
  const model = randomize(
    new Sequential(
      [
        new Conv2DTranspose({ outChannels: 3, kernelSize: 3, stride: 2 }), // "valid": 5 → 11
        new LayerNorm({ axes: 3 }),
        new Conv2DTranspose({ outChannels: 2, kernelSize: [4, 3], stride: [2, 1], padding: [1, 1] }), // "same"
        new LayerNorm({ axes: 1 }),
        new Flatten(),
        new LayerNorm({}),
        new Dense({ outFeatures: 3 }),
      ],
      { inputShape: [2, 5, 4], seed: 5, name: "transpose_norm" },
    ),
    6,
  );
  const { modelJson, weightData } = toTfjsArtifacts(model);
  const x = randomInput([2, 2, 5, 4], 7);
  await expectSameInTf(t, { modelJson, weightData }, model, x);
  const cropped = new Sequential(
    [new Conv2DTranspose({ outChannels: 1, kernelSize: 3, stride: 2, outputPadding: 1 })],
    { inputShape: [1, 3, 3] },
  );
  assert.throws(
    () => toTfjsArtifacts(cropped),
    /layer 0 \(Conv2DTranspose\): TF\.js Layers' Conv2DTranspose has no dilation or output padding/,
  );
});

function saveArtifactsAsFiles(a: tf.io.ModelArtifacts, dir: string, weightsName = "group1-shard1of1.bin"): void {
  const json = {
    modelTopology: a.modelTopology,
    format: a.format,
    generatedBy: a.generatedBy,
    convertedBy: a.convertedBy,
    weightsManifest: [{ paths: [weightsName], weights: a.weightSpecs }],
  };
  writeJsonAndWeights(dir, json, new Uint8Array(a.weightData as ArrayBuffer), weightsName);
}

function writeJsonAndWeights(dir: string, json: unknown, weights: Uint8Array, weightsName = "weights.bin"): void {
  mkdirSync(dir, { recursive: true });
  writeFileSync(join(dir, "model.json"), typeof json === "string" ? json : JSON.stringify(json));
  writeFileSync(join(dir, weightsName), weights);
}

test('TF.js "same" pooling imports as handprop padding when the windows are symmetric', async () => {
  const m = tfl.sequential();
  m.add(tfl.layers.maxPooling2d({ inputShape: [5, 5, 3], poolSize: 3, strides: 1, padding: "same" }));
  m.add(tfl.layers.averagePooling2d({ poolSize: 3, strides: 2, padding: "same" })); // 5 → 3, 1 cell each side
  m.add(tfl.layers.softmax({ axis: -1 }));
  m.add(tfl.layers.globalAveragePooling2d({}));
  const artifacts = await tfSave(m);
  const model = fromTfjsArtifacts(artifacts, artifacts.weightData as ArrayBuffer);
  const [avg, softmax] = [model.layers[1], model.layers[2]];
  assert.ok(avg instanceof AvgPool2D && softmax instanceof Softmax);
  assert.equal(avg.countIncludePad, false);
  assert.equal(softmax.axis, 1);
  assert.ok(model.layers[3] instanceof GlobalAvgPool2D);
  const x = randomInput([2, 3, 5, 5], 9);
  const d = maxAbsDiff(model.predict(x).data, tfPredict(m, x));
  assert.ok(d <= 1e-6, `max diff ${d}`);
  m.dispose();
});

test("weights sharded over several files (as the TF.js converter writes them) load in manifest order", () => {
  const model = randomize(buildModel("cnn-small", { seed: 4 }), 5);
  const { modelJson, weightData } = toTfjsArtifacts(model);
  const bytes = new Uint8Array(weightData);
  const cut = 4 * 1000; // shards split anywhere, even inside a weight
  const dir = freshDir();
  mkdirSync(dir, { recursive: true });
  writeFileSync(join(dir, "group1-shard1of2.bin"), bytes.subarray(0, cut));
  writeFileSync(join(dir, "group1-shard2of2.bin"), bytes.subarray(cut));
  modelJson.weightsManifest[0].paths = ["group1-shard1of2.bin", "group1-shard2of2.bin"];
  writeFileSync(join(dir, "model.json"), JSON.stringify(modelJson));
  const back = loadTfjsModel(join(dir, "model.json"));
  const x = randomInput([2, 1, 28, 28], 3);
  assert.deepEqual(back.predict(x).data, model.predict(x).data);
});

test("handprop export --format tfjs: a saved model folder to a TF.js folder that TF.js runs", async () => {
  const model = randomize(buildModel("lenet5", { seed: 12 }), 13);
  const dir = freshDir();
  saveModel(model, dir);
  const out = freshDir();
  const bin = new URL("../bin/handprop.mjs", import.meta.url).pathname;
  const r = spawnSync(process.execPath, [bin, "export", "--format", "tfjs", "--model", dir, "--out", out], {
    encoding: "utf8",
  });
  assert.equal(r.status, 0, r.stderr);
  assert.match(
    r.stdout,
    /exported lenet5 to .*model\.json \+ weights\.bin \(246824 bytes; TF\.js Layers format, NHWC input\)/,
  );
  const back = loadTfjsModel(out);
  const x = randomInput([2, 1, 28, 28], 14);
  assert.deepEqual(back.predict(x).data, model.predict(x).data);
  const weights = readFileSync(join(out, "weights.bin"));
  const tfModel = await tfLoad(
    JSON.parse(readFileSync(join(out, "model.json"), "utf8")),
    weights.buffer.slice(weights.byteOffset, weights.byteOffset + weights.length),
  );
  assert.ok(maxAbsDiff(tfPredict(tfModel, x), model.predict(x).data) <= 1e-5);
  tfModel.dispose();
});

// ---------------------------------------------------------------------------------------------------
// Bad input: each error names the layer or the field.

/** A small exported model to corrupt: Conv2D → ReLU → Flatten → Dense. */
function smallArtifacts(): { json: TfjsModelJson; weights: Uint8Array } {
  const model = new Sequential(
    [
      new Conv2D({ inChannels: 1, outChannels: 2, kernelSize: 3 }),
      new ReLU(),
      new Flatten(),
      new Dense({ inFeatures: 2 * 4 * 4, outFeatures: 3 }),
    ],
    { inputShape: [1, 6, 6], seed: 1 },
  );
  const { modelJson, weightData } = toTfjsArtifacts(model);
  return { json: modelJson, weights: new Uint8Array(weightData) };
}

function loadFails(json: unknown, weights: Uint8Array, pattern: RegExp): void {
  const dir = freshDir();
  writeJsonAndWeights(dir, json, weights);
  assert.throws(() => loadTfjsModel(dir), pattern);
}

test("a malformed model.json is a clear error naming the file", () => {
  const { weights } = smallArtifacts();
  loadFails("{ not json", weights, /model\.json is not valid JSON/);
  loadFails({ format: "layers-model", modelTopology: {} }, weights, /no "weightsManifest" array/);
  const { json } = smallArtifacts();
  loadFails({ ...json, format: "graph-model" }, weights, /"format" is "graph-model"; only "layers-model"/);
  assert.throws(() => loadTfjsModel(join(tmp, "does-not-exist")), /cannot read .*does-not-exist.*model\.json/);
});

test("unsupported models, layers and options are named with the layer and the field", () => {
  const layers = () => structuredClone(smallArtifacts().json);
  const { weights } = smallArtifacts();
  const cases: [(j: TfjsModelJson) => void, RegExp][] = [
    [
      (j) => ((j.modelTopology as unknown as { class_name: string }).class_name = "Bogus"),
      /class_name is "Bogus"; only Sequential and functional/,
    ],
    [
      (j) => ((j.modelTopology as unknown as { class_name: string }).class_name = "Functional"),
      /layer 0 "conv2d_0" \(Conv2D\): field "inbound_nodes" must be one call/,
    ],
    [
      (j) => (j.modelTopology.config.layers[1].class_name = "LSTM"),
      /layer 1 "activation_1" \(LSTM\): layer class "LSTM" is not supported/,
    ],
    [
      (j) => (j.modelTopology.config.layers[0].config.data_format = "channels_first"),
      /layer 0 "conv2d_0" \(Conv2D\): field "data_format" is "channels_first"/,
    ],
    [
      (j) => (j.modelTopology.config.layers[1].config.activation = "selu"),
      /layer 1 "activation_1" \(Activation\): field "activation" is "selu"/,
    ],
    [
      (j) => (j.modelTopology.config.layers[0].config.padding = "causal"),
      /layer 0 "conv2d_0" \(Conv2D\): field "padding" is "causal"/,
    ],
    [
      (j) => (j.modelTopology.config.layers[0].config.strides = [0, 1]),
      /layer 0 "conv2d_0" \(Conv2D\): field "strides" must be a positive integer/,
    ],
    [
      (j) => (j.modelTopology.config.layers[0].config.groups = 2),
      /layer 0 "conv2d_0" \(Conv2D\): field "groups" = 2 does not divide both the 1 input channels and the 2 filters/,
    ],
    [
      (j) => (j.modelTopology.config.layers[0].config.dtype = "float16"),
      /layer 0 "conv2d_0" \(Conv2D\): field "dtype" is "float16"/,
    ],
    [
      (j) => delete j.modelTopology.config.layers[0].config.batch_input_shape,
      /layer 0 "conv2d_0" \(Conv2D\): field "batch_input_shape" is missing/,
    ],
    [(j) => (j.modelTopology.config.layers[3].config.use_bias = false), /weights? "dense_3\/bias" belongs to no layer/],
    [
      (j) => (j.modelTopology.config.layers[3].config.units = 4),
      /layer 3 "dense_3" \(Dense\): weight "dense_3\/kernel" has shape \[32, 3\], expected \[32, 4\]/,
    ],
    [
      (j) => (j.weightsManifest[0].weights[0].name = "conv2d_0/kernel_renamed"),
      /layer 0 "conv2d_0" \(Conv2D\): weight "conv2d_0\/kernel" is missing/,
    ],
    [
      (j) => (j.weightsManifest[0].weights[2].dtype = "float13"),
      /weight "dense_3\/kernel" has unknown dtype "float13"/,
    ],
    [
      (j) => (j.weightsManifest[0].weights[2].dtype = "int32"),
      /weight "dense_3\/kernel" has unsupported dtype "int32"/,
    ],
    [
      (j) => (j.weightsManifest[0].paths = ["../weights.bin"]),
      /weights path "\.\.\/weights\.bin" must be a file name relative/,
    ],
  ];
  for (const [corrupt, pattern] of cases) {
    const j = layers();
    corrupt(j);
    loadFails(j, weights, pattern);
  }
});

test("a weights file of the wrong size names the file and both sizes", () => {
  const { json, weights } = smallArtifacts();
  loadFails(
    json,
    weights.subarray(0, weights.length - 4),
    /weights\.bin: has 472 bytes, but the weights manifest's 4 float32 weights need 476 bytes/,
  );
  loadFails(json, new Uint8Array(weights.length + 1), /has 477 bytes.*need 476 bytes/);
  assert.throws(() => fromTfjsArtifacts(json, new ArrayBuffer(8)), /weight data: has 8 bytes/);
});

test("unsupported pooling, Dense, BatchNormalization and activation configurations are named", async () => {
  const cases: [() => tfl.Sequential, RegExp][] = [
    [
      () =>
        tfl.sequential({ layers: [tfl.layers.maxPooling2d({ inputShape: [7, 7, 1], poolSize: 2, padding: "same" })] }),
      /\(MaxPooling2D\): field "padding" "same" on a 7×7 input pads asymmetrically/,
    ],
    [
      () =>
        tfl.sequential({
          layers: [tfl.layers.reshape({ inputShape: [4, 4, 1], targetShape: [4, 4] }), tfl.layers.dense({ units: 2 })],
        }),
      /\(Dense\): Dense on a tensor of shape \[4, 4\] \(without a Flatten\)/,
    ],
    [
      () => tfl.sequential({ layers: [tfl.layers.batchNormalization({ inputShape: [4, 4, 2], axis: 1 })] }),
      /\(BatchNormalization\): field "axis" is 1; only the channel \(last\) axis 3/,
    ],
    [
      () =>
        tfl.sequential({
          layers: [tfl.layers.conv2d({ inputShape: [6, 6, 1], filters: 1, kernelSize: 3, activation: "selu" })],
        }),
      /\(Conv2D\): field "activation" is "selu"/,
    ],
  ];
  for (const [build, pattern] of cases) {
    const m = build();
    const a = await tfSave(m);
    assert.throws(() => fromTfjsArtifacts(a, a.weightData as ArrayBuffer), pattern);
    m.dispose();
  }
});

test("export rejects what TF.js cannot express, naming the layer", () => {
  const shape = [1, 4, 4];
  const cases: [Sequential, RegExp][] = [
    [
      new Sequential([new MaxPool2D({ kernelSize: 2, stride: 2, padding: 1 })], { inputShape: shape }),
      /layer 0 \(MaxPool2D\): padding 1×1 on a 4×4 input has no TF\.js equivalent/,
    ],
    [
      new Sequential([new AvgPool2D({ kernelSize: 2, stride: 2, padding: 1, countIncludePad: false })], {
        inputShape: shape,
      }),
      /layer 0 \(AvgPool2D\): padding 1×1 .*\(countIncludePad is false\)/,
    ],
    [
      new Sequential(
        [new Conv2D({ inChannels: 1, outChannels: 1, kernelSize: 2, stride: 2, dilation: 2, padding: 1 })],
        { inputShape: shape },
      ),
      /layer 0 \(Conv2D\): TF\.js cannot combine strides 2×2 with dilation 2×2/,
    ],
    [
      new Sequential([new Softmax({ axis: 2 })], { inputShape: shape }),
      /layer 0 \(Softmax\): softmax over axis 2 .* TF\.js only supports softmax over the last axis/,
    ],
    [
      new Sequential([new Conv2D({ outChannels: 2, kernelSize: 1, groups: 2 })], { inputShape: [2, 4, 4] }),
      /layer 0 \(Conv2D\): groups 2: TF\.js Layers' Conv2D has no groups/,
    ],
    [
      new Sequential([new DepthwiseConv2D({ kernelSize: 2, dilation: 2 })], { inputShape: [2, 4, 4] }),
      /layer 0 \(DepthwiseConv2D\): dilation 2×2: TF\.js Layers' DepthwiseConv2D ignores dilation_rate/,
    ],
  ];
  for (const [model, pattern] of cases) assert.throws(() => toTfjsArtifacts(model), pattern);
  assert.throws(
    () => toTfjsArtifacts(new Sequential([new ReLU()])),
    /input shape of sequential is unknown: pass \{inputShape\}/,
  );
  const gx = Input([2, 4, 4]);
  const flat = new Flatten().apply(gx, "flat");
  const cat = new Concatenate({ axis: -1 }).apply([flat, new Flatten().apply(gx, "flat2")], "cat");
  const graph = new Model({ inputs: gx, outputs: cat, name: "g" });
  assert.throws(
    () => toTfjsArtifacts(graph),
    /node 'cat' \(Concatenate\): concatenating flattened images would interleave two NHWC orders/,
  );
  assert.throws(
    () => toTfjsArtifacts(new Sequential([new ReLU()]), { inputShape: [2, 3] }),
    /input samples of shape \(2, 3\) are not supported/,
  );
});

test("Keras variants: InputLayer, model_config wrapper, Keras 3 batch_shape and a Softmax layer over H", () => {
  const { json, weights } = smallArtifacts();
  const layers = structuredClone(json.modelTopology.config.layers);
  const bis = layers[0].config.batch_input_shape;
  delete layers[0].config.batch_input_shape;
  layers.unshift({
    class_name: "InputLayer",
    config: {
      name: "input_1",
      batch_shape: bis,
      dtype: { module: "keras", class_name: "DTypePolicy", config: { name: "float32" } },
    },
  });
  layers.splice(2, 0, { class_name: "Softmax", config: { name: "sm", axis: 1 } });
  const wrapped = {
    ...json,
    modelTopology: { model_config: { class_name: "Sequential", config: { name: "wrapped", layers } } },
  };
  const model = fromTfjsArtifacts(wrapped, weights);
  assert.equal(model.name, "wrapped");
  assert.deepEqual(
    model.layers.map((l) => l.type),
    ["Conv2D", "Softmax", "ReLU", "Flatten", "Dense"],
  );
  const softmax = model.layers[1];
  assert.ok(softmax instanceof Softmax);
  assert.equal(softmax.axis, 2); // NHWC axis 1 (H) is NCHW axis 2
});
