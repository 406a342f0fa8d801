// TF.js import: model.json + weight data → a Sequential (or, for a functional model, a graph Model).
//
// Layout: handprop keeps images (C, H, W) where Keras has (H, W, C); every other tensor has the same axes in
// both (layout.ts's kerasAxesOf), except the features of a flattened image, which stay in handprop's c·H·W +
// h·W + w order (`flattened`) until a Dense, BatchNormalization or LayerNormalization permutes its weights to
// match. Layers whose Keras axes are not handprop's (a Permute, a Reshape, a LayerNormalization over the
// channels) become handprop Permute/Reshape layers around the work, so every tensor keeps that convention.

import { Sequential } from "../../nn/sequential.ts";
import { MAX_SAMPLE_VALUES, type Layer, type Param } from "../../nn/layer.ts"; // (2^28 values per sample)
import { Conv2D, samePadding } from "../../nn/conv.ts";
import { DepthwiseConv2D, SeparableConv2D } from "../../nn/depthwise.ts";
import { Conv2DTranspose } from "../../nn/transpose.ts";
import { UpSampling2D, ZeroPadding2D } from "../../nn/upsample.ts";
import { GroupNorm, LayerNorm } from "../../nn/norm.ts";
import { GlobalMaxPool2D, Permute, Reshape } from "../../nn/reshape.ts";
import { Dense } from "../../nn/dense.ts";
import { Flatten } from "../../nn/flatten.ts";
import { AvgPool2D, GlobalAvgPool2D, MaxPool2D } from "../../nn/pool.ts";
import { BatchNorm1D, BatchNorm2D } from "../../nn/batchnorm.ts";
import { Dropout } from "../../nn/dropout.ts";
import { ELU, LeakyReLU, ReLU, Softmax } from "../../nn/activations.ts";
import { TfjsFormatError } from "./types.ts";
import {
  convKernelFromTf,
  nhwcIndex,
  permuteRows,
  NHWC_TO_NCHW_AXIS,
  matchesTfSame,
  kerasAxesOf,
  kerasShapeOf,
  permuteFromTf,
  inversePermutation,
  transposeAxisFromTf,
} from "./layout.ts";
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

const isInt = (x: unknown): x is number => typeof x === "number" && Number.isInteger(x);
const product = (shape: readonly number[]) => shape.reduce((a, b) => a * b, 1);
const isIdentity = (dims: readonly number[]) => dims.every((a, i) => a === i + 1);

/** A permutation of 1 … rank (Keras's 1-based sample axes), or a failure naming the field. */
function readPermutation(r: LayerReader, field: string, rank: number): number[] {
  const d = r.config[field];
  if (
    !Array.isArray(d) ||
    d.length !== rank ||
    !d.every(isInt) ||
    new Set(d).size !== rank ||
    d.some((a) => a < 1 || a > rank)
  )
    return r.fail(field, `is ${JSON.stringify(d)}; expected a permutation of 1…${rank} (the sample axes, 1-based)`);
  return d;
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
    private readonly functional: Json | null,
    inputShape: readonly number[],
  ) {
    this.shape = inputShape.slice();
  }

  /** A weight of layer r by its Keras name (possibly scoped: "layer/…/name"). */
  private findWeight(r: LayerReader, wname: string): LoadedWeight | undefined {
    const exact = this.weights.get(`${r.name}/${wname}`);
    return (
      exact ??
      [...this.weights.values()].find((w) => w.spec.name.startsWith(`${r.name}/`) && w.spec.name.endsWith(`/${wname}`))
    );
  }

  /** The manifest's shape of a weight of layer r, if it has it. */
  private weightShape(r: LayerReader, wname: string): readonly number[] | undefined {
    return this.findWeight(r, wname)?.spec.shape;
  }

  /** A weight of layer r by its Keras name, shape-checked, marked used. */
  private take(r: LayerReader, wname: string, expected: number[]): Float32Array {
    const found = this.findWeight(r, wname);
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

  /** Construct a handprop layer (or ask it its output shape); its errors name the Keras layer. */
  private build<T>(r: LayerReader, make: () => T): T {
    try {
      return make();
    } catch (e) {
      throw new TfjsFormatError(`${r.where}: ${(e as Error).message}`, { cause: e });
    }
  }

  /** Append a handprop layer, computing its output shape (bounded: a file cannot ask for a giant tensor). */
  private push(r: LayerReader, layer: Layer): void {
    const shape = this.build(r, () => layer.outputShape(this.shape));
    if (!(product(shape) <= MAX_SAMPLE_VALUES)) {
      throw new TfjsFormatError(
        `${r.where}: its output [${kerasShapeOf(shape).join(", ")}] per sample is over ${MAX_SAMPLE_VALUES} values`,
      );
    }
    this.shape = shape;
    this.out.push(layer);
  }

  /** The layer, then the handprop layer of its fused "activation" (none for linear). */
  private pushWithActivation(r: LayerReader, layer: Layer): void {
    this.push(r, layer);
    this.pushActivation(r);
  }

  pushActivation(r: LayerReader): void {
    const act = activationLayer(r, this.shape.length);
    if (act) this.push(r, act);
  }

  private needImage(r: LayerReader): [number, number, number] {
    const shape = this.shape;
    if (shape.length !== 3)
      throw new TfjsFormatError(
        `${r.where}: expects an image input (H, W, C), ` +
          `but the tensor here has shape [${kerasShapeOf(shape).join(", ")}]`,
      );
    return [shape[0], shape[1], shape[2]];
  }

  /** A pending ZeroPadding2D becomes a handprop ZeroPadding2D layer (errors name the Keras ZeroPadding2D). */
  flushPad(): void {
    const pad = this.pad;
    if (pad === null) return;
    this.pad = null;
    this.push(pad.r, new ZeroPadding2D({ padding: [pad.tb, pad.lr] }));
  }

  /**
   * The pending ZeroPadding2D before a Conv2D or AveragePooling2D: folded into the layer's explicit padding
   * (returned) when the layer is "valid" and the padding symmetric, else made a layer of its own (null).
   */
  private foldPad(mode: "same" | "valid"): [number, number] | null {
    const pad = this.pad;
    if (pad === null) return null;
    if (mode === "valid" && pad.tb[0] === pad.tb[1] && pad.lr[0] === pad.lr[1]) {
      this.pad = null;
      return [pad.tb[0], pad.lr[0]];
    }
    this.flushPad();
    return null;
  }

  finish(): void {
    this.flushPad();
    checkAllWeightsUsed(this.weights);
  }

  processLayer(reader: LayerReader): void {
    const r: LayerReader = reader; // annotated: lets r.fail(…) (→ never) narrow types
    r.float32();
    if (!Object.hasOwn(READERS, r.className)) {
      throw new TfjsFormatError(
        `${r.where}: layer class "${r.className}" is not supported (supported: ${Object.keys(READERS).join(", ")}; ` +
          "in functional models also Add, Multiply, Concatenate)",
      );
    }
    if (r.className !== "Conv2D" && r.className !== "AveragePooling2D") this.flushPad();
    this[READERS[r.className as keyof typeof READERS]](r);
  }

  inputLayer(r: LayerReader): void {
    if (r.index !== 0 || this.functional !== null)
      throw new TfjsFormatError(`${r.where}: an InputLayer is only supported as the first layer`);
  }

  /** kernel_size, strides, dilation_rate of a convolution. */
  private convGeometry(r: LayerReader) {
    return {
      kernelSize: r.pair("kernel_size"),
      stride: r.pair("strides", [1, 1]),
      dilation: r.pair("dilation_rate", [1, 1]),
    };
  }

  /** Keras Conv2D. */
  conv2d(r: LayerReader): void {
    r.channelsLast();
    const filters = r.positiveInt("filters");
    const geometry = this.convGeometry(r);
    const mode = r.padding();
    const padding = this.foldPad(mode) ?? mode;
    const [C] = this.needImage(r);
    // Keras 2.3+'s groups (not in tfjs-layers): contiguous input and output channel groups, kernel
    // [kh, kw, C/G, filters] — PyTorch's and handprop's grouping, weight (filters, C/G, kh, kw)
    const groups = r.positiveInt("groups", 1);
    if (C % groups !== 0 || filters % groups !== 0)
      r.fail("groups", `= ${groups} does not divide both the ${C} input channels and the ${filters} filters`);
    const [kh, kw] = geometry.kernelSize;
    const useBias = r.bool("use_bias", true);
    // The kernel first: its shape is checked against weights that exist, before a layer of the
    // declared size is allocated (a hostile "filters": 300000 must not allocate gigabytes).
    const kernel = this.take(r, "kernel", [kh, kw, C / groups, filters]);
    const conv = this.build(
      r,
      () => new Conv2D({ inChannels: C, outChannels: filters, groups, ...geometry, padding, bias: useBias }),
    );
    conv.weight.value.data.set(convKernelFromTf(kernel, filters, C / groups, kh, kw));
    if (useBias) setParam(conv.bias, this.take(r, "bias", [filters]));
    this.pushWithActivation(r, conv);
  }

  /**
   * The depthwise half shared by DepthwiseConv2D and SeparableConv2D: channels, multiplier, geometry and
   * the [kh, kw, C, M] kernel as handprop's (C·M, 1, kh, kw) (the same array in convKernelToTf's order).
   * tfjs-layers' DepthwiseConv2D ignores dilation_rate where Keras applies it: the file means two models.
   */
  private depthwiseParts(r: LayerReader) {
    r.channelsLast();
    const [C] = this.needImage(r);
    const geometry = this.convGeometry(r);
    // tfjs-layers 4.22 leaves depth_multiplier out of a SeparableConv2D's config: then the kernel's shape tells
    const kernelShape = this.weightShape(r, "depthwise_kernel");
    const M = r.positiveInt("depth_multiplier", kernelShape?.length === 4 ? kernelShape[3] : 1);
    if (r.className === "DepthwiseConv2D" && geometry.dilation.some((d) => d !== 1))
      r.fail("dilation_rate", `is [${geometry.dilation.join(", ")}]: tfjs-layers ignores it here and Keras applies it`);
    const padding = r.padding();
    const useBias = r.bool("use_bias", true);
    const [kh, kw] = geometry.kernelSize;
    const kernel = convKernelFromTf(this.take(r, "depthwise_kernel", [kh, kw, C, M]), C * M, 1, kh, kw);
    return { C, M, options: { inChannels: C, depthMultiplier: M, ...geometry, padding, bias: useBias }, kernel };
  }

  /** Keras DepthwiseConv2D. */
  depthwiseConv2d(r: LayerReader): void {
    const { C, M, options, kernel } = this.depthwiseParts(r);
    const conv = this.build(r, () => new DepthwiseConv2D(options));
    conv.weight.value.data.set(kernel);
    if (options.bias) setParam(conv.bias, this.take(r, "bias", [C * M]));
    this.pushWithActivation(r, conv);
  }

  /** Keras SeparableConv2D: depthwise (depth_multiplier), then a 1×1 pointwise [1, 1, C·M, filters] with the bias. */
  separableConv2d(r: LayerReader): void {
    const filters = r.positiveInt("filters");
    const { C, M, options, kernel } = this.depthwiseParts(r);
    const pointwise = this.take(r, "pointwise_kernel", [1, 1, C * M, filters]);
    const conv = this.build(r, () => new SeparableConv2D({ ...options, outChannels: filters }));
    conv.depthwise.weight.value.data.set(kernel);
    conv.pointwise.weight.value.data.set(convKernelFromTf(pointwise, filters, C * M, 1, 1));
    if (options.bias) setParam(conv.pointwise.bias, this.take(r, "bias", [filters]));
    this.pushWithActivation(r, conv);
  }

  /** Keras Conv2DTranspose: kernel [kh, kw, filters, C]; TF's cropping mapped by transposeAxisFromTf. */
  conv2dTranspose(r: LayerReader): void {
    r.channelsLast();
    const filters = r.positiveInt("filters");
    const { kernelSize, stride, dilation } = this.convGeometry(r);
    if (dilation.some((d) => d !== 1))
      r.fail(
        "dilation_rate",
        `is [${dilation.join(", ")}]: tfjs-layers' Conv2DTranspose ignores it and Keras applies it`,
      );
    const mode = r.padding();
    const op = r.config.output_padding ?? null;
    const outputPadding = op === null ? [null, null] : typeof op === "number" ? [op, op] : op;
    if (
      !Array.isArray(outputPadding) ||
      outputPadding.length !== 2 ||
      !outputPadding.every((v) => v === null || (isInt(v) && v >= 0))
    )
      r.fail("output_padding", `must be null, n or [h, w] of non-negative integers, got ${JSON.stringify(op)}`);
    const [C, H, W] = this.needImage(r);
    const axes = [0, 1].map((a) =>
      transposeAxisFromTf([H, W][a], kernelSize[a], stride[a], mode, outputPadding[a] as number | null),
    );
    axes.forEach((g, a) => {
      if (!g.ok) {
        r.fail(
          op === null ? "padding" : "output_padding",
          `("${mode}"${op === null ? "" : `, output_padding ${JSON.stringify(op)}`}) with kernel ` +
            `${kernelSize[a]} and stride ${stride[a]} keeps ${g.out} ${a === 0 ? "rows" : "columns"} cropping ` +
            `${g.padding} before and ${g.bottom} after; handprop's Conv2DTranspose crops both sides equally and ` +
            'then adds at most stride − 1 (kernel − stride must be even for "same")',
        );
      }
    });
    const useBias = r.bool("use_bias", true);
    const [kh, kw] = kernelSize;
    const kernel = this.take(r, "kernel", [kh, kw, filters, C]);
    const conv = this.build(
      r,
      () =>
        new Conv2DTranspose({
          inChannels: C,
          outChannels: filters,
          kernelSize,
          stride,
          padding: [axes[0].padding, axes[1].padding],
          outputPadding: [axes[0].outputPadding, axes[1].outputPadding],
          bias: useBias,
        }),
    );
    // TF [kh, kw, Co, Ci] is convKernelToTf's order for handprop's (Ci, Co, kh, kw) read as (O, C) = (Ci, Co)
    conv.weight.value.data.set(convKernelFromTf(kernel, C, filters, kh, kw));
    if (useBias) setParam(conv.bias, this.take(r, "bias", [filters]));
    this.pushWithActivation(r, conv);
  }

  /** Keras MaxPooling2D / AveragePooling2D. */
  pooling2d(r: LayerReader): void {
    r.channelsLast();
    const [kh, kw] = r.pair("pool_size", [2, 2]);
    const [sh, sw] = r.has("strides") ? r.pair("strides") : [kh, kw];
    const isMax = r.className === "MaxPooling2D";
    const mode = r.padding();
    // only an average folds zero padding (its zeros count in the divisor: countIncludePad)
    let padding = isMax ? null : this.foldPad(mode);
    let countIncludePad = true;
    const [, H, W] = this.needImage(r);
    if (padding === null && mode === "same") {
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
    const opts = {
      kernelSize: [kh, kw] as [number, number],
      stride: [sh, sw] as [number, number],
      padding: padding ?? [0, 0],
    };
    this.push(
      r,
      this.build(r, () => (isMax ? new MaxPool2D(opts) : new AvgPool2D({ ...opts, countIncludePad }))),
    );
  }

  /** Keras GlobalAveragePooling2D / GlobalMaxPooling2D; keepdims: Keras's [1, 1, C] is handprop's (C, 1, 1). */
  globalPooling2d(r: LayerReader): void {
    r.channelsLast();
    const keepdims = r.bool("keepdims", false);
    const [C] = this.needImage(r);
    this.push(r, r.className === "GlobalMaxPooling2D" ? new GlobalMaxPool2D() : new GlobalAvgPool2D());
    if (keepdims) this.push(r, new Reshape({ targetShape: [C, 1, 1] }));
  }

  /** Keras ZeroPadding2D: held until the next layer (a "valid" Conv2D or AveragePooling2D may fold it). */
  zeroPadding2d(r: LayerReader): void {
    r.channelsLast();
    this.needImage(r);
    const p = r.config.padding ?? 1;
    const ok = (x: unknown): x is number => isInt(x) && x >= 0;
    let tb: [number, number];
    let lr: [number, number];
    if (ok(p)) [tb, lr] = [Array<number>(2).fill(p) as [number, number], Array<number>(2).fill(p) as [number, number]];
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
    if (this.functional !== null) this.flushPad(); // nothing to fold into in a graph
  }

  /** Keras UpSampling2D: nearest only (see the refusal). */
  upSampling2d(r: LayerReader): void {
    r.channelsLast();
    this.needImage(r);
    const size = r.pair("size", [2, 2]);
    const interpolation = r.string("interpolation", "nearest");
    if (interpolation === "bilinear") {
      // tfjs-layers calls resizeBilinear without half-pixel centres (source row i/s); handprop, like Keras
      // in Python (tf.image.resize), samples at (i + ½)/s − ½: the file means two different models.
      r.fail(
        "interpolation",
        'is "bilinear": tfjs-layers samples source row i/s (no half-pixel centres) where handprop and Keras ' +
          "sample (i + ½)/s − ½; refused rather than computing other numbers",
      );
    }
    if (interpolation !== "nearest")
      r.fail("interpolation", `is ${JSON.stringify(interpolation)}; only "nearest" is supported`);
    this.push(
      r,
      this.build(r, () => new UpSampling2D({ size })),
    );
  }

  /** Keras Flatten. */
  flatten(r: LayerReader): void {
    r.channelsLast();
    const shape = this.shape;
    this.push(r, new Flatten());
    if (shape.length === 3)
      this.flattened = shape; // its index is built once the weights confirm the size
    else if (shape.length !== 1) this.flattened = null; // handprop flattens other tensors in Keras's order
  }

  /**
   * Keras Reshape over its view of the tensor: to Keras's layout (an image's channels last, flattened features
   * back in Keras's order), Reshape, and back to handprop's (a rank-3 result is an image: channels first).
   * An image reshaped to features is handprop's flattening instead (as a Flatten: later weights permuted).
   */
  reshape(r: LayerReader): void {
    const raw = r.config.target_shape;
    const kerasIn = kerasShapeOf(this.shape);
    const size = product(this.shape);
    const unknown = (d: unknown) => d === null || d === -1;
    if (
      !Array.isArray(raw) ||
      raw.length === 0 ||
      !raw.every((d) => unknown(d) || (isInt(d) && d >= 1)) ||
      raw.filter(unknown).length > 1
    ) {
      r.fail(
        "target_shape",
        `must be a non-empty list of positive integers with at most one null/-1, got ${JSON.stringify(raw)}`,
      );
    }
    const known = product(raw.filter((d) => !unknown(d)) as number[]);
    const target = (raw as unknown[]).map((d) => (unknown(d) ? size / known : (d as number)));
    if (!target.every((d) => isInt(d) && d >= 1) || product(target) !== size)
      r.fail(
        "target_shape",
        `${JSON.stringify(raw)} does not hold the ${size} values of a [${kerasIn.join(", ")}] tensor`,
      );
    const reshape = (to: number[]) => {
      this.push(r, new Reshape({ targetShape: to })); // valid: target checked above
    };
    const permute = (dims: number[]) => {
      this.push(r, new Permute({ dims }));
    };
    if (target.length === kerasIn.length && target.every((d, i) => d === kerasIn[i])) return; // the identity
    if (this.shape.length === 3 && target.length === 1) {
      const image = this.shape;
      reshape(target);
      this.flattened = image;
      return;
    }
    if (this.flattened && this.shape.length === 1) {
      const [C, H, W] = this.flattened;
      reshape([C, H, W]);
      if (target.length === 3 && target[0] === H && target[1] === W && target[2] === C) {
        this.flattened = null;
        return; // the image that was flattened
      }
      this.flattened = null;
    }
    if (this.shape.length === 3) permute([2, 3, 1]);
    reshape(target);
    if (target.length === 3) permute([3, 1, 2]);
  }

  /** Keras Permute, on the Keras view (permuteFromTf). */
  permute(r: LayerReader): void {
    const dims = permuteFromTf(readPermutation(r, "dims", this.shape.length));
    if (!isIdentity(dims)) this.push(r, new Permute({ dims }));
  }

  /** Keras Dense. */
  dense(r: LayerReader): void {
    if (this.shape.length !== 1 && this.shape.length !== 3)
      throw new TfjsFormatError(
        `${r.where}: Dense on a tensor of shape [${kerasShapeOf(this.shape).join(", ")}] ` +
          "(without a Flatten) is not supported",
      );
    const F = this.shape[0]; // the features, or an image's channels
    const units = r.positiveInt("units");
    const useBias = r.bool("use_bias", true);
    const k = this.take(r, "kernel", [F, units]); // before allocating: checked against weights that exist
    if (this.shape.length === 3) {
      // on an image Keras's Dense maps the channels at every position (ConvNeXt's pointwise layers): a 1×1
      // Conv2D, whose TF kernel [1, 1, C, units] is this [C, units]
      const conv = new Conv2D({ inChannels: F, outChannels: units, kernelSize: 1, bias: useBias });
      conv.weight.value.data.set(convKernelFromTf(k, units, F, 1, 1));
      if (useBias) setParam(conv.bias, this.take(r, "bias", [units]));
      this.pushWithActivation(r, conv);
      return;
    }
    const dense = new Dense({ inFeatures: F, outFeatures: units, bias: useBias });
    dense.weight.value.data.set(this.flattened ? permuteRows(k, nhwcIndex(this.flattened), units, false) : k);
    if (useBias) setParam(dense.bias, this.take(r, "bias", [units]));
    this.flattened = null;
    this.pushWithActivation(r, dense);
  }

  /** Keras Dropout. */
  dropout(r: LayerReader): void {
    const rate = r.number("rate");
    if (!(rate >= 0 && rate < 1)) r.fail("rate", `must be in [0, 1), got ${rate}`);
    r.only("noise_shape", null);
    this.push(r, new Dropout({ rate }));
  }

  /** Per-feature values in Keras's order → handprop's (permuted when the features are a flattened image). */
  private featureOrder(data: Float32Array): Float32Array {
    return this.shape.length === 1 && this.flattened ? permuteRows(data, nhwcIndex(this.flattened), 1, false) : data;
  }

  /** Keras BatchNormalization. */
  batchNormalization(r: LayerReader): void {
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
        `${r.where}: BatchNormalization on a tensor of shape [${kerasShapeOf(this.shape).join(", ")}] is not supported`,
      );
    // handprop's affine has γ and β together: a missing one keeps its identity value (γ = 1, β = 0).
    const opts = { numFeatures: C, eps, momentum: 1 - momentum, affine: center || scale };
    const bn = this.shape.length === 3 ? new BatchNorm2D(opts) : new BatchNorm1D(opts);
    const feat = (d: Float32Array) => this.featureOrder(d);
    if (scale) setParam(bn.gamma, feat(this.take(r, "gamma", [C])));
    if (center) setParam(bn.beta, feat(this.take(r, "beta", [C])));
    setParam(bn.runningMean, feat(this.take(r, "moving_mean", [C])));
    setParam(bn.runningVar, feat(this.take(r, "moving_variance", [C])));
    this.push(r, bn);
  }

  /**
   * Keras LayerNormalization over its `axis` set S (γ, β of shape [size of each listed axis], stored in sorted
   * axis order). handprop's LayerNorm normalises trailing axes: S's axes already trailing in handprop's order
   * (W; H, W; a rank-1 or sequence tensor's last ones) map directly; all of an image's (H, W, C) map with γ, β
   * permuted to (C, H, W); any other S (the channels, as ConvNeXt's) is wrapped in Permute layers that move S
   * last (in Keras's order) and back.
   */
  layerNormalization(r: LayerReader): void {
    const rank = this.shape.length;
    const raw = r.config.axis ?? -1;
    const list = typeof raw === "number" ? [raw] : raw;
    if (!Array.isArray(list) || list.length === 0 || !list.every(isInt))
      r.fail("axis", `must be an integer or a list of them, got ${JSON.stringify(raw)}`);
    const axes = list.map((a) => (a < 0 ? a + rank + 1 : a));
    if (axes.some((a) => a < 1 || a > rank) || new Set(axes).size !== axes.length)
      r.fail(
        "axis",
        `is ${JSON.stringify(raw)}; expected distinct sample axes 1…${rank} (or negative) of a rank-${rank + 1} tensor`,
      );
    r.only("rms_scaling", false);
    const eps = r.number("epsilon", 1e-3);
    const center = r.bool("center", true);
    const scale = r.bool("scale", true);
    const kerasShape = kerasShapeOf(this.shape);
    const paramShape = axes.map((a) => kerasShape[a - 1]);
    const gamma = scale ? this.take(r, "gamma", paramShape) : null;
    const beta = center ? this.take(r, "beta", paramShape) : null;
    const sorted = axes.slice().sort((a, b) => a - b);
    const c = kerasAxesOf(rank);
    const positions = sorted.map((k) => c.indexOf(k) + 1); // handprop axes of S, in Keras's order
    const trailing = positions.every((p, i) => p === rank - sorted.length + 1 + i);
    let order: ((d: Float32Array) => Float32Array) | null = null;
    let dims: number[] | null = null;
    let normalizedShape = sorted.map((k) => kerasShape[k - 1]);
    if (rank === 3 && sorted.length === 3) {
      const idx = nhwcIndex(this.shape);
      order = (d) => permuteRows(d, idx, 1, false);
      normalizedShape = this.shape.slice();
    } else if (rank === 1) order = (d) => this.featureOrder(d);
    else if (!trailing) dims = [...c.map((_, i) => i + 1).filter((p) => !positions.includes(p)), ...positions];
    const norm = this.build(
      r,
      () => new LayerNorm({ axes: sorted.length, normalizedShape, eps, affine: center || scale }),
    );
    if (gamma) setParam(norm.gamma, order ? order(gamma) : gamma);
    if (beta) setParam(norm.beta, order ? order(beta) : beta);
    if (dims) this.push(r, new Permute({ dims }));
    this.push(r, norm);
    if (dims) this.push(r, new Permute({ dims: inversePermutation(dims) }));
  }

  /**
   * Keras 3 GroupNormalization (tfjs-layers has none): G contiguous groups of the channels (Keras reshapes
   * [..., C] to [..., G, C/G]), statistics over each group and all positions, γ, β per channel [C] — handprop's
   * GroupNorm, whose channels are axis 1 of an image (C, H, W) or of features (F,).
   */
  groupNormalization(r: LayerReader): void {
    const rank = this.shape.length + 1;
    const axis = r.config.axis ?? -1;
    if (axis !== -1 && axis !== rank - 1)
      r.fail("axis", `is ${JSON.stringify(axis)}; only the channel (last) axis ${rank - 1} or -1 is supported`);
    if (rank !== 4 && rank !== 2)
      r.fail(
        "axis",
        `on a tensor of shape [${kerasShapeOf(this.shape).join(", ")}]: handprop's channels are not its last axis`,
      );
    if (this.flattened)
      r.fail("axis", "over flattened image features: their groups are not contiguous in handprop's (C, H, W) order");
    const groups = r.positiveInt("groups", 32);
    const eps = r.number("epsilon", 1e-3);
    const center = r.bool("center", true);
    const scale = r.bool("scale", true);
    const C = this.shape[0];
    const gamma = scale ? this.take(r, "gamma", [C]) : null;
    const beta = center ? this.take(r, "beta", [C]) : null;
    const norm = this.build(r, () => new GroupNorm({ groups, numChannels: C, eps, affine: center || scale }));
    if (gamma) setParam(norm.gamma, gamma);
    if (beta) setParam(norm.beta, beta);
    this.push(r, norm);
  }

  /** Keras LeakyReLU: TF.js/Keras 2 call the slope alpha, Keras 3 negative_slope; Keras's default is 0.3. */
  leakyRelu(r: LayerReader): void {
    this.push(r, new LeakyReLU({ alpha: r.number(r.has("alpha") ? "alpha" : "negative_slope", 0.3) }));
  }

  /** Keras ELU (any alpha; tfjs-layers builds only alpha 1). */
  elu(r: LayerReader): void {
    this.push(
      r,
      this.build(r, () => new ELU({ alpha: r.number("alpha", 1) })),
    );
  }

  /** Keras ReLU. */
  relu(r: LayerReader): void {
    r.only("max_value", null);
    r.only("threshold", 0);
    const slope = r.number("negative_slope", 0);
    this.push(r, slope === 0 ? new ReLU() : new LeakyReLU({ alpha: slope }));
  }

  /** Keras Softmax. */
  softmax(r: LayerReader): void {
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

/** Keras layer class → the LayerImporter method reading it (the merges Add, Multiply, Concatenate: functionalModel). */
const READERS = {
  InputLayer: "inputLayer",
  Conv2D: "conv2d",
  DepthwiseConv2D: "depthwiseConv2d",
  SeparableConv2D: "separableConv2d",
  Conv2DTranspose: "conv2dTranspose",
  MaxPooling2D: "pooling2d",
  AveragePooling2D: "pooling2d",
  GlobalAveragePooling2D: "globalPooling2d",
  GlobalMaxPooling2D: "globalPooling2d",
  ZeroPadding2D: "zeroPadding2d",
  UpSampling2D: "upSampling2d",
  Flatten: "flatten",
  Reshape: "reshape",
  Permute: "permute",
  Dense: "dense",
  Dropout: "dropout",
  BatchNormalization: "batchNormalization",
  LayerNormalization: "layerNormalization",
  GroupNormalization: "groupNormalization",
  Activation: "pushActivation",
  ReLU: "relu",
  LeakyReLU: "leakyRelu",
  ELU: "elu",
  Softmax: "softmax",
} as const satisfies Record<string, keyof LayerImporter>;

/**
 * Build a Sequential from a TF.js Layers model.json (or TF.js ModelArtifacts: `weightSpecs` instead
 * of `weightsManifest`) and its weight data, in handprop's NCHW layout — or, from a functional model, a
 * graph Model (see functionalModel; Add, Multiply and Concatenate also supported there). Supported Keras layers:
 * InputLayer, Conv2D, DepthwiseConv2D, SeparableConv2D, Conv2DTranspose, MaxPooling2D, AveragePooling2D,
 * GlobalAveragePooling2D, GlobalMaxPooling2D, ZeroPadding2D (folded into the next "valid" Conv2D or
 * AveragePooling2D when symmetric, else a ZeroPadding2D layer), UpSampling2D (nearest), Flatten, Reshape,
 * Permute, Dense (on an image: a 1×1 Conv2D), Dropout, BatchNormalization, LayerNormalization,
 * GroupNormalization (Keras 3), Activation, ReLU, LeakyReLU, ELU, Softmax; a fused activation becomes its
 * own layer. Anything else — another layer class, channels_first, an
 * activation, padding or interpolation handprop lacks or computes differently — is a TfjsFormatError naming
 * the layer and the field.
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
  const importer = new LayerImporter(weights, functional, inputShape);
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
