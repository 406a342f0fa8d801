// Spatial pooling over NCHW images: MaxPool2D, AvgPool2D (PyTorch's semantics, ceil_mode=false) and
// GlobalAvgPool2D.
//
// Window geometry, per spatial axis (k = kernel, s = stride, p = padding):
//     out = ⌊(in + 2p − k) / s⌋ + 1,    window o covers input rows  o·s − p … o·s − p + k − 1
// Padded cells are never materialised: each window is clipped to the real input [0, in). For max pooling
// that is the same as padding with −∞ (a padded cell never wins); for average pooling the padded cells
// count as zeros in the divisor when countIncludePad is true (PyTorch's default) and are left out of it
// otherwise. As in PyTorch, padding may be at most ⌊k/2⌋, which guarantees every window holds at least
// one real cell.
//
// MaxPool2D and AvgPool2D own the options and the geometry; their arithmetic is the kernels'
// maxPool2d* / avgPool2d* (derivation.md §2.3): the reference in src/kernels/js.ts, max pooling in
// float32 also in src/kernels/wasm/pool.as.

import { formatShape, type NDArray } from "../nd/ndarray.ts";
import { kernels } from "../kernels/backend.ts";
import { reuseDims } from "../kernels/buffers.ts";
import type { Pool2DContext, PoolGeometry } from "../kernels/kernels.ts";
import {
  expectOptions,
  Layer,
  ShapeError,
  nonNegativeInt,
  pair,
  positiveInt,
  type BackwardOptions,
  type LayerConfig,
} from "./layer.ts";

export interface Pool2DOptions {
  /** Window size, n or [h, w]. */
  kernelSize: number | readonly [number, number];
  /** Step between windows, n or [h, w] (default: kernelSize, i.e. non-overlapping windows). */
  stride?: number | readonly [number, number];
  /** Implicit padding on each side, n or [h, w] (default 0); at most ⌊kernelSize/2⌋ per axis. */
  padding?: number | readonly [number, number];
}

export interface AvgPool2DOptions extends Pool2DOptions {
  /** Count padded cells (as zeros) in the divisor: always k_h·k_w (default true, as PyTorch). */
  countIncludePad?: boolean;
}

/** n when both entries agree, else [h, w]: how pair options are written back into a config. */
function compact(p: readonly [number, number]): number | [number, number] {
  return p[0] === p[1] ? p[0] : [p[0], p[1]];
}

const ANY_NCHW: readonly null[] = [null, null, null, null];
const NCHW_NAMES: readonly string[] = ["N", "C", "H", "W"];

/** Shared option handling and window geometry of the two windowed poolings. */
abstract class Pool2D extends Layer {
  readonly kernelSize: [number, number];
  readonly stride: [number, number];
  readonly padding: [number, number];
  protected saved: Pool2DContext | null = null; // what the last forward saved for backward

  constructor(layer: string, opts: Pool2DOptions) {
    super();
    expectOptions(layer, opts, "{kernelSize, stride?, padding?}");
    this.kernelSize = pair(layer, "kernelSize", opts.kernelSize, positiveInt);
    this.stride =
      opts.stride === undefined
        ? [this.kernelSize[0], this.kernelSize[1]]
        : pair(layer, "stride", opts.stride, positiveInt);
    this.padding = pair(layer, "padding", opts.padding ?? 0, nonNegativeInt);
    for (let a = 0; a < 2; a++) {
      const k = this.kernelSize[a];
      const p = this.padding[a];
      if (p > Math.floor(k / 2)) {
        throw new RangeError(
          `${layer}: padding must be at most half the kernel size (⌊${k}/2⌋ = ${Math.floor(k / 2)}) on the ${a === 0 ? "height" : "width"} axis, got padding ${p}`,
        );
      }
    }
  }

  /** (C, H, W) → (C, H_out, W_out); ShapeError if the input is not an image or smaller than the kernel. */
  outputShape(inputShape: readonly number[]): number[] {
    if (inputShape.length !== 3) {
      throw new ShapeError(
        `${this.describe()}: expected input of shape (N, C, H, W), got samples of shape ${formatShape(inputShape)}`,
      );
    }
    const [C, H, W] = inputShape;
    const [kh, kw] = this.kernelSize;
    const [sh, sw] = this.stride;
    const [ph, pw] = this.padding;
    if (kh > H + 2 * ph || kw > W + 2 * pw) {
      throw new ShapeError(
        `${this.describe()}: kernel ${kh}×${kw} is larger than the padded input ${H + 2 * ph}×${W + 2 * pw} (input ${H}×${W}, padding ${ph}×${pw})`,
      );
    }
    return [C, Math.floor((H + 2 * ph - kh) / sh) + 1, Math.floor((W + 2 * pw - kw) / sw) + 1];
  }

  private lastGeometry: PoolGeometry | null = null;

  /** The window geometry for x's shape (the last one again while the shape stays: a step allocates none). */
  protected geometry(x: NDArray): PoolGeometry {
    this.expectInput(x, ANY_NCHW, NCHW_NAMES);
    const s = x.shape;
    const last = this.lastGeometry;
    if (last !== null && last.N === s[0] && last.C === s[1] && last.H === s[2] && last.W === s[3]) return last;
    return (this.lastGeometry = this.newGeometry(x));
  }

  private newGeometry(x: NDArray): PoolGeometry {
    const [N, C, H, W] = x.shape;
    const [, OH, OW] = this.outputShape([C, H, W]);
    const [kh, kw] = this.kernelSize;
    const [sh, sw] = this.stride;
    const [ph, pw] = this.padding;
    return { N, C, H, W, kh, kw, sh, sw, ph, pw, OH, OW };
  }

  protected poolConfig(): {
    kernelSize: number | [number, number];
    stride: number | [number, number];
    padding: number | [number, number];
  } {
    return { kernelSize: compact(this.kernelSize), stride: compact(this.stride), padding: compact(this.padding) };
  }
}

/**
 * Max pooling: y[n,c,i,j] = max over the window of x. The winner's flat index into x is cached per output.
 * Ties go to the first maximum in row-major window order (top-left first), as PyTorch's CPU kernel;
 * a NaN in a window wins (propagates) like in PyTorch.
 */
export class MaxPool2D extends Pool2D {
  readonly type = "MaxPool2D";

  constructor(opts: Pool2DOptions) {
    super("MaxPool2D", opts);
  }

  forward(x: NDArray): NDArray {
    this.saved = kernels.maxPool2dForward(this.geometry(x), x, this.saved);
    return this.saved.y;
  }

  // Backward (derivation.md §2.3, max pooling): ∂L/∂x_i = Σ_{o : argmax(o) = i} dy_o.
  backward(dy: NDArray, opts: BackwardOptions = {}): NDArray {
    this.expectGrad(dy, this.saved?.y ?? null);
    return kernels.maxPool2dBackward(this.saved!, dy, opts.needDx ?? true);
  }

  config(): LayerConfig {
    return { type: this.type, ...this.poolConfig() };
  }
}

/**
 * Average pooling: y[n,c,i,j] = (1/D) Σ_window x, with D = k_h·k_w when countIncludePad (padded cells
 * count as zeros, PyTorch's default) or D = the number of real cells in the window otherwise.
 */
export class AvgPool2D extends Pool2D {
  readonly type = "AvgPool2D";
  readonly countIncludePad: boolean;

  constructor(opts: AvgPool2DOptions) {
    super("AvgPool2D", opts);
    const c = opts.countIncludePad ?? true;
    if (typeof c !== "boolean")
      throw new TypeError(`AvgPool2D: countIncludePad must be a boolean, got ${JSON.stringify(c)}`);
    this.countIncludePad = c;
  }

  forward(x: NDArray): NDArray {
    this.saved = kernels.avgPool2dForward(this.geometry(x), this.countIncludePad, x, this.saved);
    return this.saved.y;
  }

  // Backward (derivation.md §2.3, average pooling): ∂L/∂x_i = Σ_{o : i ∈ window(o)} dy_o / D_o.
  backward(dy: NDArray, opts: BackwardOptions = {}): NDArray {
    this.expectGrad(dy, this.saved?.y ?? null);
    return kernels.avgPool2dBackward(this.saved!, dy, opts.needDx ?? true);
  }

  config(): LayerConfig {
    return { type: this.type, ...this.poolConfig(), countIncludePad: this.countIncludePad };
  }
}

/** Global average pooling: (N, C, H, W) → (N, C), y[n,c] = (1/(H·W)) Σ_{h,w} x[n,c,h,w]. */
export class GlobalAvgPool2D extends Layer {
  readonly type = "GlobalAvgPool2D";
  private x: NDArray | null = null;
  private y: NDArray | null = null;
  private dx: NDArray | null = null;

  outputShape(inputShape: readonly number[]): number[] {
    if (inputShape.length !== 3 || inputShape[1] < 1 || inputShape[2] < 1) {
      throw new ShapeError(
        `${this.describe()}: expected input of shape (N, C, H, W) with H, W ≥ 1, got samples of shape ${formatShape(inputShape)}`,
      );
    }
    return [inputShape[0]];
  }

  forward(x: NDArray): NDArray {
    this.expectInput(x, ANY_NCHW, NCHW_NAMES);
    const [N, C, H, W] = x.shape;
    if (H < 1 || W < 1) this.outputShape([C, H, W]); // throws, naming the shape
    const HW = H * W;
    const y = (this.y = reuseDims(this.y, x.dtype, N, C));
    const xd = x.data;
    const yd = y.data;
    for (let nc = 0; nc < N * C; nc++) {
      let s = 0;
      const off = nc * HW;
      for (let k = 0; k < HW; k++) s += xd[off + k];
      yd[nc] = s / HW;
    }
    this.x = x;
    return y;
  }

  // Backward (derivation.md §2.3): y[n,c] = (1/HW) Σ x[n,c,·,·]  ⇒  ∂L/∂x[n,c,h,w] = dy[n,c] / (H·W)   (dy broadcast over the plane)
  backward(dy: NDArray): NDArray {
    this.expectGrad(dy, this.y);
    const x = this.x!;
    const [N, C, H, W] = x.shape;
    const HW = H * W;
    // kernels.outputBuffer: inside a model's pass, resident where the wasm backend runs, so the layer before
    // reads dx where it lies instead of copying it in
    const dx = (this.dx = kernels.outputBuffer(this.dx, x.shape, x.dtype));
    const dxd = dx.data;
    const dyd = dy.data;
    // a loop, not fill(): a float argument to a builtin is boxed, one heap number per plane per step
    for (let nc = 0; nc < N * C; nc++) {
      const v = dyd[nc] / HW;
      for (let i = nc * HW, e = i + HW; i < e; i++) dxd[i] = v;
    }
    return dx;
  }

  config(): LayerConfig {
    return { type: this.type };
  }
}
