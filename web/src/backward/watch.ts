// "Training you can watch" on page 3: Adam steps on the MNIST subset, one mini-batch per task so the
// page stays responsive, recording after every step each weighted layer's gradient norm ‖∂L/∂W‖ and
// its update/weight ratio ‖ΔW‖/‖W‖ — the numbers that show vanishing or exploding gradients (a healthy
// ratio is around 1e-3). Batches are drawn by a seeded RandomState: the same seed gives the same run.

import {
  Adam, Conv2D, Dense, NDArray, RandomState, SoftmaxCrossEntropy, normalizePixels, type Normalization, type Sequential,
} from "handprop";
import type { DigitSet } from "../mnist/data.ts";
import { norm } from "./engine.ts";

export interface StepRecord {
  step: number;
  loss: number;
  /** Per weighted layer (in model order): ‖∂L/∂W‖₂ and ‖ΔW‖₂/‖W‖₂ of this step. */
  gradNorms: number[];
  updateRatios: number[];
}

export interface WatchOptions {
  steps: number;
  batchSize: number;
  lr: number;
  seed: number;
  normalization: Normalization;
  /** Called after every step; return false to stop. */
  onStep: (r: StepRecord) => boolean;
}

/** The layers whose weights are watched (Conv2D and Dense), with their indices in the model. */
export function weightedLayers(model: Sequential): { index: number; layer: Conv2D | Dense }[] {
  const out: { index: number; layer: Conv2D | Dense }[] = [];
  model.layers.forEach((layer, index) => {
    if (layer instanceof Conv2D || layer instanceof Dense) out.push({ index, layer });
  });
  return out;
}

/** Run `steps` Adam steps on `data`, one per macrotask; resolves with the number of steps taken. */
export async function watchTraining(model: Sequential, data: DigitSet, opts: WatchOptions): Promise<number> {
  const rng = new RandomState(opts.seed);
  const optimizer = new Adam({ lr: opts.lr });
  const loss = new SoftmaxCrossEntropy();
  const watched = weightedLayers(model);
  const B = Math.max(1, Math.min(opts.batchSize, data.count));
  const batch = new Float32Array(B * 784);
  const x = new NDArray(batch, [B, 1, 28, 28]);
  const labels = new Int32Array(B);
  const before = watched.map(({ layer }) => new Float32Array(layer.weight.value.size));
  for (let step = 1; step <= opts.steps; step++) {
    for (let n = 0; n < B; n++) {
      const k = rng.randint(0, data.count);
      const image = data.images.subarray(k * 784, (k + 1) * 784);
      normalizePixels(image, opts.normalization, batch.subarray(n * 784, (n + 1) * 784));
      labels[n] = data.labels[k];
    }
    watched.forEach(({ layer }, i) => {
      before[i].set(layer.weight.value.data);
    });
    model.zeroGrad();
    const value = loss.forward(model.forward(x, { training: true }), labels);
    model.backward(loss.backward(), { needDx: false });
    const gradNorms = watched.map(({ layer }) => norm(layer.weight.grad.data));
    optimizer.step(model.params());
    const updateRatios = watched.map(({ layer }, i) => {
      const w = layer.weight.value.data;
      let d = 0;
      for (let j = 0; j < w.length; j++) d += (w[j] - before[i][j]) ** 2;
      return Math.sqrt(d) / (norm(w) || 1);
    });
    if (!opts.onStep({ step, loss: value, gradNorms, updateRatios })) return step;
    await new Promise<void>((resolve) => setTimeout(resolve, 0)); // let the page paint and take clicks
  }
  return opts.steps;
}
