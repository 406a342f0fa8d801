// The graph models the second fuzzing round mutates (test/fuzz2-*.test.ts): small, and using most of
// the newer layers — a depthwise conv, a normalization, a residual Add, an upsample and a transposed conv
// merged by Concatenate, zero padding, a conv and a LayerNorm — then a head.
import { Input, Model } from "../src/nn/graph.ts";
import { Conv2D } from "../src/nn/conv.ts";
import { DepthwiseConv2D } from "../src/nn/depthwise.ts";
import { Conv2DTranspose } from "../src/nn/transpose.ts";
import { GroupNorm, LayerNorm } from "../src/nn/norm.ts";
import { GELU, ReLU } from "../src/nn/activations.ts";
import { UpSampling2D, ZeroPadding2D } from "../src/nn/upsample.ts";
import { Add, Concatenate } from "../src/nn/merge.ts";
import { Flatten } from "../src/nn/flatten.ts";
import { Dense } from "../src/nn/dense.ts";
import { Dropout } from "../src/nn/dropout.ts";
import { BatchNorm2D } from "../src/nn/batchnorm.ts";
import { MaxPool2D } from "../src/nn/pool.ts";
import { Sequential } from "../src/nn/sequential.ts";
import type { SymbolicTensor } from "../src/nn/layer.ts";

/**
 * The graph on (2, 4, 4) samples, 3 outputs. `forTfjs`: only what TF.js Layers can express (BatchNorm and
 * ReLU instead of GroupNorm and GELU, a plain Flatten → Dense head instead of a nested Sequential).
 */
export function fuzzGraphModel(forTfjs = false): Model {
  const x = Input([2, 4, 4], { name: "img" });
  const dw = new DepthwiseConv2D({ kernelSize: 3, padding: "same" }).apply(x, "dw");
  const norm = (forTfjs ? new BatchNorm2D({}) : new GroupNorm({ groups: 2 })).apply(dw, "norm");
  const res = new Add().apply([x, (forTfjs ? new ReLU() : new GELU()).apply(norm, "act")], "res");
  const up = new UpSampling2D({ size: 2 }).apply(res, "up");
  const tconv = new Conv2DTranspose({ outChannels: 2, kernelSize: 2, stride: 2 }).apply(res, "tconv");
  const cat = new Concatenate({ axis: 1 }).apply([up, tconv], "cat");
  const pad = new ZeroPadding2D({ padding: 1 }).apply(cat, "pad");
  const conv = new Conv2D({ outChannels: 2, kernelSize: 3 }).apply(pad, "conv");
  const relu = new ReLU().apply(new LayerNorm({ axes: 3 }).apply(conv, "ln"), "relu");
  let head: SymbolicTensor;
  if (forTfjs) head = new Dense({ outFeatures: 3 }).apply(new Flatten().apply(relu, "flat"), "logits");
  else {
    const layers = [
      new MaxPool2D({ kernelSize: 2 }),
      new Flatten(),
      new Dropout({ rate: 0.2 }),
      new Dense({ outFeatures: 3 }),
    ];
    head = new Sequential(layers, { name: "head" }).apply(relu, "head");
  }
  return new Model({ inputs: x, outputs: head, seed: 3, name: "fuzzed_graph" });
}
