// The TensorFlow.js Layers format, both ways: a Sequential model ⇄ model.json (a Keras Sequential
// topology with snake_case configs) + weights.bin (float32 little-endian, in manifest order).
//
// Layout. TF.js is channels-last: images are NHWC where handprop is NCHW, so weights are permuted on
// the way out and back in:
//   Conv2D kernel   handprop (out, in, kh, kw)  ⇄  TF [kh, kw, in, out]
//   Dense kernel    handprop (in, out)          =  TF [in, out], except after a Flatten of an image:
//                   handprop flattens (C, H, W) as f = c·H·W + h·W + w, TF flattens (H, W, C) as
//                   f' = h·W·C + w·C + c, so row f' of TF's kernel is row f of handprop's. The same
//                   permutation applies to a BatchNorm1D's per-feature parameters between the two.
//
// Layer mapping (handprop → TF.js; the import accepts the same and a few more, see fromTfjsArtifacts):
//   Conv2D           Conv2D; padding "same"/"valid" map directly, explicit padding that equals TF's
//                    "same" for the layer's input size becomes "same", any other explicit padding a
//                    ZeroPadding2D before a "valid" Conv2D. Dilation → dilation_rate.
//   MaxPool2D        MaxPooling2D: padding 0 → "valid"; padding equal to TF's "same" windows → "same";
//                    anything else is rejected (zero padding would change the max of negative windows).
//   AvgPool2D        AveragePooling2D: padding 0 → "valid"; countIncludePad false with "same" windows →
//                    "same" (TF leaves padded cells out of the divisor); countIncludePad true →
//                    ZeroPadding2D + "valid" (zeros counted, divisor kh·kw); else rejected.
//   GlobalAvgPool2D  GlobalAveragePooling2D
//   BatchNorm1D/2D   BatchNormalization (axis −1, epsilon, momentum = 1 − handprop's: Keras weighs the
//                    OLD running value; gamma/beta/moving_mean/moving_variance)
//   Dropout          Dropout (rate)
//   ReLU/Tanh/Sigmoid/Softmax   Activation (Softmax only over TF's last axis: features or channels)
//   LeakyReLU        LeakyReLU (alpha)
// Activations stay separate layers, so handprop → TF.js → handprop rebuilds the same layer list.
// Weights are written as float32 (a float64 model is rounded); the round trip of a float32 model is exact.

import { printable } from "./model-format.ts";
import { shapeSize, formatShape } from "../nd/ndarray.ts";
import { Sequential } from "../nn/sequential.ts";
import type { Layer, Param, SymbolicTensor } from "../nn/layer.ts";
import { Conv2D, samePadding } from "../nn/conv.ts";
import { DepthwiseConv2D, SeparableConv2D } from "../nn/depthwise.ts";
import { Input, Model } from "../nn/graph.ts";
import { Add, Concatenate, Multiply } from "../nn/merge.ts";
import { UpSampling2D, ZeroPadding2D } from "../nn/upsample.ts";
import { GlobalMaxPool2D } from "../nn/reshape.ts";
import { Conv2DTranspose } from "../nn/transpose.ts";
import { LayerNorm } from "../nn/norm.ts";
import { Dense } from "../nn/dense.ts";
import { Flatten } from "../nn/flatten.ts";
import { AvgPool2D, GlobalAvgPool2D, MaxPool2D } from "../nn/pool.ts";
import { BatchNorm1D, BatchNorm2D } from "../nn/batchnorm.ts";
import { Dropout } from "../nn/dropout.ts";
import { ELU, GELU, LeakyReLU, ReLU, SiLU, Sigmoid, Softmax, Tanh } from "../nn/activations.ts";
import { float32LE } from "./onnx.ts";
import { HANDPROP_VERSION } from "./model-format.ts";

type NDArrayLike = { readonly data: ArrayLike<number> };

/** One entry of a weights manifest: the values are float32, row-major, in TF's layout. */
export interface TfjsWeightSpec {
  name: string;
  shape: number[];
  dtype: string;
}

export interface TfjsWeightsGroup {
  paths: string[];
  weights: TfjsWeightSpec[];
}

/** The contents of a TF.js Layers model.json. */
export interface TfjsModelJson {
  format: "layers-model";
  generatedBy: string;
  convertedBy: string | null;
  modelTopology: KerasModelTopology;
  weightsManifest: TfjsWeightsGroup[];
  userDefinedMetadata?: Record<string, string>;
}

export interface KerasLayerJson {
  class_name: string;
  config: Record<string, unknown>;
  /** Functional models: the layer's name and the tensors it reads ([[[layer, 0, 0, {}], …]]). */
  name?: string;
  inbound_nodes?: unknown[];
}

export interface KerasModelTopology {
  class_name: "Sequential" | "Model";
  config: { name: string; layers: KerasLayerJson[]; input_layers?: unknown[]; output_layers?: unknown[] };
  keras_version: string;
  backend: string;
}

export interface TfjsArtifacts {
  modelJson: TfjsModelJson;
  /** The concatenated float32 little-endian weights, in manifest order (the contents of weights.bin). */
  weightData: ArrayBuffer;
}

/** A model.json (or weight data) that cannot be read or has no handprop equivalent; says which layer and field. */
export class TfjsFormatError extends Error {
  override name = "TfjsFormatError";
  constructor(message: string, options?: ErrorOptions) {
    super(printable(message), options); // names and values from a file never reach a terminal raw
  }
}

export interface TfjsExportOptions {
  /** Shape of one input sample in handprop's layout, (C, H, W) or (F,) (default: the model's inputShape). */
  inputShape?: readonly number[];
  /** Stored as model.json's userDefinedMetadata (TF.js returns it from model.getUserDefinedMetadata()). */
  metadata?: Readonly<Record<string, string>>;
}

// ---------------------------------------------------------------------------------------------------
// Permutations between handprop's and TF's layouts.

/** handprop conv kernel (O, C, kh, kw) → TF [kh, kw, C, O]. */
function convKernelToTf(w: ArrayLike<number>, O: number, C: number, kh: number, kw: number): Float32Array {
  const out = new Float32Array(O * C * kh * kw);
  for (let o = 0; o < O; o++)
    for (let c = 0; c < C; c++)
      for (let p = 0; p < kh; p++) for (let q = 0; q < kw; q++) out[((p * kw + q) * C + c) * O + o] = w[((o * C + c) * kh + p) * kw + q];
  return out;
}

/** TF conv kernel [kh, kw, C, O] → handprop (O, C, kh, kw). */
function convKernelFromTf(t: ArrayLike<number>, O: number, C: number, kh: number, kw: number): Float32Array {
  const out = new Float32Array(O * C * kh * kw);
  for (let o = 0; o < O; o++)
    for (let c = 0; c < C; c++)
      for (let p = 0; p < kh; p++) for (let q = 0; q < kw; q++) out[((o * C + c) * kh + p) * kw + q] = t[((p * kw + q) * C + c) * O + o];
  return out;
}

/**
 * For a flattened (C, H, W) image: nhwcIndex[f] = the channels-last position h·W·C + w·C + c of the
 * feature handprop numbers f = c·H·W + h·W + w.
 */
function nhwcIndex([C, H, W]: readonly number[]): Int32Array {
  const idx = new Int32Array(C * H * W);
  for (let c = 0; c < C; c++) for (let h = 0; h < H; h++) for (let w = 0; w < W; w++) idx[c * H * W + h * W + w] = h * W * C + w * C + c;
  return idx;
}

/** Rows of a (F, cols) matrix: out[idx[f]] = x[f] to go to TF, out[f] = x[idx[f]] to come back. */
function permuteRows(x: ArrayLike<number>, idx: Int32Array, cols: number, toTf: boolean): Float32Array {
  const out = new Float32Array(idx.length * cols);
  for (let f = 0; f < idx.length; f++) {
    const [dst, src] = toTf ? [idx[f], f] : [f, idx[f]];
    for (let j = 0; j < cols; j++) out[dst * cols + j] = x[src * cols + j];
  }
  return out;
}

/** handprop's Softmax axis on an NCHW batch (rank 4) ⇄ TF's on NHWC: N→N, C→3, H→1, W→2. */
const NCHW_TO_NHWC_AXIS = [0, 3, 1, 2];
const NHWC_TO_NCHW_AXIS = [0, 2, 3, 1];

// ---------------------------------------------------------------------------------------------------
// Export

/**
 * Does TF's "same" padding give the same windows as explicit padding (before, after) along one axis?
 * Both start the first window at −before; TF makes ⌈size/s⌉ windows, explicit padding
 * ⌊(size + before + after − d·(k − 1) − 1)/s⌋ + 1. Equal starts and counts mean equal results (a
 * window never reads a padded cell the other does not: both pad with zeros, or both ignore padding).
 */
function matchesTfSame(size: number, k: number, s: number, d: number, before: number, after: number): boolean {
  return samePadding(size, k, s, d)[0] === before && Math.ceil(size / s) === Math.floor((size + before + after - d * (k - 1) - 1) / s) + 1;
}

/** Convert a Sequential to a TF.js Layers model.json and its weight data. */
export function toTfjsArtifacts(model: Sequential, opts: TfjsExportOptions = {}): TfjsArtifacts {
  const inputShape = opts.inputShape ?? model.inputShape;
  if (!inputShape) throw new Error(`toTfjsArtifacts: the input shape of ${model.name} is unknown: pass {inputShape} (e.g. [1, 28, 28]) or construct the Sequential with inputShape`);
  if (inputShape.length !== 3 && inputShape.length !== 1) {
    throw new Error(`toTfjsArtifacts: input samples of shape ${formatShape(inputShape)} are not supported: expected images (C, H, W) or feature vectors (F,)`);
  }
  // a graph Model becomes a functional TF.js model ("Model" topology: layers with inbound_nodes)
  const graph = model instanceof Model ? model : null;
  const shapes = model.build(inputShape); // validates every layer for this input
  const layers: KerasLayerJson[] = [];
  const specs: TfjsWeightSpec[] = [];
  const values: Float32Array[] = [];
  let flattened: Int32Array | null = null; // set between a Flatten of an image and the next Dense

  let inbound: string[] = []; // functional: what the next Keras layer reads
  const add = (className: string, name: string, config: Record<string, unknown>): void => {
    const full: Record<string, unknown> = { name, trainable: true, dtype: "float32", ...config };
    if (graph) {
      layers.push({ class_name: className, name, config: full, inbound_nodes: [inbound.map((t) => [t, 0, 0, {}])] });
      inbound = [name]; // a layer emitted in two parts (ZeroPadding2D + Conv2D) chains them
      return;
    }
    if (layers.length === 0) {
      const [C, H, W] = inputShape;
      full.batch_input_shape = inputShape.length === 3 ? [null, H, W, C] : [null, inputShape[0]];
    }
    layers.push({ class_name: className, config: full });
  };
  const weight = (layerName: string, name: string, shape: number[], data: ArrayLike<number>): void => {
    specs.push({ name: `${layerName}/${name}`, shape, dtype: "float32" });
    values.push(Float32Array.from(data));
  };

  const exportLayer = (layer: Layer, i: number, inShape: readonly number[]): void => {
    const rank = inShape.length + 1; // with the batch axis
    if (layer instanceof Conv2D || layer instanceof DepthwiseConv2D || layer instanceof SeparableConv2D) {
      // a SeparableConv2D's window geometry is its depthwise half's (the pointwise half is 1×1)
      const geom = layer instanceof SeparableConv2D ? layer.depthwise : layer;
      const depthwise = geom instanceof DepthwiseConv2D && !(layer instanceof SeparableConv2D);
      if (layer instanceof Conv2D && layer.groups !== 1) {
        // tfjs-layers' Conv2D has no "groups" (Keras 2.3+ has; TF.js 4.22 does not): refuse rather than mislead
        throw new Error(`toTfjsArtifacts: ${layer.describe()}: groups ${layer.groups}: TF.js Layers' Conv2D has no groups (only groups 1, or a DepthwiseConv2D)`);
      }
      const [C, H, W] = inShape;
      const [kh, kw] = geom.kernelSize;
      const [sh, sw] = geom.stride;
      const [dh, dw] = geom.dilation;
      if (depthwise && (dh > 1 || dw > 1)) {
        // tfjs-layers 4.22's DepthwiseConv2D.call passes no dilation to the op ("TODO: Add support for dilation")
        throw new Error(`toTfjsArtifacts: ${layer.describe()}: dilation ${dh}×${dw}: TF.js Layers' DepthwiseConv2D ignores dilation_rate`);
      }
      if ((sh > 1 || sw > 1) && (dh > 1 || dw > 1)) {
        throw new Error(`toTfjsArtifacts: ${layer.describe()}: TF.js cannot combine strides ${sh}×${sw} with dilation ${dh}×${dw} (one of them must be 1)`);
      }
      const [top, bottom, left, right] = geom.paddingFor(H, W);
      let padding: "same" | "valid";
      if (geom.padding === "same" || geom.padding === "valid") padding = geom.padding;
      else if (top + bottom + left + right === 0) padding = "valid";
      else if (matchesTfSame(H, kh, sh, dh, top, bottom) && matchesTfSame(W, kw, sw, dw, left, right)) padding = "same";
      else {
        add("ZeroPadding2D", `zero_padding2d_${i}`, { padding: [[top, bottom], [left, right]], data_format: "channels_last" });
        padding = "valid";
      }
      if (layer instanceof DepthwiseConv2D) {
        // TF's depthwise_kernel [kh, kw, C, M] holds output channel c·M + m at [p, q, c, m]: handprop's
        // (C·M, 1, kh, kw) read as (O = C·M, C' = 1) in convKernelToTf's [kh, kw, C', O] order is the same array.
        const name = `depthwise_conv2d_${i}`;
        const M = layer.depthMultiplier;
        add("DepthwiseConv2D", name, {
          kernel_size: [kh, kw],
          strides: [sh, sw],
          padding,
          depth_multiplier: M,
          data_format: "channels_last",
          dilation_rate: [dh, dw],
          activation: "linear",
          use_bias: layer.bias !== null,
        });
        weight(name, "depthwise_kernel", [kh, kw, C, M], convKernelToTf(layer.weight.value.data, C * M, 1, kh, kw));
        if (layer.bias) weight(name, "bias", [C * M], layer.bias.value.data);
        return;
      }
      if (layer instanceof SeparableConv2D) {
        // depthwise_kernel [kh, kw, C, M] as for DepthwiseConv2D; pointwise_kernel [1, 1, C·M, O] is the 1×1
        // Conv2D's kernel in TF's order; the bias is the pointwise convolution's.
        const name = `separable_conv2d_${i}`;
        const M = layer.depthwise.depthMultiplier;
        const O = layer.outChannels;
        const pointBias = layer.pointwise.bias;
        add("SeparableConv2D", name, {
          filters: O,
          kernel_size: [kh, kw],
          strides: [sh, sw],
          padding,
          depth_multiplier: M,
          data_format: "channels_last",
          dilation_rate: [dh, dw],
          activation: "linear",
          use_bias: pointBias !== null,
        });
        weight(name, "depthwise_kernel", [kh, kw, C, M], convKernelToTf(layer.depthwise.weight.value.data, C * M, 1, kh, kw));
        weight(name, "pointwise_kernel", [1, 1, C * M, O], convKernelToTf(layer.pointwise.weight.value.data, O, C * M, 1, 1));
        if (pointBias) weight(name, "bias", [O], pointBias.value.data);
        return;
      }
      const name = `conv2d_${i}`;
      add("Conv2D", name, {
        filters: layer.outChannels,
        kernel_size: [kh, kw],
        strides: [sh, sw],
        padding,
        data_format: "channels_last",
        dilation_rate: [dh, dw],
        activation: "linear",
        use_bias: layer.useBias,
      });
      weight(name, "kernel", [kh, kw, C, layer.outChannels], convKernelToTf(layer.weight.value.data, layer.outChannels, C, kh, kw));
      if (layer.bias) weight(name, "bias", [layer.outChannels], layer.bias.value.data);
    } else if (layer instanceof MaxPool2D || layer instanceof AvgPool2D) {
      const [, H, W] = inShape;
      const [kh, kw] = layer.kernelSize;
      const [sh, sw] = layer.stride;
      const [ph, pw] = layer.padding;
      const isMax = layer instanceof MaxPool2D;
      const className = isMax ? "MaxPooling2D" : "AveragePooling2D";
      const name = `${isMax ? "max" : "average"}_pooling2d_${i}`;
      let padding: "same" | "valid";
      const countsPad = !isMax && layer.countIncludePad;
      if (ph === 0 && pw === 0) padding = "valid";
      else if (!countsPad && matchesTfSame(H, kh, sh, 1, ph, ph) && matchesTfSame(W, kw, sw, 1, pw, pw)) padding = "same";
      else if (countsPad) {
        add("ZeroPadding2D", `zero_padding2d_${i}`, { padding: [[ph, ph], [pw, pw]], data_format: "channels_last" });
        padding = "valid";
      } else {
        throw new Error(
          `toTfjsArtifacts: ${layer.describe()}: padding ${ph}×${pw} on a ${H}×${W} input has no TF.js equivalent: ` +
            `TF pads poolings only as "same" (here ${samePadding(H, kh, sh, 1).join("+")} rows, ${samePadding(W, kw, sw, 1).join("+")} columns)` +
            (isMax ? ", and zero padding would change the max of all-negative windows" : ", and zero padding would count padded cells (countIncludePad is false)"),
        );
      }
      add(className, name, { pool_size: [kh, kw], strides: [sh, sw], padding, data_format: "channels_last" });
    } else if (layer instanceof GlobalAvgPool2D) {
      add("GlobalAveragePooling2D", `global_average_pooling2d_${i}`, { data_format: "channels_last" });
    } else if (layer instanceof Conv2DTranspose) {
      // TF.js's Conv2DTranspose has no dilation and no output padding: "valid" is handprop's padding 0
      // (output (H − 1)·s + k, for k ≥ s); "same" (output H·s) is a symmetric crop 2p = k − s.
      const [kh, kw] = layer.kernelSize;
      const [sh, sw] = layer.stride;
      const [ph, pw] = layer.padding;
      const k = [kh, kw], st = [sh, sw], p = [ph, pw];
      const valid = [0, 1].every((a) => p[a] === 0 && k[a] >= st[a]);
      const same = [0, 1].every((a) => 2 * p[a] === k[a] - st[a]);
      if (layer.dilation.some((d) => d !== 1) || layer.outputPadding.some((d) => d !== 0) || (!valid && !same)) {
        throw new Error(`toTfjsArtifacts: ${layer.describe()}: TF.js Layers' Conv2DTranspose has no dilation or output padding and crops only as "valid" (padding 0, kernel ≥ stride) or "same" (2·padding = kernel − stride); got padding ${ph}×${pw}, output padding ${layer.outputPadding.join("×")}, dilation ${layer.dilation.join("×")}`);
      }
      const Ci = layer.inChannels;
      const Co = layer.outChannels;
      const name = `conv2d_transpose_${i}`;
      add("Conv2DTranspose", name, {
        filters: Co,
        kernel_size: [kh, kw],
        strides: [sh, sw],
        padding: valid ? "valid" : "same",
        data_format: "channels_last",
        dilation_rate: [1, 1],
        activation: "linear",
        use_bias: layer.bias !== null,
      });
      // handprop (Ci, Co, kh, kw) → TF [kh, kw, Co, Ci]: convKernelToTf with (O, C) = (Ci, Co)
      weight(name, "kernel", [kh, kw, Co, Ci], convKernelToTf(layer.weight.value.data, Ci, Co, kh, kw));
      if (layer.bias) weight(name, "bias", [Co], layer.bias.value.data);
    } else if (layer instanceof LayerNorm) {
      // the trailing `axes` sample axes; on an image those are NHWC axes too, in another order when C is among them
      const r = inShape.length;
      let axis: number[];
      let perm: ((d: ArrayLike<number>) => ArrayLike<number>) | null = null;
      if (r === 1) {
        axis = [1];
        const f = flattened;
        if (f) perm = (d) => permuteRows(d, f, 1, true);
      } else if (layer.axes === 3) {
        axis = [1, 2, 3];
        const idx = nhwcIndex(inShape);
        perm = (d) => permuteRows(d, idx, 1, true);
      } else axis = layer.axes === 2 ? [1, 2] : [2];
      const name = `layer_normalization_${i}`;
      add("LayerNormalization", name, { axis, epsilon: layer.eps, center: layer.affine, scale: layer.affine });
      const dims = axis.map((a) => (r === 1 ? inShape[0] : [0, inShape[1], inShape[2], inShape[0]][a]));
      const data = (v: NDArrayLike) => (perm ? perm(v.data) : v.data);
      if (layer.gamma) weight(name, "gamma", dims, data(layer.gamma.value));
      if (layer.beta) weight(name, "beta", dims, data(layer.beta.value));
    } else if (layer instanceof GlobalMaxPool2D) {
      add("GlobalMaxPooling2D", `global_max_pooling2d_${i}`, { data_format: "channels_last" });
    } else if (layer instanceof ZeroPadding2D) {
      const [top, bottom, left, right] = layer.pads;
      add("ZeroPadding2D", `zero_padding2d_${i}`, { padding: [[top, bottom], [left, right]], data_format: "channels_last" });
    } else if (layer instanceof UpSampling2D) {
      // tfjs-layers resizes without half-pixel centres: nearest (⌊i/s⌋) agrees with handprop, bilinear does not
      if (layer.interpolation !== "nearest") {
        throw new Error(`toTfjsArtifacts: ${layer.describe()}: bilinear upsampling: TF.js Layers' UpSampling2D samples without half-pixel centres (handprop uses them, as PyTorch and TF 2's resize)`);
      }
      add("UpSampling2D", `up_sampling2d_${i}`, { size: layer.size.slice(), interpolation: "nearest", data_format: "channels_last" });
    } else if (layer instanceof GELU) {
      if (layer.approximate === "tanh") {
        // tfjs-layers 4.22 registers it as "gelu_new" but looks "gelu_new" up as "geluNew": it cannot load it
        throw new Error(`toTfjsArtifacts: ${layer.describe()}: GELU's tanh form ("gelu_new") does not load in TF.js Layers 4.22; use the exact (erf) form`);
      }
      add("Activation", `activation_${i}`, { activation: "gelu" });
    } else if (layer instanceof SiLU) {
      add("Activation", `activation_${i}`, { activation: "swish" });
    } else if (layer instanceof ELU) {
      if (layer.alpha !== 1) throw new Error(`toTfjsArtifacts: ${layer.describe()}: alpha ${layer.alpha}: TF.js Layers' ELU supports alpha 1 only`);
      add("Activation", `activation_${i}`, { activation: "elu" });
    } else if (layer instanceof Flatten) {
      if (inShape.length === 3) flattened = nhwcIndex(inShape); // flattening features again keeps their order
      add("Flatten", `flatten_${i}`, { data_format: "channels_last" });
    } else if (layer instanceof Dense) {
      const name = `dense_${i}`;
      add("Dense", name, { units: layer.outFeatures, activation: "linear", use_bias: layer.useBias });
      const w = layer.weight.value.data;
      weight(name, "kernel", [layer.inFeatures, layer.outFeatures], flattened ? permuteRows(w, flattened, layer.outFeatures, true) : w);
      if (layer.bias) weight(name, "bias", [layer.outFeatures], layer.bias.value.data);
      flattened = null;
    } else if (layer instanceof BatchNorm1D || layer instanceof BatchNorm2D) {
      const name = `batch_normalization_${i}`;
      add("BatchNormalization", name, { axis: -1, momentum: 1 - layer.momentum, epsilon: layer.eps, center: layer.affine, scale: layer.affine });
      const perFeature = (p: Param) => (layer instanceof BatchNorm1D && flattened ? permuteRows(p.value.data, flattened, 1, true) : p.value.data);
      const C = layer.numFeatures;
      if (layer.gamma) weight(name, "gamma", [C], perFeature(layer.gamma));
      if (layer.beta) weight(name, "beta", [C], perFeature(layer.beta));
      weight(name, "moving_mean", [C], perFeature(layer.runningMean));
      weight(name, "moving_variance", [C], perFeature(layer.runningVar));
    } else if (layer instanceof Dropout) {
      add("Dropout", `dropout_${i}`, { rate: layer.rate });
    } else if (layer instanceof ReLU || layer instanceof Tanh || layer instanceof Sigmoid) {
      add("Activation", `activation_${i}`, { activation: layer.type.toLowerCase() });
    } else if (layer instanceof LeakyReLU) {
      add("LeakyReLU", `leaky_re_lu_${i}`, { alpha: layer.alpha });
    } else if (layer instanceof Softmax) {
      const axis = layer.axis < 0 ? layer.axis + rank : layer.axis;
      const tfAxis = rank === 4 ? NCHW_TO_NHWC_AXIS[axis] : axis;
      // TF.js's softmax runs only over the last axis ("Softmax along a non-last dimension is not yet
      // supported"): the features, or an image's channels (handprop's axis 1).
      if (tfAxis !== rank - 1) {
        throw new Error(`toTfjsArtifacts: ${layer.describe()}: softmax over axis ${layer.axis} of an NCHW input is axis ${tfAxis} in NHWC, and TF.js only supports softmax over the last axis (handprop's axis 1, the channels)`);
      }
      add("Activation", `activation_${i}`, { activation: "softmax" });
    } else if (layer instanceof Add || layer instanceof Multiply) {
      add(layer.type, `${layer.type.toLowerCase()}_${i}`, {});
    } else if (layer instanceof Concatenate) {
      if (flattened !== null) {
        throw new Error(`toTfjsArtifacts: ${layer.describe()}: concatenating flattened images would interleave two NHWC orders; concatenate before the Flatten`);
      }
      const axis = layer.axis < 0 ? layer.axis + rank : layer.axis;
      add("Concatenate", `concatenate_${i}`, { axis: rank === 4 ? NCHW_TO_NHWC_AXIS[axis] : axis });
    } else {
      throw new Error(`toTfjsArtifacts: ${layer.describe()} has no TF.js Layers equivalent here`);
    }
  };

  let outputLayer = "";
  if (graph === null) {
    model.layers.forEach((layer, i) => {
      exportLayer(layer, i, i === 0 ? inputShape : shapes[i - 1]);
    });
  } else {
    // Tensors numbered as in the Model: 0 its input, k + 1 node k's output; each remembers its Keras
    // layer and whether it holds a flattened image (whose Dense rows must be permuted).
    const [C, H, W] = inputShape;
    const inputName = "input_0";
    const batchInputShape = inputShape.length === 3 ? [null, H, W, C] : [null, inputShape[0]];
    layers.push({
      class_name: "InputLayer",
      name: inputName,
      config: { batch_input_shape: batchInputShape, dtype: "float32", sparse: false, name: inputName },
      inbound_nodes: [],
    });
    const allShapes = [inputShape.slice(), ...shapes];
    const ids = new Map(graph.nodes.map((n, k) => [n, k + 1]));
    const names = [inputName];
    const flat: (Int32Array | null)[] = [null];
    graph.nodes.forEach((n, k) => {
      const inIds = n.inputs.map((t) => (t.node === null ? 0 : ids.get(t.node)!));
      flattened = flat[inIds[0]];
      const sameOrder = (o: Int32Array | null) =>
        o === flattened || (o !== null && flattened !== null && o.length === flattened.length && o.every((v, j) => v === flattened![j]));
      if (!inIds.every((id) => sameOrder(flat[id]))) {
        throw new Error(`toTfjsArtifacts: ${n.layer.describe()}: its inputs mix flattened images and other tensors; merge before the Flatten`);
      }
      inbound = inIds.map((id) => names[id]);
      exportLayer(n.layer, k + 1, allShapes[inIds[0]]);
      names[k + 1] = inbound[0];
      flat[k + 1] = flattened;
    });
    outputLayer = names[graph.output.node === null ? 0 : ids.get(graph.output.node)!];
  }

  // weights.bin: every weight's float32 values, little-endian, in manifest order.
  const total = values.reduce((s, v) => s + v.length, 0);
  const bytes = new Uint8Array(total * 4);
  let off = 0;
  for (const v of values) {
    bytes.set(float32LE(v), off);
    off += v.length * 4;
  }
  const modelJson: TfjsModelJson = {
    format: "layers-model",
    generatedBy: `handprop ${HANDPROP_VERSION}`,
    convertedBy: `handprop ${HANDPROP_VERSION}`,
    modelTopology: {
      class_name: graph ? "Model" : "Sequential",
      config: graph
        ? { name: model.name, layers, input_layers: [["input_0", 0, 0]], output_layers: [[outputLayer, 0, 0]] }
        : { name: model.name, layers },
      keras_version: "tfjs-layers 4.22.0", // the TF.js version this format was verified against
      backend: "tensor_flow.js",
    },
    weightsManifest: [{ paths: ["weights.bin"], weights: specs }],
  };
  if (opts.metadata) modelJson.userDefinedMetadata = { ...opts.metadata };
  return { modelJson, weightData: bytes.buffer };
}

// ---------------------------------------------------------------------------------------------------
// Import

const KNOWN_TF_DTYPES = ["float32", "int32", "bool", "complex64", "string", "float16", "uint8", "int8", "int16", "int64", "float64"];

interface LoadedWeight {
  spec: TfjsWeightSpec;
  data: Float32Array;
  used: boolean;
}

type Json = Record<string, unknown>;

function isObject(v: unknown): v is Json {
  return typeof v === "object" && v !== null && !Array.isArray(v);
}

function isShape(v: unknown): v is number[] {
  return Array.isArray(v) && v.every((d) => typeof d === "number" && Number.isInteger(d) && d >= 0);
}

/** Concatenate the bytes of ArrayBuffer | view | ArrayBuffer[] (TF.js uses all three). */
function toBytes(w: ArrayBuffer | ArrayBufferView | readonly ArrayBuffer[]): Uint8Array {
  if (w instanceof ArrayBuffer) return new Uint8Array(w);
  if (ArrayBuffer.isView(w)) return new Uint8Array(w.buffer, w.byteOffset, w.byteLength);
  if (Array.isArray(w)) {
    const parts = w.map((b) => new Uint8Array(b));
    const out = new Uint8Array(parts.reduce((s, p) => s + p.length, 0));
    let off = 0;
    for (const p of parts) {
      out.set(p, off);
      off += p.length;
    }
    return out;
  }
  throw new TfjsFormatError("weight data must be an ArrayBuffer, a typed array or an array of ArrayBuffers");
}

/** The weight specs of a model.json (weightsManifest) or of TF.js ModelArtifacts (weightSpecs). */
function weightSpecsOf(json: Json, where: string): TfjsWeightSpec[] {
  let raw: unknown[];
  if (Array.isArray(json.weightsManifest)) {
    raw = [];
    json.weightsManifest.forEach((g: unknown, gi) => {
      if (!isObject(g) || !Array.isArray(g.weights)) throw new TfjsFormatError(`${where}: weightsManifest[${gi}] must be an object with a "weights" array`);
      raw.push(...(g.weights as unknown[]));
    });
  } else if (Array.isArray(json.weightSpecs)) raw = json.weightSpecs as unknown[];
  else throw new TfjsFormatError(`${where}: no "weightsManifest" array (nor TF.js "weightSpecs")`);
  return raw.map((s, i) => {
    if (!isObject(s) || typeof s.name !== "string") throw new TfjsFormatError(`${where}: weight ${i} has no string "name"`);
    if (!isShape(s.shape)) throw new TfjsFormatError(`${where}: weight "${s.name}": "shape" must be an array of non-negative integers, got ${JSON.stringify(s.shape)}`);
    if (s.quantization !== undefined && s.quantization !== null) {
      throw new TfjsFormatError(`${where}: weight "${s.name}" is quantized ("quantization" field); only plain float32 weights are supported`);
    }
    const dtype = s.dtype ?? "float32";
    if (dtype !== "float32") {
      const known = typeof dtype === "string" && KNOWN_TF_DTYPES.includes(dtype);
      throw new TfjsFormatError(`${where}: weight "${s.name}" has ${known ? "unsupported" : "unknown"} dtype ${JSON.stringify(dtype)} (only "float32" is supported)`);
    }
    return { name: s.name, shape: s.shape, dtype };
  });
}

/** Split the weight bytes by the specs, checking that the sizes add up exactly. */
function splitWeights(specs: TfjsWeightSpec[], bytes: Uint8Array, source: string): Map<string, LoadedWeight> {
  const needed = specs.reduce((s, w) => s + shapeSize(w.shape) * 4, 0);
  if (bytes.length !== needed) {
    throw new TfjsFormatError(`${source}: has ${bytes.length} bytes, but the weights manifest's ${specs.length} float32 weights need ${needed} bytes`);
  }
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const out = new Map<string, LoadedWeight>();
  let off = 0;
  for (const spec of specs) {
    const n = shapeSize(spec.shape);
    const data = new Float32Array(n);
    for (let i = 0; i < n; i++) data[i] = view.getFloat32(off + i * 4, true);
    off += n * 4;
    if (out.has(spec.name)) throw new TfjsFormatError(`model.json: "weightsManifest": weight "${spec.name}" appears twice`);
    out.set(spec.name, { spec, data, used: false });
  }
  return out;
}

/** Reads one Keras layer's config, with errors naming the layer and the field. */
class LayerReader {
  readonly where: string;
  constructor(
    readonly index: number,
    readonly className: string,
    readonly name: string,
    readonly config: Json,
  ) {
    this.where = `model.json: layer ${index} "${name}" (${className})`;
  }

  fail(field: string, message: string): never {
    throw new TfjsFormatError(`${this.where}: field "${field}" ${message}`);
  }

  has(field: string): boolean {
    return this.config[field] !== undefined && this.config[field] !== null;
  }

  number(field: string, fallback?: number): number {
    const v = this.config[field] ?? fallback;
    if (typeof v !== "number" || !Number.isFinite(v)) this.fail(field, `must be a number, got ${JSON.stringify(v)}`);
    return v;
  }

  positiveInt(field: string, fallback?: number): number {
    const v = this.number(field, fallback);
    if (!Number.isInteger(v) || v < 1) this.fail(field, `must be a positive integer, got ${v}`);
    return v;
  }

  bool(field: string, fallback: boolean): boolean {
    const v = this.config[field] ?? fallback;
    if (typeof v !== "boolean") this.fail(field, `must be true or false, got ${JSON.stringify(v)}`);
    return v;
  }

  string(field: string, fallback: string): string {
    const v = this.config[field] ?? fallback;
    if (typeof v !== "string") this.fail(field, `must be a string, got ${JSON.stringify(v)}`);
    return v;
  }

  /** n or [a, b] → [a, b] of positive integers. */
  pair(field: string, fallback?: [number, number]): [number, number] {
    const v = this.config[field] ?? fallback;
    const p = typeof v === "number" ? [v, v] : v;
    if (!Array.isArray(p) || p.length !== 2 || !p.every((x) => typeof x === "number" && Number.isInteger(x) && x >= 1)) {
      this.fail(field, `must be a positive integer or a pair of them, got ${JSON.stringify(v)}`);
    }
    return [p[0] as number, p[1] as number];
  }

  padding(): "same" | "valid" {
    const p = this.string("padding", "valid");
    if (p !== "same" && p !== "valid") this.fail("padding", `is ${JSON.stringify(p)}; only "valid" and "same" are supported`);
    return p;
  }

  channelsLast(): void {
    const f = this.config.data_format;
    if (f !== undefined && f !== null && f !== "channels_last") this.fail("data_format", `is ${JSON.stringify(f)}; only "channels_last" is supported`);
  }

  /** Reject a field unless it is absent or has one of the given harmless values. */
  only(field: string, ...allowed: unknown[]): void {
    const v = this.config[field];
    if (v !== undefined && !allowed.some((a) => a === v)) this.fail(field, `= ${JSON.stringify(v)} is not supported (expected ${allowed.map((a) => JSON.stringify(a)).join(" or ")})`);
  }

  /** Layers compute in float32: a string dtype or a Keras 3 DTypePolicy naming float32. */
  float32(): void {
    const d = this.config.dtype;
    const name = isObject(d) && isObject(d.config) ? d.config.name : d;
    if (name !== undefined && name !== null && name !== "float32") this.fail("dtype", `is ${JSON.stringify(name)}; only "float32" layers are supported`);
  }
}

/** A fused activation ("activation" of Conv2D/Dense/Activation) as a handprop layer, null for linear. */
function activationLayer(r: LayerReader, sampleRank: number): Layer | null {
  const a = r.string("activation", "linear");
  switch (a) {
    case "linear":
      return null;
    case "relu":
      return new ReLU();
    case "tanh":
      return new Tanh();
    case "sigmoid":
      return new Sigmoid();
    case "softmax": // over TF's last axis: the channels of an image, i.e. handprop's axis 1
      return new Softmax({ axis: sampleRank === 3 ? 1 : -1 });
    default:
      return r.fail("activation", `is ${JSON.stringify(a)}; supported: linear, relu, tanh, sigmoid, softmax`);
  }
}

/** The Keras Sequential's layer list and name, whatever wrapper the topology comes in. */
function sequentialLayers(topology: unknown): { name: string | null; layers: unknown[]; functional: Json | null } {
  if (!isObject(topology)) throw new TfjsFormatError(`model.json: "modelTopology" must be an object, got ${JSON.stringify(topology)}`);
  const top = isObject(topology.model_config) ? topology.model_config : topology;
  const cls = top.class_name;
  if (cls === "Model" || cls === "Functional") {
    const config = top.config;
    if (!isObject(config) || !Array.isArray(config.layers)) throw new TfjsFormatError(`model.json: the ${cls}'s "config" must have a "layers" array`);
    return { name: typeof config.name === "string" ? config.name : null, layers: config.layers as unknown[], functional: config };
  }
  if (cls !== "Sequential") {
    throw new TfjsFormatError(`model.json: modelTopology class_name is ${JSON.stringify(cls)}; only Sequential and functional ("Model"/"Functional") models are supported`);
  }
  const config = top.config;
  if (Array.isArray(config)) return { name: null, layers: config as unknown[], functional: null }; // Keras ≤ 2.2: the layer list itself
  if (!isObject(config) || !Array.isArray(config.layers)) throw new TfjsFormatError('model.json: the Sequential\'s "config" must have a "layers" array');
  return { name: typeof config.name === "string" ? config.name : null, layers: config.layers as unknown[], functional: null };
}

/** The importer's state around one Keras layer (the current tensor's handprop shape, …), shared with fromTfjsArtifacts. */
interface ImportState {
  shape: number[];
  flattened: readonly number[] | null;
  pad: { r: LayerReader; tb: [number, number]; lr: [number, number] } | null;
  readonly out: Layer[];
  finish(): void;
}

/**
 * A functional TF.js/Keras 2 model ("Model"/"Functional": layers listed in order, each with
 * inbound_nodes [[[layer, 0, 0, {}], …]]) as a handprop graph Model: each Keras layer becomes the handprop
 * layers processLayer makes for it (a ZeroPadding2D stays a layer here), applied to the tensors it reads;
 * Add, Multiply and Concatenate (its NHWC axis mapped to NCHW) merge. One input and one output.
 */
function functionalModel(
  config: Json, rawLayers: unknown[], readers: LayerReader[], name: string | null, processLayer: (r: LayerReader) => void,
  st: ImportState,
): Model {
  interface Tensor {
    sym: SymbolicTensor;
    shape: number[];
    flattened: readonly number[] | null;
  }
  const tensors = new Map<string, Tensor>();
  let input: SymbolicTensor | null = null;
  const apply = (r: LayerReader, layer: Layer, xs: SymbolicTensor | SymbolicTensor[], nodeName: string): SymbolicTensor => {
    try {
      return layer.apply(xs, nodeName);
    } catch (e) {
      throw new TfjsFormatError(`${r.where}: ${(e as Error).message}`, { cause: e });
    }
  };
  const inboundOf = (r: LayerReader, raw: Json): Tensor[] => {
    const nodes = raw.inbound_nodes;
    if (!Array.isArray(nodes) || nodes.length !== 1 || !Array.isArray(nodes[0]) || nodes[0].length === 0) {
      r.fail("inbound_nodes", "must be one call [[[layer, 0, 0, {}], …]] (each layer applied once; Keras 3's form is not supported)");
    }
    return (nodes[0] as unknown[]).map((t) => {
      if (!Array.isArray(t) || typeof t[0] !== "string" || t[1] !== 0 || t[2] !== 0) {
        return r.fail("inbound_nodes", `has the entry ${JSON.stringify(t)?.slice(0, 80)}; expected [layer name, 0, 0, {}]`);
      }
      const found = tensors.get(t[0]);
      if (!found) return r.fail("inbound_nodes", `reads "${t[0]}", which no earlier layer produces (layers must be listed in execution order)`);
      return found;
    });
  };
  const sameOrder = (a: readonly number[] | null, b: readonly number[] | null) =>
    a === b || (a !== null && b !== null && a.length === b.length && a.every((v, i) => v === b[i]));

  readers.forEach((r, i) => {
    const raw = rawLayers[i] as Json;
    if (r.className === "InputLayer") {
      if (input !== null) throw new TfjsFormatError(`${r.where}: a second input; only models with one input are supported`);
      const shape = inputShapeOf(r);
      input = Input(shape, { name: r.name });
      tensors.set(r.name, { sym: input, shape, flattened: null });
      return;
    }
    const ins = inboundOf(r, raw);
    if (r.className === "Add" || r.className === "Multiply" || r.className === "Concatenate") {
      r.float32();
      if (ins.length < 2) r.fail("inbound_nodes", `lists ${ins.length} input; a merge takes two or more`);
      const flat = ins[0].flattened;
      if (!ins.every((t) => sameOrder(t.flattened, flat)) || (r.className === "Concatenate" && flat !== null)) {
        throw new TfjsFormatError(`${r.where}: merges flattened images (NHWC order) handprop would flatten differently; merge before the Flatten`);
      }
      let layer: Layer;
      if (r.className === "Add") layer = new Add();
      else if (r.className === "Multiply") layer = new Multiply();
      else {
        const rank = ins[0].shape.length + 1;
        const axis = r.config.axis ?? -1;
        if (typeof axis !== "number" || !Number.isInteger(axis) || axis <= -rank || axis >= rank || axis === 0) {
          r.fail("axis", `is ${JSON.stringify(axis)}; expected one non-batch axis of a rank-${rank} tensor`);
        }
        const a = (axis as number) < 0 ? (axis as number) + rank : (axis as number);
        layer = new Concatenate({ axis: rank === 4 ? NHWC_TO_NCHW_AXIS[a] : a });
      }
      const sym = apply(r, layer, ins.map((t) => t.sym), r.name);
      tensors.set(r.name, { sym, shape: sym.shape.slice(), flattened: flat });
      return;
    }
    if (ins.length !== 1) r.fail("inbound_nodes", `lists ${ins.length} inputs; only Add, Multiply and Concatenate take several`);
    st.shape = ins[0].shape.slice();
    st.flattened = ins[0].flattened;
    st.pad = null;
    st.out.length = 0;
    processLayer(r);
    const pad = st.pad as ImportState["pad"];
    if (pad !== null) {
      // nothing to fold it into in a graph: a ZeroPadding2D layer of its own
      const zp = new ZeroPadding2D({ padding: [pad.tb, pad.lr] });
      st.shape = zp.outputShape(st.shape);
      st.out.push(zp);
      st.pad = null;
    }
    let sym = ins[0].sym;
    st.out.forEach((l, j) => {
      sym = apply(r, l, sym, j === st.out.length - 1 ? r.name : `${r.name}_${j}`);
    });
    tensors.set(r.name, { sym, shape: st.shape.slice(), flattened: st.flattened });
  });

  const single = (field: "input_layers" | "output_layers"): Tensor => {
    const list = config[field];
    const entry: unknown = Array.isArray(list) && list.length === 1 ? list[0] : null;
    const layerName: unknown = Array.isArray(entry) ? entry[0] : null;
    const t = typeof layerName === "string" ? tensors.get(layerName) : undefined;
    if (!t) throw new TfjsFormatError(`model.json: "${field}" must name one layer of the model, got ${JSON.stringify(list)?.slice(0, 80)}`);
    return t;
  };
  const inputT = single("input_layers");
  const outputT = single("output_layers");
  st.finish();
  if (inputT.sym !== input || input === null) throw new TfjsFormatError('model.json: "input_layers" must name the InputLayer');
  if (outputT.sym === input) throw new TfjsFormatError("model.json: the model has no layers handprop can run (only InputLayer/linear activations)");
  try {
    return new Model({ inputs: input, outputs: outputT.sym, name: name ?? "model" });
  } catch (e) {
    throw new TfjsFormatError(`model.json: ${(e as Error).message}`, { cause: e });
  }
}

/** [null, H, W, C] → (C, H, W), [null, F] → (F,). */
function inputShapeOf(r: LayerReader): number[] {
  const field = r.has("batch_input_shape") ? "batch_input_shape" : "batch_shape";
  const s = r.config[field];
  if (s === undefined || s === null) return r.fail("batch_input_shape", "is missing: the first layer must give the input shape");
  if (!Array.isArray(s) || (s.length !== 4 && s.length !== 2) || !s.slice(1).every((d) => typeof d === "number" && Number.isInteger(d) && d >= 1)) {
    return r.fail(field, `must be [null, H, W, C] or [null, F] with fixed positive sizes, got ${JSON.stringify(s)}`);
  }
  const d = s as number[];
  return d.length === 4 ? [d[3], d[1], d[2]] : [d[1]];
}

/**
 * Build a Sequential from a TF.js Layers model.json (or TF.js ModelArtifacts: `weightSpecs` instead
 * of `weightsManifest`) and its weight data, in handprop's NCHW layout — or, from a functional model, a
 * graph Model (see functionalModel; Add, Multiply and Concatenate also supported there). Supported Keras layers:
 * InputLayer, Conv2D, MaxPooling2D, AveragePooling2D, GlobalAveragePooling2D, ZeroPadding2D (folded
 * into the next "valid" Conv2D or AveragePooling2D), Flatten, Dense, Dropout, BatchNormalization,
 * Activation, ReLU, LeakyReLU, Softmax; a fused activation becomes its own layer. Anything else —
 * another layer class, channels_first, an activation or padding handprop lacks — is a TfjsFormatError
 * naming the layer and the field.
 */
export function fromTfjsArtifacts(modelJson: unknown, weightData: ArrayBuffer | ArrayBufferView | readonly ArrayBuffer[], opts: { source?: string } = {}): Sequential {
  const source = opts.source ?? "weight data";
  if (!isObject(modelJson)) throw new TfjsFormatError(`model.json: expected a JSON object, got ${JSON.stringify(modelJson)?.slice(0, 80)}`);
  if (modelJson.format !== undefined && modelJson.format !== "layers-model") {
    throw new TfjsFormatError(`model.json: "format" is ${JSON.stringify(modelJson.format)}; only "layers-model" is supported (a graph model has no layers to rebuild)`);
  }
  if (modelJson.modelTopology === undefined) throw new TfjsFormatError('model.json: no "modelTopology"');
  const { name, layers: rawLayers, functional } = sequentialLayers(modelJson.modelTopology);
  const weights = splitWeights(weightSpecsOf(modelJson, "model.json"), toBytes(weightData), source);
  if (rawLayers.length === 0) throw new TfjsFormatError("model.json: the Sequential has no layers");

  const readers = rawLayers.map((l, i) => {
    if (!isObject(l) || typeof l.class_name !== "string" || !isObject(l.config)) {
      throw new TfjsFormatError(`model.json: layer ${i} must be {"class_name": string, "config": object}, got ${JSON.stringify(l)?.slice(0, 80)}`);
    }
    const n = typeof l.config.name === "string" ? l.config.name : `layer_${i}`;
    return new LayerReader(i, l.class_name, n, l.config);
  });

  const first = readers[0];
  const inputShape = inputShapeOf(first);
  const out: Layer[] = [];
  let shape = inputShape.slice(); // handprop sample shape of the current tensor
  let flattened: readonly number[] | null = null; // the (C, H, W) a Flatten flattened, until the next Dense
  let pad: { r: LayerReader; tb: [number, number]; lr: [number, number] } | null = null; // a pending ZeroPadding2D

  const take = (r: LayerReader, wname: string, expected: number[]): Float32Array => {
    const exact = weights.get(`${r.name}/${wname}`);
    const found = exact ?? [...weights.values()].find((w) => w.spec.name.startsWith(`${r.name}/`) && w.spec.name.endsWith(`/${wname}`));
    if (!found) throw new TfjsFormatError(`${r.where}: weight "${r.name}/${wname}" is missing from the weights manifest`);
    const s = found.spec.shape;
    if (s.length !== expected.length || s.some((d, i) => d !== expected[i])) {
      throw new TfjsFormatError(`${r.where}: weight "${found.spec.name}" has shape [${s.join(", ")}], expected [${expected.join(", ")}]`);
    }
    found.used = true;
    return found.data;
  };
  // Append a handprop layer, computing its output shape (errors name the Keras layer).
  const push = (r: LayerReader, layer: Layer): void => {
    try {
      shape = layer.outputShape(shape);
    } catch (e) {
      throw new TfjsFormatError(`${r.where}: ${(e as Error).message}`, { cause: e });
    }
    out.push(layer);
  };
  const needImage = (r: LayerReader): [number, number, number] => {
    if (shape.length !== 3) throw new TfjsFormatError(`${r.where}: expects an image input (H, W, C), but the tensor here has shape [${shape.join(", ")}]`);
    return [shape[0], shape[1], shape[2]];
  };
  const set = (p: Param | null, data: ArrayLike<number>) => {
    if (p) p.value.data.set(data);
  };

  const processLayer = (reader: LayerReader): void => {
    const r: LayerReader = reader; // annotated: lets r.fail(…) (→ never) narrow types
    r.float32();
    if (pad !== null && r.className !== "Conv2D" && r.className !== "AveragePooling2D") {
      throw new TfjsFormatError(`${pad.r.where}: a ZeroPadding2D must be followed by a "valid" Conv2D or AveragePooling2D (handprop folds it into their padding), here by ${r.className} "${r.name}"`);
    }
    switch (r.className) {
      case "InputLayer":
        if (r.index !== 0 || functional !== null) throw new TfjsFormatError(`${r.where}: an InputLayer is only supported as the first layer`);
        break;
      case "Conv2D": {
        r.channelsLast();
        r.only("groups", 1);
        const [C] = needImage(r);
        const filters = r.positiveInt("filters");
        const [kh, kw] = r.pair("kernel_size");
        const stride = r.pair("strides", [1, 1]);
        const dilation = r.pair("dilation_rate", [1, 1]);
        let padding: "same" | "valid" | [number, number] = r.padding();
        if (pad !== null) {
          if (padding !== "valid") r.fail("padding", `is "same" after ZeroPadding2D "${pad.r.name}"; handprop can only fold zero padding into a "valid" convolution`);
          if (pad.tb[0] !== pad.tb[1] || pad.lr[0] !== pad.lr[1]) {
            throw new TfjsFormatError(`${pad.r.where}: field "padding" ${JSON.stringify([pad.tb, pad.lr])} is asymmetric; handprop's Conv2D pads top = bottom and left = right`);
          }
          padding = [pad.tb[0], pad.lr[0]];
          pad = null;
        }
        const useBias = r.bool("use_bias", true);
        // The kernel first: its shape is checked against weights that exist, before a layer of the
        // declared size is allocated (a hostile "filters": 300000 must not allocate gigabytes).
        const kernel = take(r, "kernel", [kh, kw, C, filters]);
        const conv = new Conv2D({ inChannels: C, outChannels: filters, kernelSize: [kh, kw], stride, dilation, padding, bias: useBias });
        conv.weight.value.data.set(convKernelFromTf(kernel, filters, C, kh, kw));
        if (useBias) set(conv.bias, take(r, "bias", [filters]));
        push(r, conv);
        const act = activationLayer(r, 3);
        if (act) push(r, act);
        break;
      }
      case "DepthwiseConv2D": {
        r.channelsLast();
        const [C] = needImage(r);
        const M = r.positiveInt("depth_multiplier", 1);
        const [kh, kw] = r.pair("kernel_size");
        const stride = r.pair("strides", [1, 1]);
        const dilation = r.pair("dilation_rate", [1, 1]);
        const padding = r.padding();
        const useBias = r.bool("use_bias", true);
        const kernel = take(r, "depthwise_kernel", [kh, kw, C, M]); // checked before anything is allocated
        let conv: DepthwiseConv2D;
        try {
          conv = new DepthwiseConv2D({ inChannels: C, depthMultiplier: M, kernelSize: [kh, kw], stride, dilation, padding, bias: useBias });
        } catch (e) {
          throw new TfjsFormatError(`${r.where}: ${(e as Error).message}`, { cause: e });
        }
        // [kh, kw, C, M] is handprop's (C·M, 1, kh, kw) in convKernelToTf's order (see the export)
        conv.weight.value.data.set(convKernelFromTf(kernel, C * M, 1, kh, kw));
        if (useBias) set(conv.bias, take(r, "bias", [C * M]));
        push(r, conv);
        const act = activationLayer(r, 3);
        if (act) push(r, act);
        break;
      }
      case "MaxPooling2D":
      case "AveragePooling2D": {
        r.channelsLast();
        const [, H, W] = needImage(r);
        const [kh, kw] = r.pair("pool_size", [2, 2]);
        const [sh, sw] = r.has("strides") ? r.pair("strides") : [kh, kw];
        const isMax = r.className === "MaxPooling2D";
        const mode = r.padding();
        let padding: [number, number] = [0, 0];
        let countIncludePad = true;
        if (pad !== null) {
          if (mode !== "valid") r.fail("padding", `is "same" after ZeroPadding2D "${pad.r.name}"; handprop can only fold zero padding into a "valid" pooling`);
          if (pad.tb[0] !== pad.tb[1] || pad.lr[0] !== pad.lr[1]) {
            throw new TfjsFormatError(`${pad.r.where}: field "padding" ${JSON.stringify([pad.tb, pad.lr])} is asymmetric; handprop's AvgPool2D pads top = bottom and left = right`);
          }
          padding = [pad.tb[0], pad.lr[0]]; // zeros that count in the divisor: countIncludePad
          pad = null;
        } else if (mode === "same") {
          // TF "same" windows start at −before and number ⌈size/s⌉; padded cells never win (max) and
          // are left out of the divisor (average), as handprop's clipped windows with countIncludePad false.
          const ph = samePadding(H, kh, sh, 1)[0];
          const pw = samePadding(W, kw, sw, 1)[0];
          if (!matchesTfSame(H, kh, sh, 1, ph, ph) || !matchesTfSame(W, kw, sw, 1, pw, pw)) {
            r.fail("padding", `"same" on a ${H}×${W} input pads asymmetrically (rows ${samePadding(H, kh, sh, 1).join("+")}, columns ${samePadding(W, kw, sw, 1).join("+")}); handprop's pooling pads both sides equally`);
          }
          padding = [ph, pw];
          countIncludePad = false;
        }
        const opts = { kernelSize: [kh, kw] as [number, number], stride: [sh, sw] as [number, number], padding };
        let pool: Layer;
        try {
          pool = isMax ? new MaxPool2D(opts) : new AvgPool2D({ ...opts, countIncludePad });
        } catch (e) {
          throw new TfjsFormatError(`${r.where}: ${(e as Error).message}`, { cause: e });
        }
        push(r, pool);
        break;
      }
      case "GlobalAveragePooling2D":
        r.channelsLast();
        r.only("keepdims", false);
        needImage(r);
        push(r, new GlobalAvgPool2D());
        break;
      case "ZeroPadding2D": {
        r.channelsLast();
        needImage(r);
        const p = r.config.padding ?? 1;
        const ok = (x: unknown): x is number => typeof x === "number" && Number.isInteger(x) && x >= 0;
        let tb: [number, number];
        let lr: [number, number];
        if (ok(p)) [tb, lr] = [[p, p], [p, p]];
        else if (Array.isArray(p) && p.length === 2 && ok(p[0]) && ok(p[1])) [tb, lr] = [[p[0], p[0]], [p[1], p[1]]];
        else if (Array.isArray(p) && p.length === 2 && p.every((q) => Array.isArray(q) && q.length === 2 && q.every(ok))) {
          const q = p as [[number, number], [number, number]];
          [tb, lr] = [q[0], q[1]];
        } else r.fail("padding", `must be n, [h, w] or [[top, bottom], [left, right]], got ${JSON.stringify(p)}`);
        pad = { r, tb, lr };
        if (r === readers[readers.length - 1] && functional === null) throw new TfjsFormatError(`${r.where}: a ZeroPadding2D must be followed by a "valid" Conv2D or AveragePooling2D`);
        break;
      }
      case "Flatten":
        r.channelsLast();
        if (shape.length === 3) flattened = shape.slice(); // its index is built once the weights confirm the size
        push(r, new Flatten());
        break;
      case "Dense": {
        if (shape.length !== 1) throw new TfjsFormatError(`${r.where}: Dense on a tensor of shape [${shape.join(", ")}] (without a Flatten) is not supported`);
        const F = shape[0];
        const units = r.positiveInt("units");
        const useBias = r.bool("use_bias", true);
        const k = take(r, "kernel", [F, units]); // before allocating: checked against weights that exist
        const dense = new Dense({ inFeatures: F, outFeatures: units, bias: useBias });
        dense.weight.value.data.set(flattened ? permuteRows(k, nhwcIndex(flattened), units, false) : k);
        if (useBias) set(dense.bias, take(r, "bias", [units]));
        flattened = null;
        push(r, dense);
        const act = activationLayer(r, 1);
        if (act) push(r, act);
        break;
      }
      case "Dropout": {
        const rate = r.number("rate");
        if (!(rate >= 0 && rate < 1)) r.fail("rate", `must be in [0, 1), got ${rate}`);
        r.only("noise_shape", null);
        push(r, new Dropout({ rate }));
        break;
      }
      case "BatchNormalization": {
        const rank = shape.length + 1;
        const axes = r.config.axis ?? -1;
        const axis = Array.isArray(axes) && axes.length === 1 ? (axes[0] as unknown) : axes;
        if (typeof axis !== "number" || (axis !== -1 && axis !== rank - 1)) r.fail("axis", `is ${JSON.stringify(axes)}; only the channel (last) axis ${rank - 1} or -1 is supported`);
        for (const f of ["renorm", "virtual_batch_size", "adjustment"]) r.only(f, false, null);
        const momentum = r.number("momentum", 0.99);
        if (!(momentum >= 0 && momentum <= 1)) r.fail("momentum", `must be in [0, 1], got ${momentum}`);
        const eps = r.number("epsilon", 1e-3);
        if (!(eps > 0)) r.fail("epsilon", `must be positive, got ${eps}`);
        const center = r.bool("center", true);
        const scale = r.bool("scale", true);
        const C = shape.length === 3 ? shape[0] : shape.length === 1 ? shape[0] : NaN;
        if (Number.isNaN(C)) throw new TfjsFormatError(`${r.where}: BatchNormalization on a tensor of shape [${shape.join(", ")}] is not supported`);
        // handprop's affine has γ and β together: a missing one keeps its identity value (γ = 1, β = 0).
        const opts = { numFeatures: C, eps, momentum: 1 - momentum, affine: center || scale };
        const bn = shape.length === 3 ? new BatchNorm2D(opts) : new BatchNorm1D(opts);
        const feat = (d: Float32Array) => (shape.length === 1 && flattened ? permuteRows(d, nhwcIndex(flattened), 1, false) : d);
        if (scale) set(bn.gamma, feat(take(r, "gamma", [C])));
        if (center) set(bn.beta, feat(take(r, "beta", [C])));
        set(bn.runningMean, feat(take(r, "moving_mean", [C])));
        set(bn.runningVar, feat(take(r, "moving_variance", [C])));
        push(r, bn);
        break;
      }
      case "Activation": {
        const act = activationLayer(r, shape.length);
        if (act) push(r, act);
        break;
      }
      case "ReLU": {
        r.only("max_value", null);
        r.only("threshold", 0);
        const slope = r.number("negative_slope", 0);
        push(r, slope === 0 ? new ReLU() : new LeakyReLU({ alpha: slope }));
        break;
      }
      case "LeakyReLU":
        // TF.js/Keras 2 call the slope alpha, Keras 3 negative_slope; Keras's default is 0.3.
        push(r, new LeakyReLU({ alpha: r.has("alpha") ? r.number("alpha") : r.number("negative_slope", 0.3) }));
        break;
      case "Softmax": {
        const rank = shape.length + 1;
        const axes = r.config.axis ?? -1;
        const a = Array.isArray(axes) && axes.length === 1 ? (axes[0] as unknown) : axes;
        if (typeof a !== "number" || !Number.isInteger(a) || a < -rank || a >= rank || a === 0 || a === -rank) {
          r.fail("axis", `is ${JSON.stringify(axes)}; expected one non-batch axis of a rank-${rank} tensor`);
        }
        const tfAxis = a < 0 ? a + rank : a;
        push(r, new Softmax({ axis: rank === 4 ? NHWC_TO_NCHW_AXIS[tfAxis] : tfAxis === rank - 1 ? -1 : tfAxis }));
        break;
      }
      default:
        throw new TfjsFormatError(
          `${r.where}: layer class "${r.className}" is not supported (supported: InputLayer, Conv2D, DepthwiseConv2D, MaxPooling2D, AveragePooling2D, GlobalAveragePooling2D, ZeroPadding2D, Flatten, Dense, Dropout, BatchNormalization, Activation, ReLU, LeakyReLU, Softmax; in functional models also Add, Multiply, Concatenate)`,
        );
    }
  };

  if (functional !== null) return functionalModel(functional, rawLayers, readers, name, processLayer, {
    get shape() {
      return shape;
    },
    set shape(v: number[]) {
      shape = v;
    },
    get flattened() {
      return flattened;
    },
    set flattened(v: readonly number[] | null) {
      flattened = v;
    },
    get pad() {
      return pad;
    },
    set pad(v: { r: LayerReader; tb: [number, number]; lr: [number, number] } | null) {
      pad = v;
    },
    out,
    finish: () => {
      const unusedWeights = [...weights.values()].filter((w) => !w.used).map((w) => `"${w.spec.name}"`);
      if (unusedWeights.length > 0) throw new TfjsFormatError(`model.json: "weightsManifest": weight${unusedWeights.length > 1 ? "s" : ""} ${unusedWeights.join(", ")} belong${unusedWeights.length > 1 ? "" : "s"} to no layer of the model`);
    },
  });
  for (const reader of readers) processLayer(reader);

  const unused = [...weights.values()].filter((w) => !w.used).map((w) => `"${w.spec.name}"`);
  if (unused.length > 0) throw new TfjsFormatError(`model.json: "weightsManifest": weight${unused.length > 1 ? "s" : ""} ${unused.join(", ")} belong${unused.length > 1 ? "" : "s"} to no layer of the model`);
  if (out.length === 0) throw new TfjsFormatError("model.json: the model has no layers handprop can run (only InputLayer/linear activations)");
  return new Sequential(out, { name: name ?? "sequential", inputShape });
}
