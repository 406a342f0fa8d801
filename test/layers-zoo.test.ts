// The zoo's modern models (src/nn/models.ts): resnet-mini (a graph with residual blocks and BatchNorm)
// and mobilenet-mini (depthwise-separable blocks): sizes, parameter counts, a training step, save/load.

import { test } from "node:test";
import assert from "node:assert/strict";

import { buildModel, MODEL_NAMES, MODELS_WITH_BATCH_NORM } from "../src/nn/models.ts";
import { Model } from "../src/nn/graph.ts";
import { SoftmaxCrossEntropy } from "../src/nn/losses.ts";
import { Adam } from "../src/nn/optim.ts";
import { deserializeModel, serializeModel } from "../src/io/model-format.ts";
import { randomInput } from "./helpers.ts";

test("resnet-mini and mobilenet-mini: names, parameter counts, logits for 28×28 digits", () => {
  assert.ok(MODEL_NAMES.includes("resnet-mini") && MODEL_NAMES.includes("mobilenet-mini"));
  const resnet = buildModel("resnet-mini");
  assert.ok(resnet instanceof Model);
  assert.deepEqual(resnet.countParams(), { trainable: 151_738, nonTrainable: 928 });
  assert.equal(resnet.nodes.filter((n) => n.layer.type === "Add").length, 4);
  assert.match(resnet.summary(), /add_\d+ \(Add\)/);
  const mobile = buildModel("mobilenet-mini");
  assert.deepEqual(mobile.countParams(), { trainable: 18_826, nonTrainable: 960 });
  assert.equal(mobile.layers.filter((l) => l.type === "DepthwiseConv2D").length, 4);
  const x = randomInput([2, 1, 28, 28], 1);
  for (const m of [resnet, mobile]) assert.deepEqual(m.predict(x).shape, [2, 10]);
});

test("a training step of each changes the weights, and both save and load bit for bit", () => {
  for (const name of ["resnet-mini", "mobilenet-mini"]) {
    const m = buildModel(name, { seed: 3 });
    const before = Array.from(m.params()[0].value.data);
    const x = randomInput([4, 1, 28, 28], 2);
    const r = m.trainBatch(x, Int32Array.from([1, 2, 3, 4]), new SoftmaxCrossEntropy(), new Adam());
    assert.ok(Number.isFinite(r.loss));
    assert.notDeepEqual(Array.from(m.params()[0].value.data), before);
    const saved = serializeModel(m);
    const back = deserializeModel(saved.json, saved.weights).model;
    assert.deepEqual(Array.from(back.predict(x).data), Array.from(m.predict(x).data), name);
  }
});

test("batchNorm: false builds the same network without BatchNorm, each convolution with a bias (the ablation)", () => {
  const counts = (name: string, batchNorm: boolean) => buildModel(name, { batchNorm }).countParams();
  // cnn-bn: conv 5×5×32 and 5×5×64 gain 32 + 64 biases and lose 2·(32 + 64) γ, β and as many running stats
  assert.deepEqual(counts("cnn-bn", true), { trainable: 258_410, nonTrainable: 192 });
  assert.deepEqual(counts("cnn-bn", false), { trainable: 258_410 - 96, nonTrainable: 0 });
  for (const name of MODELS_WITH_BATCH_NORM) {
    const plain = buildModel(name, { batchNorm: false });
    assert.ok(!JSON.stringify(plain.config()).includes("BatchNorm"), name);
    assert.deepEqual(plain.predict(randomInput([2, 1, 28, 28], 4)).shape, [2, 10]);
  }
  assert.throws(() => buildModel("lenet5", { batchNorm: false }), /'lenet5' has no batch normalization to leave out/);
});
