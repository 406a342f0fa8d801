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
import { Layer, ShapeError, reuse, type BackwardOptions, type LayerConfig } from "./layer.ts";
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

  /** The dx buffer for dy, after checking dy has the last output's shape. */
  protected gradInput(dy: NDArray): NDArray {
    this.expectGrad(dy, this.y);
    return (this.dx = reuse(this.dx, dy.shape, this.y!.dtype));
  }
}

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

  config(): LayerConfig {
    return { type: this.type };
  }
}

export interface LeakyReLUOptions {
  /** Slope for x ≤ 0 (default 0.01, as PyTorch's negative_slope; Keras uses 0.3). */
  alpha?: number;
}

export class LeakyReLU extends Activation {
  readonly type = "LeakyReLU";
  readonly alpha: number;
  private x: NDArray | null = null; // cached input: with α < 0 the output's sign no longer tells x's

  constructor(opts: LeakyReLUOptions = {}) {
    super();
    const alpha = opts.alpha ?? 0.01;
    if (typeof alpha !== "number" || !Number.isFinite(alpha)) throw new RangeError(`LeakyReLU: alpha must be a finite number, got ${String(alpha)}`);
    this.alpha = alpha;
  }

  forward(x: NDArray): NDArray {
    const y = this.output(x);
    const a = this.alpha;
    const xd = x.data;
    const yd = y.data;
    for (let i = 0; i < xd.length; i++) yd[i] = xd[i] > 0 ? xd[i] : a * xd[i]; // y = x > 0 ? x : α·x
    this.x = x;
    return y;
  }

  // Backward: ∂L/∂x = dy ⊙ (x > 0 ? 1 : α)
  backward(dy: NDArray): NDArray {
    const dx = this.gradInput(dy);
    const a = this.alpha;
    const xd = this.x!.data;
    const g = dy.data;
    const d = dx.data;
    for (let i = 0; i < d.length; i++) d[i] = xd[i] > 0 ? g[i] : a * g[i];
    return dx;
  }

  config(): LayerConfig {
    return { type: this.type, alpha: this.alpha };
  }
}

export class Tanh extends Activation {
  readonly type = "Tanh";

  forward(x: NDArray): NDArray {
    const y = this.output(x);
    const xd = x.data;
    const yd = y.data;
    for (let i = 0; i < xd.length; i++) yd[i] = Math.tanh(xd[i]);
    return y;
  }

  // Backward: ∂L/∂x = dy ⊙ (1 − y²)      (tanh'(x) = 1 − tanh²(x), the article's tanh_deriv)
  backward(dy: NDArray): NDArray {
    const dx = this.gradInput(dy);
    const yd = this.y!.data;
    const g = dy.data;
    const d = dx.data;
    for (let i = 0; i < d.length; i++) d[i] = g[i] * (1 - yd[i] * yd[i]);
    return dx;
  }

  config(): LayerConfig {
    return { type: this.type };
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

export class Sigmoid extends Activation {
  readonly type = "Sigmoid";

  forward(x: NDArray): NDArray {
    const y = this.output(x);
    const xd = x.data;
    const yd = y.data;
    for (let i = 0; i < xd.length; i++) yd[i] = sigmoid(xd[i]);
    return y;
  }

  // Backward: ∂L/∂x = dy ⊙ y(1 − y)      (σ'(x) = σ(x)(1 − σ(x)), the article's log_deriv)
  backward(dy: NDArray): NDArray {
    const dx = this.gradInput(dy);
    const yd = this.y!.data;
    const g = dy.data;
    const d = dx.data;
    for (let i = 0; i < d.length; i++) d[i] = g[i] * (yd[i] * (1 - yd[i]));
    return dx;
  }

  config(): LayerConfig {
    return { type: this.type };
  }
}

export interface SoftmaxOptions {
  /** Axis of the full input (batch axis included) to normalise over; default −1. Not the batch axis 0. */
  axis?: number;
}

export class Softmax extends Activation {
  readonly type = "Softmax";
  readonly axis: number;

  constructor(opts: SoftmaxOptions = {}) {
    super();
    const axis = opts.axis ?? -1;
    if (typeof axis !== "number" || !Number.isInteger(axis)) throw new RangeError(`Softmax: axis must be an integer, got ${String(axis)}`);
    if (axis === 0) throw new RangeError("Softmax: axis 0 is the batch axis; normalising over it would mix samples (use -1 for the last axis)");
    this.axis = axis;
  }

  /** The axis resolved against an input of `ndim` dimensions (batch included). */
  private resolveAxis(ndim: number, shape: readonly number[]): number {
    const ax = this.axis < 0 ? this.axis + ndim : this.axis;
    if (ax < 1 || ax >= ndim) {
      throw new ShapeError(`${this.describe()}: axis ${this.axis} is out of range for input of shape ${formatShape(shape).replace("NaN", "N")} (the batch axis 0 is excluded)`);
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

  config(): LayerConfig {
    return { type: this.type, axis: this.axis };
  }
}
