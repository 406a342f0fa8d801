// im2col / col2im: unroll the receptive fields of a batch of NCHW images into the columns of one
// matrix, so that a convolution layer becomes a matrix product (Caffe's trick, cs231n "im2col").
//
// Layout (batched, one matrix for the whole batch):
//
//   col has shape (C·kh·kw, N·OH·OW), row-major.
//   row    r = (c·kh + p)·kw + q          one (input channel, kernel row, kernel column) triple
//   column s = n·OH·OW + i·OW + j         one output position (image n, output row i, output column j)
//
//   col[r, s] = x_pad[n, c, i·sh + p·dh, j·sw + q·dw]
//             = x[n, c, i·sh + p·dh − padTop, j·sw + q·dw − padLeft]   (0 where that is outside x)
//
// The rows match the weight layout (O, C, kh, kw) flattened to (O, C·kh·kw), so a cross-correlation is
//   y[n, o, :, :] = W · col[:, n·OH·OW : (n+1)·OH·OW]      (O × C·kh·kw) · (C·kh·kw × OH·OW)
// and image n's block of columns is a strided submatrix (leading dimension N·OH·OW) that GEMM reads
// in place. A single image is the case N = 1.
//
// Padding is zero and may be asymmetric (TF's "same"): only the top/left amounts enter the index
// arithmetic; the bottom/right amounts are implied by OH and OW.
//
// Neither function allocates: the caller owns every buffer.

import type { TypedArray } from "../nd/ndarray.ts";

/** A window sliding over a batch of NCHW images: what a convolution's and a pooling's geometry share. */
export interface WindowGeometry {
  /** Batch size, input channels, input height and width. */
  readonly N: number;
  readonly C: number;
  readonly H: number;
  readonly W: number;
  /** Window (kernel) size and stride per axis. */
  readonly kh: number;
  readonly kw: number;
  readonly sh: number;
  readonly sw: number;
  /** Output height and width. */
  readonly OH: number;
  readonly OW: number;
}

/** Everything im2col/col2im need to know about one convolution applied to one batch shape. */
export interface ConvGeometry extends WindowGeometry {
  /** Dilation: kernel taps are dh rows / dw columns apart. */
  readonly dh: number;
  readonly dw: number;
  /** Zero padding on each side. */
  readonly padTop: number;
  readonly padBottom: number;
  readonly padLeft: number;
  readonly padRight: number;
}

/**
 * Output length along one axis: ⌊(size + padBefore + padAfter − d·(k − 1) − 1) / s⌋ + 1.
 * Returns a value < 1 when the dilated kernel, d·(k − 1) + 1, is longer than the padded input.
 */
export function convOutputSize(
  size: number,
  k: number,
  s: number,
  padBefore: number,
  padAfter: number,
  d: number,
): number {
  return Math.floor((size + padBefore + padAfter - d * (k - 1) - 1) / s) + 1;
}

/** Geometry for input (N, C, H, W); padding is [top, bottom, left, right]. OH/OW may be < 1: callers check. */
export function convGeometry(
  N: number,
  C: number,
  H: number,
  W: number,
  kernel: readonly [number, number],
  stride: readonly [number, number],
  padding: readonly [number, number, number, number],
  dilation: readonly [number, number],
): ConvGeometry {
  const [kh, kw] = kernel;
  const [sh, sw] = stride;
  const [padTop, padBottom, padLeft, padRight] = padding;
  const [dh, dw] = dilation;
  return {
    N,
    C,
    H,
    W,
    kh,
    kw,
    sh,
    sw,
    dh,
    dw,
    padTop,
    padBottom,
    padLeft,
    padRight,
    OH: convOutputSize(H, kh, sh, padTop, padBottom, dh),
    OW: convOutputSize(W, kw, sw, padLeft, padRight, dw),
  };
}

/** Number of elements of the col matrix: C·kh·kw · N·OH·OW. */
export function colSize(g: ConvGeometry): number {
  return g.C * g.kh * g.kw * g.N * g.OH * g.OW;
}

// The output columns j whose input column j·sw + q·dw − padLeft lies inside [0, W):
//   j ≥ (padLeft − q·dw) / sw   and   j < (W + padLeft − q·dw) / sw,   clamped to [0, OW).
// Outside [jLo, jHi) the tap reads padding. Same for rows.
function firstInside(pad: number, offset: number, s: number): number {
  return Math.max(0, Math.ceil((pad - offset) / s));
}
function endInside(size: number, pad: number, offset: number, s: number, outSize: number): number {
  return Math.min(outSize, Math.max(0, Math.ceil((size + pad - offset) / s)));
}

/**
 * col[r, s] = x_pad[n, c, i·sh + p·dh, j·sw + q·dw]  (layout above). x is the batch (N, C, H, W)
 * starting at x[xOff]; col must hold colSize(g) elements and is entirely overwritten.
 */
export function im2col(g: ConvGeometry, x: TypedArray, xOff: number, col: TypedArray): void {
  const { N, C, H, W, kh, kw, sh, sw, dh, dw, padTop, padLeft, OH, OW } = g;
  const HW = H * W;
  const OHW = OH * OW;
  const ldCol = N * OHW;
  for (let c = 0; c < C; c++) {
    for (let p = 0; p < kh; p++) {
      const iLo = firstInside(padTop, p * dh, sh);
      const iHi = endInside(H, padTop, p * dh, sh, OH);
      for (let q = 0; q < kw; q++) {
        const jLo = firstInside(padLeft, q * dw, sw);
        const jHi = endInside(W, padLeft, q * dw, sw, OW);
        const rowStart = ((c * kh + p) * kw + q) * ldCol;
        for (let n = 0; n < N; n++) {
          const xPlane = xOff + (n * C + c) * HW;
          const colImage = rowStart + n * OHW;
          for (let i = 0; i < OH; i++) {
            const dst = colImage + i * OW;
            if (i < iLo || i >= iHi || jLo >= jHi) {
              col.fill(0, dst, dst + OW);
              continue;
            }
            const xRow = xPlane + (i * sh + p * dh - padTop) * W;
            for (let j = 0; j < jLo; j++) col[dst + j] = 0;
            let xi = xRow + jLo * sw + q * dw - padLeft;
            for (let j = jLo; j < jHi; j++, xi += sw) col[dst + j] = x[xi];
            for (let j = jHi; j < OW; j++) col[dst + j] = 0;
          }
        }
      }
    }
  }
}

/**
 * The adjoint of im2col: dx[n, c, i·sh + p·dh − padTop, j·sw + q·dw − padLeft] += col[r, s] for every
 * entry that im2col read from x (entries that came from padding are dropped). It ACCUMULATES: an input
 * pixel under several overlapping receptive fields receives the sum of their contributions, and
 * whatever dx already held is kept — zero dx first for a plain gradient. dx is (N, C, H, W) at dx[dxOff].
 */
export function col2im(g: ConvGeometry, col: TypedArray, dx: TypedArray, dxOff: number): void {
  const { N, C, H, W, kh, kw, sh, sw, dh, dw, padTop, padLeft, OH, OW } = g;
  const HW = H * W;
  const OHW = OH * OW;
  const ldCol = N * OHW;
  for (let c = 0; c < C; c++) {
    for (let p = 0; p < kh; p++) {
      const iLo = firstInside(padTop, p * dh, sh);
      const iHi = endInside(H, padTop, p * dh, sh, OH);
      for (let q = 0; q < kw; q++) {
        const jLo = firstInside(padLeft, q * dw, sw);
        const jHi = endInside(W, padLeft, q * dw, sw, OW);
        if (jLo >= jHi) continue;
        const rowStart = ((c * kh + p) * kw + q) * ldCol;
        for (let n = 0; n < N; n++) {
          const xPlane = dxOff + (n * C + c) * HW;
          const colImage = rowStart + n * OHW;
          for (let i = iLo; i < iHi; i++) {
            const src = colImage + i * OW;
            let xi = xPlane + (i * sh + p * dh - padTop) * W + jLo * sw + q * dw - padLeft;
            for (let j = jLo; j < jHi; j++, xi += sw) dx[xi] += col[src + j];
          }
        }
      }
    }
  }
}
