// "Training you can watch" on page 3: Adam steps on the MNIST subset, one mini-batch per task so the
// page stays responsive, recording after every step each weighted layer's gradient norm ‖∂L/∂W‖ and
// its update/weight ratio ‖ΔW‖/‖W‖ — the numbers that show vanishing or exploding gradients (a healthy
// ratio is around 1e-3). The steps are the library's training loop (Trainer.step: its shuffling by
// RandomState(seed), one fresh permutation per epoch), so the same seed gives the same run; the
// gradients are still in the parameters after the step, which is where the norms are read.

import {
  Adam,
  Conv2D,
  Dense,
  NDArray,
  SoftmaxCrossEntropy,
  Trainer,
  normalizePixels,
  type Normalization,
  type Sequential,
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
  const watched = weightedLayers(model);
  const B = Math.max(1, Math.min(opts.batchSize, data.count));
  const x = new NDArray(normalizePixels(data.images, opts.normalization, new Float32Array(data.count * 784)), [
    data.count,
    1,
    28,
    28,
  ]);
  const trainer = new Trainer(
    model,
    { x, y: Int32Array.from(data.labels) },
    {
      loss: new SoftmaxCrossEntropy(),
      optimizer: new Adam({ lr: opts.lr }),
      batchSize: B,
      seed: opts.seed,
    },
  );
  const before = watched.map(({ layer }) => new Float32Array(layer.weight.value.size));
  let epochLossSum = 0; // the Trainer's logs are running means over the epoch: difference them per batch
  for (let step = 1; step <= opts.steps; step++) {
    watched.forEach(({ layer }, i) => {
      before[i].set(layer.weight.value.data);
    });
    const logs = trainer.step();
    const seen = logs.seen ?? 0;
    if (logs.batch === 0) epochLossSum = 0;
    const value = (logs.loss * seen - epochLossSum) / Math.max(1, seen - (logs.batch ?? 0) * B);
    epochLossSum = logs.loss * seen;
    const gradNorms = watched.map(({ layer }) => norm(layer.weight.grad.data));
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
