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
import { Layer, ShapeError, makeParam, positiveInt, reuse, type LayerConfig, type Param } from "./layer.ts";

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
 * Shared forward/backward over rows of m contiguous values, one row per normalisation group: LayerNorm's
 * normalised axes are trailing, and a GroupNorm group of channels is contiguous in NCHW.
 */
abstract class RowNorm extends Layer {
  readonly eps: number;
  readonly affine: boolean;
  protected gammaParam: Param | null = null;
  protected betaParam: Param | null = null;
  protected dtype: DType;
  private x: NDArray | null = null;
  private y: NDArray | null = null;
  private dx: NDArray | null = null;
  private xhat: NDArray | null = null;
  private invStd = new Float64Array(0);

  constructor(layer: string, opts: NormOptions) {
    super();
    this.eps = checkEps(layer, opts.eps ?? 1e-5);
    this.affine = checkAffine(layer, opts.affine ?? true);
    this.dtype = opts.dtype ?? "float32";
  }

  protected makeAffine(shape: readonly number[]): void {
    if (!this.affine || this.gammaParam !== null) return;
    this.gammaParam = makeParam("gamma", shape, this.dtype);
    this.betaParam = makeParam("beta", shape, this.dtype);
    this.gammaParam.value.data.fill(1);
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

  override params(): Param[] {
    return this.gammaParam && this.betaParam ? [this.gammaParam, this.betaParam] : [];
  }

  override setDtype(dtype: DType): void {
    this.dtype = dtype;
    super.setDtype(dtype);
  }

  /**
   * Check x (creating the affine parameters if they wait for the shape) and describe it as `rows`
   * contiguous rows of m values; element t of row r uses γ[affineIndex(r, t)], β[affineIndex(r, t)].
   */
  protected abstract layout(x: NDArray): { rows: number; m: number; affineIndex: (row: number, t: number) => number };

  forward(x: NDArray): NDArray {
    const { rows, m, affineIndex } = this.layout(x);
    const y = (this.y = reuse(this.y, x.shape, this.dtype));
    const xhat = (this.xhat = reuse(this.xhat, x.shape, this.dtype));
    if (this.invStd.length !== rows) this.invStd = new Float64Array(rows);
    const xd = x.data;
    const yd = y.data;
    const xh = xhat.data;
    const g = this.gammaParam?.value.data;
    const b = this.betaParam?.value.data;
    for (let r = 0; r < rows; r++) {
      const start = r * m;
      let s = 0;
      for (let t = 0; t < m; t++) s += xd[start + t];
      const mu = s / m;
      let ss = 0;
      for (let t = 0; t < m; t++) {
        const d = xd[start + t] - mu;
        ss += d * d;
      }
      const inv = 1 / Math.sqrt(ss / m + this.eps);
      this.invStd[r] = inv;
      for (let t = 0; t < m; t++) {
        const v = (xd[start + t] - mu) * inv; // x̂
        xh[start + t] = v;
        if (g && b) {
          const k = affineIndex(r, t);
          yd[start + t] = g[k] * v + b[k]; // y = γ·x̂ + β
        } else yd[start + t] = v;
      }
    }
    this.x = x;
    return y;
  }

  // Backward (derivation.md §5.4): dx = (1/σ)(g − mean(g) − x̂·mean(g·x̂)) per row, g = γ·dy.
  backward(dy: NDArray): NDArray {
    this.expectGrad(dy, this.y);
    const x = this.x!;
    const { rows, m, affineIndex } = this.layout(x);
    const dx = (this.dx = reuse(this.dx, x.shape, x.dtype));
    const dxd = dx.data;
    const dyd = dy.data;
    const xh = this.xhat!.data;
    const gamma = this.gammaParam?.value.data;
    const dg = this.gammaParam?.grad.data;
    const db = this.betaParam?.grad.data;
    for (let r = 0; r < rows; r++) {
      const start = r * m;
      let sumG = 0;
      let sumGXhat = 0;
      for (let t = 0; t < m; t++) {
        const i = start + t;
        let gi = dyd[i];
        if (gamma && dg && db) {
          const k = affineIndex(r, t);
          dg[k] += dyd[i] * xh[i];
          db[k] += dyd[i];
          gi *= gamma[k];
        }
        sumG += gi;
        sumGXhat += gi * xh[i];
      }
      const meanG = sumG / m;
      const meanGXhat = sumGXhat / m;
      const inv = this.invStd[r];
      for (let t = 0; t < m; t++) {
        const i = start + t;
        const gi = gamma ? gamma[affineIndex(r, t)] * dyd[i] : dyd[i];
        dxd[i] = inv * (gi - meanG - xh[i] * meanGXhat);
      }
    }
    return dx;
  }
}

export interface LayerNormOptions extends NormOptions {
  /** Normalise over the last `axes` axes of each sample (default 1: the features, or an image's width). */
  axes?: number;
  /** The shape of those axes (γ and β have it); optional: taken from the input when left out, checked when given. */
  normalizedShape?: readonly number[];
}

export class LayerNorm extends RowNorm {
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

  private resolve(sampleShape: readonly number[]): void {
    if (sampleShape.length < this.axes) {
      throw new ShapeError(
        `${this.describe()}: normalises the last ${this.axes} axes, but the samples have shape ` +
          formatShape(sampleShape),
      );
    }
    const tail = sampleShape.slice(sampleShape.length - this.axes);
    if (this.shape === null) {
      this.shape = tail;
      this.makeAffine(tail);
    } else if (tail.some((d, i) => d !== this.shape![i])) {
      throw new ShapeError(
        `${this.describe()}: expected samples ending in ${formatShape(this.shape)} ` +
          `(normalizedShape), got samples of shape ${formatShape(sampleShape)}`,
      );
    }
  }

  outputShape(inputShape: readonly number[]): number[] {
    this.resolve(inputShape);
    return inputShape.slice();
  }

  protected layout(x: NDArray): { rows: number; m: number; affineIndex: (row: number, t: number) => number } {
    if (x.ndim < 2) this.shapeError("(N, ...)", x.shape);
    this.resolve(x.shape.slice(1));
    const m = shapeSize(this.shape!);
    return { rows: x.size / m, m, affineIndex: (_r, t) => t };
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

export class GroupNorm extends RowNorm {
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
    this.makeAffine([C]);
  }

  outputShape(inputShape: readonly number[]): number[] {
    if (inputShape.length < 1)
      throw new ShapeError(
        `${this.describe()}: expected input of shape (N, C, ...), got ` + `samples of shape ${formatShape(inputShape)}`,
      );
    this.resolve(inputShape[0]);
    return inputShape.slice();
  }

  protected layout(x: NDArray): { rows: number; m: number; affineIndex: (row: number, t: number) => number } {
    if (x.ndim < 2) this.shapeError("(N, C, ...)", x.shape);
    this.resolve(x.shape[1]);
    const C = x.shape[1];
    const G = this.groups;
    const S = shapeSize(x.shape.slice(2)); // positions per channel
    const Cg = C / G;
    // row = n·G + group; element t of the row is channel group·Cg + ⌊t/S⌋
    return { rows: x.shape[0] * G, m: Cg * S, affineIndex: (r, t) => (r % G) * Cg + Math.floor(t / S) };
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
