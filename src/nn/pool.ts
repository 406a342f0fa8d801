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

import { formatShape, type NDArray } from "../nd/ndarray.ts";
import { useWasm } from "../kernels/backend.ts";
import { WasmMaxPool2D } from "../kernels/wasm.ts";
import { Layer, ShapeError, nonNegativeInt, pair, positiveInt, reuse, type LayerConfig } from "./layer.ts";

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

/** Output geometry of one forward pass. */
interface PoolGeometry {
  N: number;
  C: number;
  H: number;
  W: number;
  Ho: number;
  Wo: number;
}

/** Shared option handling and window geometry of the two windowed poolings. */
abstract class Pool2D extends Layer {
  readonly kernelSize: [number, number];
  readonly stride: [number, number];
  readonly padding: [number, number];
  protected x: NDArray | null = null; // cached for its shape (and, in max pooling, nothing else)
  protected y: NDArray | null = null;
  protected dx: NDArray | null = null;

  constructor(layer: string, opts: Pool2DOptions) {
    super();
    if (typeof opts !== "object" || opts === null) throw new TypeError(`${layer}: expected an options object {kernelSize, stride?, padding?}`);
    this.kernelSize = pair(layer, "kernelSize", opts.kernelSize, positiveInt);
    this.stride = opts.stride === undefined ? [this.kernelSize[0], this.kernelSize[1]] : pair(layer, "stride", opts.stride, positiveInt);
    this.padding = pair(layer, "padding", opts.padding ?? 0, nonNegativeInt);
    for (let a = 0; a < 2; a++) {
      const k = this.kernelSize[a];
      const p = this.padding[a];
      if (p > Math.floor(k / 2)) {
        throw new RangeError(`${layer}: padding must be at most half the kernel size (⌊${k}/2⌋ = ${Math.floor(k / 2)}) on the ${a === 0 ? "height" : "width"} axis, got padding ${p}`);
      }
    }
  }

  /** (C, H, W) → (C, H_out, W_out); ShapeError if the input is not an image or smaller than the kernel. */
  outputShape(inputShape: readonly number[]): number[] {
    if (inputShape.length !== 3) {
      throw new ShapeError(`${this.describe()}: expected input of shape (N, C, H, W), got samples of shape ${formatShape(inputShape)}`);
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

  protected geometry(x: NDArray): PoolGeometry {
    this.expectInput(x, [null, null, null, null], ["N", "C", "H", "W"]);
    const [N, C, H, W] = x.shape;
    const [, Ho, Wo] = this.outputShape([C, H, W]);
    return { N, C, H, W, Ho, Wo };
  }

  protected poolConfig(): { kernelSize: number | [number, number]; stride: number | [number, number]; padding: number | [number, number] } {
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
  private argmax = new Int32Array(0); // flat index into x.data of each output's winner
  private wasm: WasmMaxPool2D | null = null; // float32 on the "wasm" backend (same results bit for bit)
  private forwardOnWasm = false; // backward takes the path its forward took

  constructor(opts: Pool2DOptions) {
    super("MaxPool2D", opts);
  }

  forward(x: NDArray): NDArray {
    const { N, C, H, W, Ho, Wo } = this.geometry(x);
    const [kh, kw] = this.kernelSize;
    const [sh, sw] = this.stride;
    const [ph, pw] = this.padding;
    const y = (this.y = reuse(this.y, [N, C, Ho, Wo], x.dtype));
    if (this.argmax.length !== y.size) this.argmax = new Int32Array(y.size);
    this.x = x;
    this.forwardOnWasm = useWasm(x.data);
    if (this.forwardOnWasm) {
      (this.wasm ??= new WasmMaxPool2D()).forward(N * C, H, W, kh, kw, sh, sw, ph, pw, Ho, Wo, x.data, y.data, this.argmax);
      return y;
    }
    const xd = x.data;
    const yd = y.data;
    const arg = this.argmax;
    for (let nc = 0; nc < N * C; nc++) {
      const xOff = nc * H * W;
      let o = nc * Ho * Wo;
      for (let i = 0; i < Ho; i++) {
        // window rows clipped to the real input: padded rows are −∞ and can never win
        const hStart = i * sh - ph;
        const h0 = Math.max(hStart, 0);
        const h1 = Math.min(hStart + kh, H);
        for (let j = 0; j < Wo; j++, o++) {
          const wStart = j * sw - pw;
          const w0 = Math.max(wStart, 0);
          const w1 = Math.min(wStart + kw, W);
          let bestIdx = xOff + h0 * W + w0;
          let best = xd[bestIdx];
          for (let h = h0; h < h1; h++) {
            for (let w = w0; w < w1; w++) {
              const idx = xOff + h * W + w;
              const v = xd[idx];
              // strict ">" keeps the first maximum; the second clause lets the first NaN win and stay
              if (v > best || (v !== v && best === best)) {
                best = v;
                bestIdx = idx;
              }
            }
          }
          yd[o] = best;
          arg[o] = bestIdx;
        }
      }
    }
    return y;
  }

  // Backward (derivation.md §2.3, max pooling): y_o = x_{a(o)} with a(o) the cached argmax, so
  //   ∂y_o/∂x_i = [i = a(o)]   ⇒   ∂L/∂x_i = Σ_{o : a(o) = i} dy_o
  // The sum is over every window that x_i won: windows overlap when stride < kernel, hence "+=".
  backward(dy: NDArray): NDArray {
    this.expectGrad(dy, this.y);
    const x = this.x!;
    const dx = (this.dx = reuse(this.dx, x.shape, x.dtype));
    if (this.forwardOnWasm && this.wasm !== null) {
      this.wasm.backward(dy.data, this.argmax, dx.data);
      return dx;
    }
    const dxd = dx.data;
    dxd.fill(0);
    const dyd = dy.data;
    const arg = this.argmax;
    for (let o = 0; o < dyd.length; o++) dxd[arg[o]] += dyd[o];
    return dx;
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
    if (typeof c !== "boolean") throw new TypeError(`AvgPool2D: countIncludePad must be a boolean, got ${JSON.stringify(c)}`);
    this.countIncludePad = c;
  }

  forward(x: NDArray): NDArray {
    const { N, C, H, W, Ho, Wo } = this.geometry(x);
    const [kh, kw] = this.kernelSize;
    const [sh, sw] = this.stride;
    const [ph, pw] = this.padding;
    const y = (this.y = reuse(this.y, [N, C, Ho, Wo], x.dtype));
    const xd = x.data;
    const yd = y.data;
    for (let nc = 0; nc < N * C; nc++) {
      const xOff = nc * H * W;
      let o = nc * Ho * Wo;
      for (let i = 0; i < Ho; i++) {
        const hStart = i * sh - ph;
        const h0 = Math.max(hStart, 0);
        const h1 = Math.min(hStart + kh, H);
        for (let j = 0; j < Wo; j++, o++) {
          const wStart = j * sw - pw;
          const w0 = Math.max(wStart, 0);
          const w1 = Math.min(wStart + kw, W);
          let s = 0;
          for (let h = h0; h < h1; h++) for (let w = w0; w < w1; w++) s += xd[xOff + h * W + w];
          yd[o] = s / (this.countIncludePad ? kh * kw : (h1 - h0) * (w1 - w0));
        }
      }
    }
    this.x = x;
    return y;
  }

  // Backward (derivation.md §2.3, average pooling): y_o = (1/D_o) Σ_{i ∈ window(o)} x_i, so
  //   ∂L/∂x_i = Σ_{o : i ∈ window(o)} dy_o / D_o
  // i.e. each dy_o is spread evenly over its window's real cells ("+=": windows may overlap).
  backward(dy: NDArray): NDArray {
    this.expectGrad(dy, this.y);
    const x = this.x!;
    const [N, C, H, W] = x.shape;
    const [, , Ho, Wo] = dy.shape;
    const [kh, kw] = this.kernelSize;
    const [sh, sw] = this.stride;
    const [ph, pw] = this.padding;
    const dx = (this.dx = reuse(this.dx, x.shape, x.dtype));
    const dxd = dx.data;
    dxd.fill(0);
    const dyd = dy.data;
    for (let nc = 0; nc < N * C; nc++) {
      const xOff = nc * H * W;
      let o = nc * Ho * Wo;
      for (let i = 0; i < Ho; i++) {
        const hStart = i * sh - ph;
        const h0 = Math.max(hStart, 0);
        const h1 = Math.min(hStart + kh, H);
        for (let j = 0; j < Wo; j++, o++) {
          const wStart = j * sw - pw;
          const w0 = Math.max(wStart, 0);
          const w1 = Math.min(wStart + kw, W);
          const g = dyd[o] / (this.countIncludePad ? kh * kw : (h1 - h0) * (w1 - w0));
          for (let h = h0; h < h1; h++) for (let w = w0; w < w1; w++) dxd[xOff + h * W + w] += g;
        }
      }
    }
    return dx;
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
      throw new ShapeError(`${this.describe()}: expected input of shape (N, C, H, W) with H, W ≥ 1, got samples of shape ${formatShape(inputShape)}`);
    }
    return [inputShape[0]];
  }

  forward(x: NDArray): NDArray {
    this.expectInput(x, [null, null, null, null], ["N", "C", "H", "W"]);
    const [N, C, H, W] = x.shape;
    this.outputShape([C, H, W]);
    const HW = H * W;
    const y = (this.y = reuse(this.y, [N, C], x.dtype));
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
    const dx = (this.dx = reuse(this.dx, x.shape, x.dtype));
    const dxd = dx.data;
    const dyd = dy.data;
    for (let nc = 0; nc < N * C; nc++) dxd.fill(dyd[nc] / HW, nc * HW, (nc + 1) * HW);
    return dx;
  }

  config(): LayerConfig {
    return { type: this.type };
  }
}
