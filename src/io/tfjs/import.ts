// TF.js import: model.json + weight data → a Sequential (or, for a functional model, a graph Model).

import { Sequential } from "../../nn/sequential.ts";
import type { Layer, Param } from "../../nn/layer.ts";
import { Conv2D, samePadding } from "../../nn/conv.ts";
import { DepthwiseConv2D } from "../../nn/depthwise.ts";
import { Dense } from "../../nn/dense.ts";
import { Flatten } from "../../nn/flatten.ts";
import { AvgPool2D, GlobalAvgPool2D, MaxPool2D } from "../../nn/pool.ts";
import { BatchNorm1D, BatchNorm2D } from "../../nn/batchnorm.ts";
import { Dropout } from "../../nn/dropout.ts";
import { LeakyReLU, ReLU, Softmax } from "../../nn/activations.ts";
import { TfjsFormatError } from "./types.ts";
import { convKernelFromTf, nhwcIndex, permuteRows, NHWC_TO_NCHW_AXIS, matchesTfSame } from "./layout.ts";
import { isObject, toBytes, weightSpecsOf, splitWeights, type Json, type LoadedWeight } from "./weights.ts";
import { LayerReader, activationLayer, sequentialLayers, inputShapeOf } from "./reader.ts";
import { functionalModel, type ImportState } from "./functional.ts";

/** Set a parameter's values when the layer has it (a bias-free layer's bias is null). */
function setParam(p: Param | null, data: ArrayLike<number>): void {
  if (p) p.value.data.set(data);
}

/** Every weight of the manifest must have been taken by some layer. */
function checkAllWeightsUsed(weights: Map<string, LoadedWeight>): void {
  const unused = [...weights.values()].filter((w) => !w.used).map((w) => `"${w.spec.name}"`);
  if (unused.length > 0)
    throw new TfjsFormatError(
      `model.json: "weightsManifest": weight${unused.length > 1 ? "s" : ""} ${unused.join(", ")} belong${unused.length > 1 ? "" : "s"} to no layer of the model`,
    );
}

/** model.json's envelope: a JSON object, a "layers-model", a topology; returns its layer list. */
function readTopology(modelJson: unknown): ReturnType<typeof sequentialLayers> & { json: Json } {
  if (!isObject(modelJson))
    throw new TfjsFormatError(`model.json: expected a JSON object, got ${JSON.stringify(modelJson)?.slice(0, 80)}`);
  if (modelJson.format !== undefined && modelJson.format !== "layers-model") {
    throw new TfjsFormatError(
      `model.json: "format" is ${JSON.stringify(modelJson.format)}; only "layers-model" is supported (a graph model has no layers to rebuild)`,
    );
  }
  if (modelJson.modelTopology === undefined) throw new TfjsFormatError('model.json: no "modelTopology"');
  return { ...sequentialLayers(modelJson.modelTopology), json: modelJson };
}

/** One LayerReader per Keras layer, each checked to be {"class_name": string, "config": object}. */
function layerReaders(rawLayers: unknown[]): LayerReader[] {
  return rawLayers.map((l, i) => {
    if (!isObject(l) || typeof l.class_name !== "string" || !isObject(l.config)) {
      throw new TfjsFormatError(
        `model.json: layer ${i} must be {"class_name": string, "config": object}, got ${JSON.stringify(l)?.slice(0, 80)}`,
      );
    }
    const n = typeof l.config.name === "string" ? l.config.name : `layer_${i}`;
    return new LayerReader(i, l.class_name, n, l.config);
  });
}

/**
 * The import's state as it walks the Keras layers: the current tensor's handprop sample shape, the (C, H, W)
 * a Flatten flattened (until the next Dense), a pending ZeroPadding2D, and the handprop layers made so far.
 * functionalModel drives the same object one Keras layer at a time.
 */
class LayerImporter implements ImportState {
  shape: number[];
  flattened: readonly number[] | null = null;
  pad: ImportState["pad"] = null;
  readonly out: Layer[] = [];

  constructor(
    private readonly weights: Map<string, LoadedWeight>,
    private readonly readers: LayerReader[],
    private readonly functional: Json | null,
    inputShape: readonly number[],
  ) {
    this.shape = inputShape.slice();
  }

  /** A weight of layer r by its Keras name, shape-checked, marked used. */
  private take(r: LayerReader, wname: string, expected: number[]): Float32Array {
    const exact = this.weights.get(`${r.name}/${wname}`);
    const found =
      exact ??
      [...this.weights.values()].find((w) => w.spec.name.startsWith(`${r.name}/`) && w.spec.name.endsWith(`/${wname}`));
    if (!found)
      throw new TfjsFormatError(`${r.where}: weight "${r.name}/${wname}" is missing from the weights manifest`);
    const s = found.spec.shape;
    if (s.length !== expected.length || s.some((d, i) => d !== expected[i])) {
      throw new TfjsFormatError(
        `${r.where}: weight "${found.spec.name}" has shape [${s.join(", ")}], expected [${expected.join(", ")}]`,
      );
    }
    found.used = true;
    return found.data;
  }

  /** Append a handprop layer, computing its output shape (errors name the Keras layer). */
  private push(r: LayerReader, layer: Layer): void {
    try {
      this.shape = layer.outputShape(this.shape);
    } catch (e) {
      throw new TfjsFormatError(`${r.where}: ${(e as Error).message}`, { cause: e });
    }
    this.out.push(layer);
  }

  private needImage(r: LayerReader): [number, number, number] {
    const shape = this.shape;
    if (shape.length !== 3)
      throw new TfjsFormatError(
        `${r.where}: expects an image input (H, W, C), but the tensor here has shape [${shape.join(", ")}]`,
      );
    return [shape[0], shape[1], shape[2]];
  }

  finish(): void {
    checkAllWeightsUsed(this.weights);
  }

  processLayer(reader: LayerReader): void {
    const r: LayerReader = reader; // annotated: lets r.fail(…) (→ never) narrow types
    r.float32();
    if (this.pad !== null && r.className !== "Conv2D" && r.className !== "AveragePooling2D") {
      throw new TfjsFormatError(
        `${this.pad.r.where}: a ZeroPadding2D must be followed by a "valid" Conv2D or AveragePooling2D (handprop folds it into their padding), here by ${r.className} "${r.name}"`,
      );
    }
    switch (r.className) {
      case "InputLayer":
        if (r.index !== 0 || this.functional !== null)
          throw new TfjsFormatError(`${r.where}: an InputLayer is only supported as the first layer`);
        break;
      case "Conv2D":
        this.conv2d(r);
        break;
      case "DepthwiseConv2D":
        this.depthwiseConv2d(r);
        break;
      case "MaxPooling2D":
      case "AveragePooling2D":
        this.pooling2d(r);
        break;
      case "GlobalAveragePooling2D":
        r.channelsLast();
        r.only("keepdims", false);
        this.needImage(r);
        this.push(r, new GlobalAvgPool2D());
        break;
      case "ZeroPadding2D":
        this.zeroPadding2d(r);
        break;
      case "Flatten":
        r.channelsLast();
        if (this.shape.length === 3) this.flattened = this.shape.slice(); // its index is built once the weights confirm the size
        this.push(r, new Flatten());
        break;
      case "Dense":
        this.dense(r);
        break;
      case "Dropout":
        this.dropout(r);
        break;
      case "BatchNormalization":
        this.batchNormalization(r);
        break;
      case "Activation":
        this.activation(r);
        break;
      case "ReLU":
        this.relu(r);
        break;
      case "LeakyReLU":
        // TF.js/Keras 2 call the slope alpha, Keras 3 negative_slope; Keras's default is 0.3.
        this.push(r, new LeakyReLU({ alpha: r.has("alpha") ? r.number("alpha") : r.number("negative_slope", 0.3) }));
        break;
      case "Softmax":
        this.softmax(r);
        break;
      default:
        throw new TfjsFormatError(
          `${r.where}: layer class "${r.className}" is not supported (supported: InputLayer, Conv2D, DepthwiseConv2D, MaxPooling2D, AveragePooling2D, GlobalAveragePooling2D, ZeroPadding2D, Flatten, Dense, Dropout, BatchNormalization, Activation, ReLU, LeakyReLU, Softmax; in functional models also Add, Multiply, Concatenate)`,
        );
    }
  }

  /** Keras Conv2D. */
  private conv2d(r: LayerReader): void {
    r.channelsLast();
    r.only("groups", 1);
    const [C] = this.needImage(r);
    const filters = r.positiveInt("filters");
    const [kh, kw] = r.pair("kernel_size");
    const stride = r.pair("strides", [1, 1]);
    const dilation = r.pair("dilation_rate", [1, 1]);
    let padding: "same" | "valid" | [number, number] = r.padding();
    if (this.pad !== null) {
      if (padding !== "valid")
        r.fail(
          "padding",
          `is "same" after ZeroPadding2D "${this.pad.r.name}"; handprop can only fold zero padding into a "valid" convolution`,
        );
      if (this.pad.tb[0] !== this.pad.tb[1] || this.pad.lr[0] !== this.pad.lr[1]) {
        throw new TfjsFormatError(
          `${this.pad.r.where}: field "padding" ${JSON.stringify([this.pad.tb, this.pad.lr])} is asymmetric; handprop's Conv2D pads top = bottom and left = right`,
        );
      }
      padding = [this.pad.tb[0], this.pad.lr[0]];
      this.pad = null;
    }
    const useBias = r.bool("use_bias", true);
    // The kernel first: its shape is checked against weights that exist, before a layer of the
    // declared size is allocated (a hostile "filters": 300000 must not allocate gigabytes).
    const kernel = this.take(r, "kernel", [kh, kw, C, filters]);
    const conv = new Conv2D({
      inChannels: C,
      outChannels: filters,
      kernelSize: [kh, kw],
      stride,
      dilation,
      padding,
      bias: useBias,
    });
    conv.weight.value.data.set(convKernelFromTf(kernel, filters, C, kh, kw));
    if (useBias) setParam(conv.bias, this.take(r, "bias", [filters]));
    this.push(r, conv);
    const act = activationLayer(r, 3);
    if (act) this.push(r, act);
  }

  /** Keras DepthwiseConv2D. */
  private depthwiseConv2d(r: LayerReader): void {
    r.channelsLast();
    const [C] = this.needImage(r);
    const M = r.positiveInt("depth_multiplier", 1);
    const [kh, kw] = r.pair("kernel_size");
    const stride = r.pair("strides", [1, 1]);
    const dilation = r.pair("dilation_rate", [1, 1]);
    const padding = r.padding();
    const useBias = r.bool("use_bias", true);
    const kernel = this.take(r, "depthwise_kernel", [kh, kw, C, M]); // checked before anything is allocated
    let conv: DepthwiseConv2D;
    try {
      conv = new DepthwiseConv2D({
        inChannels: C,
        depthMultiplier: M,
        kernelSize: [kh, kw],
        stride,
        dilation,
        padding,
        bias: useBias,
      });
    } catch (e) {
      throw new TfjsFormatError(`${r.where}: ${(e as Error).message}`, { cause: e });
    }
    // [kh, kw, C, M] is handprop's (C·M, 1, kh, kw) in convKernelToTf's order (see the export)
    conv.weight.value.data.set(convKernelFromTf(kernel, C * M, 1, kh, kw));
    if (useBias) setParam(conv.bias, this.take(r, "bias", [C * M]));
    this.push(r, conv);
    const act = activationLayer(r, 3);
    if (act) this.push(r, act);
  }

  /** Keras MaxPooling2D / AveragePooling2D. */
  private pooling2d(r: LayerReader): void {
    r.channelsLast();
    const [, H, W] = this.needImage(r);
    const [kh, kw] = r.pair("pool_size", [2, 2]);
    const [sh, sw] = r.has("strides") ? r.pair("strides") : [kh, kw];
    const isMax = r.className === "MaxPooling2D";
    const mode = r.padding();
    let padding: [number, number] = [0, 0];
    let countIncludePad = true;
    if (this.pad !== null) {
      if (mode !== "valid")
        r.fail(
          "padding",
          `is "same" after ZeroPadding2D "${this.pad.r.name}"; handprop can only fold zero padding into a "valid" pooling`,
        );
      if (this.pad.tb[0] !== this.pad.tb[1] || this.pad.lr[0] !== this.pad.lr[1]) {
        throw new TfjsFormatError(
          `${this.pad.r.where}: field "padding" ${JSON.stringify([this.pad.tb, this.pad.lr])} is asymmetric; handprop's AvgPool2D pads top = bottom and left = right`,
        );
      }
      padding = [this.pad.tb[0], this.pad.lr[0]]; // zeros that count in the divisor: countIncludePad
      this.pad = null;
    } else if (mode === "same") {
      // TF "same" windows start at −before and number ⌈size/s⌉; padded cells never win (max) and
      // are left out of the divisor (average), as handprop's clipped windows with countIncludePad false.
      const ph = samePadding(H, kh, sh, 1)[0];
      const pw = samePadding(W, kw, sw, 1)[0];
      if (!matchesTfSame(H, kh, sh, 1, ph, ph) || !matchesTfSame(W, kw, sw, 1, pw, pw)) {
        r.fail(
          "padding",
          `"same" on a ${H}×${W} input pads asymmetrically (rows ${samePadding(H, kh, sh, 1).join("+")}, columns ${samePadding(W, kw, sw, 1).join("+")}); handprop's pooling pads both sides equally`,
        );
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
    this.push(r, pool);
  }

  /** Keras ZeroPadding2D. */
  private zeroPadding2d(r: LayerReader): void {
    r.channelsLast();
    this.needImage(r);
    const p = r.config.padding ?? 1;
    const ok = (x: unknown): x is number => typeof x === "number" && Number.isInteger(x) && x >= 0;
    let tb: [number, number];
    let lr: [number, number];
    if (ok(p))
      [tb, lr] = [
        [p, p],
        [p, p],
      ];
    else if (Array.isArray(p) && p.length === 2 && ok(p[0]) && ok(p[1]))
      [tb, lr] = [
        [p[0], p[0]],
        [p[1], p[1]],
      ];
    else if (Array.isArray(p) && p.length === 2 && p.every((q) => Array.isArray(q) && q.length === 2 && q.every(ok))) {
      const q = p as [[number, number], [number, number]];
      [tb, lr] = [q[0], q[1]];
    } else r.fail("padding", `must be n, [h, w] or [[top, bottom], [left, right]], got ${JSON.stringify(p)}`);
    this.pad = { r, tb, lr };
    if (r === this.readers[this.readers.length - 1] && this.functional === null)
      throw new TfjsFormatError(`${r.where}: a ZeroPadding2D must be followed by a "valid" Conv2D or AveragePooling2D`);
  }

  /** Keras Dense. */
  private dense(r: LayerReader): void {
    if (this.shape.length !== 1)
      throw new TfjsFormatError(
        `${r.where}: Dense on a tensor of shape [${this.shape.join(", ")}] (without a Flatten) is not supported`,
      );
    const F = this.shape[0];
    const units = r.positiveInt("units");
    const useBias = r.bool("use_bias", true);
    const k = this.take(r, "kernel", [F, units]); // before allocating: checked against weights that exist
    const dense = new Dense({ inFeatures: F, outFeatures: units, bias: useBias });
    dense.weight.value.data.set(this.flattened ? permuteRows(k, nhwcIndex(this.flattened), units, false) : k);
    if (useBias) setParam(dense.bias, this.take(r, "bias", [units]));
    this.flattened = null;
    this.push(r, dense);
    const act = activationLayer(r, 1);
    if (act) this.push(r, act);
  }

  /** Keras Dropout. */
  private dropout(r: LayerReader): void {
    const rate = r.number("rate");
    if (!(rate >= 0 && rate < 1)) r.fail("rate", `must be in [0, 1), got ${rate}`);
    r.only("noise_shape", null);
    this.push(r, new Dropout({ rate }));
  }

  /** Keras BatchNormalization. */
  private batchNormalization(r: LayerReader): void {
    const rank = this.shape.length + 1;
    const axes = r.config.axis ?? -1;
    const axis = Array.isArray(axes) && axes.length === 1 ? (axes[0] as unknown) : axes;
    if (typeof axis !== "number" || (axis !== -1 && axis !== rank - 1))
      r.fail("axis", `is ${JSON.stringify(axes)}; only the channel (last) axis ${rank - 1} or -1 is supported`);
    for (const f of ["renorm", "virtual_batch_size", "adjustment"]) r.only(f, false, null);
    const momentum = r.number("momentum", 0.99);
    if (!(momentum >= 0 && momentum <= 1)) r.fail("momentum", `must be in [0, 1], got ${momentum}`);
    const eps = r.number("epsilon", 1e-3);
    if (!(eps > 0)) r.fail("epsilon", `must be positive, got ${eps}`);
    const center = r.bool("center", true);
    const scale = r.bool("scale", true);
    const C = this.shape.length === 3 ? this.shape[0] : this.shape.length === 1 ? this.shape[0] : NaN;
    if (Number.isNaN(C))
      throw new TfjsFormatError(
        `${r.where}: BatchNormalization on a tensor of shape [${this.shape.join(", ")}] is not supported`,
      );
    // handprop's affine has γ and β together: a missing one keeps its identity value (γ = 1, β = 0).
    const opts = { numFeatures: C, eps, momentum: 1 - momentum, affine: center || scale };
    const bn = this.shape.length === 3 ? new BatchNorm2D(opts) : new BatchNorm1D(opts);
    const feat = (d: Float32Array) =>
      this.shape.length === 1 && this.flattened ? permuteRows(d, nhwcIndex(this.flattened), 1, false) : d;
    if (scale) setParam(bn.gamma, feat(this.take(r, "gamma", [C])));
    if (center) setParam(bn.beta, feat(this.take(r, "beta", [C])));
    setParam(bn.runningMean, feat(this.take(r, "moving_mean", [C])));
    setParam(bn.runningVar, feat(this.take(r, "moving_variance", [C])));
    this.push(r, bn);
  }

  /** Keras Activation. */
  private activation(r: LayerReader): void {
    const act = activationLayer(r, this.shape.length);
    if (act) this.push(r, act);
  }

  /** Keras ReLU. */
  private relu(r: LayerReader): void {
    r.only("max_value", null);
    r.only("threshold", 0);
    const slope = r.number("negative_slope", 0);
    this.push(r, slope === 0 ? new ReLU() : new LeakyReLU({ alpha: slope }));
  }

  /** Keras Softmax. */
  private softmax(r: LayerReader): void {
    const rank = this.shape.length + 1;
    const axes = r.config.axis ?? -1;
    const a = Array.isArray(axes) && axes.length === 1 ? (axes[0] as unknown) : axes;
    if (typeof a !== "number" || !Number.isInteger(a) || a < -rank || a >= rank || a === 0 || a === -rank) {
      r.fail("axis", `is ${JSON.stringify(axes)}; expected one non-batch axis of a rank-${rank} tensor`);
    }
    const tfAxis = a < 0 ? a + rank : a;
    this.push(r, new Softmax({ axis: rank === 4 ? NHWC_TO_NCHW_AXIS[tfAxis] : tfAxis === rank - 1 ? -1 : tfAxis }));
  }
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
export function fromTfjsArtifacts(
  modelJson: unknown,
  weightData: ArrayBuffer | ArrayBufferView | readonly ArrayBuffer[],
  opts: { source?: string } = {},
): Sequential {
  const source = opts.source ?? "weight data";
  const { name, layers: rawLayers, functional, json } = readTopology(modelJson);
  const weights = splitWeights(weightSpecsOf(json, "model.json"), toBytes(weightData), source);
  if (rawLayers.length === 0) throw new TfjsFormatError("model.json: the Sequential has no layers");
  const readers = layerReaders(rawLayers);
  const inputShape = inputShapeOf(readers[0]);
  const importer = new LayerImporter(weights, readers, functional, inputShape);
  if (functional !== null) {
    return functionalModel(
      functional,
      rawLayers,
      readers,
      name,
      (r) => {
        importer.processLayer(r);
      },
      importer,
    );
  }
  for (const reader of readers) importer.processLayer(reader);
  importer.finish();
  if (importer.out.length === 0)
    throw new TfjsFormatError(
      "model.json: the model has no layers handprop can run (only InputLayer/linear activations)",
    );
  return new Sequential(importer.out, { name: name ?? "sequential", inputShape });
}
