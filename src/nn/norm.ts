// LayerNorm (Ba et al. 2016) and GroupNorm (Wu & He 2018): batch normalisation's formulas (§2.4) with the
// statistics taken per sample instead of per channel across the batch (derivation.md §5.4).
//
// For one normalisation group of m values x_i (LayerNorm: the last `axes` sample axes of one sample;
// GroupNorm: the C/G channels × all positions of one group of one sample):
//   μ = (1/m) Σ x_i,   σ² = (1/m) Σ (x_i − μ)²,   x̂_i = (x_i − μ) / √(σ² + ε)
//   y_i = γ_k · x̂_i + β_k        (LayerNorm: k = the element's position in the normalised axes;
//                                  GroupNorm: k = its channel)
// The same statistics are used in training and inference: no running averages, no batch coupling.
// Backward, with g_i = γ_k·dy_i = ∂L/∂x̂_i and the derivation of §2.4 (∂x̂_i/∂x_j = (δ_ij − 1/m − x̂_i x̂_j/m)/σ):
//   ∂L/∂x_j = (1/σ)·(g_j − mean_i(g_i) − x̂_j · mean_i(g_i · x̂_i))
//   ∂L/∂γ_k += Σ dy_i·x̂_i,   ∂L/∂β_k += Σ dy_i      (over every element using γ_k, β_k: all samples)
// Forward saves x̂ and 1/σ per group: exactly what backward needs.

import { formatShape, shapeSize, type DType, type NDArray } from "../nd/ndarray.ts";
import { kernels } from "../kernels/backend.ts";
import type { GroupNormContext } from "../kernels/kernels.ts";
import { normBackward } from "./batchnorm.ts";
import {
  Layer,
  ShapeError,
  makeParam,
  positiveInt,
  type BackwardOptions,
  type LayerConfig,
  type Param,
  dtypeOption,
} from "./layer.ts";

interface NormOptions {
  /** Added to the variance (default 1e-5). */
  eps?: number;
  /** Learn the scale γ (init 1) and shift β (init 0) (default true). */
  affine?: boolean;
  dtype?: DType;
}

function checkEps(layer: string, eps: unknown): number {
  if (typeof eps !== "number" || !(eps > 0) || !Number.isFinite(eps))
    throw new RangeError(`${layer}: eps must be a ` + `positive number, got ${String(eps)}`);
  return eps;
}

function checkAffine(layer: string, affine: unknown): boolean {
  if (typeof affine !== "boolean")
    throw new TypeError(`${layer}: affine must be a boolean, got ` + JSON.stringify(affine));
  return affine;
}

/**
 * Shared forward/backward: x viewed as (N, G, C/G, S) is normalised per segment (n, g) of contiguous values
 * with a per-channel affine map — a GroupNorm group of channels is contiguous in NCHW, and LayerNorm's
 * normalised axes are trailing (G = 1, C = their size, S = 1). The arithmetic is the kernels'
 * groupNormForward/groupNormBackward (derivation.md §5.4, written out in src/kernels/js.ts).
 */
abstract class SegmentNorm extends Layer {
  readonly eps: number;
  readonly affine: boolean;
  protected gammaParam: Param | null = null;
  protected betaParam: Param | null = null;
  private paramList: Param[] = [];
  protected dtype: DType;
  private saved: GroupNormContext | null = null; // the last forward's: y, x̂, 1/σ per segment
  // x as (N, G, C, …), set by layout(): numbers, not a tuple, so that a training step allocates nothing
  protected segN = 0;
  protected segGroups = 1;
  protected segChannels = 0;

  constructor(layer: string, opts: NormOptions) {
    super();
    this.eps = checkEps(layer, opts.eps ?? 1e-5);
    this.affine = checkAffine(layer, opts.affine ?? true);
    this.dtype = dtypeOption(layer, opts.dtype);
  }

  protected makeAffine(shape: readonly number[]): void {
    if (!this.affine || this.gammaParam !== null) return;
    this.gammaParam = makeParam("gamma", shape, this.dtype);
    this.betaParam = makeParam("beta", shape, this.dtype);
    this.gammaParam.value.data.fill(1);
    this.paramList = [this.gammaParam, this.betaParam];
  }

  /** The scale γ and shift β (null without affine, or while their shape is still to be inferred). */
  get gamma(): Param | null {
    return this.gammaParam;
  }
  get beta(): Param | null {
    return this.betaParam;
  }

  /** γ = 1, β = 0: nothing is drawn at random. */
  override initialize(): void {
    this.gammaParam?.value.data.fill(1);
    this.betaParam?.value.data.fill(0);
  }

  // one list, kept: the trainer asks for it every step
  override params(): Param[] {
    return this.paramList;
  }

  override setDtype(dtype: DType): void {
    this.dtype = dtype;
    super.setDtype(dtype);
  }

  /**
   * Check x (creating the affine parameters if they wait for the shape) and set segN, segGroups and
   * segChannels: x is (segN, segGroups, segChannels/segGroups, S) with γ, β per channel.
   */
  protected abstract layout(x: NDArray): void;

  forward(x: NDArray): NDArray {
    this.layout(x);
    const gamma = this.gammaParam?.value ?? null;
    const beta = this.betaParam?.value ?? null;
    const ctx = kernels.groupNormForward(
      x,
      this.segN,
      this.segGroups,
      this.segChannels,
      gamma,
      beta,
      this.eps,
      this.saved,
    );
    this.saved = ctx;
    return ctx.y;
  }

  // Backward (derivation.md §5.4): dx = (1/σ)(g − mean(g) − x̂·mean(g·x̂)) per segment, g = γ·dy;
  // dγ += Σ dy·x̂, dβ += Σ dy per channel.
  backward(dy: NDArray, opts: BackwardOptions = {}): NDArray {
    this.expectGrad(dy, this.saved?.y ?? null);
    return normBackward(kernels.groupNormBackward, this.saved!, this.gammaParam, this.betaParam, dy, opts);
  }
}

export interface LayerNormOptions extends NormOptions {
  /** Normalise over the last `axes` axes of each sample (default 1: the features, or an image's width). */
  axes?: number;
  /** The shape of those axes (γ and β have it); optional: taken from the input when left out, checked when given. */
  normalizedShape?: readonly number[];
}

/** Layer normalization over the last `axes` axes of each sample (default 1), with a learned scale γ and shift β. */
export class LayerNorm extends SegmentNorm {
  readonly type = "LayerNorm";
  readonly axes: number;
  private shape: number[] | null;

  constructor(opts: LayerNormOptions = {}) {
    super("LayerNorm", opts);
    if (opts.normalizedShape !== undefined) {
      if (!Array.isArray(opts.normalizedShape) || opts.normalizedShape.length === 0) {
        throw new RangeError(
          `LayerNorm: normalizedShape must be a non-empty array of positive integers, got ` +
            JSON.stringify(opts.normalizedShape),
        );
      }
      this.shape = opts.normalizedShape.map((d, i) => positiveInt("LayerNorm", `normalizedShape[${i}]`, d));
    } else this.shape = null;
    this.axes = positiveInt("LayerNorm", "axes", opts.axes ?? this.shape?.length ?? 1);
    if (this.shape && this.shape.length !== this.axes) {
      throw new RangeError(
        `LayerNorm: normalizedShape ${formatShape(this.shape)} has ${this.shape.length} axes but ` +
          `axes is ${this.axes}`,
      );
    }
    if (this.shape) this.makeAffine(this.shape);
  }

  override isBuilt(): boolean {
    return this.shape !== null;
  }

  /** Check the sample axes of a shape (from `first` on: 1 for a batch, 0 for a sample shape) against normalizedShape. */
  private resolve(shape: readonly number[], first: number): void {
    const rank = shape.length - first;
    if (rank < this.axes) {
      throw new ShapeError(
        `${this.describe()}: normalises the last ${this.axes} axes, but the samples have shape ` +
          formatShape(shape.slice(first)),
      );
    }
    const tailStart = shape.length - this.axes;
    if (this.shape === null) {
      this.shape = shape.slice(tailStart);
      this.makeAffine(this.shape);
      return;
    }
    // a loop, not slice + some: a steady-state forward allocates nothing
    for (let i = 0; i < this.axes; i++) {
      if (shape[tailStart + i] === this.shape[i]) continue;
      throw new ShapeError(
        `${this.describe()}: expected samples ending in ${formatShape(this.shape)} ` +
          `(normalizedShape), got samples of shape ${formatShape(shape.slice(first))}`,
      );
    }
  }

  outputShape(inputShape: readonly number[]): number[] {
    this.resolve(inputShape, 0);
    return inputShape.slice();
  }

  // each run of m = |normalizedShape| values is a segment whose m elements are the channels: (x.size/m, 1, m, 1)
  protected layout(x: NDArray): void {
    if (x.ndim < 2) this.shapeError("(N, ...)", x.shape);
    this.resolve(x.shape, 1);
    const m = shapeSize(this.shape!);
    this.segN = x.size / m;
    this.segGroups = 1;
    this.segChannels = m;
  }

  config(): LayerConfig {
    return {
      type: this.type,
      axes: this.axes,
      ...(this.shape ? { normalizedShape: this.shape.slice() } : {}),
      eps: this.eps,
      affine: this.affine,
    };
  }
}

export interface GroupNormOptions extends NormOptions {
  /** G: the channels are split into G groups of C/G (G = 1: LayerNorm over (C, H, W) with per-channel γ, β). */
  groups: number;
  /** C; optional: taken from the input shape when left out, checked when given. */
  numChannels?: number;
}

/**
 * Group normalization: each sample's channels in `groups` groups, each normalized over its channels and H·W, with a
 * per-channel γ and β.
 */
export class GroupNorm extends SegmentNorm {
  readonly type = "GroupNorm";
  readonly groups: number;
  private channels: number | null;

  constructor(opts: GroupNormOptions) {
    if (typeof opts !== "object" || opts === null)
      throw new TypeError("GroupNorm: expected an options object {groups, numChannels?, eps?, affine?}");
    super("GroupNorm", opts);
    this.groups = positiveInt("GroupNorm", "groups", opts.groups);
    this.channels = opts.numChannels === undefined ? null : positiveInt("GroupNorm", "numChannels", opts.numChannels);
    if (this.channels !== null) this.resolve(this.channels);
  }

  get numChannels(): number | null {
    return this.channels;
  }
  override isBuilt(): boolean {
    return this.channels !== null;
  }

  private resolve(C: number): void {
    if (this.channels !== null && C !== this.channels) {
      throw new ShapeError(`${this.describe()}: expected ${this.channels} channels (numChannels), got ${C}`);
    }
    if (C % this.groups !== 0)
      throw new ShapeError(
        `${this.describe()}: the ${C} channels cannot be split into ` +
          `${this.groups} groups (groups must divide the channel count)`,
      );
    this.channels = C;
    if (this.gammaParam === null) this.makeAffine([C]);
  }

  outputShape(inputShape: readonly number[]): number[] {
    if (inputShape.length < 1)
      throw new ShapeError(
        `${this.describe()}: expected input of shape (N, C, ...), got ` + `samples of shape ${formatShape(inputShape)}`,
      );
    this.resolve(inputShape[0]);
    return inputShape.slice();
  }

  // (N, G, C/G, H·W…) as it is: segment (n, g) is group g's channels of sample n
  protected layout(x: NDArray): void {
    if (x.ndim < 2) this.shapeError("(N, C, ...)", x.shape);
    this.resolve(x.shape[1]);
    this.segN = x.shape[0];
    this.segGroups = this.groups;
    this.segChannels = x.shape[1];
  }

  config(): LayerConfig {
    return {
      type: this.type,
      groups: this.groups,
      ...(this.channels !== null ? { numChannels: this.channels } : {}),
      eps: this.eps,
      affine: this.affine,
    };
  }
}
