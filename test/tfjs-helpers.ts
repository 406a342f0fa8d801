// Shared by the TF.js tests: running tfjs-layers on the cpu backend, moving tensors between handprop's NCHW
// and TF's NHWC, saving a TF.js model to memory and loading artifacts with TF.js's own parser.
import assert from "node:assert/strict";
import * as tf from "@tensorflow/tfjs-core";
import "@tensorflow/tfjs-backend-cpu";
import * as tfl from "@tensorflow/tfjs-layers";
import type { NDArray } from "../src/nd/ndarray.ts";
import { RandomState } from "../src/nd/random.ts";

tf.env().set("PROD", true); // silences the "install tfjs-node" banner and deprecation notes
await tf.setBackend("cpu");

/** NCHW → NHWC for images; features pass through. */
export function toTfLayout(x: NDArray): tf.Tensor {
  if (x.ndim !== 4) return tf.tensor(Float32Array.from(x.data), x.shape);
  const [N, C, H, W] = x.shape;
  const out = new Float32Array(x.size);
  for (let n = 0; n < N; n++)
    for (let c = 0; c < C; c++)
      for (let h = 0; h < H; h++)
        for (let w = 0; w < W; w++) out[((n * H + h) * W + w) * C + c] = x.data[((n * C + c) * H + h) * W + w];
  return tf.tensor4d(out, [N, H, W, C]);
}

/** Load model.json + weights with TF.js's own parser (getModelArtifactsForJSON), as its file/http handlers do. */
export async function tfLoad(modelJson: unknown, weightData: ArrayBuffer): Promise<tfl.LayersModel> {
  const handler: tf.io.IOHandler = {
    load: () =>
      tf.io.getModelArtifactsForJSON(modelJson as tf.io.ModelJSON, (manifest) =>
        Promise.resolve([manifest.flatMap((g) => g.weights), weightData]),
      ),
  };
  return tfl.loadLayersModel(handler);
}

export function tfPredict(model: tfl.LayersModel, x: NDArray): Float32Array {
  return tf.tidy(() => (model.predict(toTfLayout(x)) as tf.Tensor).dataSync() as Float32Array);
}

export function maxAbsDiff(a: ArrayLike<number>, b: ArrayLike<number>): number {
  assert.equal(a.length, b.length, "lengths differ");
  let m = 0;
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i] - b[i]));
  return Number.isNaN(m) ? Infinity : m;
}

/** Fill a TF.js model's weights with seeded random values (positive variances). */
export function randomizeTf(model: tfl.LayersModel, seed: number): void {
  const rng = new RandomState(seed);
  const values = model.weights.map((w) => {
    const shape = w.shape as number[]; // weights have fixed shapes
    const n = shape.reduce((a, b) => a * b, 1);
    const positive = /moving_variance|gamma/.test(w.originalName);
    const data = Float32Array.from({ length: n }, () => (positive ? rng.uniform(0.5, 1.5) : rng.normal(0, 0.4)));
    return tf.tensor(data, shape);
  });
  model.setWeights(values);
  for (const v of values) v.dispose();
}

/** Save a TF.js model to memory with a custom IO handler. */
export async function tfSave(model: tfl.LayersModel): Promise<tf.io.ModelArtifacts> {
  let saved: tf.io.ModelArtifacts | null = null;
  await model.save(
    tf.io.withSaveHandler((artifacts) => {
      saved = artifacts;
      return Promise.resolve({ modelArtifactsInfo: { dateSaved: new Date(), modelTopologyType: "JSON" } });
    }),
  );
  return saved!;
}

/** A handprop prediction in TF's order (images NHWC). */
export function tfOrder(y: NDArray): Float32Array {
  return tf.tidy(() => toTfLayout(y).dataSync() as Float32Array);
}

/**
 * Load artifacts into tfjs-layers and check that it predicts what `model` does on x (≤ 1e-5), printing the
 * largest difference as a test diagnostic.
 */
export async function expectSameInTf(
  t: { diagnostic: (message: string) => void },
  artifacts: { modelJson: unknown; weightData: ArrayBuffer },
  model: { predict: (x: NDArray) => NDArray },
  x: NDArray,
  what = "",
): Promise<void> {
  const tfModel = await tfLoad(artifacts.modelJson, artifacts.weightData);
  const d = maxAbsDiff(tfPredict(tfModel, x), tfOrder(model.predict(x)));
  tfModel.dispose();
  t.diagnostic(`${what}max |TF.js − handprop| = ${d.toExponential(2)}`);
  assert.ok(d <= 1e-5, `${what}max |TF.js − handprop| = ${d}`);
}
