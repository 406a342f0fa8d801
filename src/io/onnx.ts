// Export a Sequential model to ONNX (opset 13, IR version 7), written with our own protobuf encoder
// (src/io/protobuf.ts) — no protobuf or onnx dependency.
//
// The graph is NCHW like handprop, so no weight is permuted: Conv's W is (out, in, kh, kw) in both,
// and handprop's Dense stores W as (in, out), which is Gemm's B with transB = 0.
//
//   layer            ONNX nodes (opset 13)
//   Conv2D           Conv  (kernel_shape, strides, pads = [top, left, bottom, right], dilations; "same"
//                           resolved to explicit pads for the model's input shape)
//   MaxPool2D        MaxPool (kernel_shape, strides, pads; padded cells never win, as handprop)
//   AvgPool2D        AveragePool (count_include_pad = countIncludePad ? 1 : 0)
//   GlobalAvgPool2D  GlobalAveragePool → Flatten(axis 1)   ((N, C, 1, 1) → (N, C), handprop's shape)
//   BatchNorm1D/2D   BatchNormalization (inference: running mean/var; γ = 1, β = 0 when affine is false)
//   Flatten          Flatten (axis 1: row-major, the same c·H·W + h·W + w order as handprop)
//   Dense            Gemm (transB 0; C = bias when there is one)
//   ReLU/Tanh/Sigmoid/LeakyReLU/Softmax   Relu/Tanh/Sigmoid/LeakyRelu(alpha)/Softmax(axis)
//   Dropout          nothing: identity at inference
// Weights are float32 `raw_data` initializers (a float64 model is rounded to float32). The input is
// `input`, (N, ...sample shape) with a symbolic batch dimension "N"; the output is `output`.
//
// onnx.proto field numbers used (https://github.com/onnx/onnx/blob/main/onnx/onnx.proto):
//   ModelProto          ir_version 1, producer_name 2, producer_version 3, doc_string 6, graph 7, opset_import 8,
//                       metadata_props 14;  StringStringEntryProto key 1, value 2
//   OperatorSetIdProto  domain 1, version 2
//   GraphProto          node 1, name 2, initializer 5, doc_string 10, input 11, output 12
//   NodeProto           input 1, output 2, name 3, op_type 4, attribute 5
//   AttributeProto      name 1, f 2, i 3, ints 8, type 20  (AttributeType FLOAT = 1, INT = 2, INTS = 7)
//   TensorProto         dims 1, data_type 2 (FLOAT = 1), name 8, raw_data 9
//   ValueInfoProto      name 1, type 2
//   TypeProto           tensor_type 1;  TypeProto.Tensor elem_type 1, shape 2
//   TensorShapeProto    dim 1;  Dimension dim_value 1, dim_param 2

import type { NDArray } from "../nd/ndarray.ts";
import { ProtoWriter } from "./protobuf.ts";
import { HANDPROP_VERSION } from "./model-format.ts";
import type { Sequential } from "../nn/sequential.ts";
import type { Layer } from "../nn/layer.ts";
import { Conv2D } from "../nn/conv.ts";
import { Dense } from "../nn/dense.ts";
import { Flatten } from "../nn/flatten.ts";
import { AvgPool2D, GlobalAvgPool2D, MaxPool2D } from "../nn/pool.ts";
import { BatchNorm1D, BatchNorm2D } from "../nn/batchnorm.ts";
import { Dropout } from "../nn/dropout.ts";
import { LeakyReLU, ReLU, Sigmoid, Softmax, Tanh } from "../nn/activations.ts";

export const ONNX_OPSET = 13;
export const ONNX_IR_VERSION = 7;
const TENSOR_FLOAT = 1; // TensorProto.DataType.FLOAT
const ATTR_FLOAT = 1;
const ATTR_INT = 2;
const ATTR_INTS = 7;

export interface OnnxExportOptions {
  /** Shape of one input sample, e.g. [1, 28, 28] (default: the model's inputShape). */
  inputShape?: readonly number[];
  /** Key/value strings stored in the model's metadata_props (e.g. the input normalization). */
  metadata?: Readonly<Record<string, string>>;
}

type Attr = { name: string; f: number } | { name: string; i: number } | { name: string; ints: readonly number[] };

interface NodeSpec {
  op: string;
  name: string;
  inputs: string[];
  outputs: string[];
  attrs: Attr[];
}

interface Initializer {
  name: string;
  dims: number[];
  data: ArrayLike<number>;
}

function attribute(a: Attr): ProtoWriter {
  const w = new ProtoWriter().string(1, a.name);
  if ("f" in a) w.float(2, a.f).int(20, ATTR_FLOAT);
  else if ("i" in a) w.int(3, a.i).int(20, ATTR_INT);
  else {
    for (const v of a.ints) w.int(8, v);
    w.int(20, ATTR_INTS);
  }
  return w;
}

function nodeProto(n: NodeSpec): ProtoWriter {
  const w = new ProtoWriter();
  for (const i of n.inputs) w.string(1, i);
  for (const o of n.outputs) w.string(2, o);
  w.string(3, n.name).string(4, n.op);
  for (const a of n.attrs) w.message(5, attribute(a));
  return w;
}

/** float32 little-endian bytes, whatever the platform's byte order. */
export function float32LE(data: ArrayLike<number>): Uint8Array {
  const out = new Uint8Array(data.length * 4);
  const view = new DataView(out.buffer);
  for (let i = 0; i < data.length; i++) view.setFloat32(i * 4, data[i], true);
  return out;
}

function tensorProto(t: Initializer): ProtoWriter {
  const w = new ProtoWriter();
  for (const d of t.dims) w.int(1, d);
  return w.int(2, TENSOR_FLOAT).string(8, t.name).bytesField(9, float32LE(t.data));
}

/** ValueInfoProto of a float tensor; a string dimension is symbolic (dim_param). */
function valueInfo(name: string, dims: readonly (number | string)[]): ProtoWriter {
  const shape = new ProtoWriter();
  for (const d of dims) shape.message(1, typeof d === "string" ? new ProtoWriter().string(2, d) : new ProtoWriter().int(1, d));
  const tensorType = new ProtoWriter().int(1, TENSOR_FLOAT).message(2, shape);
  return new ProtoWriter().string(1, name).message(2, new ProtoWriter().message(1, tensorType));
}

/** The ONNX nodes and initializers of one layer. `x` is its input's name, `y` the name to give its output. */
function layerNodes(layer: Layer, i: number, x: string, y: string, inShape: readonly number[], inits: Initializer[]): NodeSpec[] {
  const tag = `${layer.type.toLowerCase()}_${i}`;
  const init = (name: string, arr: NDArray | { shape: number[]; data: ArrayLike<number> }): string => {
    const full = `${tag}.${name}`;
    inits.push({ name: full, dims: arr.shape.slice(), data: arr.data });
    return full;
  };
  const node = (op: string, attrs: Attr[] = [], inputs: string[] = [x], output = y, name = tag): NodeSpec => ({ op, name, inputs, outputs: [output], attrs });

  if (layer instanceof Conv2D) {
    const [top, bottom, left, right] = layer.paddingFor(inShape[1], inShape[2]);
    const inputs = [x, init("weight", layer.weight.value)];
    if (layer.bias) inputs.push(init("bias", layer.bias.value));
    return [
      node("Conv", [
        { name: "kernel_shape", ints: layer.kernelSize },
        { name: "strides", ints: layer.stride },
        { name: "pads", ints: [top, left, bottom, right] },
        { name: "dilations", ints: layer.dilation },
      ], inputs),
    ];
  }
  if (layer instanceof MaxPool2D || layer instanceof AvgPool2D) {
    const [ph, pw] = layer.padding;
    const attrs: Attr[] = [
      { name: "kernel_shape", ints: layer.kernelSize },
      { name: "strides", ints: layer.stride },
      { name: "pads", ints: [ph, pw, ph, pw] },
    ];
    if (layer instanceof MaxPool2D) return [node("MaxPool", attrs)];
    return [node("AveragePool", [...attrs, { name: "count_include_pad", i: layer.countIncludePad ? 1 : 0 }])];
  }
  if (layer instanceof GlobalAvgPool2D) {
    const pooled = `${tag}_pooled`;
    return [node("GlobalAveragePool", [], [x], pooled, `${tag}_pool`), node("Flatten", [{ name: "axis", i: 1 }], [pooled], y, `${tag}_flatten`)];
  }
  if (layer instanceof BatchNorm1D || layer instanceof BatchNorm2D) {
    const C = layer.numFeatures;
    const gamma = layer.gamma ? layer.gamma.value : { shape: [C], data: new Float32Array(C).fill(1) };
    const beta = layer.beta ? layer.beta.value : { shape: [C], data: new Float32Array(C) };
    const inputs = [x, init("gamma", gamma), init("beta", beta), init("running_mean", layer.runningMean.value), init("running_var", layer.runningVar.value)];
    // momentum is ONNX's weight of the OLD running value (1 − handprop's); inference ignores it anyway.
    return [node("BatchNormalization", [{ name: "epsilon", f: layer.eps }, { name: "momentum", f: 1 - layer.momentum }], inputs)];
  }
  if (layer instanceof Flatten) return [node("Flatten", [{ name: "axis", i: 1 }])];
  if (layer instanceof Dense) {
    const inputs = [x, init("weight", layer.weight.value)];
    if (layer.bias) inputs.push(init("bias", layer.bias.value));
    // Gemm: Y = A·B + C with A = x (N, in), B = W (in, out): handprop's layout, so transB = 0.
    return [node("Gemm", [{ name: "alpha", f: 1 }, { name: "beta", f: 1 }, { name: "transA", i: 0 }, { name: "transB", i: 0 }], inputs)];
  }
  if (layer instanceof ReLU) return [node("Relu")];
  if (layer instanceof Tanh) return [node("Tanh")];
  if (layer instanceof Sigmoid) return [node("Sigmoid")];
  if (layer instanceof LeakyReLU) return [node("LeakyRelu", [{ name: "alpha", f: layer.alpha }])];
  if (layer instanceof Softmax) return [node("Softmax", [{ name: "axis", i: layer.axis }])];
  if (layer instanceof Dropout) return [];
  throw new TypeError(`toOnnx: ${layer.describe()} has no ONNX equivalent here (supported: Conv2D, MaxPool2D, AvgPool2D, GlobalAvgPool2D, BatchNorm1D, BatchNorm2D, Flatten, Dense, ReLU, Tanh, Sigmoid, LeakyReLU, Softmax, Dropout)`);
}

/** Serialise a model as an ONNX ModelProto (opset 13, IR 7). The input shape must be known. */
export function toOnnx(model: Sequential, opts: OnnxExportOptions = {}): Uint8Array {
  const inputShape = opts.inputShape ?? model.inputShape;
  if (!inputShape) throw new Error(`toOnnx: the input shape of ${model.name} is unknown: pass {inputShape} (e.g. [1, 28, 28]) or construct the Sequential with inputShape`);
  const shapes = model.build(inputShape); // validates the model for this shape, naming any bad layer
  // Dropout emits no node, so the last layer that emits one writes "output".
  let lastEmitting = -1;
  model.layers.forEach((l, i) => {
    if (!(l instanceof Dropout)) lastEmitting = i;
  });
  const nodes: NodeSpec[] = [];
  const inits: Initializer[] = [];
  let cur = "input";
  model.layers.forEach((layer, i) => {
    const inShape = i === 0 ? inputShape : shapes[i - 1];
    const out = i === lastEmitting ? "output" : `${layer.type.toLowerCase()}_${i}_out`;
    const emitted = layerNodes(layer, i, cur, out, inShape, inits);
    if (emitted.length > 0) {
      nodes.push(...emitted);
      cur = out;
    }
  });
  if (cur !== "output") nodes.push({ op: "Identity", name: "identity", inputs: [cur], outputs: ["output"], attrs: [] });

  const graph = new ProtoWriter();
  for (const n of nodes) graph.message(1, nodeProto(n));
  graph.string(2, model.name);
  for (const t of inits) graph.message(5, tensorProto(t));
  graph.string(10, `handprop ${model.name}: ${model.layers.map((l) => l.type).join(" → ")}`);
  graph.message(11, valueInfo("input", ["N", ...inputShape]));
  graph.message(12, valueInfo("output", ["N", ...shapes[shapes.length - 1]]));

  const modelProto = new ProtoWriter()
    .int(1, ONNX_IR_VERSION)
    .string(2, "handprop")
    .string(3, HANDPROP_VERSION)
    .message(7, graph)
    .message(8, new ProtoWriter().string(1, "").int(2, ONNX_OPSET));
  for (const [key, value] of Object.entries(opts.metadata ?? {})) modelProto.message(14, new ProtoWriter().string(1, key).string(2, value));
  return modelProto.finish();
}
