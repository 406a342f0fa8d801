// Batch normalisation (Ioffe & Szegedy 2015), per channel of (N, C, H, W) images (BatchNorm2D) or per
// feature of (N, F) vectors (BatchNorm1D, the same code with H = W = 1).
//
// For one channel c with its m = N·H·W values x_i:
//   training:   μ = (1/m) Σ x_i,   σ² = (1/m) Σ (x_i − μ)²  (biased),   x̂_i = (x_i − μ) / √(σ² + ε)
//               y_i = γ · x̂_i + β
//               running_mean ← (1 − momentum) · running_mean + momentum · μ
//               running_var  ← (1 − momentum) · running_var  + momentum · σ² · m/(m − 1)   (UNBIASED)
//   inference:  x̂_i = (x_i − running_mean) / √(running_var + ε),   y_i = γ · x̂_i + β
//
// The running variance uses the unbiased estimate while normalisation uses the biased one: that is
// PyTorch's convention (torch.nn.BatchNorm*d), and momentum means the same thing as there (the weight of
// the NEW statistic, default 0.1; Keras's momentum is 1 minus it). Training therefore needs m > 1.
// runningMean and runningVar are Params with trainable = false so they are saved with the model but
// never touched by an optimiser. With affine = false there is no γ, β (γ ≡ 1, β ≡ 0).
//
// The per-channel arithmetic is the kernels' batchNormForward/batchNormBackward (derivation.md §2.4): the
// reference in src/kernels/js.ts (float64 and any dtype), float32 also in src/kernels/wasm/norm.as on the
// kernel threads. This layer owns the options, the parameters and the running-statistics update.

import { formatShape, type DType, type NDArray } from "../nd/ndarray.ts";
import { kernels } from "../kernels/backend.ts";
import type { BatchNormContext, BatchNormParams, NormBackward } from "../kernels/kernels.ts";
import { Layer, ShapeError, makeParam, positiveInt, dtypeOption } from "./layer.ts";
import type { BackwardOptions, ForwardOptions, LayerConfig, Param } from "./layer.ts";

export interface BatchNormOptions {
  /** C for BatchNorm2D (channels), F for BatchNorm1D (features); optional: taken from the input shape when left out. */
  numFeatures?: number;
  /** Added to the variance before the square root (default 1e-5). */
  eps?: number;
  /** Weight of the new batch statistic in the running averages, in [0, 1] (default 0.1, PyTorch's). */
  momentum?: number;
  /** Learn a per-channel scale γ (init 1) and shift β (init 0) (default true). */
  affine?: boolean;
  dtype?: DType;
}

abstract class BatchNorm extends Layer {
  readonly eps: number;
  readonly momentum: number;
  readonly affine: boolean;
  private features: number | null; // null until given or inferred from the input shape
  private gammaParam: Param | null = null;
  private betaParam: Param | null = null;
  private meanParam: Param | null = null;
  private varParam: Param | null = null;
  private paramDtype: DType;
  private saved: BatchNormContext | null = null; // the last forward's: y, μ, invStd and what backward needs
  // kept from call to call, so that a training step allocates nothing: params() is asked for every step,
  // and the kernel's arguments and the input check's dims are refilled in place
  private paramList: Param[] = [];
  private readonly kernelParams: { -readonly [K in keyof BatchNormParams]: BatchNormParams[K] };
  private readonly inputDims: (number | null)[];
  private readonly inputNames: readonly string[];

  /**
   * sampleAxes: the input's axis names after N, the first being the normalised one ("C" or "F"); each
   * sample has that many axes.
   */
  constructor(
    layer: string,
    private readonly sampleAxes: readonly string[],
    opts: BatchNormOptions,
  ) {
    super();
    if (typeof opts !== "object" || opts === null)
      throw new TypeError(`${layer}: expected an options object {numFeatures?, eps?, momentum?, affine?}`);
    this.features = opts.numFeatures === undefined ? null : positiveInt(layer, "numFeatures", opts.numFeatures);
    const eps = opts.eps ?? 1e-5;
    if (typeof eps !== "number" || !(eps > 0) || !Number.isFinite(eps))
      throw new RangeError(`${layer}: eps must be a positive number, got ${String(eps)}`);
    const momentum = opts.momentum ?? 0.1;
    if (typeof momentum !== "number" || !(momentum >= 0 && momentum <= 1))
      throw new RangeError(`${layer}: momentum must be a number in [0, 1], got ${String(momentum)}`);
    const affine = opts.affine ?? true;
    if (typeof affine !== "boolean")
      throw new TypeError(`${layer}: affine must be a boolean, got ${JSON.stringify(affine)}`);
    this.eps = eps;
    this.momentum = momentum;
    this.affine = affine;
    this.paramDtype = dtypeOption(layer, opts.dtype);
    this.kernelParams = { gamma: null, beta: null, runningMean: null!, runningVar: null!, eps };
    this.inputDims = [null, null, ...sampleAxes.slice(1).map(() => null)];
    this.inputNames = ["N", ...sampleAxes];
    if (this.features !== null) this.resolveFeatures(this.features);
  }

  /** C (or F): throws while it is still to be inferred from the input shape. */
  get numFeatures(): number {
    return this.features ?? this.unresolved("numFeatures");
  }
  get gamma(): Param | null {
    return this.affine ? (this.gammaParam ?? this.unresolved("gamma")) : null;
  }
  get beta(): Param | null {
    return this.affine ? (this.betaParam ?? this.unresolved("beta")) : null;
  }
  get runningMean(): Param {
    return this.meanParam ?? this.unresolved("runningMean");
  }
  get runningVar(): Param {
    return this.varParam ?? this.unresolved("runningVar");
  }

  override isBuilt(): boolean {
    return this.meanParam !== null;
  }

  private unresolved(what: string): never {
    throw new Error(
      `${this.describe()}: ${what} is not known yet: give numFeatures, or build the model with an inputShape (or run a forward pass) first`,
    );
  }

  /** Fix C (given or inferred) and create γ, β and the running statistics; later inputs are checked by dims(). */
  private resolveFeatures(C: number): void {
    if (this.meanParam !== null) return;
    this.features = C;
    const dtype = this.paramDtype;
    this.gammaParam = this.affine ? makeParam("gamma", [C], dtype) : null;
    this.betaParam = this.affine ? makeParam("beta", [C], dtype) : null;
    this.meanParam = makeParam("runningMean", [C], dtype, false);
    this.varParam = makeParam("runningVar", [C], dtype, false);
    const state = [this.meanParam, this.varParam];
    this.paramList = this.gammaParam && this.betaParam ? [this.gammaParam, this.betaParam, ...state] : state;
    this.inputDims[1] = C;
    this.reset();
  }

  override setDtype(dtype: DType): void {
    this.paramDtype = dtype;
    super.setDtype(dtype);
  }

  /** γ = 1, β = 0, running_mean = 0, running_var = 1 (PyTorch's reset_parameters / reset_running_stats). */
  private reset(): void {
    this.gammaParam?.value.data.fill(1);
    this.betaParam?.value.data.fill(0);
    this.meanParam?.value.data.fill(0);
    this.varParam?.value.data.fill(1);
  }

  /** Batch norm draws nothing at random: initialize restores the initial γ, β and running statistics. */
  override initialize(): void {
    this.reset();
  }

  override params(): Param[] {
    return this.paramList;
  }

  outputShape(inputShape: readonly number[]): number[] {
    const C = this.features;
    if (inputShape.length !== this.sampleAxes.length || (C !== null && inputShape[0] !== C)) {
      const axes = [C ?? this.sampleAxes[0], ...this.sampleAxes.slice(1)];
      const got = `got samples of shape ${formatShape(inputShape)}`;
      throw new ShapeError(`${this.describe()}: expected input of shape (N, ${axes.join(", ")}), ${got}`);
    }
    this.resolveFeatures(inputShape[0]);
    return inputShape.slice();
  }

  /** Check x (N, C, …) and return m = N·(positions per channel), the values each statistic is over. */
  private valuesPerChannel(x: NDArray): number {
    this.expectInput(x, this.inputDims, this.inputNames);
    this.resolveFeatures(x.shape[1]);
    return x.size / x.shape[1];
  }

  forward(x: NDArray, opts: ForwardOptions = {}): NDArray {
    const m = this.valuesPerChannel(x);
    const training = opts.training ?? false;
    if (training && m < 2) {
      throw new RangeError(
        `${this.describe()}: training needs more than 1 value per channel (got N·H·W = ${m}); use a larger batch or inference mode`,
      );
    }
    const rm = this.runningMean.value;
    const rv = this.runningVar.value;
    // the Params' arrays as they are now (setDtype and loading replace them)
    const p = this.kernelParams;
    p.gamma = this.gamma?.value ?? null;
    p.beta = this.beta?.value ?? null;
    p.runningMean = rm;
    p.runningVar = rv;
    const ctx = kernels.batchNormForward(x, p, training, this.saved);
    this.saved = ctx;
    if (training) {
      // running_mean ← (1 − momentum)·running_mean + momentum·μ, running_var likewise with σ²·m/(m − 1)
      const rmd = rm.data;
      const rvd = rv.data;
      for (let c = 0; c < rmd.length; c++) {
        rmd[c] = (1 - this.momentum) * rmd[c] + this.momentum * ctx.mean[c];
        rvd[c] = (1 - this.momentum) * rvd[c] + this.momentum * ctx.variance[c] * (m / (m - 1));
      }
    }
    return ctx.y;
  }

  // Backward (derivation.md §2.4, written out beside the loops in src/kernels/js.ts):
  //   dγ += Σ dy·x̂,  dβ += Σ dy,  dx = (γ/σ)·(1/m)·(m·dy − Σdy − x̂·Σ dy·x̂) (training), (γ/σ)·dy (inference)
  backward(dy: NDArray, opts: BackwardOptions = {}): NDArray {
    this.expectGrad(dy, this.saved?.y ?? null);
    return normBackward(kernels.batchNormBackward, this.saved!, this.gamma, this.beta, dy, opts);
  }

  config(): LayerConfig {
    const known = this.features === null ? {} : { numFeatures: this.features };
    return { type: this.type, ...known, eps: this.eps, momentum: this.momentum, affine: this.affine };
  }
}

/** Batch norm over (N, C, H, W), one (μ, σ², γ, β) per channel C = numFeatures. */
export class BatchNorm2D extends BatchNorm {
  readonly type = "BatchNorm2D";

  constructor(opts: BatchNormOptions) {
    super("BatchNorm2D", ["C", "H", "W"], opts);
  }
}

/** Batch norm over (N, F), one (μ, σ², γ, β) per feature F = numFeatures (BatchNorm2D with H = W = 1). */
export class BatchNorm1D extends BatchNorm {
  readonly type = "BatchNorm1D";

  constructor(opts: BatchNormOptions) {
    super("BatchNorm1D", ["F"], opts);
  }
}

/** A normalisation layer's backward through its kernel, with the layer's γ and β (null: not affine). */
export function normBackward<C>(
  op: NormBackward<C>,
  ctx: C,
  gamma: Param | null,
  beta: Param | null,
  dy: NDArray,
  opts: BackwardOptions,
): NDArray {
  return op(ctx, gamma?.value ?? null, dy, gamma?.grad ?? null, beta?.grad ?? null, opts.needDx ?? true);
}
