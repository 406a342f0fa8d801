// Activation layers: y = f(x) elementwise (Softmax: along one axis). No parameters; any input shape.
//
// Each forward caches the one array its derivative is cheapest to write in (derivation.md §2.5):
//   ReLU      y = max(0, x)                 f'(x) = [x > 0]           cached: y   (y > 0 ⇔ x > 0)
//   LeakyReLU y = x > 0 ? x : α·x            f'(x) = x > 0 ? 1 : α      cached: x   (α may be negative)
//   Tanh      y = tanh(x)                    f'(x) = 1 − y²             cached: y
//   Sigmoid   y = σ(x) = 1 / (1 + e^(−x))    f'(x) = y·(1 − y)          cached: y
//   Softmax   y_k = e^(x_k) / Σ_j e^(x_j)    ∂y_k/∂x_j = y_k·(δ_kj − y_j)  cached: y
// At the kinks (x = 0) ReLU takes derivative 0 and LeakyReLU α, as PyTorch does.

import type { NDArray } from "../nd/ndarray.ts";
import { formatShape } from "../nd/ndarray.ts";
import {
  Layer,
  ShapeError,
  finiteNumber,
  nonBatchAxis,
  oneOf,
  reuse,
  type BackwardOptions,
  type LayerConfig,
} from "./layer.ts";
import { kernels } from "../kernels/backend.ts";
import type { ReLUContext } from "../kernels/kernels.ts";

/** Shared plumbing: output and dx buffers reused across batches, and outputShape = inputShape. */
abstract class Activation extends Layer {
  protected y: NDArray | null = null;
  protected dx: NDArray | null = null;

  outputShape(inputShape: readonly number[]): number[] {
    return inputShape.slice();
  }

  /** The output buffer for x (x's shape and dtype), remembered for backward's shape check. */
  protected output(x: NDArray): NDArray {
    return (this.y = reuse(this.y, x.shape, x.dtype));
  }

  /** An activation without options is rebuilt from its type alone. */
  config(): LayerConfig {
    return { type: this.type };
  }

  /** The dx buffer for dy, after checking dy has the last output's shape. */
  protected gradInput(dy: NDArray): NDArray {
    this.expectGrad(dy, this.y);
    return (this.dx = reuse(this.dx, dy.shape, this.y!.dtype));
  }
}

/**
 * An activation applied element by element, y_i = f(x_i), whose backward reads f' from one cached array,
 * the input or the output (derivation.md §2.5). Each subclass writes f and ∂L/∂x_i side by side.
 */
abstract class ElementwiseActivation extends Activation {
  /** The array f' is cheapest to write in: x (then kept by forward) or y. */
  protected abstract readonly derivativeFrom: "x" | "y";
  private x: NDArray | null = null;

  /** y_i = f(x_i). */
  protected abstract forwardOne(x: number): number;
  /** ∂L/∂x_i = dy_i · f'(x_i), with f' written in `saved`, the cached x_i or y_i. */
  protected abstract backwardOne(saved: number, dy: number): number;

  forward(x: NDArray): NDArray {
    const y = this.output(x);
    const xd = x.data;
    const yd = y.data;
    for (let i = 0; i < xd.length; i++) yd[i] = this.forwardOne(xd[i]);
    this.x = this.derivativeFrom === "x" ? x : null;
    return y;
  }

  backward(dy: NDArray): NDArray {
    const dx = this.gradInput(dy);
    const saved = (this.derivativeFrom === "x" ? this.x : this.y)!.data;
    const g = dy.data;
    const d = dx.data;
    for (let i = 0; i < d.length; i++) d[i] = this.backwardOne(saved[i], g[i]);
    return dx;
  }
}

/** max(x, 0), elementwise. */
export class ReLU extends Activation {
  readonly type = "ReLU";
  // The kernels' reluForward / reluBackward (src/kernels/js.ts; float32: a branch-free SIMD max, since
  // the branchy loop mispredicts on activations of random sign). Saved: y, for expectGrad and backward.
  private saved: ReLUContext | null = null;

  forward(x: NDArray): NDArray {
    this.saved = kernels.reluForward(x, this.saved);
    this.y = this.saved.y;
    return this.y;
  }

  // Backward: ∂L/∂x = dy ⊙ [x > 0]   (read from the output: y > 0 exactly where x > 0)
  backward(dy: NDArray, opts: BackwardOptions = {}): NDArray {
    this.expectGrad(dy, this.y);
    return kernels.reluBackward(this.saved!, dy, opts.needDx ?? true);
  }
}

export interface LeakyReLUOptions {
  /** Slope for x ≤ 0 (default 0.01, as PyTorch's negative_slope; Keras uses 0.3). */
  alpha?: number;
}

/** An elementwise activation whose one option is a finite α (LeakyReLU's slope, ELU's saturation), kept in config. */
abstract class AlphaActivation extends ElementwiseActivation {
  readonly alpha: number;

  constructor(layer: string, alpha: unknown) {
    super();
    this.alpha = finiteNumber(layer, "alpha", alpha);
  }

  override config(): LayerConfig {
    return { type: this.type, alpha: this.alpha };
  }
}

/** x for x > 0, `alpha`·x otherwise, elementwise. */
export class LeakyReLU extends AlphaActivation {
  readonly type = "LeakyReLU";
  protected readonly derivativeFrom = "x"; // with α < 0 the output's sign no longer tells x's

  constructor(opts: LeakyReLUOptions = {}) {
    super("LeakyReLU", opts.alpha ?? 0.01);
  }

  protected forwardOne(x: number): number {
    return x > 0 ? x : this.alpha * x;
  }

  // Backward: ∂L/∂x = dy ⊙ (x > 0 ? 1 : α)
  protected backwardOne(x: number, dy: number): number {
    return x > 0 ? dy : this.alpha * dy;
  }
}

/** tanh(x), elementwise. */
export class Tanh extends ElementwiseActivation {
  readonly type = "Tanh";
  protected readonly derivativeFrom = "y";

  protected forwardOne(x: number): number {
    return Math.tanh(x);
  }

  // Backward: ∂L/∂x = dy ⊙ (1 − y²)      (tanh'(x) = 1 − tanh²(x), the article's tanh_deriv)
  protected backwardOne(y: number, dy: number): number {
    return dy * (1 - y * y);
  }
}

/**
 * σ(x) without overflow: for x ≥ 0, 1 / (1 + e^(−x)) (e^(−x) ≤ 1); for x < 0 the same value written
 * e^x / (1 + e^x), so e^(−x) never overflows to Infinity for very negative x.
 */
export function sigmoid(x: number): number {
  if (x >= 0) return 1 / (1 + Math.exp(-x));
  const e = Math.exp(x);
  return e / (1 + e);
}

/** The logistic sigmoid 1/(1 + e^−x), elementwise. */
export class Sigmoid extends ElementwiseActivation {
  readonly type = "Sigmoid";
  protected readonly derivativeFrom = "y";

  protected forwardOne(x: number): number {
    return sigmoid(x);
  }

  // Backward: ∂L/∂x = dy ⊙ y(1 − y)      (σ'(x) = σ(x)(1 − σ(x)), the article's log_deriv)
  protected backwardOne(y: number, dy: number): number {
    return dy * (y * (1 - y));
  }
}

export interface SoftmaxOptions {
  /** Axis of the full input (batch axis included) to normalise over; default −1. Not the batch axis 0. */
  axis?: number;
}

/**
 * Softmax over one axis (default −1, the last). For classification, train on logits with SoftmaxCrossEntropy instead.
 */
export class Softmax extends Activation {
  readonly type = "Softmax";
  readonly axis: number;

  constructor(opts: SoftmaxOptions = {}) {
    super();
    this.axis = nonBatchAxis(
      "Softmax",
      opts.axis ?? -1,
      "; normalising over it would mix samples (use -1 for the last axis)",
    );
  }

  /** The axis resolved against an input of `ndim` dimensions (batch included). */
  private resolveAxis(ndim: number, shape: readonly number[]): number {
    const ax = this.axis < 0 ? this.axis + ndim : this.axis;
    if (ax < 1 || ax >= ndim) {
      throw new ShapeError(
        `${this.describe()}: axis ${this.axis} is out of range for input of shape ${formatShape(shape).replace("NaN", "N")} (the batch axis 0 is excluded)`,
      );
    }
    return ax;
  }

  override outputShape(inputShape: readonly number[]): number[] {
    this.resolveAxis(inputShape.length + 1, [NaN, ...inputShape]);
    return inputShape.slice();
  }

  /** Split shape around the axis: outer blocks × len values along the axis, `inner` apart. */
  private layout(shape: readonly number[]): { outer: number; len: number; inner: number } {
    const ax = this.resolveAxis(shape.length, shape);
    let outer = 1;
    let inner = 1;
    for (let i = 0; i < ax; i++) outer *= shape[i];
    for (let i = ax + 1; i < shape.length; i++) inner *= shape[i];
    return { outer, len: shape[ax], inner };
  }

  forward(x: NDArray): NDArray {
    const { outer, len, inner } = this.layout(x.shape);
    const y = this.output(x);
    const xd = x.data;
    const yd = y.data;
    for (let o = 0; o < outer; o++) {
      for (let i = 0; i < inner; i++) {
        const base = o * len * inner + i;
        // y_k = e^(x_k − m) / Σ_j e^(x_j − m) with m = max_j x_j: the same ratio, and no e^x overflows.
        let m = -Infinity;
        for (let k = 0; k < len; k++) if (xd[base + k * inner] > m) m = xd[base + k * inner];
        let s = 0;
        for (let k = 0; k < len; k++) {
          const e = Math.exp(xd[base + k * inner] - m);
          yd[base + k * inner] = e;
          s += e;
        }
        for (let k = 0; k < len; k++) yd[base + k * inner] /= s;
      }
    }
    return y;
  }

  // Backward: ∂L/∂x_j = Σ_k dy_k · y_k(δ_kj − y_j) = y_j · (dy_j − Σ_k dy_k y_k)   along the axis
  backward(dy: NDArray): NDArray {
    const dx = this.gradInput(dy);
    const { outer, len, inner } = this.layout(dy.shape);
    const yd = this.y!.data;
    const g = dy.data;
    const d = dx.data;
    for (let o = 0; o < outer; o++) {
      for (let i = 0; i < inner; i++) {
        const base = o * len * inner + i;
        let dot = 0;
        for (let k = 0; k < len; k++) dot += g[base + k * inner] * yd[base + k * inner];
        for (let k = 0; k < len; k++) d[base + k * inner] = yd[base + k * inner] * (g[base + k * inner] - dot);
      }
    }
    return dx;
  }

  override config(): LayerConfig {
    return { type: this.type, axis: this.axis };
  }
}

// ---- GELU, SiLU, ELU (derivation.md §5.5) ----

/**
 * erf(x) to a few ulps, for GELU's exact form. |x| < 4: the everywhere-convergent series with positive
 * terms, erf(x) = (2/√π)·e^(−x²)·Σ_n 2ⁿ x^(2n+1) / (1·3·…·(2n+1)) (no cancellation); |x| ≥ 4: 1 − erfc(x)
 * with erfc's continued fraction e^(−x²)/√π · 1/(x + (1/2)/(x + 1/(x + (3/2)/(x + …)))).
 */
export function erf(x: number): number {
  if (Number.isNaN(x)) return NaN;
  const a = Math.abs(x);
  let r: number;
  if (a < 4) {
    let term = a;
    let sum = a;
    for (let n = 0; term > 1e-17 * sum; n++) {
      term *= (2 * a * a) / (2 * n + 3);
      sum += term;
    }
    r = (2 / Math.sqrt(Math.PI)) * Math.exp(-a * a) * sum;
  } else {
    let f = a;
    for (let k = 60; k >= 1; k--) f = a + k / 2 / f;
    r = 1 - Math.exp(-a * a) / Math.sqrt(Math.PI) / f;
  }
  return x < 0 ? -r : r;
}

export type GELUApproximation = "none" | "tanh";

export interface GELUOptions {
  /** "none": the exact x·Φ(x) with erf (default, PyTorch's); "tanh": the tanh approximation (Keras's approximate=True). */
  approximate?: GELUApproximation;
}

const SQRT_2_OVER_PI = Math.sqrt(2 / Math.PI);
const GELU_CUBIC = 0.044715;
const INV_SQRT_2PI = 1 / Math.sqrt(2 * Math.PI);

/**
 * GELU (Hendrycks & Gimpel 2016). Exact: y = x·Φ(x), Φ(x) = ½(1 + erf(x/√2)), f'(x) = Φ(x) + x·φ(x),
 * φ(x) = e^(−x²/2)/√(2π). Tanh form: u = √(2/π)(x + 0.044715x³), y = ½x(1 + tanh u),
 * f'(x) = ½(1 + tanh u) + ½x(1 − tanh² u)·√(2/π)(1 + 3·0.044715x²). Cached: x.
 */
export class GELU extends ElementwiseActivation {
  readonly type = "GELU";
  readonly approximate: GELUApproximation;
  protected readonly derivativeFrom = "x";

  constructor(opts: GELUOptions = {}) {
    super();
    this.approximate = oneOf("GELU", "approximate", opts.approximate ?? "none", ["none", "tanh"]);
  }

  protected forwardOne(x: number): number {
    if (this.approximate === "tanh") return 0.5 * x * (1 + Math.tanh(SQRT_2_OVER_PI * (x + GELU_CUBIC * x * x * x)));
    return 0.5 * x * (1 + erf(x / Math.SQRT2));
  }

  // Backward: ∂L/∂x = dy ⊙ f'(x), f' as above.
  protected backwardOne(x: number, dy: number): number {
    if (this.approximate === "tanh") {
      const t = Math.tanh(SQRT_2_OVER_PI * (x + GELU_CUBIC * x * x * x));
      return dy * (0.5 * (1 + t) + 0.5 * x * (1 - t * t) * SQRT_2_OVER_PI * (1 + 3 * GELU_CUBIC * x * x));
    }
    return dy * (0.5 * (1 + erf(x / Math.SQRT2)) + x * Math.exp(-0.5 * x * x) * INV_SQRT_2PI);
  }

  override config(): LayerConfig {
    return { type: this.type, approximate: this.approximate };
  }
}

/** SiLU / Swish: y = x·σ(x), f'(x) = σ(x)·(1 + x·(1 − σ(x))). Cached: x. */
export class SiLU extends ElementwiseActivation {
  readonly type = "SiLU";
  protected readonly derivativeFrom = "x";

  protected forwardOne(x: number): number {
    return x * sigmoid(x);
  }

  // Backward: ∂L/∂x = dy ⊙ σ(x)(1 + x(1 − σ(x)))
  protected backwardOne(x: number, dy: number): number {
    const s = sigmoid(x);
    return dy * s * (1 + x * (1 - s));
  }
}

export interface ELUOptions {
  /** Saturation value −α for x → −∞ (default 1). */
  alpha?: number;
}

/** ELU (Clevert et al. 2015): y = x > 0 ? x : α(eˣ − 1), f'(x) = x > 0 ? 1 : α·eˣ = y + α. Cached: x. */
export class ELU extends AlphaActivation {
  readonly type = "ELU";
  protected readonly derivativeFrom = "x";

  constructor(opts: ELUOptions = {}) {
    super("ELU", opts.alpha ?? 1);
  }

  protected forwardOne(x: number): number {
    return x > 0 ? x : this.alpha * Math.expm1(x);
  }

  // Backward: ∂L/∂x = dy ⊙ (x > 0 ? 1 : α·eˣ)
  protected backwardOne(x: number, dy: number): number {
    return x > 0 ? dy : dy * this.alpha * Math.exp(x);
  }
}
