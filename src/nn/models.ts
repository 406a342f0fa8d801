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
//   cnn-bn     the accurate one: LeNet's plan, wider and batch-normalised (Ioffe & Szegedy 2015)
//              conv 5×5×32 "same" → BN → ReLU → maxpool 2   (32×28×28 → 32×14×14)
//              conv 5×5×64 valid → BN → ReLU → maxpool 2    (64×10×10 → 64×5×5)
//              flatten 1600 → dense 128 → ReLU → dense 10     258,602 params (192: BN running statistics)
//              ≈ 6.0 M multiply-adds per image forward (LeNet-5: 0.42 M); with --augment affine it is
//              the model of the README's most accurate run (command, time, ablation: README "MNIST")
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

export const MODEL_NAMES = ["lenet5", "cnn-small", "mlp", "resnet-mini", "mobilenet-mini", "cnn-bn"] as const;
export type ModelName = (typeof MODEL_NAMES)[number];

/** Shape of one input sample: one channel of 28×28 pixels. */
export const DIGIT_INPUT_SHAPE: readonly number[] = [1, 28, 28];

/**
 * conv → BN (the conv without a bias: the batch norm subtracts any), optionally → ReLU. With bn false (the
 * ablation without batch normalization) the conv keeps its bias and no BN follows.
 */
function convBn(
  x: SymbolicTensor,
  out: number,
  kernelSize: number,
  stride: number,
  relu: boolean,
  bn: boolean,
): SymbolicTensor {
  const conv = new Conv2D({ outChannels: out, kernelSize, stride, padding: "same", bias: !bn }).apply(x);
  const y = bn ? new BatchNorm2D({}).apply(conv) : conv;
  return relu ? new ReLU().apply(y) : y;
}

/** The layers after a bias-free conv: BN (when bn), then ReLU. */
function bnRelu(bn: boolean): Layer[] {
  return bn ? [new BatchNorm2D({}), new ReLU()] : [new ReLU()];
}

/** A ResNet basic block: relu(F(x) + shortcut(x)), shortcut = identity, or conv 1×1 → BN when the shape changes. */
function basicBlock(x: SymbolicTensor, out: number, stride: number, bn: boolean): SymbolicTensor {
  const f = convBn(convBn(x, out, 3, stride, true, bn), out, 3, 1, false, bn);
  const shortcut = stride === 1 && x.shape[0] === out ? x : convBn(x, out, 1, stride, false, bn);
  return new ReLU().apply(new Add().apply([f, shortcut]));
}

function resnetMini(seed: number, bn: boolean): Model {
  const input = Input(DIGIT_INPUT_SHAPE, { name: "image" });
  let h = convBn(input, 16, 3, 1, true, bn);
  h = basicBlock(h, 16, 1, bn);
  h = basicBlock(h, 32, 2, bn);
  h = basicBlock(h, 64, 2, bn);
  h = basicBlock(h, 64, 1, bn);
  const logits = new Dense({ outFeatures: 10 }).apply(new GlobalAvgPool2D().apply(h));
  return new Model({ inputs: input, outputs: logits, name: "resnet-mini", seed });
}

/** depthwise 3×3 → BN → ReLU → pointwise 1×1 → BN → ReLU (MobileNet v1's block). */
function separableBlock(out: number, stride: number, bn: boolean): Layer[] {
  return [
    new DepthwiseConv2D({ kernelSize: 3, stride, padding: "same", bias: !bn }),
    ...bnRelu(bn),
    new Conv2D({ outChannels: out, kernelSize: 1, bias: !bn }),
    ...bnRelu(bn),
  ];
}

const graphBuilders: Partial<Record<ModelName, (seed: number, bn: boolean) => Model>> = { "resnet-mini": resnetMini };

const builders: Record<ModelName, (bn: boolean) => Layer[]> = {
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
  "cnn-bn": (bn) => [
    new Conv2D({ outChannels: 32, kernelSize: 5, padding: "same", bias: !bn }),
    ...bnRelu(bn),
    new MaxPool2D({ kernelSize: 2 }),
    new Conv2D({ outChannels: 64, kernelSize: 5, bias: !bn }),
    ...bnRelu(bn),
    new MaxPool2D({ kernelSize: 2 }),
    new Flatten(),
    new Dense({ outFeatures: 128, init: "he_normal" }),
    new ReLU(),
    new Dense({ outFeatures: 10 }),
  ],
  "mobilenet-mini": (bn) => [
    new Conv2D({ outChannels: 16, kernelSize: 3, padding: "same", bias: !bn }),
    ...bnRelu(bn),
    ...separableBlock(32, 2, bn),
    ...separableBlock(64, 2, bn),
    ...separableBlock(64, 1, bn),
    ...separableBlock(128, 2, bn),
    new GlobalAvgPool2D(),
    new Dense({ outFeatures: 10 }),
  ],
};

/** Whether name is one of the zoo's models (MODEL_NAMES), for buildModel. */
export function isModelName(name: string): name is ModelName {
  return (MODEL_NAMES as readonly string[]).includes(name);
}

/** The zoo models that normalise with BatchNorm (the ones `batchNorm: false` applies to). */
export const MODELS_WITH_BATCH_NORM: readonly ModelName[] = ["cnn-bn", "resnet-mini", "mobilenet-mini"];

export interface BuildModelOptions {
  /** Seed of the initial weights (default 0). */
  seed?: number;
  /**
   * false: the same architecture without its BatchNorm layers, each convolution getting a bias instead
   * (for ablations; default true). Only for the models in MODELS_WITH_BATCH_NORM.
   */
  batchNorm?: boolean;
}

/**
 * A zoo model with inputShape [1, 28, 28], its weights drawn from RandomState(seed) (default 0).
 * resnet-mini is a graph Model (a Sequential subclass: it trains, saves and loads the same way).
 */
export function buildModel(name: string, opts: BuildModelOptions = {}): Sequential {
  if (!isModelName(name)) throw new RangeError(`unknown model '${name}' (models: ${MODEL_NAMES.join(", ")})`);
  const bn = opts.batchNorm ?? true;
  if (!bn && !MODELS_WITH_BATCH_NORM.includes(name))
    throw new RangeError(
      `buildModel: '${name}' has no batch normalization to leave out (batchNorm: false applies to ${MODELS_WITH_BATCH_NORM.join(", ")})`,
    );
  const seed = opts.seed ?? 0;
  const graph = graphBuilders[name];
  if (graph) return graph(seed, bn);
  return new Sequential(builders[name](bn), { name, inputShape: DIGIT_INPUT_SHAPE, seed });
}
