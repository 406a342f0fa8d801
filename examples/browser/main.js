// The browser version of train-cnn.mjs: the same API from "handprop" (the browser-safe entry, no Node
// built-ins), on synthetic images instead of MNIST files. A bundler (Vite, esbuild, webpack) resolves
// "handprop" from node_modules; see ../README.md.
/* global document, performance, console */

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
  getBackend,
} from "handprop";

const SIZE = 12;
const CLASSES = ["horizontal", "vertical", "diagonal"];
const log = document.getElementById("log");
const result = document.getElementById("result");

/**
 * n noisy SIZE×SIZE images of a bar of each class at a random place, NCHW float32, and their labels.
 * @param {number} n
 * @param {number} seed
 */
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
  { inputShape: [1, SIZE, SIZE], seed: 7 },
);
model.compile({ loss: new SoftmaxCrossEntropy(), optimizer: new Adam({ lr: 1e-2 }) });

const train = bars(300, 1);
const test = bars(90, 2);
const lines = [model.summary()];
const started = performance.now();
// fit runs on this thread; for long runs put it in a Web Worker so the page stays responsive.
model.fit(train.images, train.labels, {
  epochs: 1,
  batchSize: 10,
  seed: 3,
  callbacks: { onEpochEnd: (epoch, logs) => void lines.push(`epoch ${epoch + 1}: loss ${logs.loss.toFixed(3)}`) },
});
const seconds = (performance.now() - started) / 1000;
const { accuracy } = model.evaluate(test.images, test.labels);
lines.push(`kernels: ${getBackend()}; 1 epoch on ${train.labels.length} images in ${seconds.toFixed(2)} s`);
log.textContent = lines.join("\n");
result.textContent = `${(100 * accuracy).toFixed(1)}%`;
result.dataset.accuracy = String(accuracy);
result.dataset.backend = getBackend();
console.log(lines.slice(1).join("\n"), `\ntest accuracy ${result.textContent}`);
