// Conv2D and Dense forward/backward for WebAssembly SIMD (AssemblyScript), built on gemm.as.
//
// Conv2D works image by image: im2col of image n into a (C·kh·kw × OH·OW) scratch block (the layout of
// src/kernels/im2col.ts with N = 1), then one GEMM per image. The block is small (conv1 of LeNet: 25 ×
// 784 floats, 78 KB) so it is still in L2 when the GEMM reads it. Backward recomputes it instead of
// keeping the whole batch's col between forward and backward: rewriting 78 KB from a cached image
// costs less than streaming a 5 MB col out to memory and back, and the layer keeps no state in wasm.
//
//   forward   y_n  = W · col_n (+ b)                      gemmPacked, W packed once per call; where the
//                                                         output columns step by one input column, the
//                                                         implicit form gemmImplicit: col_n's strips are
//                                                         gathered from the zero-padded image, no col_n
//   backward  dW  += dy_n · col_nᵀ          (n = 0 … N−1)  gemmNT (dot products along OH·OW)
//             dcol = Wᵀ · dy_n, dx_n = col2im(dcol)        gemmPacked, Wᵀ packed once per call
//             db  += Σ_{n,p} dy[n, o, p]
//
// Dense: y = x·W + b (NN), dW += xᵀ·dy (TN), dx = dy·Wᵀ (NT), db += Σ_n dy[n, :].
// Every reduction runs in a fixed order that depends only on the shapes (see gemm.as).
//
// Threads (src/kernels/threads.ts): a call is cut into parts, *Part(t, T, ws, …) computes part t of T
// with the scratch ws of whichever thread runs it, and the whole-call functions run every part in turn.
// Forward: images. Backward: dW's columns (each part sums over ALL images, in order, for its columns
// only — never partial sums added afterwards), db's channels, dx's images. Dense: the rows of y, of dW
// and of dx. So any number of parts, on any threads, gives the same bits.

import { KC, MC, NR, PACKED_WS_BYTES, gemmNT, gemmPacked, gemmPackedBias, packA, packedSize, panelCount, panelRows, tile } from "./gemm";
import { align64, align64f, blockBytes, partStart } from "./parallel";

// ------------------------------------------------------------------------------------------------
// Small vector helpers.

/** n floats at dst ← 0. */
@inline function zero(dst: usize, n: i32): void {
  let j = 0;
  for (; j + 4 <= n; j += 4) v128.store(dst + (<usize>j << 2), f32x4.splat(0));
  for (; j < n; j++) store<f32>(dst + (<usize>j << 2), 0);
}

/** n floats: dst ← src (non-overlapping). */
@inline function copy(dst: usize, src: usize, n: i32): void {
  let j = 0;
  for (; j + 4 <= n; j += 4) v128.store(dst + (<usize>j << 2), v128.load(src + (<usize>j << 2)));
  for (; j < n; j++) store<f32>(dst + (<usize>j << 2), load<f32>(src + (<usize>j << 2)));
}

/**
 * n floats: dst ← src, in whole vectors: up to 3 floats past the end are written too (and read past
 * src's end). im2colImage writes its rows in increasing address order, so whatever spills over is
 * overwritten by the next write; the scratch layout leaves 64 bytes of slack after each buffer.
 */
@inline function copyOver(dst: usize, src: usize, n: i32): void {
  // Up to 8 vectors (an output row of ≤ 32 floats: every image of MNIST's size) as straight-line code
  // entered by one br_table, no loop: V8's loop spent 7 instructions per vector (im2col: 9% of a
  // 3×3 conv's forward); beyond that, the loop.
  switch ((n + 3) >> 2) {
    case 8: v128.store(dst, v128.load(src, 112), 112);
    case 7: v128.store(dst, v128.load(src, 96), 96);
    case 6: v128.store(dst, v128.load(src, 80), 80);
    case 5: v128.store(dst, v128.load(src, 64), 64);
    case 4: v128.store(dst, v128.load(src, 48), 48);
    case 3: v128.store(dst, v128.load(src, 32), 32);
    case 2: v128.store(dst, v128.load(src, 16), 16);
    case 1: v128.store(dst, v128.load(src));
    case 0: break;
    default: for (let j = 0; j < n; j += 4) v128.store(dst + (<usize>j << 2), v128.load(src + (<usize>j << 2)));
  }
}

/** n floats at dst ← 0 in whole vectors, spilling forward like copyOver. */
@inline function zeroOver(dst: usize, n: i32): void {
  for (let j = 0; j < n; j += 4) v128.store(dst + (<usize>j << 2), f32x4.splat(0));
}

/** n floats: dst += src. */
@inline function addInto(dst: usize, src: usize, n: i32): void {
  let j = 0;
  for (; j + 4 <= n; j += 4) {
    const d = dst + (<usize>j << 2);
    v128.store(d, f32x4.add(v128.load(d), v128.load(src + (<usize>j << 2))));
  }
  for (; j < n; j++) {
    const d = dst + (<usize>j << 2);
    store<f32>(d, load<f32>(d) + load<f32>(src + (<usize>j << 2)));
  }
}

/** ⌈a / s⌉ for s > 0 and any sign of a. */
@inline function ceilDiv(a: i32, s: i32): i32 {
  return a >= 0 ? (a + s - 1) / s : -(-a / s);
}

/** First output index whose tap (offset into the padded axis) lands inside the input: i·s + offset ≥ pad. */
@inline function firstInside(pad: i32, offset: i32, s: i32): i32 {
  return max(0, ceilDiv(pad - offset, s));
}

/** One past the last output index whose tap lands inside the input: i·s + offset < size + pad. */
@inline function endInside(size: i32, pad: i32, offset: i32, s: i32, outSize: i32): i32 {
  return min(outSize, max(0, ceilDiv(size + pad - offset, s)));
}

// ------------------------------------------------------------------------------------------------
// im2col / col2im of one image (src/kernels/im2col.ts with N = 1).

/**
 * Rows [r0, r1) of the col matrix of one image, written one after the other from `col`:
 * col[(c·kh + p)·kw + q, i·OW + j] = x_pad[c, i·sh + p·dh, j·sw + q·dw]; the whole col is (C·kh·kw) × (OH·OW).
 * Each row is a shifted (strided) copy of one input plane, with zeros where the tap reads padding.
 */
export function im2colRows(
  x: usize, C: i32, H: i32, W: i32, kh: i32, kw: i32, sh: i32, sw: i32, dh: i32, dw: i32,
  padTop: i32, padLeft: i32, OH: i32, OW: i32, r0: i32, r1: i32, col: usize,
): void {
  const P = OH * OW;
  let dstRow = col;
  for (let r = r0; r < r1; r++) {
    const q = r % kw;
    const p = (r / kw) % kh;
    const c = r / (kw * kh);
    const plane = x + (<usize>(c * H * W) << 2);
    // rows [iLo, iHi) and columns [jLo, jHi) of the output read inside x; the rest reads padding
    const iLo = min(OH, firstInside(padTop, p * dh, sh));
    const iHi = max(iLo, endInside(H, padTop, p * dh, sh, OH));
    const jLo = min(OW, firstInside(padLeft, q * dw, sw));
    const jHi = max(jLo, endInside(W, padLeft, q * dw, sw, OW));
    if (jLo == jHi) zero(dstRow, P);
    else {
      zero(dstRow, iLo * OW);
      let dst = dstRow + (<usize>(iLo * OW) << 2);
      let src = plane + (<usize>((iLo * sh + p * dh - padTop) * W + jLo * sw + q * dw - padLeft) << 2);
      const srcStep = <usize>(sh * W) << 2;
      const n = jHi - jLo;
      if (sw == 1) {
        // whole vectors only, every write spilling forward onto what is written next (see copyOver)
        for (let i = iLo; i < iHi; i++) {
          if (jLo > 0) zeroOver(dst, jLo);
          copyOver(dst + (<usize>jLo << 2), src, n);
          if (jHi < OW) zeroOver(dst + (<usize>jHi << 2), OW - jHi);
          dst += <usize>OW << 2;
          src += srcStep;
        }
      } else {
        for (let i = iLo; i < iHi; i++) {
          zero(dst, jLo);
          const d = dst + (<usize>jLo << 2);
          let j = 0;
          // stride 2: four outputs are the even floats of eight consecutive inputs; whole vectors only while
          // the eighth is not past the last input this row reads (2(n − 1))
          if (sw == 2) {
            for (; j + 5 <= n; j += 4) {
              const s = src + (<usize>(2 * j) << 2);
              v128.store(d + (<usize>j << 2), v128.shuffle<f32>(v128.load(s), v128.load(s, 16), 0, 2, 4, 6));
            }
          }
          for (; j < n; j++) store<f32>(d + (<usize>j << 2), load<f32>(src + (<usize>(j * sw) << 2)));
          zero(dst + (<usize>jHi << 2), OW - jHi);
          dst += <usize>OW << 2;
          src += srcStep;
        }
      }
      zero(dst, (OH - iHi) * OW);
    }
    dstRow += <usize>P << 2;
  }
}

/** The whole col matrix of one image: im2colRows over every row. */
export function im2colImage(
  x: usize, C: i32, H: i32, W: i32, kh: i32, kw: i32, sh: i32, sw: i32, dh: i32, dw: i32,
  padTop: i32, padLeft: i32, OH: i32, OW: i32, col: usize,
): void {
  im2colRows(x, C, H, W, kh, kw, sh, sw, dh, dw, padTop, padLeft, OH, OW, 0, C * kh * kw, col);
}

/**
 * The adjoint of im2colImage: dx[c, …] += col[r, s] for every entry that came from x (padding dropped).
 * Each dx element receives its entries in row order r = (c·kh + p)·kw + q. For a 3-wide kernel with
 * columns stepping by one, the three rows of one (c, p) go into a row of dx together (col2imRow3): read
 * and written once instead of three times, each element taking its taps in q order — the same bits.
 */
export function col2imImage(
  col: usize, C: i32, H: i32, W: i32, kh: i32, kw: i32, sh: i32, sw: i32, dh: i32, dw: i32,
  padTop: i32, padLeft: i32, OH: i32, OW: i32, dx: usize,
): void {
  const P = OH * OW;
  const rows3 = kw == 3 && sw == 1 && dw == 1;
  let srcRow = col;
  for (let c = 0; c < C; c++) {
    const plane = dx + (<usize>(c * H * W) << 2);
    for (let p = 0; p < kh; p++) {
      const iLo = firstInside(padTop, p * dh, sh);
      const iHi = endInside(H, padTop, p * dh, sh, OH);
      if (rows3) {
        for (let i = iLo; i < iHi; i++) {
          const dst = plane + (<usize>((i * sh + p * dh - padTop) * W) << 2);
          col2imRow3(srcRow + (<usize>(i * OW) << 2), <usize>P << 2, W, padLeft, OW, dst);
        }
        srcRow += <usize>(3 * P) << 2;
        continue;
      }
      for (let q = 0; q < kw; q++) {
        const jLo = firstInside(padLeft, q * dw, sw);
        const jHi = endInside(W, padLeft, q * dw, sw, OW);
        if (jLo < jHi) {
          for (let i = iLo; i < iHi; i++) {
            const src = srcRow + (<usize>(i * OW + jLo) << 2);
            const dst = plane + (<usize>((i * sh + p * dh - padTop) * W + jLo * sw + q * dw - padLeft) << 2);
            if (sw == 1) addInto(dst, src, jHi - jLo);
            else {
              const n = jHi - jLo;
              let j = 0;
              // stride 2: four entries go to the even floats of eight consecutive dx columns; the odd ones are
              // stored back as they were (not + 0, which would turn −0 into +0); whole vectors only while the
              // eighth is inside the row's span (2(n − 1))
              if (sw == 2) {
                for (; j + 5 <= n; j += 4) {
                  const d = dst + (<usize>(2 * j) << 2);
                  const lo = v128.load(d), hi = v128.load(d, 16);
                  const sums = f32x4.add(v128.shuffle<f32>(lo, hi, 0, 2, 4, 6), v128.load(src + (<usize>j << 2)));
                  v128.store(d, v128.shuffle<f32>(sums, lo, 0, 5, 1, 7));
                  v128.store(d, v128.shuffle<f32>(sums, hi, 2, 5, 3, 7), 16);
                }
              }
              for (; j < n; j++) {
                const d = dst + (<usize>(j * sw) << 2);
                store<f32>(d, load<f32>(d) + load<f32>(src + (<usize>j << 2)));
              }
            }
          }
        }
        srcRow += <usize>P << 2;
      }
    }
  }
}

/**
 * A row of dx (W floats at dst) += its entries from three rows of col, one output row (OW floats) each,
 * `rowBytes` apart: row q puts its column j on dx column w = j + q − padLeft. Columns [lo, hi) take all
 * three, as vectors; the few at the edges take those that land inside. Each element adds q = 0, 1, 2 in
 * order.
 */
function col2imRow3(src: usize, rowBytes: usize, W: i32, padLeft: i32, OW: i32, dst: usize): void {
  const s0 = src + (<usize>padLeft << 2); // row 0 at dx column 0; row q at column 0 is s0 + q·(rowBytes − 4)
  const s1 = s0 + rowBytes - 4;
  const s2 = s1 + rowBytes - 4;
  const lo = min(W, max(0, 2 - padLeft));
  const hi = max(lo, min(W, OW - padLeft));
  let w = lo;
  for (; w + 4 <= hi; w += 4) {
    const o = <usize>w << 2;
    v128.store(dst + o, f32x4.add(f32x4.add(f32x4.add(v128.load(dst + o), v128.load(s0 + o)), v128.load(s1 + o)), v128.load(s2 + o)));
  }
  for (; w < hi; w++) {
    const o = <usize>w << 2;
    store<f32>(dst + o, load<f32>(dst + o) + load<f32>(s0 + o) + load<f32>(s1 + o) + load<f32>(s2 + o));
  }
  // the edges: columns below lo and from hi on, each tap where its column j = w − q + padLeft is in the row
  for (let e = 0; e < W; e++) {
    if (e == lo) e = hi;
    if (e >= W) break;
    const o = <usize>e << 2;
    let v = load<f32>(dst + o);
    const j = e + padLeft;
    if (j >= 0 && j < OW) v += load<f32>(s0 + o);
    if (j >= 1 && j - 1 < OW) v += load<f32>(s1 + o);
    if (j >= 2 && j - 2 < OW) v += load<f32>(s2 + o);
    store<f32>(dst + o, v);
  }
}

/** A 1×1, stride-1, unpadded convolution reads the image itself as its col matrix: no im2col needed. */
@inline function isPointwise(H: i32, W: i32, kh: i32, kw: i32, sh: i32, sw: i32, OH: i32, OW: i32): bool {
  return kh == 1 && kw == 1 && sh == 1 && sw == 1 && OH == H && OW == W;
}

// The scratch sizes are computed in f64, so that they are the true size of any geometry (in i32, 64 → 64
// channels at 1024×1024 wrapped to a negative one, and a call wrote past its scratch): the caller refuses
// calls whose scratch is too large for every offset in it to fit an i32 (wasm-ops.ts), and here, below that,
// the same layout in i32.

/** Scratch bytes convForward/convBackward need (f64: the true size). */
export function convScratchBytes(C: i32, O: i32, kh: i32, kw: i32, OH: i32, OW: i32): f64 {
  // packed W (or Wᵀ) + one thread's scratch (convThreadScratchBytes)
  return convPackedBytes(C, O, kh, kw) + convThreadScratchBytes(C, O, kh, kw, OH, OW);
}

/** Bytes of packed W (forward) or Wᵀ (backward) that convForwardPart/convBackwardPart read (f64). */
export function convPackedBytes(C: i32, O: i32, kh: i32, kw: i32): f64 {
  return blockBytes(<f64>O * <f64>C * <f64>(kh * kw) * 4); // packedSize: every value of W splatted to 4 lanes
}

/**
 * Scratch bytes each thread of convForwardPart/convBackwardPart needs (f64): one col_n (or dcol_n),
 * gemmPacked's edge buffers, and db's lane sums (a v128 per output channel).
 */
export function convThreadScratchBytes(C: i32, O: i32, kh: i32, kw: i32, OH: i32, OW: i32): f64 {
  return blockBytes(<f64>C * <f64>(kh * kw) * <f64>OH * <f64>OW) + blockBytes(PACKED_WS_BYTES >> 2) + blockBytes(<f64>O * 4);
}

/**
 * y (N, O, OH, OW) = conv(x (N, C, H, W), w (O, C, kh, kw)) + bias (O) — bias = 0 means none.
 * All pointers are byte offsets; ws: convScratchBytes(...) bytes. One thread: convForwardPart(0, 1, …).
 */
export function convForward(
  N: i32, C: i32, H: i32, W: i32, O: i32, kh: i32, kw: i32, sh: i32, sw: i32, dh: i32, dw: i32,
  padTop: i32, padLeft: i32, OH: i32, OW: i32,
  x: usize, w: usize, bias: usize, y: usize, ws: usize,
): void {
  const K = C * kh * kw;
  packA(false, O, K, 1, w, K, ws);
  convForwardPart(0, 1, ws + <usize>convPackedBytes(C, O, kh, kw), N, C, H, W, O, kh, kw, sh, sw, dh, dw, padTop, padLeft, OH, OW, x, ws, bias, y);
}

/**
 * Part t of T of convForward: images [n0, n1) (partStart), each y_n = W · col_n (+ b).
 * apack: W packed by packA(false, O, K, 1, w, K, apack); ws: convThreadScratchBytes bytes of this
 * thread's scratch.
 */
export function convForwardPart(
  t: i32, T: i32, ws: usize, N: i32, C: i32, H: i32, W: i32, O: i32, kh: i32, kw: i32, sh: i32, sw: i32, dh: i32, dw: i32,
  padTop: i32, padLeft: i32, OH: i32, OW: i32,
  x: usize, apack: usize, bias: usize, y: usize,
): void {
  const K = C * kh * kw;
  const P = OH * OW;
  const col = ws;
  const edge = col + <usize>align64((K * P) << 2) + 64;
  const direct = isPointwise(H, W, kh, kw, sh, sw, OH, OW);
  // the implicit GEMM (gemmImplicit) reads the zero-padded image in place of col: the padded image (or x
  // itself when no tap reads padding) and the taps' offsets take the col buffer's place in the scratch
  const Hp = max(H + padTop, (OH - 1) * sh + (kh - 1) * dh + 1);
  const Wp = max(W + padLeft, OW + (kw - 1) * dw);
  const padded = padTop > 0 || padLeft > 0 || Hp > H || Wp > W;
  // (output rows of at least 8 columns: narrower ones put most strips over three or more rows, gathered
  // float by float, which costs more than im2col's row copies — 64→64 at 7×7: 30% slower)
  const implicit = !direct && sw == 1 && OW >= NR && implicitFits(C, K, P, padded ? Hp * Wp : 0);
  const taps = ws + <usize>(padded ? align64((C * Hp * Wp) << 2) + 64 : 0);
  if (implicit) {
    for (let c = 0; c < C; c++) {
      for (let p = 0; p < kh; p++) {
        for (let q = 0; q < kw; q++) {
          store<i32>(taps + (<usize>((c * kh + p) * kw + q) << 2), (c * Hp + p * dh) * Wp + q * dw);
        }
      }
    }
  }
  const n1 = partStart(N, t + 1, T, 1);
  for (let n = partStart(N, t, T, 1); n < n1; n++) {
    const xn = x + (<usize>(n * C * H * W) << 2);
    const yn = y + (<usize>(n * O * P) << 2);
    // y_n = b·1ᵀ + W·col_n, the sums starting from the bias (tile8's rowBias)
    if (implicit) {
      const xp = padded ? padImage(xn, C, H, W, padTop, padLeft, Hp, Wp, ws) : xn;
      gemmImplicit(O, P, K, apack, xp, taps, OW, sh * Wp, yn, P, bias, edge);
      continue;
    }
    if (!direct) im2colImage(xn, C, H, W, kh, kw, sh, sw, dh, dw, padTop, padLeft, OH, OW, col);
    gemmPackedBias(O, P, K, apack, direct ? xn : col, P, yn, P, false, bias, edge);
  }
}

/**
 * True when the implicit GEMM's scratch — the padded image (plane = Hp·Wp floats per channel; 0: x is read
 * in place) and K tap offsets — fits in the col buffer it replaces (K·P floats).
 */
@inline function implicitFits(C: i32, K: i32, P: i32, plane: i32): bool {
  const need = (plane > 0 ? align64((C * plane) << 2) + 64 : 0) + align64(K << 2) + 64;
  return need <= align64((K * P) << 2) + 64;
}

/** x_n (C × H × W) zero-padded into xp (C × Hp × Wp) at (padTop, padLeft): returns xp. */
function padImage(x: usize, C: i32, H: i32, W: i32, padTop: i32, padLeft: i32, Hp: i32, Wp: i32, xp: usize): usize {
  zero(xp, C * Hp * Wp);
  for (let c = 0; c < C; c++) {
    for (let i = 0; i < H; i++) {
      copy(xp + (<usize>((c * Hp + padTop + i) * Wp + padLeft) << 2), x + (<usize>((c * H + i) * W) << 2), W);
    }
  }
  return xp;
}

/**
 * C[M×N] = rowBias·1ᵀ + packedA · col without col: the implicit form of gemmPackedBias for a convolution whose output
 * columns step by one input column (sw = dw = 1). col[k, p] for output position p = i·OW + j is
 * xp[taps[k] + i·rowStep + j] (taps[k]: the offset of row k's tap (c, p′, q′) in the padded image xp;
 * rowStep = sh·Wp), so each 8-column strip of col is gathered straight from xp into the strip buffer —
 * two vector loads per k where the 8 positions lie in one output row, four where they span two — and
 * multiplied by tile as gemmPacked multiplies its packed strips. Same blocks, same k order: the same bits
 * as im2colImage + gemmPacked. Reads up to 8 floats past a row's end (into the next row or the buffer's
 * slack); ws as gemmPacked's.
 */
function gemmImplicit(
  M: i32, N: i32, K: i32, apack: usize, xp: usize, taps: usize, OW: i32, rowStep: i32, c: usize, ldc: i32,
  rowBias: usize, ws: usize,
): void {
  const ldcB = <usize>ldc << 2;
  const strip = ws;
  const cEdge = ws + <usize>((KC * NR) << 2);
  for (let pc = 0; pc < K; pc += KC) {
    const kc = min(KC, K - pc);
    const ld = pc > 0;
    const aBlock = apack + (<usize>(pc * M) << 4);
    const tapBlock = taps + (<usize>pc << 2);
    for (let ic = 0; ic < M; ic += MC) {
      const mc = min(MC, M - ic);
      const np = panelCount(mc);
      for (let jc = 0; jc < N; jc += NR) {
        const cols = min(NR, N - jc);
        gatherStrip(xp, tapBlock, kc, jc, cols, OW, rowStep, strip);
        let r0 = ic;
        for (let p = 0; p < np; p++) {
          const mr = panelRows(mc, np, p);
          const cTile = c + <usize>r0 * ldcB + (<usize>jc << 2);
          const bias = rowBias == 0 ? 0 : rowBias + (<usize>r0 << 2);
          if (cols == NR) tile(mr, kc, aBlock + (<usize>(r0 * kc) << 4), strip, NR << 2, cTile, ldcB, ld, bias);
          else {
            // the last N mod 8 columns through a temporary C tile, as gemmPacked's edge
            if (ld) {
              for (let i = 0; i < mr; i++) {
                for (let j = 0; j < cols; j++) store<f32>(cEdge + (<usize>(i * NR + j) << 2), load<f32>(cTile + <usize>i * ldcB + (<usize>j << 2)));
              }
            }
            tile(mr, kc, aBlock + (<usize>(r0 * kc) << 4), strip, NR << 2, cEdge, NR << 2, ld, bias);
            for (let i = 0; i < mr; i++) {
              for (let j = 0; j < cols; j++) store<f32>(cTile + <usize>i * ldcB + (<usize>j << 2), load<f32>(cEdge + (<usize>(i * NR + j) << 2)));
            }
          }
          r0 += mr;
        }
      }
    }
  }
}

/**
 * Rows [0, kc) of col's strip of `cols` ≤ 8 columns from jc, k-major 8 floats per k (columns past cols zero),
 * gathered from xp by the taps' offsets (see gemmImplicit).
 */
function gatherStrip(xp: usize, taps: usize, kc: i32, jc: i32, cols: i32, OW: i32, rowStep: i32, strip: usize): void {
  const i = jc / OW;
  const j = jc - i * OW;
  const first = xp + (<usize>(i * rowStep + j) << 2);
  if (cols == NR && j + NR <= OW) {
    for (let k = 0; k < kc; k++) {
      const from = first + (<usize>load<i32>(taps + (<usize>k << 2)) << 2);
      const to = strip + (<usize>(k * NR) << 2);
      v128.store(to, v128.load(from));
      v128.store(to, v128.load(from, 16), 16);
    }
  } else if (cols == NR && OW >= NR) {
    // two output rows: 8 floats from row i at j, then 8 from row i + 1 written over the tail from OW − j on
    // (the second pair of stores runs past this k's 8 floats into the next k's, written after it; the
    // last k's into the slack that follows the strip buffer)
    const split = <usize>(OW - j) << 2;
    const second = xp + (<usize>((i + 1) * rowStep) << 2);
    for (let k = 0; k < kc; k++) {
      const tap = <usize>load<i32>(taps + (<usize>k << 2)) << 2;
      const to = strip + (<usize>(k * NR) << 2);
      v128.store(to, v128.load(first + tap));
      v128.store(to, v128.load(first + tap, 16), 16);
      v128.store(to + split, v128.load(second + tap));
      v128.store(to + split, v128.load(second + tap, 16), 16);
    }
  } else {
    for (let k = 0; k < kc; k++) {
      const tap = load<i32>(taps + (<usize>k << 2));
      const to = strip + (<usize>(k * NR) << 2);
      for (let jj = 0; jj < NR; jj++) {
        const p = jc + jj;
        const ii = p / OW;
        const v: f32 = jj < cols ? load<f32>(xp + (<usize>(tap + ii * rowStep + p - ii * OW) << 2)) : 0;
        store<f32>(to + (<usize>jj << 2), v);
      }
    }
  }
}

/**
 * Backward of convForward: dw += ∂L/∂W, db += ∂L/∂b (db = 0: no bias), dx = ∂L/∂x (dx = 0: not wanted).
 * x is the forward's input; dy (N, O, OH, OW). One thread: convBackwardPart(0, 1, …).
 */
export function convBackward(
  N: i32, C: i32, H: i32, W: i32, O: i32, kh: i32, kw: i32, sh: i32, sw: i32, dh: i32, dw: i32,
  padTop: i32, padLeft: i32, OH: i32, OW: i32,
  x: usize, w: usize, dy: usize, dW: usize, db: usize, dx: usize, ws: usize,
): void {
  const K = C * kh * kw;
  if (dx != 0) packA(true, K, O, 1, w, K, ws); // op(A) = Wᵀ (K × O)
  const wsPart = ws + <usize>convPackedBytes(C, O, kh, kw);
  convBackwardPart(0, dx != 0 ? 2 : 1, wsPart, 1, N, C, H, W, O, kh, kw, sh, sw, dh, dw, padTop, padLeft, OH, OW, x, ws, dy, dW, db, dx);
  if (dx != 0) convBackwardPart(1, 2, wsPart, 1, N, C, H, W, O, kh, kw, sh, sw, dh, dw, padTop, padLeft, OH, OW, x, ws, dy, dW, db, dx);
}

/**
 * First column of dW part t of `parts`: K's blocks of 4 columns split evenly, the K mod 4 columns left
 * over going to the last part (K = 25 on 2 parts: 12 and 13 columns, where whole blocks gave 16 and 9).
 */
@inline function columnStart(K: i32, t: i32, parts: i32): i32 {
  if (t >= parts) return K;
  const units = max(1, K >> 2);
  return min(K, (t * (units / parts) + min(t, units % parts)) << 2);
}

/**
 * Part t of T of convBackward. The first dWParts parts share dW and db, the other T − dWParts share dx;
 * each part owns disjoint outputs and computes each exactly as a single call would:
 *   dW part d of dWParts: columns [k0, k1) (columnStart: multiples of 4 but for K):
 *                           dW[:, k0:k1] += dy_n · col_n[k0:k1, :]ᵀ  for n = 0 … N−1 in order
 *                           (only those rows of col_n are built: im2colRows)
 *                         and db entries [o0, o1): db[o] += Σ_{n,p} dy[n, o, p]   (channelSums)
 *   dx part e of T − dWParts: images [n0, n1), dx_n = col2im(Wᵀ · dy_n)
 * wpackT: Wᵀ packed by packA(true, K, O, 1, w, K, wpackT) (read only by the dx parts); ws:
 * convThreadScratchBytes bytes of this thread's scratch. dWParts = T: no dx parts (dx = 0).
 */
export function convBackwardPart(
  t: i32, T: i32, ws: usize, dWParts: i32, N: i32, C: i32, H: i32, W: i32, O: i32, kh: i32, kw: i32, sh: i32, sw: i32, dh: i32, dw: i32,
  padTop: i32, padLeft: i32, OH: i32, OW: i32,
  x: usize, wpackT: usize, dy: usize, dW: usize, db: usize, dx: usize,
): void {
  const K = C * kh * kw;
  const P = OH * OW;
  const col = ws; // col_n rows k0…k1, or dcol_n
  const edge = col + <usize>align64((K * P) << 2) + 64;
  const direct = isPointwise(H, W, kh, kw, sh, sw, OH, OW);

  if (t >= dWParts) {
    if (dx == 0) return;
    const n1 = partStart(N, t - dWParts + 1, T - dWParts, 1);
    for (let n = partStart(N, t - dWParts, T - dWParts, 1); n < n1; n++) {
      const dyn = dy + (<usize>(n * O * P) << 2);
      const dxn = dx + (<usize>(n * C * H * W) << 2);
      if (direct) {
        gemmPacked(K, P, O, wpackT, dyn, P, dxn, P, false, edge); // dx_n = Wᵀ · dy_n
      } else {
        gemmPacked(K, P, O, wpackT, dyn, P, col, P, false, edge); // dcol_n = Wᵀ · dy_n
        zero(dxn, C * H * W);
        col2imImage(col, C, H, W, kh, kw, sh, sw, dh, dw, padTop, padLeft, OH, OW, dxn);
      }
    }
    return;
  }

  const k0 = columnStart(K, t, dWParts);
  const k1 = columnStart(K, t + 1, dWParts);
  const o0 = partStart(O, t, dWParts, 1);
  const o1 = partStart(O, t + 1, dWParts, 1);
  if (k0 >= k1) {
    if (db != 0) channelSums(N, O, P, dy, db, o0, o1);
    return;
  }
  const lanes = edge + <usize>align64(PACKED_WS_BYTES) + 64; // db's lane sums, channels o0…o1
  if (db != 0) zero(lanes + (<usize>o0 << 4), (o1 - o0) << 2);
  for (let n = 0; n < N; n++) {
    const xn = x + (<usize>(n * C * H * W) << 2);
    const dyn = dy + (<usize>(n * O * P) << 2);
    if (db != 0) addChannelLanes(n, O, P, dy, lanes, o0, o1);
    // rows k0…k1 of col_n: of the image itself when it is its own col (1×1 kernel, K = C)
    let b = xn + (<usize>(k0 * P) << 2);
    if (!direct) {
      im2colRows(xn, C, H, W, kh, kw, sh, sw, dh, dw, padTop, padLeft, OH, OW, k0, k1, col);
      b = col;
    }
    gemmNT(O, k1 - k0, P, 1, dyn, P, b, P, 1, dW + (<usize>k0 << 2), K); // dW[:, k0:k1] += dy_n · col_n[k0:k1]ᵀ
  }
  if (db != 0) for (let o = o0; o < o1; o++) finishChannelSum(v128.load(lanes + (<usize>o << 4)), N, O, P, dy, db, o);
}
/**
 * db[o] += Σ_n Σ_p dy[n, o, p] for o in [o0, o1): per o, f32x4 lanes over p (lane l takes p ≡ l mod 4)
 * in n order, then the tails in order.
 */
export function channelSums(N: i32, O: i32, P: i32, dy: usize, db: usize, o0: i32, o1: i32): void {
  const P4 = P & ~3;
  for (let o = o0; o < o1; o++) {
    let acc = f32x4.splat(0);
    for (let n = 0; n < N; n++) {
      const row = dy + (<usize>((n * O + o) * P) << 2);
      for (let p = 0; p < P4; p += 4) acc = f32x4.add(acc, v128.load(row + (<usize>p << 2)));
    }
    finishChannelSum(acc, N, O, P, dy, db, o);
  }
}

/** channelSums' end for channel o: the lanes reduced as (l0 + l2) + (l1 + l3), then every image's tail in order. */
@inline function finishChannelSum(acc: v128, N: i32, O: i32, P: i32, dy: usize, db: usize, o: i32): void {
  const h = f32x4.add(acc, v128.shuffle<f32>(acc, acc, 2, 3, 0, 1));
  let s: f32 = f32x4.extract_lane(h, 0) + f32x4.extract_lane(h, 1);
  for (let n = 0; n < N; n++) {
    const row = dy + (<usize>((n * O + o) * P) << 2);
    for (let p = P & ~3; p < P; p++) s += load<f32>(row + (<usize>p << 2));
  }
  const d = db + (<usize>o << 2);
  store<f32>(d, load<f32>(d) + s);
}

/**
 * channelSums's lanes for one image: lanes[o] += dy[n, o, p…p+3] for p = 0, 4, … (the P mod 4 tail is left
 * to finishChannelSum). Image by image with the lanes kept in memory, the additions are channelSums' own,
 * in its order; convBackwardPart runs it just before dy_n's dot products, whose operand it brings into
 * the cache with independent sequential loads (dy_n streamed from memory by the dot products alone cost
 * them 8 points of efficiency: bench/conv-profile.ts).
 */
@inline function addChannelLanes(n: i32, O: i32, P: i32, dy: usize, lanes: usize, o0: i32, o1: i32): void {
  const P4 = P & ~3;
  for (let o = o0; o < o1; o++) {
    const row = dy + (<usize>((n * O + o) * P) << 2);
    const l = lanes + (<usize>o << 4);
    let acc = v128.load(l);
    for (let p = 0; p < P4; p += 4) acc = f32x4.add(acc, v128.load(row + (<usize>p << 2)));
    v128.store(l, acc);
  }
}

// ------------------------------------------------------------------------------------------------
// Dense: x (N, F), W (F, O), y (N, O).

/** Scratch bytes denseForward/denseBackward need (f64, as the convolutions': the true size). */
export function denseScratchBytes(N: i32, F: i32): f64 {
  // x or xᵀ packed (every value splatted to 4 lanes), + edges
  return align64f(<f64>N * <f64>F * 16) + align64(PACKED_WS_BYTES);
}

/** Scratch bytes each thread needs for denseForwardPart/denseBackwardPart(t, T, …) (the largest part's; f64). */
export function denseThreadScratchBytes(N: i32, F: i32, T: i32): f64 {
  // forward packs rows n0…n1 of x (≤ ⌈N/T⌉ × F), backward columns f0…f1 of x (≤ ⌈F/T⌉ × N); part 0 is the largest
  const packed = max(<f64>partStart(N, 1, T, 1) * <f64>F, <f64>partStart(F, 1, T, 1) * <f64>N) * 4;
  return blockBytes(packed) + blockBytes(PACKED_WS_BYTES >> 2);
}

/** y = x·W + bias (bias = 0: none). One thread: denseForwardPart(0, 1, …). */
export function denseForward(N: i32, F: i32, O: i32, x: usize, w: usize, bias: usize, y: usize, ws: usize): void {
  denseForwardPart(0, 1, ws, N, F, O, x, w, bias, y);
}

/** Part t of T of denseForward: rows [n0, n1) of y. ws: denseThreadScratchBytes(N, F, T) bytes. */
export function denseForwardPart(t: i32, T: i32, ws: usize, N: i32, F: i32, O: i32, x: usize, w: usize, bias: usize, y: usize): void {
  const n0 = partStart(N, t, T, 1);
  const rows = partStart(N, t + 1, T, 1) - n0;
  if (rows <= 0) return;
  const apack = ws;
  const yn = y + (<usize>(n0 * O) << 2);
  if (bias != 0) for (let n = 0; n < rows; n++) copy(yn + (<usize>(n * O) << 2), bias, O);
  packA(false, rows, F, 1, x + (<usize>(n0 * F) << 2), F, apack);
  gemmPacked(rows, O, F, apack, w, O, yn, O, bias != 0, apack + <usize>align64(packedSize(rows, F) << 2));
}

/** dW += xᵀ·dy, db += Σ_n dy[n, :] (db = 0: none), dx = dy·Wᵀ (dx = 0: not wanted). One thread: denseBackwardPart(0, 1, …). */
export function denseBackward(N: i32, F: i32, O: i32, x: usize, w: usize, dy: usize, dW: usize, db: usize, dx: usize, ws: usize): void {
  denseBackwardPart(0, 1, ws, N, F, O, x, w, dy, dW, db, dx);
}

/**
 * Part t of T of denseBackward: rows [f0, f1) of dW (each summed over all N in order), entries [o0, o1)
 * of db, rows [n0, n1) of dx. ws: denseThreadScratchBytes(N, F, T) bytes.
 */
export function denseBackwardPart(
  t: i32, T: i32, ws: usize, N: i32, F: i32, O: i32, x: usize, w: usize, dy: usize, dW: usize, db: usize, dx: usize,
): void {
  const apack = ws;
  const f0 = partStart(F, t, T, 1);
  const rows = partStart(F, t + 1, T, 1) - f0;
  if (rows > 0) {
    packA(true, rows, N, 1, x + (<usize>f0 << 2), F, apack); // op(A) = xᵀ rows f0… (F × N)
    gemmPacked(rows, O, N, apack, dy, O, dW + (<usize>(f0 * O) << 2), O, true, apack + <usize>align64(packedSize(rows, N) << 2));
  }
  if (db != 0) {
    const o0 = partStart(O, t, T, 4);
    const o1 = partStart(O, t + 1, T, 4);
    if (o0 < o1) for (let n = 0; n < N; n++) addInto(db + (<usize>o0 << 2), dy + (<usize>(n * O + o0) << 2), o1 - o0); // db[o] += dy[n, o] in n order
  }
  if (dx != 0) {
    const n0 = partStart(N, t, T, 1);
    const n1 = partStart(N, t + 1, T, 1);
    if (n0 < n1) gemmNT(n1 - n0, F, O, 1, dy + (<usize>(n0 * O) << 2), O, w, O, 0, dx + (<usize>(n0 * F) << 2), F);
  }
}
