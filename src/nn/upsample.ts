// UpSampling2D (nearest and bilinear) and ZeroPadding2D over NCHW images (derivation.md §5.3).
//
// Both are linear maps y = A·x applied to each (n, c) plane, so backward is dx = Aᵀ·dy: forward saves
// nothing but the input's shape.
//
// UpSampling2D with integer factors (sh, sw), output (C, H·sh, W·sw):
//   nearest   y[i, j] = x[⌊i/sh⌋, ⌊j/sw⌋]                     dx[a, b] = Σ_{i: ⌊i/sh⌋=a} Σ_{j: ⌊j/sw⌋=b} dy[i, j]
//   bilinear  half-pixel centres (align_corners = false, PyTorch's and TF 2's default): along one axis
//             src(i) = max((i + ½)/s − ½, 0),  a₀ = ⌊src⌋, a₁ = min(a₀ + 1, H − 1), λ = src − a₀,
//             y[i, j] = Σ_{a,b} R[i, a]·Q[j, b]·x[a, b]   with R[i, a₀] += 1 − λ, R[i, a₁] += λ (Q likewise)
//             dx[a, b] = Σ_{i,j} R[i, a]·Q[j, b]·dy[i, j]   (Rᵀ·dy·Q)
// ZeroPadding2D: y = x placed at offset (top, left) in a zero (H + top + bottom) × (W + left + right)
// plane; dx is the matching crop of dy.

import { formatShape, type NDArray } from "../nd/ndarray.ts";
import { Layer, ShapeError, nonNegativeInt, pair, positiveInt, reuse, type LayerConfig } from "./layer.ts";
import { compact } from "./conv.ts";

export type Interpolation = "nearest" | "bilinear";

export interface UpSampling2DOptions {
  /** Integer factor s or [sh, sw] (default 2). */
  size?: number | readonly [number, number];
  /** Default "nearest". */
  interpolation?: Interpolation;
}

/** One axis of bilinear interpolation: output i reads inputs lo[i] (weight 1 − frac[i]) and hi[i] (frac[i]). */
interface Taps {
  lo: Int32Array;
  hi: Int32Array;
  frac: Float64Array;
}

function bilinearTaps(inSize: number, scale: number): Taps {
  const out = inSize * scale;
  const lo = new Int32Array(out);
  const hi = new Int32Array(out);
  const frac = new Float64Array(out);
  for (let i = 0; i < out; i++) {
    const src = Math.max((i + 0.5) / scale - 0.5, 0);
    const a0 = Math.min(Math.floor(src), inSize - 1);
    lo[i] = a0;
    hi[i] = Math.min(a0 + 1, inSize - 1);
    frac[i] = src - a0;
  }
  return { lo, hi, frac };
}

function expectImage(layer: Layer, inputShape: readonly number[]): void {
  if (inputShape.length !== 3 || !inputShape.every((d) => Number.isInteger(d) && d >= 1)) {
    throw new ShapeError(
      `${layer.describe()}: expected input of shape (N, C, H, W), got samples of shape ` + formatShape(inputShape),
    );
  }
}

/** Upsample H and W by integer factors, nearest or bilinear (half-pixel centres). */
export class UpSampling2D extends Layer {
  readonly type = "UpSampling2D";
  readonly size: [number, number];
  readonly interpolation: Interpolation;
  private x: NDArray | null = null; // for its shape
  private y: NDArray | null = null;
  private dx: NDArray | null = null;
  private taps: { H: number; W: number; rows: Taps; cols: Taps } | null = null;

  constructor(opts: UpSampling2DOptions = {}) {
    super();
    if (typeof opts !== "object" || opts === null)
      throw new TypeError("UpSampling2D: expected an options object {size?, interpolation?}");
    this.size = pair("UpSampling2D", "size", opts.size ?? 2, positiveInt);
    const interpolation = opts.interpolation ?? "nearest";
    if (interpolation !== "nearest" && interpolation !== "bilinear") {
      throw new RangeError(
        `UpSampling2D: interpolation must be "nearest" or "bilinear", got ` + JSON.stringify(interpolation),
      );
    }
    this.interpolation = interpolation;
  }

  outputShape(inputShape: readonly number[]): number[] {
    expectImage(this, inputShape);
    return [inputShape[0], inputShape[1] * this.size[0], inputShape[2] * this.size[1]];
  }

  private bilinear(H: number, W: number): { rows: Taps; cols: Taps } {
    if (this.taps?.H !== H || this.taps.W !== W)
      this.taps = { H, W, rows: bilinearTaps(H, this.size[0]), cols: bilinearTaps(W, this.size[1]) };
    return this.taps;
  }

  /**
   * Visit each output of a bilinear upsampling of `planes` H×W planes, in order (flat index o), with the
   * four inputs it reads — rows r0, r1 (plane offset included) by columns c0, c1 — and its weights fr
   * (toward r1) and fc (toward c1).
   */
  private forEachBilinearOutput(
    planes: number,
    H: number,
    W: number,
    visit: (o: number, r0: number, r1: number, fr: number, c0: number, c1: number, fc: number) => void,
  ): void {
    const { rows, cols } = this.bilinear(H, W);
    const OH = H * this.size[0];
    const OW = W * this.size[1];
    for (let plane = 0; plane < planes; plane++) {
      const base = plane * H * W;
      for (let i = 0; i < OH; i++) {
        const r0 = base + rows.lo[i] * W;
        const r1 = base + rows.hi[i] * W;
        const rowStart = (plane * OH + i) * OW;
        for (let j = 0; j < OW; j++) visit(rowStart + j, r0, r1, rows.frac[i], cols.lo[j], cols.hi[j], cols.frac[j]);
      }
    }
  }

  forward(x: NDArray): NDArray {
    this.expectInput(x, [null, null, null, null], ["N", "C", "H", "W"]);
    const [N, C, H, W] = x.shape;
    const [sh, sw] = this.size;
    const OH = H * sh;
    const OW = W * sw;
    const y = (this.y = reuse(this.y, [N, C, OH, OW], x.dtype));
    const xd = x.data;
    const yd = y.data;
    if (this.interpolation === "nearest") {
      for (let plane = 0; plane < N * C; plane++) {
        for (let i = 0; i < OH; i++) {
          const src = plane * H * W + Math.floor(i / sh) * W;
          const dst = (plane * OH + i) * OW;
          for (let j = 0; j < OW; j++) yd[dst + j] = xd[src + Math.floor(j / sw)];
        }
      }
    } else {
      this.forEachBilinearOutput(N * C, H, W, (o, r0, r1, fr, c0, c1, fc) => {
        const top = (1 - fc) * xd[r0 + c0] + fc * xd[r0 + c1];
        const bottom = (1 - fc) * xd[r1 + c0] + fc * xd[r1 + c1];
        yd[o] = (1 - fr) * top + fr * bottom;
      });
    }
    this.x = x;
    return y;
  }

  // Backward (derivation.md §5.3): dx = Aᵀ·dy, every output's gradient sent back to the inputs it read,
  // with the weights it read them with.
  backward(dy: NDArray): NDArray {
    this.expectGrad(dy, this.y);
    const [N, C, H, W] = this.x!.shape;
    const [sh, sw] = this.size;
    const OH = H * sh;
    const OW = W * sw;
    const dx = (this.dx = reuse(this.dx, [N, C, H, W], this.x!.dtype));
    const g = dy.data;
    const d = dx.data;
    d.fill(0);
    if (this.interpolation === "nearest") {
      for (let plane = 0; plane < N * C; plane++) {
        for (let i = 0; i < OH; i++) {
          const dst = plane * H * W + Math.floor(i / sh) * W;
          const src = (plane * OH + i) * OW;
          for (let j = 0; j < OW; j++) d[dst + Math.floor(j / sw)] += g[src + j];
        }
      }
      return dx;
    }
    this.forEachBilinearOutput(N * C, H, W, (o, r0, r1, fr, c0, c1, fc) => {
      const gt = (1 - fr) * g[o]; // ∂L/∂top
      const gb = fr * g[o]; // ∂L/∂bottom
      d[r0 + c0] += (1 - fc) * gt;
      d[r0 + c1] += fc * gt;
      d[r1 + c0] += (1 - fc) * gb;
      d[r1 + c1] += fc * gb;
    });
    return dx;
  }

  config(): LayerConfig {
    return { type: this.type, size: compact(this.size), interpolation: this.interpolation };
  }
}

export interface ZeroPadding2DOptions {
  /** n (all sides), [ph, pw] (top = bottom = ph, left = right = pw) or [[top, bottom], [left, right]]; default 1. */
  padding?: number | readonly [number, number] | readonly [readonly [number, number], readonly [number, number]];
}

/** Pad H and W with zeros. */
export class ZeroPadding2D extends Layer {
  readonly type = "ZeroPadding2D";
  /** [top, bottom, left, right]. */
  readonly pads: [number, number, number, number];
  private x: NDArray | null = null; // for its shape
  private y: NDArray | null = null;
  private dx: NDArray | null = null;

  constructor(opts: ZeroPadding2DOptions = {}) {
    super();
    if (typeof opts !== "object" || opts === null)
      throw new TypeError("ZeroPadding2D: expected an options object {padding?}");
    const p = opts.padding ?? 1;
    const L = "ZeroPadding2D";
    if (Array.isArray(p) && p.length === 2 && Array.isArray(p[0]) && Array.isArray(p[1])) {
      const [t, b] = pair(L, "padding[0]", p[0] as [number, number], nonNegativeInt);
      const [l, r] = pair(L, "padding[1]", p[1] as [number, number], nonNegativeInt);
      this.pads = [t, b, l, r];
    } else {
      const [ph, pw] = pair(L, "padding", p as number | [number, number], nonNegativeInt);
      this.pads = [ph, ph, pw, pw];
    }
  }

  outputShape(inputShape: readonly number[]): number[] {
    expectImage(this, inputShape);
    const [t, b, l, r] = this.pads;
    return [inputShape[0], inputShape[1] + t + b, inputShape[2] + l + r];
  }

  forward(x: NDArray): NDArray {
    this.expectInput(x, [null, null, null, null], ["N", "C", "H", "W"]);
    const [N, C, H, W] = x.shape;
    const [t, b, l, r] = this.pads;
    const OH = H + t + b;
    const OW = W + l + r;
    const y = (this.y = reuse(this.y, [N, C, OH, OW], x.dtype));
    y.data.fill(0);
    for (let plane = 0; plane < N * C; plane++) {
      for (let i = 0; i < H; i++) {
        const src = (plane * H + i) * W;
        y.data.set(x.data.subarray(src, src + W), (plane * OH + i + t) * OW + l);
      }
    }
    this.x = x;
    return y;
  }

  // Backward (derivation.md §5.3): dx = the crop of dy that forward wrote x into.
  backward(dy: NDArray): NDArray {
    this.expectGrad(dy, this.y);
    const [N, C, H, W] = this.x!.shape;
    const [t, b, l, r] = this.pads;
    const OH = H + t + b;
    const OW = W + l + r;
    const dx = (this.dx = reuse(this.dx, [N, C, H, W], this.x!.dtype));
    for (let plane = 0; plane < N * C; plane++) {
      for (let i = 0; i < H; i++) {
        const src = (plane * OH + i + t) * OW + l;
        dx.data.set(dy.data.subarray(src, src + W), (plane * H + i) * W);
      }
    }
    return dx;
  }

  config(): LayerConfig {
    const [t, b, l, r] = this.pads;
    return {
      type: this.type,
      padding:
        t === b && l === r
          ? compact([t, l])
          : [
              [t, b],
              [l, r],
            ],
    };
  }
}
