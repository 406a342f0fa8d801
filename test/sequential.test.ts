// Sequential: build-time validation, summary, fitting a toy dataset, determinism, errors, memory.
import { test } from "node:test";
import assert from "node:assert/strict";
import { NDArray } from "../src/nd/ndarray.ts";
import { RandomState } from "../src/nd/random.ts";
import { Conv2D } from "../src/nn/conv.ts";
import { Dense } from "../src/nn/dense.ts";
import { Flatten } from "../src/nn/flatten.ts";
import { MaxPool2D } from "../src/nn/pool.ts";
import { ReLU, Tanh } from "../src/nn/activations.ts";
import { Dropout } from "../src/nn/dropout.ts";
import { SoftmaxCrossEntropy, MSE } from "../src/nn/losses.ts";
import { Adam, SGD } from "../src/nn/optim.ts";
import { Sequential, TrainingError } from "../src/nn/sequential.ts";
import { sequentialFromConfig } from "../src/nn/registry.ts";

/** Toy images: a bright horizontal bar (class 0) or vertical bar (class 1) at a random place, plus noise. */
function bars(n: number, seed: number): { x: NDArray; y: Int32Array } {
  const rng = new RandomState(seed);
  const x = new NDArray(new Float32Array(n * 64), [n, 1, 8, 8]);
  const y = new Int32Array(n);
  for (let i = 0; i < n; i++) {
    const cls = rng.randint(0, 2);
    const pos = rng.randint(1, 7);
    y[i] = cls;
    for (let p = 0; p < 64; p++) x.data[i * 64 + p] = 0.1 * rng.standardNormal();
    for (let k = 0; k < 8; k++) x.data[i * 64 + (cls === 0 ? pos * 8 + k : k * 8 + pos)] += 1;
  }
  return { x, y };
}

function smallCnn(seed = 1): Sequential {
  return new Sequential(
    [
      new Conv2D({ inChannels: 1, outChannels: 4, kernelSize: 3, padding: "same" }),
      new ReLU(),
      new MaxPool2D({ kernelSize: 2 }),
      new Flatten(),
      new Dropout({ rate: 0.1 }),
      new Dense({ inFeatures: 4 * 4 * 4, outFeatures: 2 }),
    ],
    { inputShape: [1, 8, 8], seed },
  );
}

test("fits a toy dataset: a small CNN separates horizontal from vertical bars", () => {
  const train = bars(256, 1);
  const testSet = bars(128, 2);
  const model = smallCnn().compile({ loss: new SoftmaxCrossEntropy(), optimizer: new Adam({ lr: 0.01 }) });
  const before = model.evaluate(testSet.x, testSet.y);
  const history = model.fit(train.x, train.y, {
    epochs: 4,
    batchSize: 16,
    seed: 3,
    validationData: [testSet.x, testSet.y],
  });
  const after = model.evaluate(testSet.x, testSet.y);
  assert.equal(history.epochs.length, 4);
  assert.ok(after.loss < before.loss / 2, `loss ${before.loss} → ${after.loss}`);
  assert.ok((after.accuracy ?? 0) >= 0.95, `accuracy ${after.accuracy}`);
  assert.equal(history.epochs[3].valAccuracy, after.accuracy);
});

test("the same seeds give bit-identical training", () => {
  const { x, y } = bars(64, 5);
  const weights = () => {
    const m = smallCnn(7).compile({ loss: new SoftmaxCrossEntropy(), optimizer: new SGD({ lr: 0.05, momentum: 0.9 }) });
    m.fit(x, y, { epochs: 2, batchSize: 8, seed: 11 });
    return m.params().map((p) => Array.from(p.value.data));
  };
  assert.deepEqual(weights(), weights());
});

test("summary prints each layer's output shape and parameter count, Keras-style", () => {
  const s = smallCnn().summary();
  assert.match(s, /conv2d_0 \(Conv2D\)\s+\(None, 4, 8, 8\)\s+40/);
  assert.match(s, /maxpool2d_2 \(MaxPool2D\)\s+\(None, 4, 4, 4\)\s+0/);
  assert.match(s, /dense_5 \(Dense\)\s+\(None, 2\)\s+130/);
  assert.match(s, /Total params: 170/);
});

test("bad models are rejected at build time, naming the layer", () => {
  assert.throws(
    () => new Sequential([new Conv2D({ inChannels: 1, outChannels: 2, kernelSize: 5 })], { inputShape: [1, 4, 4] }),
    /layer 0 \(Conv2D\).*larger than the padded input/,
  );
  assert.throws(
    () => new Sequential([new Flatten(), new Dense({ inFeatures: 10, outFeatures: 2 })], { inputShape: [1, 4, 4] }),
    /layer 1 \(Dense\).*16/,
  );
  assert.throws(() => new Conv2D({ inChannels: 1, outChannels: 1, kernelSize: 3, stride: 0 }), /stride/);
  assert.throws(() => new Conv2D({ inChannels: 1, outChannels: 1, kernelSize: 3, padding: -1 }), /padding/);
});

test("a shape mismatch at run time names the layer and both shapes", () => {
  const m = new Sequential([new Flatten(), new Dense({ inFeatures: 16, outFeatures: 2 })]);
  assert.throws(
    () => m.forward(new NDArray(new Float32Array(2 * 9), [2, 1, 3, 3])),
    /layer 1 \(Dense\): expected input of shape \(N, 16\), got \(2, 9\)/,
  );
});

test("a non-finite loss stops fit with the epoch and batch", () => {
  const x = new NDArray(new Float32Array(8 * 2).fill(1), [8, 2]);
  const y = new NDArray(new Float32Array(8).fill(1), [8, 1]);
  x.data[13] = NaN; // sample 6 → batch 4 with batchSize 2, no shuffle
  const m = new Sequential([new Dense({ inFeatures: 2, outFeatures: 1 }), new Tanh()]).compile({
    loss: new MSE(),
    optimizer: new SGD({ lr: 0.1 }),
  });
  assert.throws(
    () => m.fit(x, y, { epochs: 1, batchSize: 2, shuffle: false }),
    (e: unknown) => e instanceof TrainingError && /epoch 1, batch 4/.test(e.message),
  );
});

test("config round-trips through sequentialFromConfig", () => {
  const m = smallCnn();
  const rebuilt = sequentialFromConfig(JSON.parse(JSON.stringify(m.config())) as ReturnType<Sequential["config"]>);
  assert.deepEqual(rebuilt.config(), m.config());
  assert.throws(() => sequentialFromConfig({ layers: [{ type: "Conv3D" }] }), /layer 0: unknown layer type "Conv3D"/);
});

test("memory does not grow from epoch to epoch (buffers are reused)", () => {
  const { x, y } = bars(256, 9);
  const m = smallCnn().compile({ loss: new SoftmaxCrossEntropy(), optimizer: new Adam({ lr: 0.01 }) });
  m.fit(x, y, { epochs: 2, batchSize: 32, seed: 1 }); // warm up: every buffer allocated
  const gc = (globalThis as { gc?: () => void }).gc;
  const heap: number[] = [];
  m.fit(x, y, {
    epochs: 12,
    batchSize: 32,
    seed: 2,
    callbacks: {
      onEpochEnd: () => {
        gc?.();
        heap.push(process.memoryUsage().heapUsed);
      },
    },
  });
  // Without gc exposed the heap can float by what the collector has not yet reclaimed; it must not
  // trend upward: the last epochs use no more than the first ones plus slack.
  const first = Math.max(...heap.slice(0, 4));
  const last = Math.max(...heap.slice(-4));
  assert.ok(last <= first + 4 * 1024 * 1024, `heap grew from ${first} to ${last}`);
});
