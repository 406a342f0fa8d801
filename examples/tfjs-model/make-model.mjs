// Writes the tiny TF.js Layers model that import-tfjs.mjs reads: model.json + weights.bin, saved by
// TensorFlow.js itself (@tensorflow/tfjs-layers 4.22, a devDependency of handprop's checkout), and
// expected.json: TF.js's own predictions for a few inputs, which the example compares with handprop's.
// The files are committed; run this again only to change the model:  node examples/tfjs-model/make-model.mjs

import { writeFileSync } from "node:fs";
import * as tf from "@tensorflow/tfjs-core";
import "@tensorflow/tfjs-backend-cpu";
import * as tfl from "@tensorflow/tfjs-layers";

await tf.setBackend("cpu");
const here = new URL(".", import.meta.url);

// A Keras-style classifier of 8×8 single-channel images into 3 classes; TF.js is channels-last (NHWC).
const model = tfl.sequential({ name: "tiny_tfjs_cnn" });
model.add(tfl.layers.conv2d({ inputShape: [8, 8, 1], filters: 4, kernelSize: 3, padding: "same", activation: "relu" }));
model.add(tfl.layers.maxPooling2d({ poolSize: 2 }));
model.add(tfl.layers.flatten());
model.add(tfl.layers.dense({ units: 3, activation: "softmax" }));

// Deterministic weights (no training needed for an import example): a fixed pseudo-random sequence.
let state = 12345;
const next = () => ((state = (Math.imul(state, 1103515245) + 12345) >>> 0) / 2 ** 32 - 0.5);
model.setWeights(model.weights.map((w) => tf.tensor(Float32Array.from({ length: w.shape.reduce((a, b) => a * b, 1) }, next), w.shape)));

let artifacts = null;
await model.save(tf.io.withSaveHandler((a) => {
  artifacts = a;
  return Promise.resolve({ modelArtifactsInfo: { dateSaved: new Date(), modelTopologyType: "JSON" } });
}));
const modelJson = {
  modelTopology: artifacts.modelTopology,
  format: artifacts.format,
  generatedBy: artifacts.generatedBy,
  convertedBy: artifacts.convertedBy ?? null,
  weightsManifest: [{ paths: ["weights.bin"], weights: artifacts.weightSpecs }],
};
writeFileSync(new URL("model.json", here), JSON.stringify(modelJson, null, 1) + "\n");
writeFileSync(new URL("weights.bin", here), new Uint8Array(artifacts.weightData));

// Three inputs (NHWC, [3, 8, 8, 1]: a left-to-right ramp, a top-to-bottom ramp, a checkerboard) and
// TF.js's softmax outputs for them.
const pattern = [(h, w) => w / 7, (h, w) => h / 7, (h, w) => (h + w) % 2];
const inputs = Array.from({ length: 3 * 8 * 8 }, (_, i) => pattern[Math.floor(i / 64)](Math.floor(i / 8) % 8, i % 8));
const outputs = Array.from(model.predict(tf.tensor(inputs, [3, 8, 8, 1])).dataSync());
writeFileSync(new URL("expected.json", here), JSON.stringify({ shape: [3, 8, 8, 1], inputs, outputs }) + "\n");
console.log(`wrote model.json, weights.bin (${artifacts.weightData.byteLength} bytes), expected.json`);
