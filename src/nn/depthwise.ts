// DepthwiseConv2D and SeparableConv2D (MobileNet's building blocks), derivation.md §5.1.
//
// DepthwiseConv2D is Conv2D with groups = C and O = C·M (M the depth multiplier): input channel c is
// convolved with its own M kernels, giving output channels c·M … c·M + M − 1 (PyTorch's order; Keras
// stores the same kernel as (kh, kw, C, M)):
//   y[n, c·M+m, i, j] = b[c·M+m] + Σ_{p,q} W[c·M+m, 0, p, q] · x_pad[n, c, i·sh + p·dh, j·sw + q·dw]
// Its forward and backward are Conv2D's grouped ones (§5.1); the layer only fixes the channel bookkeeping.
//
// SeparableConv2D = DepthwiseConv2D (no bias) followed by a 1×1 Conv2D (the pointwise convolution, with
// the bias): y = pointwise(depthwise(x)). Its backward is the chain rule through the two (§0):
//   dx = depthwise.backward(pointwise.backward(dy)).

import type { DType, NDArray } from "../nd/ndarray.ts";
import type { RandomState } from "../nd/random.ts";
import { Conv2D, type Conv2DOptions, type Conv2DPadding } from "./conv.ts";
import type { InitName } from "./init.ts";
import {
  expectOptions,
  Layer,
  positiveInt,
  type BackwardOptions,
  type ForwardOptions,
  type LayerConfig,
  type Param,
} from "./layer.ts";

/** Conv2D's geometry and initialisation options; the channels are C in, C·M out, one group per channel. */
export interface DepthwiseConv2DOptions extends Pick<
  Conv2DOptions,
  "inChannels" | "kernelSize" | "stride" | "padding" | "dilation" | "bias" | "dtype" | "rng"
> {
  /** M output channels per input channel (default 1). */
  depthMultiplier?: number;
  /** Default he_normal with fanIn = kh·kw (one input channel per kernel). */
  init?: InitName;
}

/** The grouped Conv2D doing the work; private so interop code never mistakes it for an ordinary Conv2D. */
class DepthwiseKernel extends Conv2D {
  override readonly type: string = "DepthwiseConv2D";
  constructor(
    opts: DepthwiseConv2DOptions,
    private readonly multiplier: number,
  ) {
    const { inChannels, depthMultiplier: _m, ...rest } = opts;
    super(
      { ...rest, ...(inChannels !== undefined ? { inChannels } : {}), outChannels: undefined as unknown as number },
      "DepthwiseConv2D",
    );
    if (inChannels !== undefined) this.resolveChannels(inChannels);
  }

  protected override configureChannels(C: number): void {
    this.channelsOut = C * this.multiplier;
    this.groupCount = C;
  }
}

/**
 * Depthwise convolution: each input channel convolved with its own `depthMultiplier` kernels (Conv2D with groups =
 * channels).
 */
export class DepthwiseConv2D extends Layer {
  readonly type = "DepthwiseConv2D";
  readonly depthMultiplier: number;
  private readonly conv: DepthwiseKernel;

  constructor(opts: DepthwiseConv2DOptions) {
    super();
    expectOptions("DepthwiseConv2D", opts, "{kernelSize, depthMultiplier?, ...}");
    if ((opts as { outChannels?: unknown }).outChannels !== undefined) {
      throw new RangeError("DepthwiseConv2D: outChannels is inChannels·depthMultiplier; give depthMultiplier instead");
    }
    if ((opts as { groups?: unknown }).groups !== undefined)
      throw new RangeError("DepthwiseConv2D: groups is always inChannels; remove the option");
    this.depthMultiplier = positiveInt("DepthwiseConv2D", "depthMultiplier", opts.depthMultiplier ?? 1);
    this.conv = new DepthwiseKernel(opts, this.depthMultiplier);
  }

  get inChannels(): number {
    return this.conv.inChannels;
  }
  get outChannels(): number {
    return this.conv.outChannels;
  }
  get kernelSize(): [number, number] {
    return this.conv.kernelSize;
  }
  get stride(): [number, number] {
    return this.conv.stride;
  }
  get dilation(): [number, number] {
    return this.conv.dilation;
  }
  get padding(): Conv2DPadding {
    return this.conv.padding;
  }
  /** (C·M, 1, kh, kw). */
  get weight(): Param {
    return this.conv.weight;
  }
  get bias(): Param | null {
    return this.conv.bias;
  }
  /** Zero padding [top, bottom, left, right] for an H×W input. */
  paddingFor(H: number, W: number): [number, number, number, number] {
    return this.conv.paddingFor(H, W);
  }

  override isBuilt(): boolean {
    return this.conv.isBuilt();
  }

  private sync(): DepthwiseKernel {
    this.conv.index = this.index;
    return this.conv;
  }

  outputShape(inputShape: readonly number[]): number[] {
    return this.sync().outputShape(inputShape);
  }

  forward(x: NDArray, _opts?: ForwardOptions): NDArray {
    return this.sync().forward(x);
  }

  backward(dy: NDArray, opts: BackwardOptions = {}): NDArray {
    return this.sync().backward(dy, opts);
  }

  override params(): Param[] {
    return this.conv.params();
  }

  override initialize(rng: RandomState): void {
    this.conv.initialize(rng);
  }

  override setDtype(dtype: DType): void {
    this.conv.setDtype(dtype);
  }

  config(): LayerConfig {
    const c = this.conv.config();
    const { outChannels: _o, groups: _g, type: _t, ...rest } = c;
    return { type: this.type, ...rest, depthMultiplier: this.depthMultiplier };
  }
}

export interface SeparableConv2DOptions extends DepthwiseConv2DOptions {
  outChannels: number;
}

/** A depthwise convolution followed by a 1×1 pointwise convolution (one bias, after the pointwise). */
export class SeparableConv2D extends Layer {
  readonly type = "SeparableConv2D";
  readonly depthwise: DepthwiseConv2D;
  readonly pointwise: Conv2D;
  private readonly init: InitName;

  constructor(opts: SeparableConv2DOptions) {
    super();
    expectOptions("SeparableConv2D", opts, "{outChannels, kernelSize, ...}");
    const out = positiveInt("SeparableConv2D", "outChannels", opts.outChannels);
    const M = positiveInt("SeparableConv2D", "depthMultiplier", opts.depthMultiplier ?? 1);
    const { outChannels: _o, bias, ...dw } = opts;
    this.init = opts.init ?? "glorot_uniform";
    this.depthwise = new DepthwiseConv2D({ ...dw, init: this.init, bias: false });
    const common = { ...(opts.dtype ? { dtype: opts.dtype } : {}), ...(opts.rng ? { rng: opts.rng } : {}) };
    this.pointwise = new Conv2D({
      ...(opts.inChannels !== undefined ? { inChannels: opts.inChannels * M } : {}),
      outChannels: out,
      kernelSize: 1,
      bias: bias ?? true,
      init: this.init,
      ...common,
    });
  }

  get inChannels(): number {
    return this.depthwise.inChannels;
  }
  get outChannels(): number {
    return this.pointwise.outChannels;
  }

  override isBuilt(): boolean {
    return this.depthwise.isBuilt() && this.pointwise.isBuilt();
  }

  private sync(): void {
    this.depthwise.index = this.pointwise.index = this.index;
  }

  outputShape(inputShape: readonly number[]): number[] {
    this.sync();
    return this.pointwise.outputShape(this.depthwise.outputShape(inputShape));
  }

  forward(x: NDArray, opts?: ForwardOptions): NDArray {
    this.sync();
    return this.pointwise.forward(this.depthwise.forward(x, opts));
  }

  // Chain rule through the two convolutions (§0, §5.1).
  // needDx = false reaches the depthwise convolution: nobody reads its dx then.
  backward(dy: NDArray, opts: BackwardOptions = {}): NDArray {
    this.sync();
    return this.depthwise.backward(this.pointwise.backward(dy), opts);
  }

  /** depthwise.weight, pointwise.weight, pointwise.bias (the Param objects are the sublayers' own). */
  override params(): Param[] {
    const named = (prefix: string, ps: Param[]) => {
      for (const p of ps) if (!p.name.startsWith(prefix)) p.name = `${prefix}${p.name}`;
      return ps;
    };
    return [...named("depthwise.", this.depthwise.params()), ...named("pointwise.", this.pointwise.params())];
  }

  override initialize(rng: RandomState): void {
    this.depthwise.initialize(rng);
    this.pointwise.initialize(rng);
  }

  override setDtype(dtype: DType): void {
    this.depthwise.setDtype(dtype);
    this.pointwise.setDtype(dtype);
  }

  config(): LayerConfig {
    const d = this.depthwise.config();
    const { type: _t, bias: _b, init: _i, ...rest } = d;
    return { type: this.type, ...rest, outChannels: this.outChannels, bias: this.pointwise.useBias, init: this.init };
  }
}
