// Export a Sequential or graph Model to ONNX (opset 13, IR version 7), written with our own protobuf
// encoder (src/io/protobuf.ts) — no protobuf or onnx dependency. An ONNX graph is a DAG, so a graph
// Model's nodes map one to one (its branches and merges included), and nested models are inlined.
//
// The graph is NCHW like handprop, so no weight is permuted: Conv's W is (out, in, kh, kw) in both,
// and handprop's Dense stores W as (in, out), which is Gemm's B with transB = 0.
//
//   layer            ONNX nodes (opset 13)
//   Conv2D           Conv  (kernel_shape, strides, pads = [top, left, bottom, right], dilations, group when
//                           groups ≠ 1; "same" resolved to explicit pads for the model's input shape)
//   DepthwiseConv2D  Conv with group = C (W is (C·M, 1, kh, kw) in both)
//   SeparableConv2D  its depthwise Conv, then its pointwise 1×1 Conv
//   Conv2DTranspose  ConvTranspose (W (Ci, Co, kh, kw) in both; pads, output_padding, dilations)
//   UpSampling2D     Resize (scales [1, 1, sh, sw]; nearest: asymmetric + floor; bilinear: linear, half_pixel)
//   ZeroPadding2D    Pad (constant 0; pads [0, 0, top, left, 0, 0, bottom, right])
//   LayerNorm        decomposed (opset 13 has no LayerNormalization): μ = ReduceMean, d = x − μ,
//                    σ² = ReduceMean(d·d), x̂ = d / √(σ² + ε), y = x̂·γ + β
//   GroupNorm        Reshape (N, G, −1) → the same normalisation over axis 2 → Reshape to x's shape → ·γ + β
//   GELU             0.5·x·(1 + Erf(x/√2)), or the tanh form 0.5·x·(1 + Tanh(√(2/π)·(x + 0.044715·x³)))
//   SiLU / ELU       x·Sigmoid(x) / Elu(alpha)
//   Reshape/Permute  Reshape (shape [0, ...target]) / Transpose (perm [0, ...dims])
//   GlobalMaxPool2D  GlobalMaxPool → Flatten(axis 1)
//   Add/Multiply/Concatenate   Sum / Mul chain / Concat(axis)
//   Sequential, Model (nested)  their nodes, inline
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
//   AttributeProto      name 1, f 2, i 3, s 4, ints 8, type 20  (AttributeType FLOAT = 1, INT = 2, STRING = 3,
//                       INTS = 7)
//   TensorProto         dims 1, data_type 2 (FLOAT = 1, INT64 = 7), name 8, raw_data 9
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
import { ELU, GELU, LeakyReLU, ReLU, SiLU, Sigmoid, Softmax, Tanh } from "../nn/activations.ts";
import { Model } from "../nn/graph.ts";
import { Sequential as SequentialClass } from "../nn/sequential.ts";
import { DepthwiseConv2D, SeparableConv2D } from "../nn/depthwise.ts";
import { Conv2DTranspose } from "../nn/transpose.ts";
import { UpSampling2D, ZeroPadding2D } from "../nn/upsample.ts";
import { GroupNorm, LayerNorm } from "../nn/norm.ts";
import { GlobalMaxPool2D, Permute, Reshape } from "../nn/reshape.ts";
import { Add, Concatenate, Multiply } from "../nn/merge.ts";

export const ONNX_OPSET = 13;
export const ONNX_IR_VERSION = 7;
const TENSOR_FLOAT = 1; // TensorProto.DataType.FLOAT
const TENSOR_INT64 = 7;
const ATTR_FLOAT = 1;
const ATTR_INT = 2;
const ATTR_STRING = 3;
const ATTR_INTS = 7;

export interface OnnxExportOptions {
  /** Shape of one input sample, e.g. [1, 28, 28] (default: the model's inputShape). */
  inputShape?: readonly number[];
  /** Key/value strings stored in the model's metadata_props (e.g. the input normalization). */
  metadata?: Readonly<Record<string, string>>;
}

type Attr =
  | { name: string; f: number }
  | { name: string; i: number }
  | { name: string; s: string }
  | { name: string; ints: readonly number[] };

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
  /** int64 (shapes, pads) instead of float32. */
  int64?: boolean;
}

function attribute(a: Attr): ProtoWriter {
  const w = new ProtoWriter().string(1, a.name);
  if ("f" in a) w.float(2, a.f).int(20, ATTR_FLOAT);
  else if ("i" in a) w.int(3, a.i).int(20, ATTR_INT);
  else if ("s" in a) w.string(4, a.s).int(20, ATTR_STRING);
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

/** int64 little-endian bytes. */
function int64LE(data: ArrayLike<number>): Uint8Array {
  const out = new Uint8Array(data.length * 8);
  const view = new DataView(out.buffer);
  for (let i = 0; i < data.length; i++) view.setBigInt64(i * 8, BigInt(data[i]), true);
  return out;
}

function tensorProto(t: Initializer): ProtoWriter {
  const w = new ProtoWriter();
  for (const d of t.dims) w.int(1, d);
  if (t.int64) return w.int(2, TENSOR_INT64).string(8, t.name).bytesField(9, int64LE(t.data));
  return w.int(2, TENSOR_FLOAT).string(8, t.name).bytesField(9, float32LE(t.data));
}

/** ValueInfoProto of a float tensor; a string dimension is symbolic (dim_param). */
function valueInfo(name: string, dims: readonly (number | string)[]): ProtoWriter {
  const shape = new ProtoWriter();
  for (const d of dims)
    shape.message(1, typeof d === "string" ? new ProtoWriter().string(2, d) : new ProtoWriter().int(1, d));
  const tensorType = new ProtoWriter().int(1, TENSOR_FLOAT).message(2, shape);
  return new ProtoWriter().string(1, name).message(2, new ProtoWriter().message(1, tensorType));
}

const SUPPORTED =
  "Conv2D, DepthwiseConv2D, SeparableConv2D, Conv2DTranspose, MaxPool2D, AvgPool2D, GlobalAvgPool2D, GlobalMaxPool2D, " +
  "BatchNorm1D, BatchNorm2D, LayerNorm, GroupNorm, Flatten, Reshape, Permute, UpSampling2D, ZeroPadding2D, Dense, " +
  "ReLU, Tanh, Sigmoid, LeakyReLU, Softmax, GELU, SiLU, ELU, Dropout, Add, Multiply, Concatenate, Sequential, Model";

/** What the layers of one export write: nodes and initializers, named under a unique tag per layer. */
class OnnxGraphBuilder {
  readonly nodes: NodeSpec[] = [];
  readonly inits: Initializer[] = [];

  /**
   * Emit `layer` applied to the tensors `inputs` (sample shapes `inShapes`); `want` is the name its output
   * should get. Returns the name it actually has (a Dropout emits nothing: its output is its input).
   */
  emit(layer: Layer, tag: string, inputs: string[], inShapes: number[][], want: string): string {
    if (layer instanceof Model) return this.emitGraph(layer, tag, inputs[0], inShapes[0], want);
    if (layer instanceof SequentialClass) return this.emitStack(layer, tag, inputs[0], inShapes[0], want);
    if (layer instanceof Dropout) return inputs[0];
    this.emitLeaf(layer, tag, inputs, inShapes, want);
    return want;
  }

  private emitStack(model: Sequential, tag: string, x: string, inShape: number[], want: string): string {
    let lastEmitting = -1;
    model.layers.forEach((l, i) => {
      if (!(l instanceof Dropout)) lastEmitting = i;
    });
    let cur = x;
    let shape = inShape;
    model.layers.forEach((layer, i) => {
      const sub = `${tag === "" ? "" : `${tag}/`}${layer.type.toLowerCase()}_${i}`;
      cur = this.emit(layer, sub, [cur], [shape], i === lastEmitting ? want : `${sub}_out`);
      shape = layer.outputShape(shape);
    });
    return cur;
  }

  private emitGraph(model: Model, tag: string, x: string, inShape: number[], want: string): string {
    const shapes = [inShape, ...model.build(inShape)];
    const ids = new Map(model.nodes.map((n, k) => [n, k + 1]));
    const names: string[] = [x];
    model.nodes.forEach((n, k) => {
      const inIds = n.inputs.map((t) => (t.node === null ? 0 : ids.get(t.node)!));
      const sub = `${tag === "" ? "" : `${tag}/`}${n.name}`;
      const out = model.output.node === n ? want : `${sub}_out`;
      names[k + 1] = this.emit(
        n.layer,
        sub,
        inIds.map((id) => names[id]),
        inIds.map((id) => shapes[id]),
        out,
      );
    });
    return names[model.nodes.length];
  }

  private emitLeaf(layer: Layer, tag: string, inputs: string[], inShapes: number[][], y: string): void {
    const x = inputs[0];
    const inShape = inShapes[0];
    const init = (name: string, arr: { shape: readonly number[]; data: ArrayLike<number> }, int64 = false): string => {
      const full = `${tag}.${name}`;
      this.inits.push({ name: full, dims: arr.shape.slice(), data: arr.data, int64 });
      return full;
    };
    const scalar = (name: string, v: number) => init(name, { shape: [], data: [v] });
    const ints = (name: string, v: readonly number[]) => init(name, { shape: [v.length], data: v }, true);
    let step = 0;
    const node = (op: string, attrs: Attr[] = [], ins: string[] = [x], output = y, name = tag): string => {
      this.nodes.push({ op, name, inputs: ins, outputs: [output], attrs });
      return output;
    };
    // an intermediate node of a decomposition: its own name and output
    const part = (op: string, ins: string[], attrs: Attr[] = []): string => {
      const name = `${tag}_${op.toLowerCase()}${step++}`;
      return node(op, attrs, ins, name, name);
    };
    // (x − μ) / √(σ² + ε) over `axes` (LayerNorm, GroupNorm): derivation.md §5.4's forward
    const normalize = (v: string, axes: number[], eps: number): string => {
      const mean = part(
        "ReduceMean",
        [v],
        [
          { name: "axes", ints: axes },
          { name: "keepdims", i: 1 },
        ],
      );
      const d = part("Sub", [v, mean]);
      const variance = part(
        "ReduceMean",
        [part("Mul", [d, d])],
        [
          { name: "axes", ints: axes },
          { name: "keepdims", i: 1 },
        ],
      );
      return part("Div", [d, part("Sqrt", [part("Add", [variance, scalar("eps", eps)])])]);
    };
    const affine = (v: string, gamma: NDArray | null, beta: NDArray | null, dims: number[]): void => {
      if (gamma === null || beta === null) {
        node("Identity", [], [v]);
        return;
      }
      const scaled = part("Mul", [v, init("gamma", { shape: dims, data: gamma.data })]);
      node("Add", [], [scaled, init("beta", { shape: dims, data: beta.data })]);
    };
    // Conv2D and DepthwiseConv2D (groups = C) export as one Conv node.
    const conv = (layer: Conv2D | DepthwiseConv2D, groups: number): void => {
      const ins = [x, init("weight", layer.weight.value)];
      if (layer.bias) ins.push(init("bias", layer.bias.value));
      const [top, bottom, left, right] = layer.paddingFor(inShape[1], inShape[2]);
      const attrs: Attr[] = [
        { name: "kernel_shape", ints: layer.kernelSize },
        { name: "strides", ints: layer.stride },
        { name: "pads", ints: [top, left, bottom, right] },
        { name: "dilations", ints: layer.dilation },
      ];
      if (groups !== 1) attrs.push({ name: "group", i: groups });
      node("Conv", attrs, ins);
    };

    if (layer instanceof Conv2D) {
      conv(layer, layer.groups);
      return;
    }
    if (layer instanceof DepthwiseConv2D) {
      conv(layer, layer.inChannels);
      return;
    }
    if (layer instanceof SeparableConv2D) {
      const mid = this.emit(layer.depthwise, `${tag}.depthwise`, [x], [inShape], `${tag}_depthwise_out`);
      this.emit(layer.pointwise, `${tag}.pointwise`, [mid], [layer.depthwise.outputShape(inShape)], y);
      return;
    }
    if (layer instanceof Conv2DTranspose) {
      const ins = [x, init("weight", layer.weight.value)];
      if (layer.bias) ins.push(init("bias", layer.bias.value));
      const [ph, pw] = layer.padding;
      node(
        "ConvTranspose",
        [
          { name: "kernel_shape", ints: layer.kernelSize },
          { name: "strides", ints: layer.stride },
          { name: "pads", ints: [ph, pw, ph, pw] },
          { name: "output_padding", ints: layer.outputPadding },
          { name: "dilations", ints: layer.dilation },
        ],
        ins,
      );
      return;
    }
    if (layer instanceof MaxPool2D || layer instanceof AvgPool2D) {
      const [ph, pw] = layer.padding;
      const attrs: Attr[] = [
        { name: "kernel_shape", ints: layer.kernelSize },
        { name: "strides", ints: layer.stride },
        { name: "pads", ints: [ph, pw, ph, pw] },
      ];
      if (layer instanceof MaxPool2D) node("MaxPool", attrs);
      else node("AveragePool", [...attrs, { name: "count_include_pad", i: layer.countIncludePad ? 1 : 0 }]);
      return;
    }
    if (layer instanceof GlobalAvgPool2D || layer instanceof GlobalMaxPool2D) {
      const pooled = `${tag}_pooled`;
      node(layer instanceof GlobalAvgPool2D ? "GlobalAveragePool" : "GlobalMaxPool", [], [x], pooled, `${tag}_pool`);
      node("Flatten", [{ name: "axis", i: 1 }], [pooled], y, `${tag}_flatten`);
      return;
    }
    if (layer instanceof BatchNorm1D || layer instanceof BatchNorm2D) {
      const C = layer.numFeatures;
      const gamma = layer.gamma ? layer.gamma.value : { shape: [C], data: new Float32Array(C).fill(1) };
      const beta = layer.beta ? layer.beta.value : { shape: [C], data: new Float32Array(C) };
      const ins = [
        x,
        init("gamma", gamma),
        init("beta", beta),
        init("running_mean", layer.runningMean.value),
        init("running_var", layer.runningVar.value),
      ];
      // momentum is ONNX's weight of the OLD running value (1 − handprop's); inference ignores it anyway.
      node(
        "BatchNormalization",
        [
          { name: "epsilon", f: layer.eps },
          { name: "momentum", f: 1 - layer.momentum },
        ],
        ins,
      );
      return;
    }
    if (layer instanceof LayerNorm) {
      const rank = inShape.length + 1;
      const axes = Array.from({ length: layer.axes }, (_, k) => rank - layer.axes + k);
      // γ, β have the normalised (trailing) shape: they broadcast as they are
      const tail = inShape.slice(inShape.length - layer.axes);
      affine(normalize(x, axes, layer.eps), layer.gamma?.value ?? null, layer.beta?.value ?? null, tail);
      return;
    }
    if (layer instanceof GroupNorm) {
      const grouped = part("Reshape", [x, ints("group_shape", [0, layer.groups, -1])]);
      const back = part("Reshape", [normalize(grouped, [2], layer.eps), part("Shape", [x])]);
      // γ, β are per channel: (C, 1, …, 1) broadcasts over the positions
      const dims = [inShape[0], ...inShape.slice(1).map(() => 1)];
      affine(back, layer.gamma?.value ?? null, layer.beta?.value ?? null, dims);
      return;
    }
    if (layer instanceof Flatten) {
      node("Flatten", [{ name: "axis", i: 1 }]);
      return;
    }
    if (layer instanceof Reshape) {
      node("Reshape", [], [x, ints("shape", [0, ...layer.targetShape])]);
      return;
    }
    if (layer instanceof Permute) {
      node("Transpose", [{ name: "perm", ints: [0, ...layer.dims] }]);
      return;
    }
    if (layer instanceof UpSampling2D) {
      const [sh, sw] = layer.size;
      const scales = init("scales", { shape: [4], data: [1, 1, sh, sw] });
      const attrs: Attr[] =
        layer.interpolation === "nearest"
          ? [
              { name: "mode", s: "nearest" },
              { name: "coordinate_transformation_mode", s: "asymmetric" },
              { name: "nearest_mode", s: "floor" },
            ]
          : [
              { name: "mode", s: "linear" },
              { name: "coordinate_transformation_mode", s: "half_pixel" },
            ];
      node("Resize", attrs, [x, "", scales]);
      return;
    }
    if (layer instanceof ZeroPadding2D) {
      const [top, bottom, left, right] = layer.pads;
      node("Pad", [{ name: "mode", s: "constant" }], [x, ints("pads", [0, 0, top, left, 0, 0, bottom, right])]);
      return;
    }
    if (layer instanceof Dense) {
      const ins = [x, init("weight", layer.weight.value)];
      if (layer.bias) ins.push(init("bias", layer.bias.value));
      // Gemm: Y = A·B + C with A = x (N, in), B = W (in, out): handprop's layout, so transB = 0.
      node(
        "Gemm",
        [
          { name: "alpha", f: 1 },
          { name: "beta", f: 1 },
          { name: "transA", i: 0 },
          { name: "transB", i: 0 },
        ],
        ins,
      );
      return;
    }
    if (layer instanceof GELU) {
      // derivation.md §5.5: exact 0.5·x·(1 + erf(x/√2)); tanh form 0.5·x·(1 + tanh(√(2/π)·(x + 0.044715·x³)))
      let t: string;
      if (layer.approximate === "tanh") {
        const cube = part("Mul", [part("Mul", [x, x]), x]);
        const inner = part("Add", [x, part("Mul", [cube, scalar("cubic", 0.044715)])]);
        t = part("Tanh", [part("Mul", [inner, scalar("sqrt_2_over_pi", Math.sqrt(2 / Math.PI))])]);
      } else {
        t = part("Erf", [part("Mul", [x, scalar("inv_sqrt2", Math.SQRT1_2)])]);
      }
      const gate = part("Mul", [part("Add", [t, scalar("one", 1)]), scalar("half", 0.5)]);
      node("Mul", [], [x, gate]);
      return;
    }
    if (layer instanceof SiLU) {
      node("Mul", [], [x, part("Sigmoid", [x])]);
      return;
    }
    if (layer instanceof ELU) {
      node("Elu", [{ name: "alpha", f: layer.alpha }]);
      return;
    }
    if (layer instanceof ReLU) node("Relu");
    else if (layer instanceof Tanh) node("Tanh");
    else if (layer instanceof Sigmoid) node("Sigmoid");
    else if (layer instanceof LeakyReLU) node("LeakyRelu", [{ name: "alpha", f: layer.alpha }]);
    else if (layer instanceof Softmax) node("Softmax", [{ name: "axis", i: layer.axis }]);
    else if (layer instanceof Add) node("Sum", [], inputs);
    else if (layer instanceof Multiply) {
      let acc = inputs[0];
      for (let k = 1; k < inputs.length; k++)
        acc = k === inputs.length - 1 ? node("Mul", [], [acc, inputs[k]]) : part("Mul", [acc, inputs[k]]);
    } else if (layer instanceof Concatenate) {
      const rank = inShape.length + 1;
      node("Concat", [{ name: "axis", i: layer.axis < 0 ? layer.axis + rank : layer.axis }], inputs);
    } else {
      throw new TypeError(
        `toOnnx: ${layer.describe()} has no ONNX equivalent here (at ONNX node '${tag}'; supported: ${SUPPORTED})`,
      );
    }
  }
}

/** Serialise a model (Sequential or graph Model) as an ONNX ModelProto (opset 13, IR 7). The input shape must be known. */
export function toOnnx(model: Sequential, opts: OnnxExportOptions = {}): Uint8Array {
  const inputShape = opts.inputShape ?? model.inputShape;
  if (!inputShape)
    throw new Error(
      `toOnnx: the input shape of ${model.name} is unknown: pass {inputShape} (e.g. [1, 28, 28]) or construct the Sequential with inputShape`,
    );
  const shapes = model.build(inputShape); // validates the model for this shape, naming any bad layer
  const builder = new OnnxGraphBuilder();
  const out = builder.emit(model, "", ["input"], [inputShape.slice()], "output");
  const nodes = builder.nodes;
  if (out !== "output") nodes.push({ op: "Identity", name: "identity", inputs: [out], outputs: ["output"], attrs: [] });

  const graph = new ProtoWriter();
  for (const n of nodes) graph.message(1, nodeProto(n));
  graph.string(2, model.name);
  for (const t of builder.inits) graph.message(5, tensorProto(t));
  graph.string(10, `handprop ${model.name}: ${model.layers.map((l) => l.type).join(" → ")}`);
  graph.message(11, valueInfo("input", ["N", ...inputShape]));
  graph.message(12, valueInfo("output", ["N", ...shapes[shapes.length - 1]]));

  const modelProto = new ProtoWriter()
    .int(1, ONNX_IR_VERSION)
    .string(2, "handprop")
    .string(3, HANDPROP_VERSION)
    .message(7, graph)
    .message(8, new ProtoWriter().string(1, "").int(2, ONNX_OPSET));
  for (const [key, value] of Object.entries(opts.metadata ?? {}))
    modelProto.message(14, new ProtoWriter().string(1, key).string(2, value));
  return modelProto.finish();
}
