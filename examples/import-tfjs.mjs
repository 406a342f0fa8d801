// Import a TensorFlow.js Layers model (model.json + weights.bin) into handprop and check that it
// predicts what TF.js predicts.
//
//   node import-tfjs.mjs                       # the tiny model in ./tfjs-model/, saved by TF.js itself
//   node import-tfjs.mjs path/to/model.json    # any Sequential TF.js Layers model (e.g. converted from Keras)
//
// loadTfjsModel reads the files from disk (handprop/node); in a browser, fetch both files and pass
// them to fromTfjsArtifacts (handprop). Unsupported layers or options are errors naming the layer.

import { readFileSync } from "node:fs";
import { fileURLToPath } from "node:url";
import { NDArray, transpose, argmaxLast } from "handprop";
import { loadTfjsModel } from "handprop/node";

const modelJson = process.argv[2] ?? fileURLToPath(new URL("tfjs-model/model.json", import.meta.url));
const model = loadTfjsModel(modelJson);
console.log(`imported ${modelJson}`);
console.log(model.summary());

if (process.argv[2] === undefined) {
  // TF.js's own predictions for three inputs, written by tfjs-model/make-model.mjs.
  const expected = JSON.parse(readFileSync(new URL("tfjs-model/expected.json", import.meta.url), "utf8"));
  // TF.js is channels-last (NHWC); handprop is NCHW like PyTorch and ONNX: move the channel axis.
  const nhwc = new NDArray(Float32Array.from(expected.inputs), expected.shape);
  const nchw = transpose(nhwc, [0, 3, 1, 2]);
  const probabilities = model.predict(nchw);
  let maxDiff = 0;
  for (let i = 0; i < expected.outputs.length; i++) {
    maxDiff = Math.max(maxDiff, Math.abs(probabilities.data[i] - expected.outputs[i]));
  }
  console.log(
    `classes: ${argmaxLast(probabilities).join(", ")}; ` +
      `max |difference| from TF.js's probabilities: ${maxDiff.toExponential(1)}`,
  );
  if (!(maxDiff < 1e-5)) process.exit(1);
}
