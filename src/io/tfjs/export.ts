// TF.js export: a Sequential → model.json + weights.bin (the layer mapping is in tfjs.ts's header).

import { formatShape } from "../../nd/ndarray.ts";
import { Sequential } from "../../nn/sequential.ts";
import type { Layer, Param } from "../../nn/layer.ts";
import { Conv2D, samePadding } from "../../nn/conv.ts";
import { DepthwiseConv2D, SeparableConv2D } from "../../nn/depthwise.ts";
import { Model } from "../../nn/graph.ts";
import { Add, Concatenate, Multiply } from "../../nn/merge.ts";
import { UpSampling2D, ZeroPadding2D } from "../../nn/upsample.ts";
import { GlobalMaxPool2D } from "../../nn/reshape.ts";
import { Conv2DTranspose } from "../../nn/transpose.ts";
import { LayerNorm } from "../../nn/norm.ts";
import { Dense } from "../../nn/dense.ts";
import { Flatten } from "../../nn/flatten.ts";
import { AvgPool2D, GlobalAvgPool2D, MaxPool2D } from "../../nn/pool.ts";
import { BatchNorm1D, BatchNorm2D } from "../../nn/batchnorm.ts";
import { Dropout } from "../../nn/dropout.ts";
import { ELU, GELU, LeakyReLU, ReLU, SiLU, Sigmoid, Softmax, Tanh } from "../../nn/activations.ts";
import { float32LE } from "../onnx.ts";
import { HANDPROP_VERSION } from "../model-format.ts";
import {
  type NDArrayLike,
  type TfjsArtifacts,
  type TfjsExportOptions,
  type TfjsModelJson,
  type TfjsWeightSpec,
  type KerasLayerJson,
} from "./types.ts";
import { convKernelToTf, nhwcIndex, permuteRows, NCHW_TO_NHWC_AXIS, matchesTfSame } from "./layout.ts";

/** Convert a Sequential to a TF.js Layers model.json and its weight data. */
export function toTfjsArtifacts(model: Sequential, opts: TfjsExportOptions = {}): TfjsArtifacts {
  const inputShape = opts.inputShape ?? model.inputShape;
  if (!inputShape)
    throw new Error(
      `toTfjsArtifacts: the input shape of ${model.name} is unknown: pass {inputShape} (e.g. [1, 28, 28]) or construct the Sequential with inputShape`,
    );
  if (inputShape.length !== 3 && inputShape.length !== 1) {
    throw new Error(
      `toTfjsArtifacts: input samples of shape ${formatShape(inputShape)} are not supported: expected images (C, H, W) or feature vectors (F,)`,
    );
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
  }; // TF pads only as "same": other paddings become a ZeroPadding2D layer before a "valid" one.
  const addZeroPadding = (i: number, top: number, bottom: number, left: number, right: number): void => {
    const padding = [
      [top, bottom],
      [left, right],
    ];
    add("ZeroPadding2D", `zero_padding2d_${i}`, { padding, data_format: "channels_last" });
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
        throw new Error(
          `toTfjsArtifacts: ${layer.describe()}: groups ${layer.groups}: TF.js Layers' Conv2D has no groups (only groups 1, or a DepthwiseConv2D)`,
        );
      }
      const [C, H, W] = inShape;
      const [kh, kw] = geom.kernelSize;
      const [sh, sw] = geom.stride;
      const [dh, dw] = geom.dilation;
      if (depthwise && (dh > 1 || dw > 1)) {
        // tfjs-layers 4.22's DepthwiseConv2D.call passes no dilation to the op ("TODO: Add support for dilation")
        throw new Error(
          `toTfjsArtifacts: ${layer.describe()}: dilation ${dh}×${dw}: TF.js Layers' DepthwiseConv2D ignores dilation_rate`,
        );
      }
      if ((sh > 1 || sw > 1) && (dh > 1 || dw > 1)) {
        throw new Error(
          `toTfjsArtifacts: ${layer.describe()}: TF.js cannot combine strides ${sh}×${sw} with dilation ${dh}×${dw} (one of them must be 1)`,
        );
      }
      const [top, bottom, left, right] = geom.paddingFor(H, W);
      let padding: "same" | "valid";
      if (geom.padding === "same" || geom.padding === "valid") padding = geom.padding;
      else if (top + bottom + left + right === 0) padding = "valid";
      else if (matchesTfSame(H, kh, sh, dh, top, bottom) && matchesTfSame(W, kw, sw, dw, left, right)) padding = "same";
      else {
        addZeroPadding(i, top, bottom, left, right);
        padding = "valid";
      }
      // The Keras config DepthwiseConv2D and SeparableConv2D share (in Keras's key order).
      const depthwiseConfig = (M: number, useBias: boolean) => ({
        kernel_size: [kh, kw],
        strides: [sh, sw],
        padding,
        depth_multiplier: M,
        data_format: "channels_last",
        dilation_rate: [dh, dw],
        activation: "linear",
        use_bias: useBias,
      });
      if (layer instanceof DepthwiseConv2D) {
        // TF's depthwise_kernel [kh, kw, C, M] holds output channel c·M + m at [p, q, c, m]: handprop's
        // (C·M, 1, kh, kw) read as (O = C·M, C' = 1) in convKernelToTf's [kh, kw, C', O] order is the same array.
        const name = `depthwise_conv2d_${i}`;
        const M = layer.depthMultiplier;
        add("DepthwiseConv2D", name, depthwiseConfig(M, layer.bias !== null));
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
        add("SeparableConv2D", name, { filters: O, ...depthwiseConfig(M, pointBias !== null) });
        weight(
          name,
          "depthwise_kernel",
          [kh, kw, C, M],
          convKernelToTf(layer.depthwise.weight.value.data, C * M, 1, kh, kw),
        );
        weight(
          name,
          "pointwise_kernel",
          [1, 1, C * M, O],
          convKernelToTf(layer.pointwise.weight.value.data, O, C * M, 1, 1),
        );
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
      weight(
        name,
        "kernel",
        [kh, kw, C, layer.outChannels],
        convKernelToTf(layer.weight.value.data, layer.outChannels, C, kh, kw),
      );
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
      else if (!countsPad && matchesTfSame(H, kh, sh, 1, ph, ph) && matchesTfSame(W, kw, sw, 1, pw, pw))
        padding = "same";
      else if (countsPad) {
        addZeroPadding(i, ph, ph, pw, pw);
        padding = "valid";
      } else {
        throw new Error(
          `toTfjsArtifacts: ${layer.describe()}: padding ${ph}×${pw} on a ${H}×${W} input has no TF.js equivalent: ` +
            `TF pads poolings only as "same" (here ${samePadding(H, kh, sh, 1).join("+")} rows, ${samePadding(W, kw, sw, 1).join("+")} columns)` +
            (isMax
              ? ", and zero padding would change the max of all-negative windows"
              : ", and zero padding would count padded cells (countIncludePad is false)"),
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
      const k = [kh, kw],
        st = [sh, sw],
        p = [ph, pw];
      const valid = [0, 1].every((a) => p[a] === 0 && k[a] >= st[a]);
      const same = [0, 1].every((a) => 2 * p[a] === k[a] - st[a]);
      if (layer.dilation.some((d) => d !== 1) || layer.outputPadding.some((d) => d !== 0) || (!valid && !same)) {
        throw new Error(
          `toTfjsArtifacts: ${layer.describe()}: TF.js Layers' Conv2DTranspose has no dilation or output padding and crops only as "valid" (padding 0, kernel ≥ stride) or "same" (2·padding = kernel − stride); got padding ${ph}×${pw}, output padding ${layer.outputPadding.join("×")}, dilation ${layer.dilation.join("×")}`,
        );
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
      add("ZeroPadding2D", `zero_padding2d_${i}`, {
        padding: [
          [top, bottom],
          [left, right],
        ],
        data_format: "channels_last",
      });
    } else if (layer instanceof UpSampling2D) {
      // tfjs-layers resizes without half-pixel centres: nearest (⌊i/s⌋) agrees with handprop, bilinear does not
      if (layer.interpolation !== "nearest") {
        throw new Error(
          `toTfjsArtifacts: ${layer.describe()}: bilinear upsampling: TF.js Layers' UpSampling2D samples without half-pixel centres (handprop uses them, as PyTorch and TF 2's resize)`,
        );
      }
      add("UpSampling2D", `up_sampling2d_${i}`, {
        size: layer.size.slice(),
        interpolation: "nearest",
        data_format: "channels_last",
      });
    } else if (layer instanceof GELU) {
      if (layer.approximate === "tanh") {
        // tfjs-layers 4.22 registers it as "gelu_new" but looks "gelu_new" up as "geluNew": it cannot load it
        throw new Error(
          `toTfjsArtifacts: ${layer.describe()}: GELU's tanh form ("gelu_new") does not load in TF.js Layers 4.22; use the exact (erf) form`,
        );
      }
      add("Activation", `activation_${i}`, { activation: "gelu" });
    } else if (layer instanceof SiLU) {
      add("Activation", `activation_${i}`, { activation: "swish" });
    } else if (layer instanceof ELU) {
      if (layer.alpha !== 1)
        throw new Error(
          `toTfjsArtifacts: ${layer.describe()}: alpha ${layer.alpha}: TF.js Layers' ELU supports alpha 1 only`,
        );
      add("Activation", `activation_${i}`, { activation: "elu" });
    } else if (layer instanceof Flatten) {
      if (inShape.length === 3) flattened = nhwcIndex(inShape); // flattening features again keeps their order
      add("Flatten", `flatten_${i}`, { data_format: "channels_last" });
    } else if (layer instanceof Dense) {
      const name = `dense_${i}`;
      add("Dense", name, { units: layer.outFeatures, activation: "linear", use_bias: layer.useBias });
      const w = layer.weight.value.data;
      weight(
        name,
        "kernel",
        [layer.inFeatures, layer.outFeatures],
        flattened ? permuteRows(w, flattened, layer.outFeatures, true) : w,
      );
      if (layer.bias) weight(name, "bias", [layer.outFeatures], layer.bias.value.data);
      flattened = null;
    } else if (layer instanceof BatchNorm1D || layer instanceof BatchNorm2D) {
      const name = `batch_normalization_${i}`;
      add("BatchNormalization", name, {
        axis: -1,
        momentum: 1 - layer.momentum,
        epsilon: layer.eps,
        center: layer.affine,
        scale: layer.affine,
      });
      const perFeature = (p: Param) =>
        layer instanceof BatchNorm1D && flattened ? permuteRows(p.value.data, flattened, 1, true) : p.value.data;
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
        throw new Error(
          `toTfjsArtifacts: ${layer.describe()}: softmax over axis ${layer.axis} of an NCHW input is axis ${tfAxis} in NHWC, and TF.js only supports softmax over the last axis (handprop's axis 1, the channels)`,
        );
      }
      add("Activation", `activation_${i}`, { activation: "softmax" });
    } else if (layer instanceof Add || layer instanceof Multiply) {
      add(layer.type, `${layer.type.toLowerCase()}_${i}`, {});
    } else if (layer instanceof Concatenate) {
      if (flattened !== null) {
        throw new Error(
          `toTfjsArtifacts: ${layer.describe()}: concatenating flattened images would interleave two NHWC orders; concatenate before the Flatten`,
        );
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
        o === flattened ||
        (o !== null && flattened !== null && o.length === flattened.length && o.every((v, j) => v === flattened![j]));
      if (!inIds.every((id) => sameOrder(flat[id]))) {
        throw new Error(
          `toTfjsArtifacts: ${n.layer.describe()}: its inputs mix flattened images and other tensors; merge before the Flatten`,
        );
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
