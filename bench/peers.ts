// The peers handprop is measured against, each behind the same small interface: TensorFlow.js
// (cpu and wasm backends) and ConvNetJS. They are devDependencies; a missing one becomes a row that
// says so instead of a crash.

import { createRequire } from "node:module";
import { dirname, join } from "node:path";

const require = createRequire(import.meta.url);

/** A LeNet-5 that trains on batches and predicts; `null` from a factory means "cannot run this". */
export interface LeNetRunner {
  trainBatch(x: Float32Array, labels: Int32Array, n: number): Promise<void>;
  predict(x: Float32Array, n: number): Promise<void>;
  dispose?(): void;
}

export interface ConvRunner {
  forward(): Promise<void>;
  forwardBackward(): Promise<void> | null;
}

type Tf = typeof import("@tensorflow/tfjs-core");
type Tfl = typeof import("@tensorflow/tfjs-layers");

let tfLoaded: { tf: Tf; tfl: Tfl } | null = null;

async function importTf(): Promise<{ tf: Tf; tfl: Tfl }> {
  const tf = (await import("@tensorflow/tfjs-core")) as Tf;
  const tfl = (await import("@tensorflow/tfjs-layers")) as Tfl;
  await import("@tensorflow/tfjs-backend-cpu");
  const wasm = (await import("@tensorflow/tfjs-backend-wasm")) as typeof import("@tensorflow/tfjs-backend-wasm");
  wasm.setWasmPaths(join(dirname(require.resolve("@tensorflow/tfjs-backend-wasm/package.json")), "dist") + "/");
  wasm.setThreadsCount(1);
  return { tf, tfl };
}

// TF.js prints a banner recommending tfjs-node (which cannot install here); keep the table clean.
// Also the way to make `backend` the active one again before its turn in an interleaved schedule.
export async function loadTf(backend: "cpu" | "wasm"): Promise<{ tf: Tf; tfl: Tfl }> {
  const log = console.log;
  const warn = console.warn;
  console.log = console.warn = () => undefined; // the banner comes on the import or the first backend switch
  try {
    tfLoaded ??= await importTf();
    await tfLoaded.tf.setBackend(backend);
    await tfLoaded.tf.ready();
    tfLoaded.tf.scalar(0).dispose(); // the cpu backend prints its banner on its first tensor
  } finally {
    console.log = log;
    console.warn = warn;
  }
  return tfLoaded;
}

/** LeNet-5 in TF.js Layers (NHWC). Training uses SGD on sparse categorical cross-entropy. */
export async function tfjsLeNet(backend: "cpu" | "wasm"): Promise<LeNetRunner> {
  const { tf, tfl } = await loadTf(backend);
  const model = tfl.sequential({
    layers: [
      tfl.layers.conv2d({ inputShape: [28, 28, 1], filters: 6, kernelSize: 5, padding: "same", activation: "relu" }),
      tfl.layers.maxPooling2d({ poolSize: 2 }),
      tfl.layers.conv2d({ filters: 16, kernelSize: 5, padding: "valid", activation: "relu" }),
      tfl.layers.maxPooling2d({ poolSize: 2 }),
      tfl.layers.flatten(),
      tfl.layers.dense({ units: 120, activation: "relu" }),
      tfl.layers.dense({ units: 84, activation: "relu" }),
      tfl.layers.dense({ units: 10 }),
    ],
  });
  model.compile({ optimizer: tf.train.sgd(0.01), loss: (y, p) => tf.losses.softmaxCrossEntropy(y, p) });
  return {
    async trainBatch(x, labels, n) {
      const xs = tf.tensor4d(x.subarray(0, n * 784), [n, 28, 28, 1]);
      const ys = tf.oneHot(tf.tensor1d(labels.subarray(0, n), "int32"), 10);
      await model.trainOnBatch(xs, ys);
      tf.dispose([xs, ys]);
    },
    async predict(x, n) {
      const xs = tf.tensor4d(x.subarray(0, n * 784), [n, 28, 28, 1]);
      const y = model.predict(xs) as import("@tensorflow/tfjs-core").Tensor;
      await y.data();
      tf.dispose([xs, y]);
    },
    dispose: () => {
      model.dispose();
    },
  };
}

/** conv 3×3 'same', NHWC input (N, H, W, C) and HWIO filter; backward = dx and dW via tf.grads. */
export async function tfjsConv(
  backend: "cpu" | "wasm",
  N: number,
  C: number,
  O: number,
  H: number,
  W: number,
): Promise<ConvRunner> {
  const { tf } = await loadTf(backend);
  type T4 = import("@tensorflow/tfjs-core").Tensor4D;
  type R4 = import("@tensorflow/tfjs-core").Rank.R4;
  const x = tf.randomNormal<R4>([N, H, W, C], 0, 1, "float32", 1);
  const w = tf.randomNormal<R4>([3, 3, C, O], 0, 0.1, "float32", 2);
  const dy = tf.randomNormal<R4>([N, H, W, O], 0, 1, "float32", 3);
  const grads = tf.grads((a, b) => tf.conv2d(a as T4, b as T4, 1, "same"));
  return {
    async forward() {
      const y = tf.conv2d(x, w, 1, "same");
      await y.data();
      y.dispose();
    },
    forwardBackward() {
      if (backend === "wasm") return null; // tfjs-backend-wasm 4.22 has no Conv2DBackpropFilter kernel
      return (async () => {
        const [dx, dw] = grads([x, w], dy);
        await Promise.all([dx.data(), dw.data()]);
        tf.dispose([dx, dw]);
      })();
    },
  };
}

interface ConvNetJs {
  Net: new () => { makeLayers(defs: object[]): void; forward(v: unknown, training?: boolean): unknown };
  Trainer: new (net: unknown, opts: object) => { train(v: unknown, label: number): unknown };
  Vol: new (sx: number, sy: number, depth: number, c?: number) => { w: Float64Array };
}

/** ConvNetJS's LeNet-5: per-sample forward/backward, gradients summed over the batch by its Trainer. */
export function convnetjsLeNet(): LeNetRunner {
  const cnn = require("convnetjs") as ConvNetJs;
  const net = new cnn.Net();
  net.makeLayers([
    { type: "input", out_sx: 28, out_sy: 28, out_depth: 1 },
    { type: "conv", sx: 5, filters: 6, stride: 1, pad: 2, activation: "relu" },
    { type: "pool", sx: 2, stride: 2 },
    { type: "conv", sx: 5, filters: 16, stride: 1, pad: 0, activation: "relu" },
    { type: "pool", sx: 2, stride: 2 },
    { type: "fc", num_neurons: 120, activation: "relu" },
    { type: "fc", num_neurons: 84, activation: "relu" },
    { type: "softmax", num_classes: 10 },
  ]);
  const trainer = new cnn.Trainer(net, {
    method: "sgd",
    learning_rate: 0.01,
    batch_size: 64,
    momentum: 0,
    l2_decay: 0,
  });
  const vols = new Map<number, { w: Float64Array }>();
  const vol = (x: Float32Array, i: number) => {
    let v = vols.get(i);
    if (!v) vols.set(i, (v = new cnn.Vol(28, 28, 1, 0)));
    v.w.set(x.subarray(i * 784, (i + 1) * 784));
    return v;
  };
  return {
    trainBatch(x, labels, n) {
      for (let i = 0; i < n; i++) trainer.train(vol(x, i), labels[i]);
      return Promise.resolve();
    },
    predict(x, n) {
      for (let i = 0; i < n; i++) net.forward(vol(x, i), false);
      return Promise.resolve();
    },
  };
}

/** C = A·B on M×K and K×N float32 matrices, the result read back to JavaScript as handprop's gemm() does. */
export async function tfjsGemm(backend: "cpu" | "wasm", M: number, N: number, K: number): Promise<() => Promise<void>> {
  const { tf } = await loadTf(backend);
  const a = tf.randomNormal([M, K], 0, 1, "float32", 1);
  const b = tf.randomNormal([K, N], 0, 1, "float32", 2);
  return async () => {
    const c = tf.matMul(a, b);
    await c.data();
    c.dispose();
  };
}
