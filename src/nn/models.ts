// A small model zoo for 28×28 single-channel digits (MNIST). Every model outputs logits (N, 10) and is
// trained with SoftmaxCrossEntropy; the probabilities are softmax(logits).
//
//   lenet5     LeCun et al. 1998 with ReLU and max pooling (the modern textbook variant):
//              conv 5×5×6 "same" → ReLU → maxpool 2   (6×28×28 → 6×14×14)
//              conv 5×5×16 valid → ReLU → maxpool 2   (16×10×10 → 16×5×5)
//              flatten 400 → dense 120 → ReLU → dense 84 → ReLU → dense 10          61,706 params
//   cnn-small  the fast one: two small 3×3 conv blocks and a linear classifier
//              conv 3×3×8 "same" → ReLU → maxpool 2    (8×28×28 → 8×14×14)
//              conv 3×3×16 "same" → ReLU → maxpool 2   (16×14×14 → 16×7×7)
//              flatten 784 → dense 10                                              9,098 params
//              ≈ 290k multiply-adds per image forward, LeNet-5 ≈ 417k. One epoch (Adam, lr 3e-3,
//              batch 16) on the first 10,000 training images gives ≈ 96.5% test accuracy; on 5,000
//              images 91–95.7% depending on the seed (too few steps to be reliably above 95%).
//   mlp        flatten 784 → dense 128 → ReLU → dense 10                            101,770 params
//
// buildModel(name, {seed}) draws the initial weights from RandomState(seed), layer by layer, so a
// seed fixes the model bit for bit.

import { Conv2D } from "./conv.ts";
import { Dense } from "./dense.ts";
import { Flatten } from "./flatten.ts";
import { MaxPool2D } from "./pool.ts";
import { ReLU } from "./activations.ts";
import { Sequential } from "./sequential.ts";
import type { Layer } from "./layer.ts";

export const MODEL_NAMES = ["lenet5", "cnn-small", "mlp"] as const;
export type ModelName = (typeof MODEL_NAMES)[number];

/** Shape of one input sample: one channel of 28×28 pixels. */
export const DIGIT_INPUT_SHAPE: readonly number[] = [1, 28, 28];

const builders: Record<ModelName, () => Layer[]> = {
  lenet5: () => [
    new Conv2D({ inChannels: 1, outChannels: 6, kernelSize: 5, padding: "same" }),
    new ReLU(),
    new MaxPool2D({ kernelSize: 2 }),
    new Conv2D({ inChannels: 6, outChannels: 16, kernelSize: 5 }),
    new ReLU(),
    new MaxPool2D({ kernelSize: 2 }),
    new Flatten(),
    new Dense({ inFeatures: 16 * 5 * 5, outFeatures: 120, init: "he_normal" }),
    new ReLU(),
    new Dense({ inFeatures: 120, outFeatures: 84, init: "he_normal" }),
    new ReLU(),
    new Dense({ inFeatures: 84, outFeatures: 10 }),
  ],
  "cnn-small": () => [
    new Conv2D({ inChannels: 1, outChannels: 8, kernelSize: 3, padding: "same" }),
    new ReLU(),
    new MaxPool2D({ kernelSize: 2 }),
    new Conv2D({ inChannels: 8, outChannels: 16, kernelSize: 3, padding: "same" }),
    new ReLU(),
    new MaxPool2D({ kernelSize: 2 }),
    new Flatten(),
    new Dense({ inFeatures: 16 * 7 * 7, outFeatures: 10 }),
  ],
  mlp: () => [
    new Flatten(),
    new Dense({ inFeatures: 28 * 28, outFeatures: 128, init: "he_normal" }),
    new ReLU(),
    new Dense({ inFeatures: 128, outFeatures: 10 }),
  ],
};

export function isModelName(name: string): name is ModelName {
  return (MODEL_NAMES as readonly string[]).includes(name);
}

/** A zoo model with inputShape [1, 28, 28], its weights drawn from RandomState(seed) (default 0). */
export function buildModel(name: string, opts: { seed?: number } = {}): Sequential {
  if (!isModelName(name)) throw new RangeError(`unknown model '${name}' (models: ${MODEL_NAMES.join(", ")})`);
  return new Sequential(builders[name](), { name, inputShape: DIGIT_INPUT_SHAPE, seed: opts.seed ?? 0 });
}
