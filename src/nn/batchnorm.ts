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

import { formatShape, type DType, type NDArray } from "../nd/ndarray.ts";
import {
  Layer,
  ShapeError,
  makeParam,
  positiveInt,
  reuse,
  type ForwardOptions,
  type LayerConfig,
  type Param,
} from "./layer.ts";

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
  private x: NDArray | null = null;
  private y: NDArray | null = null;
  private dx: NDArray | null = null;
  private xhat: NDArray | null = null; // x̂ of the last forward: backward needs it
  private invStd = new Float64Array(0); // 1/√(σ² + ε) per channel, batch or running (see trainingPass)
  private trainingPass = false;

  constructor(layer: string, opts: BatchNormOptions) {
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
    this.paramDtype = opts.dtype ?? "float32";
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
  protected resolveFeatures(C: number): void {
    if (this.meanParam !== null) return;
    this.features = C;
    const dtype = this.paramDtype;
    this.gammaParam = this.affine ? makeParam("gamma", [C], dtype) : null;
    this.betaParam = this.affine ? makeParam("beta", [C], dtype) : null;
    this.meanParam = makeParam("runningMean", [C], dtype, false);
    this.varParam = makeParam("runningVar", [C], dtype, false);
    this.reset();
  }

  /** The option as given or inferred (null: not yet known). */
  protected get knownFeatures(): number | null {
    return this.features;
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
    if (this.meanParam === null || this.varParam === null) return [];
    const state = [this.meanParam, this.varParam];
    return this.gammaParam && this.betaParam ? [this.gammaParam, this.betaParam, ...state] : state;
  }

  /** The layer's dtype: that of its parameters (outputs are produced in it). */
  private get dtype(): DType {
    return this.paramDtype;
  }

  protected sampleShapeError(expected: string, inputShape: readonly number[]): never {
    throw new ShapeError(
      `${this.describe()}: expected input of shape ${expected}, got samples of shape ${formatShape(inputShape)}`,
    );
  }

  /** Check x and return (N, C, H·W). */
  protected abstract dims(x: NDArray): [number, number, number];

  forward(x: NDArray, opts: ForwardOptions = {}): NDArray {
    const [N, C, HW] = this.dims(x);
    const training = opts.training ?? false;
    const m = N * HW;
    if (training && m < 2) {
      throw new RangeError(
        `${this.describe()}: training needs more than 1 value per channel (got N·H·W = ${m}); use a larger batch or inference mode`,
      );
    }
    const y = (this.y = reuse(this.y, x.shape, this.dtype));
    const xhat = (this.xhat = reuse(this.xhat, x.shape, this.dtype));
    if (this.invStd.length !== C) this.invStd = new Float64Array(C);
    const xd = x.data;
    const yd = y.data;
    const xh = xhat.data;
    const rm = this.runningMean.value.data;
    const rv = this.runningVar.value.data;
    const g = this.gamma?.value.data;
    const b = this.beta?.value.data;
    const plane = C * HW;
    for (let c = 0; c < C; c++) {
      let mu: number;
      let inv: number;
      if (training) {
        // two passes: μ, then σ² = (1/m) Σ (x − μ)² (no cancellation, unlike E[x²] − μ²)
        let s = 0;
        for (let n = 0; n < N; n++) for (let k = n * plane + c * HW, e = k + HW; k < e; k++) s += xd[k];
        mu = s / m;
        let ss = 0;
        for (let n = 0; n < N; n++) {
          for (let k = n * plane + c * HW, e = k + HW; k < e; k++) {
            const d = xd[k] - mu;
            ss += d * d;
          }
        }
        const variance = ss / m;
        inv = 1 / Math.sqrt(variance + this.eps);
        rm[c] = (1 - this.momentum) * rm[c] + this.momentum * mu;
        rv[c] = (1 - this.momentum) * rv[c] + this.momentum * variance * (m / (m - 1));
      } else {
        mu = rm[c];
        inv = 1 / Math.sqrt(rv[c] + this.eps);
      }
      this.invStd[c] = inv;
      const gc = g ? g[c] : 1;
      const bc = b ? b[c] : 0;
      for (let n = 0; n < N; n++) {
        for (let k = n * plane + c * HW, e = k + HW; k < e; k++) {
          const v = (xd[k] - mu) * inv; // x̂
          xh[k] = v;
          yd[k] = gc * v + bc; // y = γ·x̂ + β
        }
      }
    }
    this.x = x;
    this.trainingPass = training;
    return y;
  }

  // Backward (derivation.md §2.4), per channel, with σ = √(σ_B² + ε) (σ_B² the batch variance)
  // and g_i = γ·dy_i = ∂L/∂x̂_i:
  //   ∂L/∂γ = Σ_i dy_i · x̂_i        ∂L/∂β = Σ_i dy_i        (accumulated with +=)
  // Training — μ and σ depend on every x_j of the channel:
  //   ∂μ/∂x_j = 1/m,   ∂σ/∂x_j = x̂_j / m   (from σ² = (1/m) Σ (x_i − μ)² + ε and Σ (x_i − μ) = 0)
  //   ∂x̂_i/∂x_j = (δ_ij − 1/m)/σ − (x_i − μ)·x̂_j/(m·σ²) = (1/σ)·(δ_ij − 1/m − x̂_i·x̂_j/m)
  //   ∂L/∂x_j = Σ_i g_i ∂x̂_i/∂x_j = (γ/σ)·(1/m)·(m·dy_j − Σ_i dy_i − x̂_j·Σ_i dy_i·x̂_i)
  // Inference — running statistics are constants:
  //   ∂L/∂x_j = (γ/σ_running)·dy_j
  backward(dy: NDArray): NDArray {
    this.expectGrad(dy, this.y);
    const x = this.x!;
    const [N, C, HW] = this.dims(x);
    const m = N * HW;
    const plane = C * HW;
    const dx = (this.dx = reuse(this.dx, x.shape, x.dtype));
    const dxd = dx.data;
    const dyd = dy.data;
    const xh = this.xhat!.data;
    const g = this.gamma?.value.data;
    const dg = this.gamma?.grad.data;
    const db = this.beta?.grad.data;
    for (let c = 0; c < C; c++) {
      let sumDy = 0;
      let sumDyXhat = 0;
      for (let n = 0; n < N; n++) {
        for (let k = n * plane + c * HW, e = k + HW; k < e; k++) {
          sumDy += dyd[k];
          sumDyXhat += dyd[k] * xh[k];
        }
      }
      if (dg) dg[c] += sumDyXhat;
      if (db) db[c] += sumDy;
      const scale = (g ? g[c] : 1) * this.invStd[c]; // γ/σ
      if (this.trainingPass) {
        const meanDy = sumDy / m;
        const meanDyXhat = sumDyXhat / m;
        for (let n = 0; n < N; n++) {
          for (let k = n * plane + c * HW, e = k + HW; k < e; k++)
            dxd[k] = scale * (dyd[k] - meanDy - xh[k] * meanDyXhat);
        }
      } else {
        for (let n = 0; n < N; n++) for (let k = n * plane + c * HW, e = k + HW; k < e; k++) dxd[k] = scale * dyd[k];
      }
    }
    return dx;
  }

  config(): LayerConfig {
    return {
      type: this.type,
      ...(this.features !== null ? { numFeatures: this.features } : {}),
      eps: this.eps,
      momentum: this.momentum,
      affine: this.affine,
    };
  }
}

/** Batch norm over (N, C, H, W), one (μ, σ², γ, β) per channel C = numFeatures. */
export class BatchNorm2D extends BatchNorm {
  readonly type = "BatchNorm2D";

  constructor(opts: BatchNormOptions) {
    super("BatchNorm2D", opts);
  }

  outputShape(inputShape: readonly number[]): number[] {
    const C = this.knownFeatures;
    if (inputShape.length !== 3 || (C !== null && inputShape[0] !== C))
      this.sampleShapeError(`(N, ${C ?? "C"}, H, W)`, inputShape);
    this.resolveFeatures(inputShape[0]);
    return inputShape.slice();
  }

  protected dims(x: NDArray): [number, number, number] {
    this.expectInput(x, [null, this.knownFeatures, null, null], ["N", "C", "H", "W"]);
    this.resolveFeatures(x.shape[1]);
    return [x.shape[0], x.shape[1], x.shape[2] * x.shape[3]];
  }
}

/** Batch norm over (N, F), one (μ, σ², γ, β) per feature F = numFeatures (BatchNorm2D with H = W = 1). */
export class BatchNorm1D extends BatchNorm {
  readonly type = "BatchNorm1D";

  constructor(opts: BatchNormOptions) {
    super("BatchNorm1D", opts);
  }

  outputShape(inputShape: readonly number[]): number[] {
    const F = this.knownFeatures;
    if (inputShape.length !== 1 || (F !== null && inputShape[0] !== F))
      this.sampleShapeError(`(N, ${F ?? "F"})`, inputShape);
    this.resolveFeatures(inputShape[0]);
    return inputShape.slice();
  }

  protected dims(x: NDArray): [number, number, number] {
    this.expectInput(x, [null, this.knownFeatures], ["N", "F"]);
    this.resolveFeatures(x.shape[1]);
    return [x.shape[0], x.shape[1], 1];
  }
}
