// Conv2D: 2-D convolution over NCHW images — strictly a cross-correlation (the kernel is not flipped),
// as in PyTorch, TF/Keras and every other deep-learning library:
//
//   y[n,o,i,j] = b[o] + Σ_{c,p,q} W[o,c,p,q] · x_pad[n, c, i·sh + p·dh, j·sw + q·dw]
//
// with W stored (outChannels, inChannels, kh, kw) as in PyTorch and x_pad the input with zero padding.
// This layer owns the options, the geometry and the parameters; the arithmetic is the kernels'
// conv2dForward / conv2dBackward (derivation.md §2.2): the reference in src/kernels/js.ts (im2col + GEMM,
// beside the direct seven-loop oracle the tests use), float32 in src/kernels/wasm/conv.as.

import type { NDArray, DType } from "../nd/ndarray.ts";
import { formatShape } from "../nd/ndarray.ts";
import { RandomState } from "../nd/random.ts";
import { kernels } from "../kernels/backend.ts";
import { convGeometry, type ConvGeometry } from "../kernels/im2col.ts";
import type { Conv2DContext } from "../kernels/kernels.ts";
import { initialize, checkInit, type InitName } from "./init.ts";
import {
  Layer, ShapeError, makeParam, nonNegativeInt, pair, positiveInt, type BackwardOptions, type LayerConfig, type Param,
} from "./layer.ts";

/**
 * Zero padding: n (all sides), [ph, pw] (ph rows top and bottom, pw columns left and right),
 * "valid" (none) or "same" (output size ⌈size / stride⌉, TF/Keras rules, see {@link samePadding}).
 */
export type Conv2DPadding = number | readonly [number, number] | "same" | "valid";

export interface Conv2DOptions {
  inChannels: number;
  outChannels: number;
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

function checkPadding(v: unknown): Conv2DPadding {
  if (v === "same" || v === "valid") return v;
  if (typeof v === "number") return nonNegativeInt("Conv2D", "padding", v);
  if (Array.isArray(v)) {
    const [ph, pw] = pair("Conv2D", "padding", v as [number, number], nonNegativeInt);
    return [ph, pw];
  }
  throw new RangeError(`Conv2D: padding must be a non-negative integer, [ph, pw], "same" or "valid", got ${JSON.stringify(v)}`);
}

/** A pair written back compactly for config(): n when both halves agree. */
function compact([a, b]: readonly [number, number]): number | [number, number] {
  return a === b ? a : [a, b];
}

export class Conv2D extends Layer {
  readonly type = "Conv2D";
  readonly inChannels: number;
  readonly outChannels: number;
  readonly kernelSize: [number, number];
  readonly stride: [number, number];
  readonly dilation: [number, number];
  /** The padding option as given (validated). */
  readonly padding: Conv2DPadding;
  readonly useBias: boolean;
  readonly init: InitName;
  readonly weight: Param;
  readonly bias: Param | null;
  // Fixed [top, bottom, left, right] for numeric/"valid" padding, and for "same" at stride 1 (where it
  // does not depend on the input size); null when "same" must be resolved per input shape.
  private readonly fixedPadding: [number, number, number, number] | null;
  private geometry: ConvGeometry | null = null; // of the last forward's batch shape
  private saved: Conv2DContext | null = null; // what the last forward saved for backward

  constructor(opts: Conv2DOptions) {
    super();
    this.inChannels = positiveInt("Conv2D", "inChannels", opts.inChannels);
    this.outChannels = positiveInt("Conv2D", "outChannels", opts.outChannels);
    this.kernelSize = pair("Conv2D", "kernelSize", opts.kernelSize, positiveInt);
    this.stride = pair("Conv2D", "stride", opts.stride ?? 1, positiveInt);
    this.dilation = pair("Conv2D", "dilation", opts.dilation ?? 1, positiveInt);
    this.padding = checkPadding(opts.padding ?? "valid");
    if (opts.bias !== undefined && typeof opts.bias !== "boolean") throw new RangeError(`Conv2D: bias must be true or false, got ${JSON.stringify(opts.bias)}`);
    this.useBias = opts.bias ?? true;
    this.init = checkInit("Conv2D", opts.init ?? "he_normal");
    const dtype = opts.dtype ?? "float32";
    if (dtype !== "float32" && dtype !== "float64") throw new RangeError(`Conv2D: dtype must be "float32" or "float64", got ${JSON.stringify(dtype)}`);

    const [kh, kw] = this.kernelSize;
    const [sh, sw] = this.stride;
    const [dh, dw] = this.dilation;
    const p = this.padding;
    if (p === "valid") this.fixedPadding = [0, 0, 0, 0];
    else if (p === "same") this.fixedPadding = sh === 1 && sw === 1 ? [...samePadding(1, kh, 1, dh), ...samePadding(1, kw, 1, dw)] : null;
    else if (typeof p === "number") this.fixedPadding = [p, p, p, p];
    else this.fixedPadding = [p[0], p[0], p[1], p[1]];

    this.weight = makeParam("weight", [this.outChannels, this.inChannels, kh, kw], dtype);
    this.bias = this.useBias ? makeParam("bias", [this.outChannels], dtype) : null;
    this.initialize(opts.rng ?? new RandomState(0));
  }

  override initialize(rng: RandomState): void {
    const [kh, kw] = this.kernelSize;
    initialize(this.weight.value, this.init, this.inChannels * kh * kw, this.outChannels * kh * kw, rng);
    this.bias?.value.data.fill(0);
  }

  override params(): Param[] {
    return this.bias ? [this.weight, this.bias] : [this.weight];
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
    if (inputShape.length !== 3 || C !== this.inChannels || !inputShape.every((d) => Number.isInteger(d) && d >= 0)) {
      throw new ShapeError(`${this.describe()}: expected input samples of shape (${this.inChannels}, H, W), got ${formatShape(inputShape)}`);
    }
    const g = this.checkedGeometry(1, H, W);
    return [this.outChannels, g.OH, g.OW];
  }

  // Geometry of a forward on (N, C, H, W), throwing when the dilated kernel does not fit.
  private checkedGeometry(N: number, H: number, W: number): ConvGeometry {
    const pad = this.paddingFor(H, W);
    const g = convGeometry(N, this.inChannels, H, W, this.kernelSize, this.stride, pad, this.dilation);
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
    this.expectInput(x, [null, this.inChannels, null, null], ["N", "C", "H", "W"]);
    const [N, , H, W] = x.shape;
    const prev = this.geometry;
    const g = prev !== null && prev.N === N && prev.H === H && prev.W === W ? prev : (this.geometry = this.checkedGeometry(N, H, W));
    this.saved = kernels.conv2dForward(g, x, this.weight.value, this.bias?.value ?? null, this.saved);
    return this.saved.y;
  }

  // Backward (derivation.md §2.2): dW += Σ_n dy_n · col_nᵀ, db += Σ dy, dx = col2im(Wᵀ · dy_n).
  backward(dy: NDArray, opts: BackwardOptions = {}): NDArray {
    this.expectGrad(dy, this.saved?.y ?? null);
    const ctx = this.saved!;
    const needDx = opts.needDx ?? true;
    return kernels.conv2dBackward(ctx, this.weight.value, dy, this.weight.grad, this.bias?.grad ?? null, needDx);
  }

  config(): LayerConfig {
    return {
      type: this.type,
      inChannels: this.inChannels,
      outChannels: this.outChannels,
      kernelSize: compact(this.kernelSize),
      stride: compact(this.stride),
      padding: typeof this.padding === "object" ? [this.padding[0], this.padding[1]] : this.padding,
      dilation: compact(this.dilation),
      bias: this.useBias,
      init: this.init,
    };
  }
}
