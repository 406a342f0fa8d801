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
//   resnet-mini  a small ResNet (He et al. 2016), a graph Model: conv 3×3×16 → BN → ReLU, then basic
//              blocks [conv 3×3 → BN → ReLU → conv 3×3 → BN] + shortcut → ReLU:
//              16 (28×28) → 32, stride 2 (14×14) → 64, stride 2 (7×7) → 64; a strided block's shortcut
//              is conv 1×1 stride 2 → BN (the identity elsewhere); global average pool → dense 10
//   mobilenet-mini  MobileNet-v1-style depthwise-separable blocks, a Sequential: conv 3×3×16 → BN → ReLU,
//              then [depthwise 3×3 → BN → ReLU → pointwise 1×1 → BN → ReLU]: 16→32 stride 2 (14×14),
//              32→64 stride 2 (7×7), 64→64, 64→128 stride 2 (4×4); global average pool → dense 10
//              (parameter counts of both: README, "Models")
//
// buildModel(name, {seed}) draws the initial weights from RandomState(seed), layer by layer, so a
// seed fixes the model bit for bit.

import { Conv2D } from "./conv.ts";
import { Dense } from "./dense.ts";
import { Flatten } from "./flatten.ts";
import { GlobalAvgPool2D, MaxPool2D } from "./pool.ts";
import { ReLU } from "./activations.ts";
import { BatchNorm2D } from "./batchnorm.ts";
import { DepthwiseConv2D } from "./depthwise.ts";
import { Add } from "./merge.ts";
import { Input, Model } from "./graph.ts";
import { Sequential } from "./sequential.ts";
import type { Layer, SymbolicTensor } from "./layer.ts";

export const MODEL_NAMES = ["lenet5", "cnn-small", "mlp", "resnet-mini", "mobilenet-mini"] as const;
export type ModelName = (typeof MODEL_NAMES)[number];

/** Shape of one input sample: one channel of 28×28 pixels. */
export const DIGIT_INPUT_SHAPE: readonly number[] = [1, 28, 28];

/** conv (no bias: the batch norm after it subtracts any) → BN, optionally → ReLU. */
function convBn(x: SymbolicTensor, out: number, kernelSize: number, stride: number, relu: boolean): SymbolicTensor {
  const y = new BatchNorm2D({}).apply(
    new Conv2D({ outChannels: out, kernelSize, stride, padding: "same", bias: false }).apply(x),
  );
  return relu ? new ReLU().apply(y) : y;
}

/** A ResNet basic block: relu(F(x) + shortcut(x)), shortcut = identity, or conv 1×1 → BN when the shape changes. */
function basicBlock(x: SymbolicTensor, out: number, stride: number): SymbolicTensor {
  const f = convBn(convBn(x, out, 3, stride, true), out, 3, 1, false);
  const shortcut = stride === 1 && x.shape[0] === out ? x : convBn(x, out, 1, stride, false);
  return new ReLU().apply(new Add().apply([f, shortcut]));
}

function resnetMini(seed: number): Model {
  const input = Input(DIGIT_INPUT_SHAPE, { name: "image" });
  let h = convBn(input, 16, 3, 1, true);
  h = basicBlock(h, 16, 1);
  h = basicBlock(h, 32, 2);
  h = basicBlock(h, 64, 2);
  h = basicBlock(h, 64, 1);
  const logits = new Dense({ outFeatures: 10 }).apply(new GlobalAvgPool2D().apply(h));
  return new Model({ inputs: input, outputs: logits, name: "resnet-mini", seed });
}

/** depthwise 3×3 → BN → ReLU → pointwise 1×1 → BN → ReLU (MobileNet v1's block). */
function separableBlock(out: number, stride: number): Layer[] {
  return [
    new DepthwiseConv2D({ kernelSize: 3, stride, padding: "same", bias: false }),
    new BatchNorm2D({}),
    new ReLU(),
    new Conv2D({ outChannels: out, kernelSize: 1, bias: false }),
    new BatchNorm2D({}),
    new ReLU(),
  ];
}

const graphBuilders: Partial<Record<ModelName, (seed: number) => Model>> = { "resnet-mini": resnetMini };

const builders: Record<ModelName, () => Layer[]> = {
  "lenet5": () => [
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
  "mlp": () => [
    new Flatten(),
    new Dense({ inFeatures: 28 * 28, outFeatures: 128, init: "he_normal" }),
    new ReLU(),
    new Dense({ inFeatures: 128, outFeatures: 10 }),
  ],
  "resnet-mini": () => [], // a graph: see graphBuilders
  "mobilenet-mini": () => [
    new Conv2D({ outChannels: 16, kernelSize: 3, padding: "same", bias: false }),
    new BatchNorm2D({}),
    new ReLU(),
    ...separableBlock(32, 2),
    ...separableBlock(64, 2),
    ...separableBlock(64, 1),
    ...separableBlock(128, 2),
    new GlobalAvgPool2D(),
    new Dense({ outFeatures: 10 }),
  ],
};

export function isModelName(name: string): name is ModelName {
  return (MODEL_NAMES as readonly string[]).includes(name);
}

/**
 * A zoo model with inputShape [1, 28, 28], its weights drawn from RandomState(seed) (default 0).
 * resnet-mini is a graph Model (a Sequential subclass: it trains, saves and loads the same way).
 */
export function buildModel(name: string, opts: { seed?: number } = {}): Sequential {
  if (!isModelName(name)) throw new RangeError(`unknown model '${name}' (models: ${MODEL_NAMES.join(", ")})`);
  const graph = graphBuilders[name];
  if (graph) return graph(opts.seed ?? 0);
  return new Sequential(builders[name](), { name, inputShape: DIGIT_INPUT_SHAPE, seed: opts.seed ?? 0 });
}
