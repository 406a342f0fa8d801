// The JavaScript backend: every op of the Kernels interface (kernels.ts) as plain loops over typed
// arrays, for any dtype (float64 for gradient checks). This is the readable reference: each op is a
// forward/backward pair, written from the formula docs/derivation.md numbers, and the other backends
// are tested against it. Each op takes its signature from the Kernels interface (Kernels["op"]), where
// its parameters are documented once. It is also what runs wherever the WebAssembly kernels cannot
// (float64, no SIMD, HANDPROP_BACKEND=js).
//
//   gemmJS                               C = α·op(A)·op(B) + β·C              (the hot loop under both below)
//   conv2dForward / conv2dBackward       im2col + GEMM, grouped; depthwise: direct loops  derivation.md §2.2, §5.1
//   denseForward / denseBackward         GEMM                                 derivation.md §2.1
//   maxPool2dForward / maxPool2dBackward argmax per window                    derivation.md §2.3
//   avgPool2dForward / avgPool2dBackward mean per window                      derivation.md §2.3
//   reluForward / reluBackward           max(0, x)                            derivation.md §2.5
//   batchNormForward / batchNormBackward per-channel normalisation            derivation.md §2.4
//   groupNormForward / groupNormBackward per-segment normalisation (LayerNorm, GroupNorm) derivation.md §5.4
//   add                                  a + b elementwise                    derivation.md §5.7
//   conv2dForwardRef / conv2dBackwardRef the direct seven-loop convolution: the tests' oracle for both backends

import { NDArray, type DType, type TypedArray } from "../nd/ndarray.ts";
import { ownContext, reuse, reuseContext } from "./buffers.ts";
import { col2im, im2col, tapsInside, type ConvGeometry } from "./im2col.ts";
import type {
  BatchNormContext,
  BatchNormParams,
  Conv2DContext,
  DenseContext,
  Gemm,
  GroupNormContext,
  Kernels,
  Pool2DContext,
  PoolGeometry,
  ReLUContext,
} from "./kernels.ts";

// ------------------------------------------------------------------------------------------------
// GEMM

/**
 * C[M×N] = α·op(A)[M×K]·op(B)[K×N] + β·C, row-major with leading dimensions (CBLAS, CblasRowMajor), any
 * dtype. The loops are ordered so the innermost one walks contiguous memory (i-k-j for A·B); the
 * accumulation order is fixed, so results are deterministic.
 */
export const gemmJS: Gemm = (transA, transB, M, N, K, alpha, A, aOff, lda, B, bOff, ldb, beta, C, cOff, ldc) => {
  // C ← beta·C
  if (beta !== 1) {
    for (let i = 0; i < M; i++) {
      const row = cOff + i * ldc;
      if (beta === 0) C.fill(0, row, row + N);
      else for (let j = 0; j < N; j++) C[row + j] *= beta;
    }
  }
  if (alpha === 0 || K === 0) return;
  if (!transB) {
    // C[i,:] += alpha · Σ_k op(A)[i,k] · B[k,:]   (inner loop over contiguous rows of B and C)
    for (let i = 0; i < M; i++) {
      const cRow = cOff + i * ldc;
      for (let k = 0; k < K; k++) {
        const a = alpha * (transA ? A[aOff + k * lda + i] : A[aOff + i * lda + k]);
        if (a === 0) continue;
        const bRow = bOff + k * ldb;
        for (let j = 0; j < N; j++) C[cRow + j] += a * B[bRow + j];
      }
    }
  } else {
    // C[i,j] += alpha · Σ_k op(A)[i,k] · B[j,k]   (dot products over contiguous rows of B)
    for (let i = 0; i < M; i++) {
      const cRow = cOff + i * ldc;
      for (let j = 0; j < N; j++) {
        const bRow = bOff + j * ldb;
        let s = 0;
        if (transA) for (let k = 0; k < K; k++) s += A[aOff + k * lda + i] * B[bRow + k];
        else {
          const aRow = aOff + i * lda;
          for (let k = 0; k < K; k++) s += A[aRow + k] * B[bRow + k];
        }
        C[cRow + j] += alpha * s;
      }
    }
  }
};

// ------------------------------------------------------------------------------------------------
// Conv2D (derivation.md §2.2): a cross-correlation over NCHW images, W stored (O, C/G, kh, kw),
//
//   y[n,o,i,j] = b[o] + Σ_{c,p,q} W[o,c,p,q] · x_pad[n, c, i·sh + p·dh, j·sw + q·dw]
//
// computed as im2col + GEMM (im2col.ts): the receptive fields of the whole batch become the columns of
// col (C·kh·kw × N·OH·OW), and image n's output block is y_n = W · col_n + b. Backward needs col.
//
// With G groups (derivation.md §5.1) output channels g·O/G … (g+1)·O/G − 1 read only input channels
// g·C/G … (g+1)·C/G − 1: block g of y_n is W_g · col_n restricted to group g's rows,
// (O/G × K/G) · (K/G × OH·OW); the rows of col are channel-major, so group g's are contiguous. G = 1 is
// the plain convolution, computed by exactly the same calls as before groups existed. Depthwise
// (G = C > 1, one input channel per group) takes direct loops instead (see below), saving x, not col.

class JsConv2DContext implements Conv2DContext {
  readonly kernels = jsBackend;
  geometry!: ConvGeometry;
  outChannels = 0;
  groups = 1;
  y!: NDArray;
  col: NDArray | null = null; // im2col of the input: ∂L/∂W = dy · colᵀ needs it (null on the depthwise path)
  x: NDArray | null = null; // depthwise path: the input itself, for ∂L/∂W
  dcol: NDArray | null = null;
  dx: NDArray | null = null;
  xDtype: DType = "float32";
}

/** Throws unless `groups` divides C and O and matches the weights' (O, C/groups, kh, kw). */
export function checkGroups(g: ConvGeometry, groups: number, w: NDArray): void {
  const O = w.shape[0];
  if (
    !Number.isInteger(groups) ||
    groups < 1 ||
    g.C % groups !== 0 ||
    O % groups !== 0 ||
    w.shape[1] * groups !== g.C
  ) {
    throw new RangeError(
      `conv2d: groups ${groups} does not fit input channels ${g.C} and weights (${w.shape.join(", ")}): ` +
        "C and O must be multiples of groups and the weights (O, C/groups, kh, kw)",
    );
  }
}

const conv2dForward: Kernels["conv2dForward"] = (g, groups, x, w, b, prev) => {
  checkGroups(g, groups, w);
  const { N, C, kh, kw, OH, OW } = g;
  const O = w.shape[0];
  const K = C * kh * kw; // rows of col = columns of W viewed as (O, C·kh·kw / G) per group
  const OHW = OH * OW;
  const ctx = reuseContext(prev, JsConv2DContext);
  ctx.geometry = g;
  ctx.outChannels = O;
  ctx.groups = groups;
  ctx.xDtype = x.dtype;
  const y = (ctx.y = reuse(ctx.y ?? null, [N, O, OH, OW], w.dtype));
  if (groups === C && C > 1) {
    ctx.col = null;
    ctx.x = x;
    depthwiseForward(g, x, w, b, y);
    return ctx;
  }
  ctx.x = null;
  const col = (ctx.col = reuse(ctx.col, [K, N * OHW], w.dtype));
  im2col(g, x.data, 0, col.data);

  // y[n] = W · col_n + b        (O × K) · (K × OH·OW), col_n = columns n·OH·OW … (n+1)·OH·OW − 1,
  // per group: block g of y_n = W_g · (col_n's row block g)      (O/G × K/G) · (K/G × OH·OW)
  if (b !== null) {
    for (let n = 0; n < N; n++) {
      for (let o = 0; o < O; o++) y.data.fill(b.data[o], (n * O + o) * OHW, (n * O + o + 1) * OHW);
    }
  }
  const beta = b !== null ? 1 : 0;
  const Og = O / groups;
  const Kg = K / groups;
  const ldCol = N * OHW;
  forEachGroupBlock(N, groups, Og, Kg, OHW, (wBlock, colBlock, yBlock) => {
    gemmJS(false, false, Og, OHW, Kg, 1, w.data, wBlock, Kg, col.data, colBlock, ldCol, beta, y.data, yBlock, OHW);
  });
  return ctx;
};

/**
 * Visit the GEMM blocks of image n and group g (g inner), as offsets: W_g (Og × Kg) in W, col_n's row
 * block g in col (leading dimension N·OH·OW), and y_n's channel block g in y (dy_n's in dy).
 */
function forEachGroupBlock(
  N: number,
  G: number,
  Og: number,
  Kg: number,
  OHW: number,
  visit: (wBlock: number, colBlock: number, yBlock: number) => void,
): void {
  const ldCol = N * OHW;
  for (let n = 0; n < N; n++) {
    for (let gi = 0; gi < G; gi++) visit(gi * Og * Kg, gi * Kg * ldCol + n * OHW, (n * G + gi) * Og * OHW);
  }
}

// With col[(c,p,q), (n,i,j)] = x_pad[n,c,i·sh+p·dh, j·sw+q·dw], i.e. y_n = W·col_n + b:
//   ∂L/∂W[o,c,p,q] = Σ_{n,i,j} dy[n,o,i,j] · x_pad[n,c,i·sh+p·dh, j·sw+q·dw]
//                  = Σ_n dy_n · col_nᵀ       (O×OH·OW · OH·OW×K)      accumulated: dW += …
//   ∂L/∂b[o]       = Σ_{n,i,j} dy[n,o,i,j]                            accumulated: db += …
//   ∂L/∂x          = col2im(Wᵀ · dy_n)       (K×O · O×OH·OW), col2im summing every tap that read a pixel
//                    and dropping the padding. For stride 1 and no dilation this is the "full"
//                    convolution of dy with W: dy correlated with the 180°-rotated kernel.
// Grouped (derivation.md §5.1): the same three products per group g, on W_g, dy's channel block g and
// col's row block g; the blocks of the full (O, C, kh, kw) kernel outside the groups are structurally
// zero and get no gradient.
const conv2dBackward: Kernels["conv2dBackward"] = (saved, w, dy, dW, db, needDx) => {
  const ctx = ownContext(saved, JsConv2DContext);
  const g = ctx.geometry;
  const { N, C, H, W, kh, kw, OH, OW } = g;
  const O = ctx.outChannels;
  const dx = (ctx.dx = reuse(ctx.dx, [N, C, H, W], ctx.xDtype));
  if (ctx.x !== null) {
    depthwiseBackward(g, ctx.x, w, dy, dW, db, needDx ? dx : null);
    return dx;
  }
  const col = ctx.col!;
  const K = C * kh * kw;
  const OHW = OH * OW;
  const ldCol = N * OHW;
  const G = ctx.groups;
  const Og = O / G;
  const Kg = K / G;

  forEachGroupBlock(N, G, Og, Kg, OHW, (wBlock, colBlock, yBlock) => {
    gemmJS(false, true, Og, Kg, OHW, 1, dy.data, yBlock, OHW, col.data, colBlock, ldCol, 1, dW.data, wBlock, Kg);
  });
  if (db !== null) {
    const dbd = db.data;
    for (let n = 0; n < N; n++) {
      for (let o = 0; o < O; o++) {
        const start = (n * O + o) * OHW;
        let sum = 0;
        for (let s = 0; s < OHW; s++) sum += dy.data[start + s];
        dbd[o] += sum;
      }
    }
  }

  if (!needDx) return dx;
  // dcol_n = Wᵀ · dy_n (per group: W_gᵀ · dy_n's block g), then scatter-add back to pixel positions.
  const dcol = (ctx.dcol = reuse(ctx.dcol, [K, ldCol], w.dtype));
  forEachGroupBlock(N, G, Og, Kg, OHW, (wBlock, colBlock, yBlock) => {
    gemmJS(true, false, Kg, OHW, Og, 1, w.data, wBlock, Kg, dy.data, yBlock, OHW, 0, dcol.data, colBlock, ldCol);
  });
  dx.data.fill(0);
  col2im(g, dcol.data, dx.data, 0);
  return dx;
};

// Depthwise (G = C, one input channel per group, derivation.md §5.1) as direct loops: im2col + GEMM
// would copy every input kh·kw times for (M × kh·kw)·(kh·kw × OH·OW) products too small to pay for it.
// Output channel o = c·M + m (M = O/C, the depth multiplier) reads input channel c only; for each tap
// (p, q), over the output rows i and columns j whose input position lies inside x:
//   y[n,o,i,j]   = b[o] + Σ_{p,q} W[o,0,p,q] · x[n, c, i·sh + p·dh − padTop, j·sw + q·dw − padLeft]
//   dW[o,0,p,q] += Σ_{n,i,j} dy[n,o,i,j] · x[n, c, …]
//   dx[n, c, …] += Σ_{m,p,q} W[o,0,p,q] · dy[n,o,i,j]
function depthwiseForward(g: ConvGeometry, x: NDArray, w: NDArray, b: NDArray | null, y: NDArray): void {
  const { OH, OW } = g;
  const xd = x.data;
  const yd = y.data;
  const wd = w.data;
  const taps = tapsInside(g);
  forEachDepthwisePlane(g, w.shape[0], (o, xBase, yBase) => {
    yd.fill(b !== null ? b.data[o] : 0, yBase, yBase + OH * OW);
    for (const t of taps) {
      const wv = wd[o * g.kh * g.kw + t.tap];
      for (let i = t.iLo; i < t.iHi; i++) {
        const yRow = yBase + i * OW;
        let xi = xBase + (i * g.sh + t.rowOffset) * g.W + t.jLo * g.sw + t.colOffset;
        for (let j = t.jLo; j < t.jHi; j++, xi += g.sw) yd[yRow + j] += wv * xd[xi];
      }
    }
  });
}

function depthwiseBackward(
  g: ConvGeometry,
  x: NDArray,
  w: NDArray,
  dy: NDArray,
  dW: NDArray,
  db: NDArray | null,
  dx: NDArray | null,
): void {
  const { OH, OW } = g;
  dx?.data.fill(0);
  const xd = x.data;
  const dyd = dy.data;
  const wd = w.data;
  const dWd = dW.data;
  const taps = tapsInside(g);
  forEachDepthwisePlane(g, w.shape[0], (o, xBase, yBase) => {
    if (db !== null) {
      let s = 0;
      for (let k = yBase; k < yBase + OH * OW; k++) s += dyd[k];
      db.data[o] += s;
    }
    for (const t of taps) {
      const wIndex = o * g.kh * g.kw + t.tap;
      const wv = wd[wIndex];
      let dw = 0;
      for (let i = t.iLo; i < t.iHi; i++) {
        const yRow = yBase + i * OW;
        let xi = xBase + (i * g.sh + t.rowOffset) * g.W + t.jLo * g.sw + t.colOffset;
        for (let j = t.jLo; j < t.jHi; j++, xi += g.sw) {
          dw += dyd[yRow + j] * xd[xi];
          if (dx !== null) dx.data[xi] += wv * dyd[yRow + j];
        }
      }
      dWd[wIndex] += dw;
    }
  });
}

/**
 * Visit each output plane (n, o) of a depthwise convolution with O output channels, in order: o, the
 * offset of its input plane (n, c = ⌊o/M⌋, M = O/C) in x and of its own plane in y.
 */
function forEachDepthwisePlane(
  g: ConvGeometry,
  O: number,
  visit: (o: number, xBase: number, yBase: number) => void,
): void {
  const { N, C, H, W, OH, OW } = g;
  const M = O / C;
  for (let n = 0; n < N; n++) {
    for (let o = 0; o < O; o++) {
      const c = Math.floor(o / M);
      visit(o, (n * C + c) * H * W, (n * O + o) * OH * OW);
    }
  }
}

// ------------------------------------------------------------------------------------------------
// Dense (derivation.md §2.1): y = x·W + b, W stored (F, O) as in the article and Keras. Backward needs x.

class JsDenseContext implements DenseContext {
  readonly kernels = jsBackend;
  x!: NDArray; // ∂L/∂W = xᵀ·dy needs it
  y!: NDArray;
  dx: NDArray | null = null;
}

const denseForward: Kernels["denseForward"] = (x, w, b, prev) => {
  const [N, F] = x.shape;
  const O = w.shape[1];
  const ctx = reuseContext(prev, JsDenseContext);
  ctx.x = x;
  const y = (ctx.y = reuse(ctx.y ?? null, [N, O], w.dtype));
  // y[n,o] = b[o] + Σ_f x[n,f] · W[f,o]
  if (b !== null) for (let n = 0; n < N; n++) y.data.set(b.data, n * O);
  gemmJS(false, false, N, O, F, 1, x.data, 0, F, w.data, 0, O, b !== null ? 1 : 0, y.data, 0, O);
  return ctx;
};

//   ∂L/∂W = xᵀ · dy            (F×N · N×O)      accumulated: dW += xᵀ·dy
//   ∂L/∂b = Σ_n dy[n, :]                        accumulated: db += Σ_n dy
//   ∂L/∂x = dy · Wᵀ            (N×O · O×F)
const denseBackward: Kernels["denseBackward"] = (saved, w, dy, dW, db, needDx) => {
  const ctx = ownContext(saved, JsDenseContext);
  const x = ctx.x;
  const [N, F] = x.shape;
  const O = w.shape[1];
  gemmJS(true, false, F, O, N, 1, x.data, 0, F, dy.data, 0, O, 1, dW.data, 0, O);
  if (db !== null) {
    const dbd = db.data;
    for (let n = 0; n < N; n++) for (let o = 0; o < O; o++) dbd[o] += dy.data[n * O + o];
  }
  const dx = (ctx.dx = reuse(ctx.dx, [N, F], x.dtype));
  if (needDx) gemmJS(false, true, N, F, O, 1, dy.data, 0, O, w.data, 0, O, 0, dx.data, 0, F);
  return dx;
};

// ------------------------------------------------------------------------------------------------
// Pooling (derivation.md §2.3). Window o covers input rows o·s − p … o·s − p + k − 1, clipped to the real
// input: for max pooling a padded cell (−∞) never wins, for average pooling it counts as a zero in the
// divisor only when countIncludePad.

class JsPool2DContext implements Pool2DContext {
  readonly kernels = jsBackend;
  geometry!: PoolGeometry;
  y!: NDArray;
  xShape: readonly number[] = [];
  dx: NDArray | null = null;
  /** Max pooling: the flat index into x of each output's winner. */
  argmax = new Int32Array(0);
  countIncludePad = true;
}

function poolContext(g: PoolGeometry, x: NDArray, prev: Pool2DContext | null): JsPool2DContext {
  const ctx = reuseContext(prev, JsPool2DContext);
  ctx.geometry = g;
  ctx.y = reuse(ctx.y ?? null, [g.N, g.C, g.OH, g.OW], x.dtype);
  ctx.xShape = x.shape;
  return ctx;
}

/**
 * Visit each output o (flat NCHW index, in order) with its window clipped to x: rows h0…h1−1 and columns
 * w0…w1−1 of the plane that starts at xOff. Padding cells are never visited.
 */
function forEachPoolWindow(
  g: PoolGeometry,
  visit: (o: number, xOff: number, h0: number, h1: number, w0: number, w1: number) => void,
): void {
  const { N, C, H, W, kh, kw, sh, sw, ph, pw, OH, OW } = g;
  for (let nc = 0; nc < N * C; nc++) {
    const xOff = nc * H * W;
    let o = nc * OH * OW;
    for (let i = 0; i < OH; i++) {
      const hStart = i * sh - ph;
      const h0 = Math.max(hStart, 0);
      const h1 = Math.min(hStart + kh, H);
      for (let j = 0; j < OW; j++, o++) {
        const wStart = j * sw - pw;
        const w0 = Math.max(wStart, 0);
        const w1 = Math.min(wStart + kw, W);
        visit(o, xOff, h0, h1, w0, w1);
      }
    }
  }
}

/**
 * A pooling backward: dx (x's shape) zeroed, then `scatter` adds each dy_o into the cells its window read
 * ("+=": windows overlap when stride < kernel). Nothing is computed when !needDx.
 */
function poolBackward(
  saved: Pool2DContext,
  needDx: boolean,
  scatter: (ctx: JsPool2DContext, dxd: TypedArray) => void,
): NDArray {
  const ctx = ownContext(saved, JsPool2DContext);
  const dx = (ctx.dx = reuse(ctx.dx, ctx.xShape, ctx.y.dtype));
  if (!needDx) return dx;
  dx.data.fill(0);
  scatter(ctx, dx.data);
  return dx;
}

/** Average pooling's D: kh·kw when countIncludePad, else the clipped window's real cells. */
function poolDivisor(g: PoolGeometry, countIncludePad: boolean, rows: number, cols: number): number {
  return countIncludePad ? g.kh * g.kw : rows * cols;
}

/** Max pooling: y = the window's maximum; ties go to the first in row-major order, a NaN wins and stays. */
const maxPool2dForward: Kernels["maxPool2dForward"] = (g, x, prev) => {
  const ctx = poolContext(g, x, prev);
  if (ctx.argmax.length !== ctx.y.size) ctx.argmax = new Int32Array(ctx.y.size);
  const W = g.W;
  const xd = x.data;
  const yd = ctx.y.data;
  const arg = ctx.argmax;
  forEachPoolWindow(g, (o, xOff, h0, h1, w0, w1) => {
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
  });
  return ctx;
};

// y_o = x_{a(o)} with a(o) the saved argmax, so ∂y_o/∂x_i = [i = a(o)] ⇒ ∂L/∂x_i = Σ_{o : a(o) = i} dy_o.
// The sum is over every window that x_i won: windows overlap when stride < kernel, hence "+=".
const maxPool2dBackward: Kernels["maxPool2dBackward"] = (saved, dy, needDx) =>
  poolBackward(saved, needDx, (ctx, dxd) => {
    const dyd = dy.data;
    const arg = ctx.argmax;
    for (let o = 0; o < dyd.length; o++) dxd[arg[o]] += dyd[o];
  });

/** Average pooling: y = (1/D) Σ_window x, D = kh·kw when countIncludePad, else the window's real cells. */
const avgPool2dForward: Kernels["avgPool2dForward"] = (g, countIncludePad, x, prev) => {
  const ctx = poolContext(g, x, prev);
  ctx.countIncludePad = countIncludePad;
  const W = g.W;
  const xd = x.data;
  const yd = ctx.y.data;
  forEachPoolWindow(g, (o, xOff, h0, h1, w0, w1) => {
    let s = 0;
    for (let h = h0; h < h1; h++) for (let w = w0; w < w1; w++) s += xd[xOff + h * W + w];
    yd[o] = s / poolDivisor(g, countIncludePad, h1 - h0, w1 - w0);
  });
  return ctx;
};

// y_o = (1/D_o) Σ_{i ∈ window(o)} x_i  ⇒  ∂L/∂x_i = Σ_{o : i ∈ window(o)} dy_o / D_o
// i.e. each dy_o is spread evenly over its window's real cells ("+=": windows may overlap).
const avgPool2dBackward: Kernels["avgPool2dBackward"] = (saved, dy, needDx) =>
  poolBackward(saved, needDx, (ctx, dxd) => {
    const g = ctx.geometry;
    const W = g.W;
    const countIncludePad = ctx.countIncludePad;
    const dyd = dy.data;
    forEachPoolWindow(g, (o, xOff, h0, h1, w0, w1) => {
      const share = dyd[o] / poolDivisor(g, countIncludePad, h1 - h0, w1 - w0);
      for (let h = h0; h < h1; h++) for (let w = w0; w < w1; w++) dxd[xOff + h * W + w] += share;
    });
  });

// ------------------------------------------------------------------------------------------------
// ReLU (derivation.md §2.5): y = max(0, x), f'(x) = [x > 0], read from the output (y > 0 ⇔ x > 0).

class JsReLUContext implements ReLUContext {
  readonly kernels = jsBackend;
  y!: NDArray; // y > 0 exactly where x > 0: all backward needs
  dx: NDArray | null = null;
}

const reluForward: Kernels["reluForward"] = (x, prev) => {
  const ctx = reuseContext(prev, JsReLUContext);
  const y = (ctx.y = reuse(ctx.y ?? null, x.shape, x.dtype));
  const xd = x.data;
  const yd = y.data;
  for (let i = 0; i < xd.length; i++) yd[i] = xd[i] > 0 ? xd[i] : 0; // y = max(0, x)
  return ctx;
};

/** dx = dy ⊙ [y > 0], elementwise over arrays of one length. */
export function reluBackwardLoop(y: TypedArray, dy: TypedArray, dx: TypedArray): void {
  for (let i = 0; i < dx.length; i++) dx[i] = y[i] > 0 ? dy[i] : 0;
}

const reluBackward: Kernels["reluBackward"] = (saved, dy, needDx) => {
  const ctx = ownContext(saved, JsReLUContext);
  const dx = (ctx.dx = reuse(ctx.dx, dy.shape, ctx.y.dtype));
  if (needDx) reluBackwardLoop(ctx.y.data, dy.data, dx.data);
  return dx;
};

// ------------------------------------------------------------------------------------------------
// Elementwise sum: y = a + b, whose gradient reaches both operands unchanged (derivation.md §0, §5.7).

function add(a: TypedArray, b: TypedArray, out: TypedArray): void {
  for (let i = 0; i < out.length; i++) out[i] = a[i] + b[i];
}

/** The index of a's first NaN or ±Infinity, or −1. */
export function firstNonFinite(a: TypedArray): number {
  for (let i = 0; i < a.length; i++) if (!Number.isFinite(a[i])) return i;
  return -1;
}

// ------------------------------------------------------------------------------------------------
// Batch normalisation (derivation.md §2.4), per channel c of x (N, C, S), S = positions per channel:
//   training:   μ = (1/m) Σ x_i,   σ² = (1/m) Σ (x_i − μ)²  (biased, m = N·S),   x̂_i = (x_i − μ) / √(σ² + ε)
//   inference:  x̂_i = (x_i − running_mean) / √(running_var + ε);     always y_i = γ·x̂_i + β
// Sums run in float64 (JS numbers) whatever the dtype; x̂ is kept in the layer's dtype for backward.

/** S, the positions per channel of a batch-norm input (N, C, …) (1 for (N, F) vectors); a number, not a
 * tuple, so that a training step allocates nothing. */
export function batchNormPositions(x: NDArray): number {
  const NC = x.shape[0] * x.shape[1];
  return NC === 0 ? 0 : x.size / NC;
}

/** What both backends' batch-norm contexts keep per channel: μ, σ² and 1/√(σ² + ε) of the last forward. */
export class BatchNormStats {
  mean = new Float64Array(0);
  variance = new Float64Array(0);
  invStd = new Float64Array(0);
  training = false;

  /** Size the arrays for C channels; in inference, fill μ and invStd from the running statistics. */
  prepare(C: number, training: boolean, p: BatchNormParams): void {
    if (this.mean.length !== C) {
      this.mean = new Float64Array(C);
      this.variance = new Float64Array(C);
      this.invStd = new Float64Array(C);
    }
    this.training = training;
    if (training) return;
    const rm = p.runningMean.data;
    const rv = p.runningVar.data;
    for (let c = 0; c < C; c++) {
      this.mean[c] = rm[c];
      this.variance[c] = rv[c];
      this.invStd[c] = 1 / Math.sqrt(rv[c] + p.eps);
    }
  }
}

class JsBatchNormContext extends BatchNormStats implements BatchNormContext {
  readonly kernels = jsBackend;
  y!: NDArray;
  xhat: NDArray | null = null; // x̂ of the forward, in the layer's dtype: backward needs it
  xDtype: DType = "float32";
  dx: NDArray | null = null;
}

const batchNormForward: Kernels["batchNormForward"] = (x, p, training, prev) => {
  const ctx = reuseContext(prev, JsBatchNormContext);
  const N = x.shape[0];
  const C = x.shape[1];
  const S = batchNormPositions(x);
  const m = N * S;
  ctx.prepare(C, training, p);
  ctx.xDtype = x.dtype;
  const y = (ctx.y = reuse(ctx.y ?? null, x.shape, p.runningMean.dtype));
  const xhat = (ctx.xhat = reuse(ctx.xhat, x.shape, p.runningMean.dtype));
  const xd = x.data;
  const yd = y.data;
  const xh = xhat.data;
  const g = p.gamma?.data;
  const b = p.beta?.data;
  const plane = C * S;
  for (let c = 0; c < C; c++) {
    if (training) {
      // two passes: μ, then σ² = (1/m) Σ (x − μ)² (no cancellation, unlike E[x²] − μ²)
      let s = 0;
      for (let n = 0; n < N; n++) for (let k = n * plane + c * S, e = k + S; k < e; k++) s += xd[k];
      const mu = s / m;
      let ss = 0;
      for (let n = 0; n < N; n++) {
        for (let k = n * plane + c * S, e = k + S; k < e; k++) {
          const d = xd[k] - mu;
          ss += d * d;
        }
      }
      ctx.mean[c] = mu;
      ctx.variance[c] = ss / m;
      ctx.invStd[c] = 1 / Math.sqrt(ctx.variance[c] + p.eps);
    }
    const mu = ctx.mean[c];
    const inv = ctx.invStd[c];
    const gc = g ? g[c] : 1;
    const bc = b ? b[c] : 0;
    for (let n = 0; n < N; n++) {
      for (let k = n * plane + c * S, e = k + S; k < e; k++) {
        const v = (xd[k] - mu) * inv; // x̂
        xh[k] = v;
        yd[k] = gc * v + bc; // y = γ·x̂ + β
      }
    }
  }
  return ctx;
};

// Backward (derivation.md §2.4), per channel, with σ = √(σ_B² + ε) (σ_B² the batch variance)
// and g_i = γ·dy_i = ∂L/∂x̂_i:
//   ∂L/∂γ = Σ_i dy_i · x̂_i        ∂L/∂β = Σ_i dy_i        (accumulated with +=)
// Training — μ and σ depend on every x_j of the channel:
//   ∂μ/∂x_j = 1/m,   ∂σ/∂x_j = x̂_j / m   (from σ² = (1/m) Σ (x_i − μ)² + ε and Σ (x_i − μ) = 0)
//   ∂x̂_i/∂x_j = (δ_ij − 1/m)/σ − (x_i − μ)·x̂_j/(m·σ²) = (1/σ)·(δ_ij − 1/m − x̂_i·x̂_j/m)
//   ∂L/∂x_j = Σ_i g_i ∂x̂_i/∂x_j = (γ/σ)·(1/m)·(m·dy_j − Σ_i dy_i − x̂_j·Σ_i dy_i·x̂_i)
// Inference — running statistics are constants:
//   ∂L/∂x_j = (γ/σ_running)·dy_j
const batchNormBackward: Kernels["batchNormBackward"] = (saved, gamma, dy, dGamma, dBeta, needDx) => {
  const ctx = ownContext(saved, JsBatchNormContext);
  const N = dy.shape[0];
  const C = dy.shape[1];
  const S = batchNormPositions(dy);
  const m = N * S;
  const plane = C * S;
  const dx = (ctx.dx = reuse(ctx.dx, dy.shape, ctx.xDtype));
  const dxd = dx.data;
  const dyd = dy.data;
  const xh = ctx.xhat!.data;
  const g = gamma?.data;
  const dg = dGamma?.data;
  const db = dBeta?.data;
  for (let c = 0; c < C; c++) {
    let sumDy = 0;
    let sumDyXhat = 0;
    for (let n = 0; n < N; n++) {
      for (let k = n * plane + c * S, e = k + S; k < e; k++) {
        sumDy += dyd[k];
        sumDyXhat += dyd[k] * xh[k];
      }
    }
    if (dg) dg[c] += sumDyXhat;
    if (db) db[c] += sumDy;
    if (!needDx) continue;
    const scale = (g ? g[c] : 1) * ctx.invStd[c]; // γ/σ
    if (ctx.training) {
      const meanDy = sumDy / m;
      const meanDyXhat = sumDyXhat / m;
      for (let n = 0; n < N; n++) {
        for (let k = n * plane + c * S, e = k + S; k < e; k++) dxd[k] = scale * (dyd[k] - meanDy - xh[k] * meanDyXhat);
      }
    } else {
      for (let n = 0; n < N; n++) for (let k = n * plane + c * S, e = k + S; k < e; k++) dxd[k] = scale * dyd[k];
    }
  }
  return dx;
};

// ------------------------------------------------------------------------------------------------
// LayerNorm and GroupNorm (derivation.md §5.4): §2.4's normalisation per segment (n, g) of x viewed as
// (N, G, C/G, S), m = (C/G)·S contiguous values, with a per-channel affine map (LayerNorm: G = 1, C = m):
//   μ = (1/m) Σ x_i,   σ² = (1/m) Σ (x_i − μ)²,   x̂_i = (x_i − μ) / √(σ² + ε),   y_i = γ_c·x̂_i + β_c
// Sums run in float64 (JS numbers) whatever the dtype; x̂ is kept in y's dtype for backward.

/** S, the positions per channel of x viewed as (N, C, S): a number, so that a training step allocates nothing. */
export function groupNormPositions(x: NDArray, N: number, C: number): number {
  return N * C === 0 ? 0 : x.size / (N * C);
}

/** What both backends' group-norm contexts keep: the forward's layout, dtype of x, 1/σ per segment, and dx. */
export class GroupNormState {
  N = 0;
  groups = 1;
  C = 0;
  xDtype: DType = "float32";
  invStd = new Float64Array(0);
  dx: NDArray | null = null;

  /** Record the layout and x's dtype; size invStd for the N·G segments. */
  prepare(x: NDArray, N: number, groups: number, C: number): void {
    this.N = N;
    this.groups = groups;
    this.C = C;
    this.xDtype = x.dtype;
    if (this.invStd.length !== N * groups) this.invStd = new Float64Array(N * groups);
  }
}

class JsGroupNormContext extends GroupNormState implements GroupNormContext {
  readonly kernels = jsBackend;
  y!: NDArray;
  xhat: NDArray | null = null; // x̂ of the forward, in y's dtype: backward needs it
}

const groupNormForward: Kernels["groupNormForward"] = (x, N, groups, C, gamma, beta, eps, prev) => {
  const ctx = reuseContext(prev, JsGroupNormContext);
  const S = groupNormPositions(x, N, C);
  const Cg = C / groups;
  const m = Cg * S;
  const segments = N * groups;
  ctx.prepare(x, N, groups, C);
  const dtype = gamma?.dtype ?? x.dtype;
  const y = (ctx.y = reuse(ctx.y ?? null, x.shape, dtype));
  const xhat = (ctx.xhat = reuse(ctx.xhat, x.shape, dtype));
  const xd = x.data;
  const yd = y.data;
  const xh = xhat.data;
  const g = gamma?.data;
  const b = beta?.data;
  for (let r = 0; r < segments; r++) {
    const start = r * m;
    let s = 0;
    for (let i = start; i < start + m; i++) s += xd[i];
    const mu = s / m;
    // σ² = (1/m) Σ (x − μ)²: a second pass, no cancellation (unlike E[x²] − μ²)
    let ss = 0;
    for (let i = start; i < start + m; i++) {
      const d = xd[i] - mu;
      ss += d * d;
    }
    const inv = 1 / Math.sqrt(ss / m + eps);
    ctx.invStd[r] = inv;
    const channel0 = (r % groups) * Cg;
    for (let c = 0; c < Cg; c++) {
      const k = channel0 + c;
      for (let i = start + c * S, e = i + S; i < e; i++) {
        const v = (xd[i] - mu) * inv; // x̂
        xh[i] = v;
        yd[i] = g && b ? g[k] * v + b[k] : v; // y = γ·x̂ + β
      }
    }
  }
  return ctx;
};

// Backward (derivation.md §5.4), per segment, with g_i = γ_c·dy_i = ∂L/∂x̂_i (γ inside the sums: it varies
// along the segment) and ∂x̂_i/∂x_j = (1/σ)(δ_ij − 1/m − x̂_i·x̂_j/m) from §2.4:
//   ∂L/∂x_j = (1/σ)·(g_j − mean_i(g_i) − x̂_j·mean_i(g_i·x̂_i))
//   ∂L/∂γ_c += Σ dy_i·x̂_i,   ∂L/∂β_c += Σ dy_i      (over every element of channel c, all samples)
const groupNormBackward: Kernels["groupNormBackward"] = (saved, gamma, dy, dGamma, dBeta, needDx) => {
  const ctx = ownContext(saved, JsGroupNormContext);
  const { N, groups, C } = ctx;
  const S = groupNormPositions(dy, N, C);
  const Cg = C / groups;
  const m = Cg * S;
  const dx = (ctx.dx = reuse(ctx.dx, dy.shape, ctx.xDtype));
  const dyd = dy.data;
  const xh = ctx.xhat!.data;
  const gm = gamma?.data;
  if (gm && dGamma && dBeta) groupNormAffineGrads(dGamma.data, dBeta.data, dyd, xh, N * groups, groups, Cg, S);
  if (!needDx) return dx;
  const dxd = dx.data;
  for (let r = 0; r < N * groups; r++) {
    const start = r * m;
    const channel0 = (r % groups) * Cg;
    let sumG = 0;
    let sumGXhat = 0;
    for (let c = 0; c < Cg; c++) {
      const k = channel0 + c;
      for (let i = start + c * S, e = i + S; i < e; i++) {
        const gi = gm ? dyd[i] * gm[k] : dyd[i];
        sumG += gi;
        sumGXhat += gi * xh[i];
      }
    }
    const meanG = sumG / m;
    const meanGXhat = sumGXhat / m;
    const inv = ctx.invStd[r];
    for (let c = 0; c < Cg; c++) {
      const k = channel0 + c;
      for (let i = start + c * S, e = i + S; i < e; i++) {
        const gi = gm ? gm[k] * dyd[i] : dyd[i];
        dxd[i] = inv * (gi - meanG - xh[i] * meanGXhat);
      }
    }
  }
  return dx;
};

/** dγ_c += Σ dy·x̂, dβ_c += Σ dy over the R = N·G segments of Cg channels × S positions, in segment order. */
function groupNormAffineGrads(
  dg: TypedArray,
  db: TypedArray,
  dyd: TypedArray,
  xh: TypedArray,
  R: number,
  groups: number,
  Cg: number,
  S: number,
): void {
  for (let r = 0; r < R; r++) {
    const start = r * Cg * S;
    const channel0 = (r % groups) * Cg;
    for (let c = 0; c < Cg; c++) {
      const k = channel0 + c;
      for (let i = start + c * S, e = i + S; i < e; i++) {
        dg[k] += dyd[i] * xh[i];
        db[k] += dyd[i];
      }
    }
  }
}

// ------------------------------------------------------------------------------------------------
// Optimizer updates: the readable reference of the rules in src/nn/optim.ts, and the arithmetic every
// backend must reproduce bit for bit (JS numbers are float64; a store into a float32 slot rounds).

/** Adam on one parameter (Kernels.adamUpdate; src/nn/optim.ts's Adam). */
export function adamUpdate(w: TypedArray, grad: TypedArray, m: TypedArray, v: TypedArray, h: Float64Array): void {
  const b1 = h[0];
  const b2 = h[1];
  const stepSize = h[2];
  const sqrtBc2 = h[3];
  const eps = h[4];
  const l2 = h[5];
  for (let i = 0; i < w.length; i++) {
    const g = l2 === 0 ? grad[i] : grad[i] + l2 * w[i];
    m[i] = b1 * m[i] + (1 - b1) * g;
    v[i] = b2 * v[i] + (1 - b2) * g * g;
    w[i] = w[i] - stepSize * (m[i] / (Math.sqrt(v[i]) / sqrtBc2 + eps));
  }
}

/** SGD on one parameter (Kernels.sgdUpdate; src/nn/optim.ts's SGD). */
export function sgdUpdate(w: TypedArray, grad: TypedArray, v: TypedArray | null, h: Float64Array): void {
  const lr = h[0];
  const wd = h[1];
  const mu = h[2];
  const keep = h[3];
  const nesterov = h[4] !== 0;
  const first = h[5] !== 0;
  if (mu === 0 || v === null) {
    if (wd === 0) for (let i = 0; i < w.length; i++) w[i] = w[i] - grad[i] * lr;
    else for (let i = 0; i < w.length; i++) w[i] = w[i] - (grad[i] + wd * w[i]) * lr;
    return;
  }
  for (let i = 0; i < w.length; i++) {
    const g = wd === 0 ? grad[i] : grad[i] + wd * w[i];
    v[i] = first ? g : mu * v[i] + keep * g;
    const u = nesterov ? g + mu * v[i] : v[i];
    w[i] = w[i] - u * lr;
  }
}

/** The JavaScript backend. */
export const jsBackend: Kernels = {
  name: "js",
  gemm: gemmJS,
  conv2dForward,
  conv2dBackward,
  denseForward,
  denseBackward,
  maxPool2dForward,
  maxPool2dBackward,
  avgPool2dForward,
  avgPool2dBackward,
  reluForward,
  reluBackward,
  adamUpdate,
  sgdUpdate,
  batchNormForward,
  batchNormBackward,
  add,
  outputBuffer: reuse,
  firstNonFinite,
  groupNormForward,
  groupNormBackward,
};

// ------------------------------------------------------------------------------------------------
// The direct-loop convolution: the oracle the tests compare both backends' conv2d against. Deliberately
// the plainest possible code — seven nested loops straight from the definition, explicit bounds checks
// instead of a padded copy, float64 output — so that it is obviously right rather than fast.
//
//   y[n,o,i,j] = b[o] + Σ_{c,p,q} W[o,c,p,q] · x_pad[n, c, i·sh + p·dh, j·sw + q·dw]
//
// and its gradients, accumulated term by term over the same seven loops:
//   dW[o,c,p,q] += dy[n,o,i,j] · x_pad[…]      db[o] += dy[n,o,i,j]      dx_pad[…] += dy[n,o,i,j] · W[o,c,p,q]

export interface ConvRefOptions {
  /** [sh, sw], default [1, 1]. */
  stride?: readonly [number, number];
  /** Zero padding [top, bottom, left, right], default none. */
  padding?: readonly [number, number, number, number];
  /** [dh, dw], default [1, 1]. */
  dilation?: readonly [number, number];
}

interface Resolved {
  N: number;
  C: number;
  H: number;
  W: number;
  O: number;
  kh: number;
  kw: number;
  sh: number;
  sw: number;
  dh: number;
  dw: number;
  top: number;
  left: number;
  OH: number;
  OW: number;
}

function resolve(x: NDArray, w: NDArray, opts: ConvRefOptions): Resolved {
  const [N, C, H, W] = x.shape;
  const [O, Cw, kh, kw] = w.shape;
  if (x.ndim !== 4 || w.ndim !== 4 || C !== Cw) {
    const shapes = `${x.shape.join("x")} vs ${w.shape.join("x")}`;
    throw new RangeError(`conv2dRef: x (N, C, H, W) and w (O, C, kh, kw) do not match: ${shapes}`);
  }
  const [sh, sw] = opts.stride ?? [1, 1];
  const [top, bottom, left, right] = opts.padding ?? [0, 0, 0, 0];
  const [dh, dw] = opts.dilation ?? [1, 1];
  const OH = Math.floor((H + top + bottom - dh * (kh - 1) - 1) / sh) + 1;
  const OW = Math.floor((W + left + right - dw * (kw - 1) - 1) / sw) + 1;
  if (OH < 1 || OW < 1) throw new RangeError("conv2dRef: kernel larger than the padded input");
  return { N, C, H, W, O, kh, kw, sh, sw, dh, dw, top, left, OH, OW };
}

/** y = conv2d(x, w) + b with x (N, C, H, W), w (O, C, kh, kw), b (O) or null; y (N, O, OH, OW) float64. */
export function conv2dForwardRef(x: NDArray, w: NDArray, b: NDArray | null, opts: ConvRefOptions = {}): NDArray {
  const { N, C, H, W, O, kh, kw, sh, sw, dh, dw, top, left, OH, OW } = resolve(x, w, opts);
  const y = new NDArray(new Float64Array(N * O * OH * OW), [N, O, OH, OW]);
  for (let n = 0; n < N; n++) {
    for (let o = 0; o < O; o++) {
      for (let i = 0; i < OH; i++) {
        for (let j = 0; j < OW; j++) {
          let sum = b === null ? 0 : b.data[o];
          for (let c = 0; c < C; c++) {
            for (let p = 0; p < kh; p++) {
              for (let q = 0; q < kw; q++) {
                const r = i * sh + p * dh - top;
                const s = j * sw + q * dw - left;
                if (r < 0 || r >= H || s < 0 || s >= W) continue; // x_pad is zero here
                sum += w.data[((o * C + c) * kh + p) * kw + q] * x.data[((n * C + c) * H + r) * W + s];
              }
            }
          }
          y.data[((n * O + o) * OH + i) * OW + j] = sum;
        }
      }
    }
  }
  return y;
}

/** Gradients of L = Σ dy·y with respect to x, w and b, as fresh float64 arrays (db even without a bias). */
export function conv2dBackwardRef(
  x: NDArray,
  w: NDArray,
  dy: NDArray,
  opts: ConvRefOptions = {},
): { dx: NDArray; dw: NDArray; db: NDArray } {
  const { N, C, H, W, O, kh, kw, sh, sw, dh, dw, top, left, OH, OW } = resolve(x, w, opts);
  const dx = new NDArray(new Float64Array(x.size), x.shape);
  const dW = new NDArray(new Float64Array(w.size), w.shape);
  const db = new NDArray(new Float64Array(O), [O]);
  for (let n = 0; n < N; n++) {
    for (let o = 0; o < O; o++) {
      for (let i = 0; i < OH; i++) {
        for (let j = 0; j < OW; j++) {
          const g = dy.data[((n * O + o) * OH + i) * OW + j];
          db.data[o] += g;
          for (let c = 0; c < C; c++) {
            for (let p = 0; p < kh; p++) {
              for (let q = 0; q < kw; q++) {
                const r = i * sh + p * dh - top;
                const s = j * sw + q * dw - left;
                if (r < 0 || r >= H || s < 0 || s >= W) continue;
                const wi = ((o * C + c) * kh + p) * kw + q;
                const xi = ((n * C + c) * H + r) * W + s;
                dW.data[wi] += g * x.data[xi];
                dx.data[xi] += g * w.data[wi];
              }
            }
          }
        }
      }
    }
  }
  return { dx, dw: dW, db };
}
