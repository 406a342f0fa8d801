// Shape inference (Keras-style): inChannels / inFeatures / numFeatures may be left out when the input
// shape determines them; explicit values are still checked, errors name the layer.

import { test } from "node:test";
import assert from "node:assert/strict";

import { NDArray } from "../src/nd/ndarray.ts";
import { Conv2D } from "../src/nn/conv.ts";
import { Dense } from "../src/nn/dense.ts";
import { Flatten } from "../src/nn/flatten.ts";
import { MaxPool2D } from "../src/nn/pool.ts";
import { BatchNorm2D } from "../src/nn/batchnorm.ts";
import { ReLU } from "../src/nn/activations.ts";
import { Sequential } from "../src/nn/sequential.ts";
import { deserializeModel, serializeModel } from "../src/io/model-format.ts";
import { randomInput } from "./helpers.ts";

const inferred = () => [
  new Conv2D({ outChannels: 4, kernelSize: 3, padding: "same" }),
  new BatchNorm2D({}),
  new ReLU(),
  new MaxPool2D({ kernelSize: 2 }),
  new Flatten(),
  new Dense({ outFeatures: 10 }),
];
const explicit = () => [
  new Conv2D({ inChannels: 2, outChannels: 4, kernelSize: 3, padding: "same" }),
  new BatchNorm2D({ numFeatures: 4 }),
  new ReLU(),
  new MaxPool2D({ kernelSize: 2 }),
  new Flatten(),
  new Dense({ inFeatures: 4 * 4 * 4, outFeatures: 10 }),
];

test("a model without input sizes equals the explicit one bit for bit (same seed)", () => {
  const a = new Sequential(inferred(), { inputShape: [2, 8, 8], seed: 5 });
  const b = new Sequential(explicit(), { inputShape: [2, 8, 8], seed: 5 });
  assert.deepEqual(a.config(), b.config());
  const x = randomInput([3, 2, 8, 8], 1);
  assert.deepEqual(Array.from(a.predict(x).data), Array.from(b.predict(x).data));
  assert.equal(a.countParams().trainable, b.countParams().trainable);
});

test("without an inputShape, the sizes are taken at the first forward", () => {
  const m = new Sequential(inferred());
  assert.equal(m.params().length, 0);
  const y = m.forward(randomInput([2, 2, 8, 8], 2));
  assert.deepEqual(y.shape, [2, 10]);
  const dense = m.layers[5];
  assert.ok(dense instanceof Dense);
  assert.equal(dense.inFeatures, 64);
  assert.throws(
    () => m.forward(randomInput([2, 3, 8, 8], 2)),
    /layer 0 \(Conv2D\): expected input of shape \(N, 2, H, W\), got \(2, 3, 8, 8\)/,
  );
});

test("seed without inputShape is an error naming the layer that waits for its size", () => {
  assert.throws(
    () => new Sequential(inferred(), { seed: 1 }),
    /layer 0 \(Conv2D\) takes its input size from the input shape, which is not given: pass inputShape/,
  );
});

test("explicit sizes are still checked against the input shape, naming the layer", () => {
  const layers = [
    new Conv2D({ outChannels: 4, kernelSize: 3 }),
    new Flatten(),
    new Dense({ inFeatures: 99, outFeatures: 2 }),
  ];
  assert.throws(
    () => new Sequential(layers, { inputShape: [1, 6, 6] }),
    /layer 2 \(Dense\): expected input of shape \(N, 99\), got \(NaN, 64\)|layer 2 \(Dense\): expected input of shape \(N, 99\)/,
  );
  assert.throws(
    () => new Sequential([new BatchNorm2D({ numFeatures: 3 })], { inputShape: [2, 4, 4] }),
    /layer 0 \(BatchNorm2D\): expected input of shape \(N, 3, H, W\), got samples of shape \(2, 4, 4\)/,
  );
});

test("an inferred model saves its resolved sizes and loads back bit for bit", () => {
  const m = new Sequential(inferred(), { inputShape: [2, 8, 8], seed: 3 });
  const saved = serializeModel(m);
  const back = deserializeModel(saved.json, saved.weights).model;
  const x: NDArray = randomInput([2, 2, 8, 8], 4);
  assert.deepEqual(Array.from(back.predict(x).data), Array.from(m.predict(x).data));
  const conv = back.layers[0];
  assert.ok(conv instanceof Conv2D);
  assert.equal(conv.inChannels, 2);
});
