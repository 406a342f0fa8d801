// Conv2D: 2-D convolution over NCHW images — strictly a cross-correlation (the kernel is not flipped),
// as in PyTorch, TF/Keras and every other deep-learning library:
//
//   y[n,o,i,j] = b[o] + Σ_{c,p,q} W[o,c,p,q] · x_pad[n, c, i·sh + p·dh, j·sw + q·dw]
//
// with W stored (outChannels, inChannels/groups, kh, kw) as in PyTorch and x_pad the input with zero
// padding. This layer owns the options, the geometry and the parameters (created once the input channels
// are known: given, or inferred from the first input shape); the arithmetic is the kernels'
// conv2dForward / conv2dBackward (derivation.md §2.2, groups §5.1): the reference in src/kernels/js.ts
// (im2col + GEMM, grouped GEMMs, direct loops for depthwise, beside the seven-loop oracle the tests use),
// float32 in src/kernels/wasm/conv.as.

import type { NDArray, DType } from "../nd/ndarray.ts";
import { formatShape } from "../nd/ndarray.ts";
import { RandomState } from "../nd/random.ts";
import { kernels } from "../kernels/backend.ts";
import { convGeometry, type ConvGeometry } from "../kernels/im2col.ts";
import type { Conv2DContext } from "../kernels/kernels.ts";
import { initialize, checkInit, type InitName } from "./init.ts";
import {
  ShapeError,
  checkSampleSize,
  makeParam,
  nonNegativeInt,
  pair,
  positiveInt,
  type BackwardOptions,
  type LayerConfig,
  booleanOption,
  dtypeOption,
  rngOption,
} from "./layer.ts";
import { WeightedLayer } from "./weighted.ts";

const NCHW_NAMES: readonly string[] = ["N", "C", "H", "W"];

/**
 * Zero padding: n (all sides), [ph, pw] (ph rows top and bottom, pw columns left and right),
 * "valid" (none) or "same" (output size ⌈size / stride⌉, TF/Keras rules, see {@link samePadding}).
 */
export type Conv2DPadding = number | readonly [number, number] | "same" | "valid";

export interface Conv2DOptions {
  /** Input channels C; optional: when left out it is taken from the first input shape seen (Keras-style). */
  inChannels?: number;
  outChannels: number;
  /**
   * Split the channels into `groups` independent convolutions (default 1): output channels
   * o·(O/g) … (o+1)·(O/g) − 1 read only input channels of group o. C and O must be multiples of it
   * (derivation.md §4.1). groups = C is a depthwise convolution.
   */
  groups?: number;
  /** k or [kh, kw]. */
  kernelSize: number | readonly [number, number];
  /** s or [sh, sw] (default 1). */
  stride?: number | readonly [number, number];
  /** Default "valid". */
  padding?: Conv2DPadding;
  /** d or [dh, dw] (default 1): kernel taps d pixels apart, so the kernel spans d·(k − 1) + 1. */
  dilation?: number | readonly [number, number];
  /** Add a per-output-channel bias b (default true). */
  bias?: boolean;
  /** Weight initialiser (default he_normal, fanIn = inChannels·kh·kw); biases start at 0. */
  init?: InitName;
  dtype?: DType;
  /** Draw the initial weights from this generator (default: RandomState(0)). */
  rng?: RandomState;
}

/**
 * TF/Keras "same" padding along one axis: output size out = ⌈size / s⌉ and total padding
 * max((out − 1)·s + d·(k − 1) + 1 − size, 0), split with the odd row/column at the end (bottom/right).
 * Returns [before, after]. With stride 1 the total is d·(k − 1) whatever the size; with larger strides
 * it depends on the size, which is why Conv2D resolves "same" per input shape.
 */
export function samePadding(size: number, k: number, s: number, d: number): [number, number] {
  const out = Math.ceil(size / s);
  const total = Math.max((out - 1) * s + d * (k - 1) + 1 - size, 0);
  const before = Math.floor(total / 2);
  return [before, total - before];
}

function checkPadding(v: unknown, layer: string): Conv2DPadding {
  if (v === "same" || v === "valid") return v;
  if (typeof v === "number") return nonNegativeInt(layer, "padding", v);
  if (Array.isArray(v)) {
    const [ph, pw] = pair(layer, "padding", v as [number, number], nonNegativeInt);
    return [ph, pw];
  }
  throw new RangeError(
    `${layer}: padding must be a non-negative integer, [ph, pw], "same" or "valid", got ${JSON.stringify(v)}`,
  );
}

/** A pair written back compactly for config(): n when both halves agree. */
export function compact([a, b]: readonly [number, number]): number | [number, number] {
  return a === b ? a : [a, b];
}

/**
 * 2-D convolution (cross-correlation, as every framework's) over NCHW input, with stride, padding (numbers or
 * "same"/"valid"), dilation and groups; the gradients are derived in docs/derivation.md.
 */
export class Conv2D extends WeightedLayer {
  readonly type: string = "Conv2D";
  readonly kernelSize: [number, number];
  readonly stride: [number, number];
  readonly dilation: [number, number];
  /** The padding option as given (validated). */
  readonly padding: Conv2DPadding;
  readonly useBias: boolean;
  readonly init: InitName;
  // Channels and parameters: null until the input channels are known (given, or inferred at build).
  protected channelsIn: number | null;
  protected channelsOut: number | null;
  protected groupCount: number;
  protected readonly inputSizeOption = "inChannels";
  private dtype: DType;
  private readonly rng: RandomState;
  // Fixed [top, bottom, left, right] for numeric/"valid" padding, and for "same" at stride 1 (where it
  // does not depend on the input size); null when "same" must be resolved per input shape.
  private readonly fixedPadding: [number, number, number, number] | null;
  private geometry: ConvGeometry | null = null; // of the last forward's batch shape
  private inputDims: (number | null)[] | null = null; // expectInput's (N, C, H, W), kept: a step allocates none
  private saved: Conv2DContext | null = null; // what the last forward saved for backward

  constructor(opts: Conv2DOptions, layer = "Conv2D") {
    super();
    if (typeof opts !== "object" || opts === null) throw new TypeError(`${layer}: expected an options object`);
    this.channelsIn = opts.inChannels === undefined ? null : positiveInt(layer, "inChannels", opts.inChannels);
    this.channelsOut =
      opts.outChannels === undefined && layer !== "Conv2D" ? null : positiveInt(layer, "outChannels", opts.outChannels);
    this.groupCount = positiveInt(layer, "groups", opts.groups ?? 1);
    this.kernelSize = pair(layer, "kernelSize", opts.kernelSize, positiveInt);
    this.stride = pair(layer, "stride", opts.stride ?? 1, positiveInt);
    this.dilation = pair(layer, "dilation", opts.dilation ?? 1, positiveInt);
    this.padding = checkPadding(opts.padding ?? "valid", layer);
    this.useBias = booleanOption(layer, "bias", opts.bias, true);
    this.init = checkInit(layer, opts.init ?? "he_normal");
    this.dtype = dtypeOption(layer, opts.dtype);
    this.rng = rngOption(layer, opts.rng);
    if (this.channelsOut !== null && this.channelsOut % this.groupCount !== 0) {
      throw new RangeError(
        `${layer}: outChannels (${this.channelsOut}) must be a multiple of groups (${this.groupCount})`,
      );
    }

    const [kh, kw] = this.kernelSize;
    const [sh, sw] = this.stride;
    const [dh, dw] = this.dilation;
    const p = this.padding;
    if (p === "valid") this.fixedPadding = [0, 0, 0, 0];
    else if (p === "same")
      this.fixedPadding = sh === 1 && sw === 1 ? [...samePadding(1, kh, 1, dh), ...samePadding(1, kw, 1, dw)] : null;
    else if (typeof p === "number") this.fixedPadding = [p, p, p, p];
    else this.fixedPadding = [p[0], p[0], p[1], p[1]];
    // (DepthwiseConv2D, whose outChannels follow from the input's, resolves in its own constructor)
    if (this.channelsIn !== null && this.channelsOut !== null) this.resolveChannels(this.channelsIn);
  }

  /** Input channels C (throws while they are still to be inferred from the input shape). */
  get inChannels(): number {
    return this.channelsIn ?? this.unresolved("inChannels");
  }

  get outChannels(): number {
    return this.channelsOut ?? this.unresolved("outChannels");
  }

  get groups(): number {
    return this.groupCount;
  }

  /**
   * Fix the input channels (given or inferred, Keras's build()) and create the parameters, drawing the
   * weights from the layer's generator. Later inputs must have the same channel count.
   */
  protected resolveChannels(C: number): void {
    if (this.builtForChannels(C, this.channelsIn)) return;
    this.configureChannels(C);
    const O = this.outChannels;
    const G = this.groupCount;
    if (C % G !== 0)
      throw new ShapeError(`${this.describe()}: input channels (${C}) must be a multiple of groups (${G})`);
    if (O % G !== 0) throw new ShapeError(`${this.describe()}: outChannels (${O}) must be a multiple of groups (${G})`);
    this.channelsIn = C;
    const [kh, kw] = this.kernelSize;
    this.weightParam = makeParam("weight", [O, C / G, kh, kw], this.dtype);
    this.biasParam = this.useBias ? makeParam("bias", [O], this.dtype) : null;
    this.initialize(this.rng);
  }

  /** Hook for layers whose output channels follow from the input's (DepthwiseConv2D). */
  protected configureChannels(_C: number): void {
    /* Conv2D: outChannels and groups are given */
  }

  override initialize(rng: RandomState): void {
    if (this.weightParam === null) return; // drawn when the input channels become known
    const [kh, kw] = this.kernelSize;
    const G = this.groupCount;
    initialize(this.weightParam.value, this.init, (this.inChannels / G) * kh * kw, this.outChannels * kh * kw, rng);
    this.biasParam?.value.data.fill(0);
  }

  override setDtype(dtype: DType): void {
    this.dtype = dtype;
    super.setDtype(dtype);
  }

  /** Zero padding [top, bottom, left, right] applied to an H×W input. */
  paddingFor(H: number, W: number): [number, number, number, number] {
    if (this.fixedPadding !== null) return [...this.fixedPadding];
    const [kh, kw] = this.kernelSize;
    const [sh, sw] = this.stride;
    const [dh, dw] = this.dilation;
    return [...samePadding(H, kh, sh, dh), ...samePadding(W, kw, sw, dw)];
  }

  outputShape(inputShape: readonly number[]): number[] {
    const [C, H, W] = inputShape;
    const known = this.channelsIn;
    if (
      inputShape.length !== 3 ||
      (known !== null && C !== known) ||
      !inputShape.every((d) => Number.isInteger(d) && d >= 0)
    ) {
      throw new ShapeError(
        `${this.describe()}: expected input samples of shape (${known ?? "C"}, H, W), got ${formatShape(inputShape)}`,
      );
    }
    this.resolveChannels(C);
    const g = this.checkedGeometry(1, H, W);
    return [this.outChannels, g.OH, g.OW];
  }

  // Geometry of a forward on (N, C, H, W), throwing when the dilated kernel does not fit.
  private checkedGeometry(N: number, H: number, W: number): ConvGeometry {
    const pad = this.paddingFor(H, W);
    const g = convGeometry(N, this.inChannels, H, W, this.kernelSize, this.stride, pad, this.dilation);
    // a dilation far beyond the input pads it to a huge plane, which forward would allocate
    checkSampleSize(this.describe(), [this.inChannels, H + pad[0] + pad[1], W + pad[2] + pad[3]], "pads its input to");
    if (g.OH < 1 || g.OW < 1) {
      const [kh, kw] = this.kernelSize;
      const [dh, dw] = this.dilation;
      const dilated = dh === 1 && dw === 1 ? "" : ` (dilated ${dh * (kh - 1) + 1}×${dw * (kw - 1) + 1})`;
      const given = typeof this.padding === "string" ? `"${this.padding}"` : JSON.stringify(this.padding);
      throw new ShapeError(
        `${this.describe()}: kernel ${kh}×${kw}${dilated} is larger than the padded input ` +
          `${H + pad[0] + pad[1]}×${W + pad[2] + pad[3]} (input ${H}×${W}, padding ${given})`,
      );
    }
    return g;
  }

  forward(x: NDArray): NDArray {
    const dims = (this.inputDims ??= [null, this.channelsIn, null, null]);
    dims[1] = this.channelsIn;
    this.expectInput(x, dims, NCHW_NAMES);
    this.resolveChannels(x.shape[1]);
    const N = x.shape[0];
    const H = x.shape[2];
    const W = x.shape[3];
    const prev = this.geometry;
    const g =
      prev !== null && prev.N === N && prev.H === H && prev.W === W
        ? prev
        : (this.geometry = this.checkedGeometry(N, H, W));
    this.saved = kernels.conv2dForward(g, this.groupCount, x, this.weight.value, this.bias?.value ?? null, this.saved);
    return this.saved.y;
  }

  // Backward (derivation.md §2.2; groups §5.1): dW += Σ_n dy_n · col_nᵀ, db += Σ dy, dx = col2im(Wᵀ · dy_n),
  // per group on W_g, dy's channel block g and col's row block g.
  backward(dy: NDArray, opts: BackwardOptions = {}): NDArray {
    this.expectGrad(dy, this.saved?.y ?? null);
    const { weight, bias } = this;
    return kernels.conv2dBackward(this.saved!, weight.value, dy, weight.grad, bias?.grad ?? null, opts.needDx ?? true);
  }

  config(): LayerConfig {
    return this.weightedConfig(this.channelsIn, {
      outChannels: this.outChannels,
      ...(this.groupCount !== 1 ? { groups: this.groupCount } : {}),
      kernelSize: compact(this.kernelSize),
      stride: compact(this.stride),
      padding: typeof this.padding === "object" ? [this.padding[0], this.padding[1]] : this.padding,
      dilation: compact(this.dilation),
    });
  }
}
