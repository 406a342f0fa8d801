// Save a trained model, load it back (bit-identical predictions), and export it to ONNX.
//
//   node save-load-onnx.mjs [OUT_DIR]     # default: a fresh folder under the system's temp dir
//
// The model learns a toy task (is the bar in a 12×12 image horizontal, vertical or diagonal?) on
// synthetic images, so the example needs no data set. If onnxruntime-node is installed, the ONNX file
// is also run there and compared with handprop's own predictions.

import { mkdtempSync, statSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import {
  Sequential,
  Conv2D,
  ReLU,
  MaxPool2D,
  Flatten,
  Dense,
  SoftmaxCrossEntropy,
  Adam,
  NDArray,
  RandomState,
  toOnnx,
} from "handprop";
import { saveModel, loadModel, saveOnnxModel } from "handprop/node";

const SIZE = 12;
const CLASSES = ["horizontal", "vertical", "diagonal"];

/** n noisy SIZE×SIZE images of a bar of each class at a random place, NCHW float32, and their labels. */
function bars(n, seed) {
  const rng = new RandomState(seed);
  const pixels = new Float32Array(n * SIZE * SIZE);
  const labels = new Int32Array(n);
  for (let i = 0; i < n; i++) {
    const label = i % CLASSES.length;
    const at = 2 + rng.randint(0, SIZE - 4);
    const image = pixels.subarray(i * SIZE * SIZE, (i + 1) * SIZE * SIZE);
    for (let t = 0; t < SIZE; t++) {
      const [row, col] = label === 0 ? [at, t] : label === 1 ? [t, at] : [t, t];
      image[row * SIZE + col] = 1;
    }
    for (let p = 0; p < image.length; p++) image[p] += 0.3 * rng.random();
    labels[i] = label;
  }
  return { images: new NDArray(pixels, [n, 1, SIZE, SIZE]), labels };
}

const model = new Sequential(
  [
    new Conv2D({ inChannels: 1, outChannels: 4, kernelSize: 3, padding: "same" }),
    new ReLU(),
    new MaxPool2D({ kernelSize: 2 }),
    new Flatten(),
    new Dense({ inFeatures: 4 * 6 * 6, outFeatures: CLASSES.length }),
  ],
  { inputShape: [1, SIZE, SIZE], seed: 7, name: "bars" },
);
const optimizer = new Adam({ lr: 1e-2 });
model.compile({ loss: new SoftmaxCrossEntropy(), optimizer });
const train = bars(300, 1);
const test = bars(90, 2);
model.fit(train.images, train.labels, { epochs: 2, batchSize: 10, seed: 3 });
console.log(`trained: test accuracy ${(100 * model.evaluate(test.images, test.labels).accuracy).toFixed(1)}%`);

// 1. A model folder: model.json (architecture, shapes, checksums) + weights.bin, and the optimizer's
//    state in optimizer.bin so training can resume exactly. Every file is written atomically.
const outDir = process.argv[2] ?? mkdtempSync(join(tmpdir(), "handprop-example-"));
const folder = join(outDir, "bars-model");
saveModel(model, folder, { optimizer, training: { epochs: 2, task: "bars" } });
console.log(`saved ${folder}: model.json, weights.bin, optimizer.bin`);

// 2. Load it back: the predictions are bit-identical.
const loaded = loadModel(folder, { withOptimizer: true });
const before = model.predict(test.images).data;
const after = loaded.model.predict(test.images).data;
const identical = before.length === after.length && before.every((v, i) => Object.is(v, after[i]));
console.log(
  `loaded "${loaded.model.name}" (optimizer ${loaded.optimizer?.constructor.name ?? "none"}, ` +
    `training ${JSON.stringify(loaded.training)}): predictions bit-identical: ${identical}`,
);
if (!identical) process.exit(1);

// 3. ONNX (opset 13): one file, input "input" (N, 1, 12, 12) NCHW, output "output" (N, 3) logits.
const onnxFile = join(outDir, "bars.onnx");
saveOnnxModel(model, onnxFile);
console.log(
  `exported ${onnxFile} (${statSync(onnxFile).size} bytes); in memory: toOnnx(model), ` +
    `${toOnnx(model).length} bytes`,
);

// 4. Optional: run the ONNX file in ONNX Runtime, if it is installed (npm install onnxruntime-node).
let ort = null;
try {
  ort = await import("onnxruntime-node");
} catch {
  console.log("onnxruntime-node is not installed: skipped running the ONNX file");
}
if (ort) {
  const session = await ort.InferenceSession.create(onnxFile);
  const input = new ort.Tensor("float32", test.images.data, test.images.shape);
  const { output } = await session.run({ input });
  let maxDiff = 0;
  for (let i = 0; i < before.length; i++) maxDiff = Math.max(maxDiff, Math.abs(output.data[i] - before[i]));
  console.log(`onnxruntime: max |difference| from handprop's logits ${maxDiff.toExponential(1)}`);
  if (!(maxDiff < 1e-4)) process.exit(1);
}
