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
  const OH = convOutputSize(H, kh, sh, padTop, padBottom, dh);
  const OW = convOutputSize(W, kw, sw, padLeft, padRight, dw);
  return { N, C, H, W, kh, kw, sh, sw, dh, dw, padTop, padBottom, padLeft, padRight, OH, OW };
}

/** Number of elements of the col matrix: C·kh·kw · N·OH·OW. */
export function colSize(g: ConvGeometry): number {
  return g.C * g.kh * g.kw * g.N * g.OH * g.OW;
}

/** Per kernel tap (p, q): the output rows [iLo, iHi) and columns [jLo, jHi) whose input lies inside x. */
export interface TapRange {
  readonly tap: number; // p·kw + q
  readonly iLo: number;
  readonly iHi: number;
  readonly jLo: number;
  readonly jHi: number;
  readonly rowOffset: number; // p·dh − padTop: output row i reads input row i·sh + rowOffset
  readonly colOffset: number; // q·dw − padLeft
}

// The output columns j whose input column j·sw + q·dw − padLeft lies inside [0, W):
//   j ≥ (padLeft − q·dw) / sw   and   j < (W + padLeft − q·dw) / sw,   clamped to [0, OW).
// Outside [jLo, jHi) the tap reads padding. Same for rows.
function firstInside(offset: number, s: number): number {
  return Math.max(0, Math.ceil(-offset / s));
}
function endInside(offset: number, s: number, size: number, outSize: number): number {
  return Math.min(outSize, Math.max(0, Math.ceil((size - offset) / s)));
}

/** Every kernel tap in row-major order (p, then q), with its ranges; a range may be empty (all padding). */
export function tapRanges(g: ConvGeometry): TapRange[] {
  const out: TapRange[] = [];
  for (let p = 0; p < g.kh; p++) {
    const rowOffset = p * g.dh - g.padTop;
    for (let q = 0; q < g.kw; q++) {
      const colOffset = q * g.dw - g.padLeft;
      out.push({
        tap: p * g.kw + q,
        iLo: firstInside(rowOffset, g.sh),
        iHi: endInside(rowOffset, g.sh, g.H, g.OH),
        jLo: firstInside(colOffset, g.sw),
        jHi: endInside(colOffset, g.sw, g.W, g.OW),
        rowOffset,
        colOffset,
      });
    }
  }
  return out;
}

/** The taps that read x at least once (the others read only padding). */
export function tapsInside(g: ConvGeometry): TapRange[] {
  return tapRanges(g).filter((t) => t.iLo < t.iHi && t.jLo < t.jHi);
}

/**
 * Visit col's blocks in order: for input channel c, kernel tap t and image n, the start of the block
 * (row (c, p, q) of col, image n's OH·OW columns) and the offset of x's plane (n, c) in a batch.
 */
function forEachColBlock(g: ConvGeometry, visit: (t: TapRange, colBlock: number, xPlane: number) => void): void {
  const { N, C, H, W, kh, kw, OH, OW } = g;
  const OHW = OH * OW;
  const ldCol = N * OHW;
  const taps = tapRanges(g);
  for (let c = 0; c < C; c++) {
    for (const t of taps) {
      const rowStart = (c * kh * kw + t.tap) * ldCol;
      for (let n = 0; n < N; n++) visit(t, rowStart + n * OHW, (n * C + c) * H * W);
    }
  }
}

/**
 * col[r, s] = x_pad[n, c, i·sh + p·dh, j·sw + q·dw]  (layout above). x is the batch (N, C, H, W)
 * starting at x[xOff]; col must hold colSize(g) elements and is entirely overwritten.
 */
export function im2col(g: ConvGeometry, x: TypedArray, xOff: number, col: TypedArray): void {
  const { W, sw, OH, OW } = g;
  forEachColBlock(g, (t, colBlock, xPlane) => {
    for (let i = 0; i < OH; i++) {
      const dst = colBlock + i * OW;
      if (i < t.iLo || i >= t.iHi || t.jLo >= t.jHi) {
        col.fill(0, dst, dst + OW);
        continue;
      }
      const xRow = xOff + xPlane + (i * g.sh + t.rowOffset) * W;
      for (let j = 0; j < t.jLo; j++) col[dst + j] = 0;
      let xi = xRow + t.jLo * sw + t.colOffset;
      for (let j = t.jLo; j < t.jHi; j++, xi += sw) col[dst + j] = x[xi];
      for (let j = t.jHi; j < OW; j++) col[dst + j] = 0;
    }
  });
}

/**
 * The adjoint of im2col: dx[n, c, i·sh + p·dh − padTop, j·sw + q·dw − padLeft] += col[r, s] for every
 * entry that im2col read from x (entries that came from padding are dropped). It ACCUMULATES: an input
 * pixel under several overlapping receptive fields receives the sum of their contributions, and
 * whatever dx already held is kept — zero dx first for a plain gradient. dx is (N, C, H, W) at dx[dxOff].
 */
export function col2im(g: ConvGeometry, col: TypedArray, dx: TypedArray, dxOff: number): void {
  const { W, sw, OW } = g;
  forEachColBlock(g, (t, colBlock, xPlane) => {
    if (t.jLo >= t.jHi) return;
    for (let i = t.iLo; i < t.iHi; i++) {
      const src = colBlock + i * OW;
      let xi = dxOff + xPlane + (i * g.sh + t.rowOffset) * W + t.jLo * sw + t.colOffset;
      for (let j = t.jLo; j < t.jHi; j++, xi += sw) dx[xi] += col[src + j];
    }
  });
}
