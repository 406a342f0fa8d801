// Depthwise convolution for WebAssembly SIMD (AssemblyScript): Conv2D with groups = C and O = C·M (M the
// depth multiplier), derivation.md §5.1. Output channel o = c·M + m reads input channel c only:
//
//   forward   y[n,o,i,j]   = b[o] + Σ_{p,q} W[o,0,p,q] · x_pad[n, c, i·sh + p·dh, j·sw + q·dw]
//   backward  dW[o,0,p,q] += Σ_{n,i,j} dy[n,o,i,j] · x_pad[n, c, i·sh + p·dh, j·sw + q·dw]
//             db[o]       += Σ_{n,i,j} dy[n,o,i,j]
//             dx_pad[n,c,u,v] = Σ_{m,p,q} Σ_{i·sh + p·dh = u, j·sw + q·dw = v} W[o,0,p,q] · dy[n,o,i,j]
//
// (§2.2's formulas with one input channel per group; the JS reference is depthwiseForward/Backward in
// src/kernels/js.ts.) im2col + GEMM would copy every input kh·kw times for products of kh·kw rows, so
// these are direct loops, vectorised along the output row (4 outputs per f32x4) for every stride:
//
// The input plane is copied into a zero-padded scratch (zeroed once per call: each plane writes only its
// values, where the next plane's overwrite them), its columns dealt into sw phases:
//   xs[r][φ][k] = x_pad[r, k·sw + φ]        r < (OH − 1)·sh + (kh − 1)·dh + 1 (the rows any window reads)
// so the taps of output columns j … j+3 are 4 consecutive floats, xs[i·sh + p·dh][φ_q][j + κ_q] with
// φ_q = (q·dw) mod sw and κ_q = ⌊q·dw / sw⌋, whatever the stride, dilation or padding (asymmetric "same"
// included: only the top/left amounts matter, the rest are the zeros). Padding taps multiply a zero, so
// every row runs the same loop; the output columns past OW (up to a multiple of 4) are computed from
// zeros and not stored.
//
// dx is gathered rather than scattered: with dy's rows copied into a scratch with κ_max zeros on the left
// and zeros past OW, dx_pad[u][v] for v = k·sw + φ is Σ over the taps of phase φ (and the p whose row
// (u − p·dh)/sh is a whole output row) of W[o,p,q] · dy[i][k − κ_q]: again 4 consecutive floats per tap.
//
// Threads (wasm/parallel.as): forward parts own whole input planes (n, c), so the M output planes read
// from them; backward parts own whole channels c: dW[c·M … c·M+M−1], db of the same and every image's dx
// plane (n, c), each dW/db sum running over n = 0 … N−1 in order. No sum is split, so every thread count
// gives the same bits. Summation order: forward bias, then the taps in (p, q) order as js.ts; dW and db in
// f32x4 lanes (per tap and image, even and odd output rows apart, then added), reduced in a fixed order;
// dx over (m, p, q). The products are rounded to float32 (js.ts multiplies in float64), so the results
// agree with the reference to float32 rounding, not bit for bit.

import { align64f, partStart } from "./parallel";

/** κ_max: the largest column offset ⌊q·dw / sw⌋ of a tap, in phase elements. */
@inline function maxShift(kw: i32, sw: i32, dw: i32): i32 {
  return ((kw - 1) * dw) / sw;
}

/** Output columns rounded up to whole vectors. */
@inline function round4(n: i32): i32 {
  return (n + 3) & ~3;
}

/** Floats per phase row of xs: the columns the vectors of OW rounded up to 4 read. */
@inline function phaseLength(OW: i32, kw: i32, sw: i32, dw: i32): i32 {
  return round4(OW) + maxShift(kw, sw, dw);
}

/** Phase elements per row of dx_pad that reach x: ⌈(padLeft + W) / sw⌉, rounded up to whole vectors. */
@inline function dxPhaseLength(W: i32, sw: i32, padLeft: i32): i32 {
  return round4((padLeft + W + sw - 1) / sw);
}

/** Rows of xs that the windows read. The scratch has 3·sh more for the forward's 4-row blocks (read, never used). */
@inline function xsRows(OH: i32, kh: i32, sh: i32, dh: i32): i32 {
  return (OH - 1) * sh + (kh - 1) * dh + 1;
}

/** Floats per row of the dy scratch: κ_max zeros, then the columns the dW and dx vectors read. */
@inline function dyRowLength(W: i32, OW: i32, kw: i32, sw: i32, dw: i32, padLeft: i32): i32 {
  return maxShift(kw, sw, dw) + max(round4(OW), dxPhaseLength(W, sw, padLeft));
}

/**
 * Byte offset in a thread's scratch of piece `which`, and with which = 7 the scratch's size:
 *   0 tap table: per tap, its byte offset in xs, its phase φ_q and shift κ_q (3·kh·kw i32); then per
 *     phase, the k range that reads x and x's column at k = 0 (3·sw i32, see copyPlane)
 *   1 the M·kh·kw weights, each splatted to a vector     2 dW's (1 per tap) and db's vector accumulators
 *   3 xs        4 the dy scratch (M planes of OH rows)      5 one row of dx_pad, phase by phase, then interleaved
 *   6 gatherDx's terms: per row of dx and phase, their count, then (H·sw lists of M·kh·kw) 2 u32 each
 */
function piece(
  which: i32, M: i32, H: i32, W: i32, kh: i32, kw: i32, sh: i32, sw: i32, dh: i32, dw: i32, padLeft: i32,
  OH: i32, OW: i32,
): f64 {
  // in f64, so that depthwiseThreadScratchBytes is the true size of any geometry (in i32 a large map's dy rows
  // wrapped); the callers run only below sizes where every offset fits an i32
  const taps = <f64>(kh * kw);
  let at: f64 = 0;
  if (which == 0) return at;
  at += align64f((3 * taps + 3 * sw) * 4);
  if (which == 1) return at;
  at += align64f(<f64>M * taps * 16);
  if (which == 2) return at;
  at += align64f((<f64>M * taps + M) * 16);
  if (which == 3) return at;
  at += align64f((<f64>xsRows(OH, kh, sh, dh) + 3 * sh) * sw * phaseLength(OW, kw, sw, dw) * 4 + 64);
  if (which == 4) return at;
  at += align64f(<f64>M * OH * dyRowLength(W, OW, kw, sw, dw, padLeft) * 4 + 64);
  if (which == 5) return at;
  at += align64f(2 * <f64>sw * dxPhaseLength(W, sw, padLeft) * 4 + 64);
  if (which == 6) return at;
  at += align64f(<f64>H * sw * (4 + <f64>M * taps * 8));
  return at;
}

/** Scratch bytes one thread needs for depthwiseForwardPart and depthwiseBackwardPart (f64: the true size). */
export function depthwiseThreadScratchBytes(
  M: i32, H: i32, W: i32, kh: i32, kw: i32, sh: i32, sw: i32, dh: i32, dw: i32, padLeft: i32, OH: i32, OW: i32,
): f64 {
  return piece(7, M, H, W, kh, kw, sh, sw, dh, dw, padLeft, OH, OW);
}

/** n floats at dst ← 0. */
@inline function zeroFloats(dst: usize, n: i32): void {
  let j = 0;
  for (; j + 4 <= n; j += 4) v128.store(dst + (<usize>j << 2), f32x4.splat(0));
  for (; j < n; j++) store<f32>(dst + (<usize>j << 2), 0);
}

/** n floats: dst ← src (non-overlapping). */
@inline function copyFloats(dst: usize, src: usize, n: i32): void {
  let j = 0;
  for (; j + 4 <= n; j += 4) v128.store(dst + (<usize>j << 2), v128.load(src + (<usize>j << 2)));
  for (; j < n; j++) store<f32>(dst + (<usize>j << 2), load<f32>(src + (<usize>j << 2)));
}

/** The first n (1 … 4) lanes of v at dst. */
@inline function storeLanes(dst: usize, v: v128, n: i32): void {
  if (n >= 4) {
    v128.store(dst, v);
    return;
  }
  store<f32>(dst, f32x4.extract_lane(v, 0));
  if (n > 1) store<f32>(dst, f32x4.extract_lane(v, 1), 4);
  if (n > 2) store<f32>(dst, f32x4.extract_lane(v, 2), 8);
}

/** The four lanes of v summed as (l0 + l2) + (l1 + l3). */
@inline function laneSum(v: v128): f32 {
  const h = f32x4.add(v, v128.shuffle<f32>(v, v, 2, 3, 0, 1));
  return f32x4.extract_lane(h, 0) + f32x4.extract_lane(h, 1);
}

/** ⌈a / s⌉ for s > 0 and any sign of a. */
@inline function ceilDiv(a: i32, s: i32): i32 {
  return a >= 0 ? (a + s - 1) / s : -(-a / s);
}

/**
 * The tap table (piece 0): per tap (p, q), its byte offset in xs from an output row's start, φ_q and κ_q;
 * then per phase φ of xs's rows, the range [kLo, kHi) of k whose column k·sw + φ − padLeft lies in x, and
 * that column at k = 0.
 */
function tapTable(
  kh: i32, kw: i32, W: i32, sw: i32, dh: i32, dw: i32, padLeft: i32, rowPitch: i32, L: i32, table: usize,
): void {
  const taps = kh * kw;
  for (let p = 0; p < kh; p++) {
    for (let q = 0; q < kw; q++) {
      const tap = p * kw + q;
      const phase = (q * dw) % sw;
      const shift = (q * dw) / sw;
      store<i32>(table + (<usize>tap << 2), (p * dh * rowPitch + phase * L + shift) << 2);
      store<i32>(table + (<usize>(taps + tap) << 2), phase);
      store<i32>(table + (<usize>(2 * taps + tap) << 2), shift);
    }
  }
  const ranges = table + (<usize>(3 * taps) << 2);
  for (let phase = 0; phase < sw; phase++) {
    const first = phase - padLeft;
    const kLo = min(L, max(0, ceilDiv(-first, sw)));
    const at = ranges + (<usize>(3 * phase) << 2);
    store<i32>(at, kLo);
    store<i32>(at, max(kLo, min(L, ceilDiv(W - first, sw))), 4);
    store<i32>(at, first, 8);
  }
}

/** The taps·count weights from w, each splatted to a vector at dst. */
function splatWeights(w: usize, count: i32, dst: usize): void {
  for (let k = 0; k < count; k++) v128.store(dst + (<usize>k << 4), v128.load32_splat(w + (<usize>k << 2)));
}

/**
 * The input plane x (H × W) into xs (see the top of the file): xs[r][φ][k] = x[r − padTop][k·sw + φ − padLeft]
 * for the k of phase φ that lie in x (`ranges`, see tapTable) and the rows r < rows. Everything else in xs
 * is padding: the part zeroes xs once, and no plane writes there.
 */
function copyPlane(x: usize, H: i32, W: i32, sw: i32, padTop: i32, rows: i32, L: i32, ranges: usize, xs: usize): void {
  const rowPitch = sw * L;
  const hEnd = min(H, rows - padTop);
  for (let phase = 0; phase < sw; phase++) {
    const range = ranges + (<usize>(3 * phase) << 2);
    const kLo = load<i32>(range);
    const n = load<i32>(range, 4) - kLo;
    const first = load<i32>(range, 8); // x's column at k = 0
    for (let h = 0; h < hEnd; h++) {
      const to = xs + (<usize>((h + padTop) * rowPitch + phase * L + kLo) << 2);
      const from = x + (<usize>(h * W + kLo * sw + first) << 2);
      let k = 0;
      if (sw == 1) {
        for (; k + 4 <= n; k += 4) v128.store(to + (<usize>k << 2), v128.load(from + (<usize>k << 2)));
      } else if (sw == 2) {
        // the even lanes of two vectors (reading up to 1 float past the last used: within x or the arena's slack)
        for (; k + 4 <= n; k += 4) {
          const a = from + (<usize>k << 3);
          v128.store(to + (<usize>k << 2), v128.shuffle<f32>(v128.load(a), v128.load(a, 16), 0, 2, 4, 6));
        }
      }
      for (; k < n; k++) store<f32>(to + (<usize>k << 2), load<f32>(from + (<usize>(k * sw) << 2)));
    }
  }
}

/**
 * Part t of T of the forward: input planes (n, c) [P0, P1) of the N·C, each giving output planes
 * (n, c·M + m) for m < M. x (N, C, H, W), w (C·M, 1, kh, kw), bias (C·M) or 0, y (N, C·M, OH, OW).
 * ws: depthwiseThreadScratchBytes bytes.
 */
export function depthwiseForwardPart(
  t: i32, T: i32, ws: usize, N: i32, C: i32, H: i32, W: i32, M: i32, kh: i32, kw: i32, sh: i32, sw: i32,
  dh: i32, dw: i32, padTop: i32, padLeft: i32, OH: i32, OW: i32, x: usize, w: usize, bias: usize, y: usize,
): void {
  const P0 = partStart(N * C, t, T, 1);
  const P1 = partStart(N * C, t + 1, T, 1);
  const taps = kh * kw;
  const L = phaseLength(OW, kw, sw, dw);
  const rowPitch = sw * L;
  const table = ws + <usize>piece(0, M, H, W, kh, kw, sh, sw, dh, dw, padLeft, OH, OW);
  const wv = ws + <usize>piece(1, M, H, W, kh, kw, sh, sw, dh, dw, padLeft, OH, OW);
  const xs = ws + <usize>piece(3, M, H, W, kh, kw, sh, sw, dh, dw, padLeft, OH, OW);
  tapTable(kh, kw, W, sw, dh, dw, padLeft, rowPitch, L, table);
  const ranges = table + (<usize>(3 * taps) << 2);
  const rows = xsRows(OH, kh, sh, dh);
  const rowStep = <usize>(sh * rowPitch) << 2; // xs bytes from one output row's taps to the next's
  const O = C * M;
  zeroFloats(xs, rows * rowPitch);
  for (let plane = P0; plane < P1; plane++) {
    const n = plane / C;
    const c = plane % C;
    copyPlane(x + (<usize>(plane * H * W) << 2), H, W, sw, padTop, rows, L, ranges, xs);
    for (let m = 0; m < M; m++) {
      const o = c * M + m;
      splatWeights(w + (<usize>(o * taps) << 2), taps, wv);
      const b = f32x4.splat(bias != 0 ? load<f32>(bias + (<usize>o << 2)) : 0);
      const yPlane = y + (<usize>((n * O + o) * OH * OW) << 2);
      // 4 output rows × 4 columns a block: four independent sums over the taps (the last rows' blocks
      // compute rows past OH from xs's spare rows and do not store them)
      for (let i = 0; i < OH; i += 4) {
        const stored = min(4, OH - i);
        const xRow = xs + <usize>i * rowStep;
        const yRow = yPlane + (<usize>(i * OW) << 2);
        for (let j = 0; j < OW; j += 4) {
          let a0 = b, a1 = b, a2 = b, a3 = b;
          const xj = xRow + (<usize>j << 2);
          for (let tap = 0; tap < taps; tap++) {
            const wt = v128.load(wv + (<usize>tap << 4));
            const at = xj + <usize>load<i32>(table + (<usize>tap << 2));
            a0 = f32x4.add(a0, f32x4.mul(wt, v128.load(at)));
            a1 = f32x4.add(a1, f32x4.mul(wt, v128.load(at + rowStep)));
            a2 = f32x4.add(a2, f32x4.mul(wt, v128.load(at + 2 * rowStep)));
            a3 = f32x4.add(a3, f32x4.mul(wt, v128.load(at + 3 * rowStep)));
          }
          const lanes = min(4, OW - j);
          const out = yRow + (<usize>j << 2);
          storeLanes(out, a0, lanes);
          if (stored > 1) storeLanes(out + (<usize>OW << 2), a1, lanes);
          if (stored > 2) storeLanes(out + (<usize>(2 * OW) << 2), a2, lanes);
          if (stored > 3) storeLanes(out + (<usize>(3 * OW) << 2), a3, lanes);
        }
      }
    }
  }
}

/**
 * The dy scratch of image n and channel c: for m < M, dy's plane (n, c·M + m) as OH rows of Ld floats,
 * each κ_max zeros, the OW values, then zeros. The zeros are the part's (it zeroes the scratch once): only
 * the values are copied.
 */
function copyGradients(dyPlanes: usize, M: i32, OH: i32, OW: i32, shift: i32, Ld: i32, dys: usize): void {
  for (let r = 0; r < M * OH; r++) {
    const to = dys + (<usize>(r * Ld + shift) << 2);
    const from = dyPlanes + (<usize>(r * OW) << 2);
    let j = 0;
    for (; j + 4 <= OW; j += 4) v128.store(to + (<usize>j << 2), v128.load(from + (<usize>j << 2)));
    for (; j < OW; j++) store<f32>(to + (<usize>j << 2), load<f32>(from + (<usize>j << 2)));
  }
}

/**
 * The terms of dx_pad's rows u = h + padTop, phase by phase: the (m, p, q) that reach the row, in that
 * order (the sum's), as the address of the splatted weight and of the dy row at k = 0 — the same for every
 * image and channel, since each reuses the weight and dy scratches. At `terms`: H·sw counts, then H·sw
 * lists of M·kh·kw entries.
 */
function listTerms(
  H: i32, M: i32, kh: i32, kw: i32, sh: i32, sw: i32, dh: i32, padTop: i32, OH: i32, Ld: i32, shift: i32,
  table: usize, wv: usize, dys: usize, terms: usize,
): void {
  const taps = kh * kw;
  const lists = terms + (<usize>(H * sw) << 2);
  for (let h = 0; h < H; h++) {
    const u = h + padTop;
    for (let phase = 0; phase < sw; phase++) {
      const list = h * sw + phase;
      const at = lists + (<usize>(list * M * taps) << 3);
      let E = 0;
      for (let m = 0; m < M; m++) {
        for (let p = 0; p < kh; p++) {
          const d = u - p * dh;
          if (d < 0) break;
          const i = d / sh;
          if (i * sh != d || i >= OH) continue;
          const dyRow = dys + (<usize>((m * OH + i) * Ld + shift) << 2);
          for (let q = 0; q < kw; q++) {
            const tap = p * kw + q;
            if (load<i32>(table + (<usize>(taps + tap) << 2)) != phase) continue;
            const term = at + (<usize>E << 3);
            store<u32>(term, wv + (<usize>(m * taps + tap) << 4));
            store<u32>(term, dyRow - (<usize>load<i32>(table + (<usize>(2 * taps + tap) << 2)) << 2), 4);
            E++;
          }
        }
      }
      store<i32>(terms + (<usize>list << 2), E);
    }
  }
}

/**
 * dx's plane (n, c) (H × W) from the dy scratch: row by row, dx_pad's row u = h + padTop summed phase by
 * phase from its terms (listTerms) into `row` (sw × Lx floats), 4 columns a vector, up to four vectors a pass;
 * then its columns padLeft … padLeft + W − 1 copied out.
 */
function gatherDx(H: i32, W: i32, M: i32, taps: i32, sw: i32, padLeft: i32, terms: usize, row: usize, dx: usize): void {
  const Lx = dxPhaseLength(W, sw, padLeft);
  const lists = terms + (<usize>(H * sw) << 2);
  for (let h = 0; h < H; h++) {
    for (let phase = 0; phase < sw; phase++) {
      const list = h * sw + phase;
      const E = load<i32>(terms + (<usize>list << 2));
      const first = lists + (<usize>(list * M * taps) << 3);
      const out = row + (<usize>(phase * Lx) << 2);
      let k = 0;
      for (; k + 16 <= Lx; k += 16) {
        let a0 = f32x4.splat(0), a1 = f32x4.splat(0), a2 = f32x4.splat(0), a3 = f32x4.splat(0);
        const o = <usize>k << 2;
        for (let e = 0; e < E; e++) {
          const term = first + (<usize>e << 3);
          const wt = v128.load(load<u32>(term));
          const at = <usize>load<u32>(term, 4) + o;
          a0 = f32x4.add(a0, f32x4.mul(wt, v128.load(at)));
          a1 = f32x4.add(a1, f32x4.mul(wt, v128.load(at, 16)));
          a2 = f32x4.add(a2, f32x4.mul(wt, v128.load(at, 32)));
          a3 = f32x4.add(a3, f32x4.mul(wt, v128.load(at, 48)));
        }
        v128.store(out + o, a0);
        v128.store(out + o, a1, 16);
        v128.store(out + o, a2, 32);
        v128.store(out + o, a3, 48);
      }
      for (; k + 8 <= Lx; k += 8) {
        let a0 = f32x4.splat(0), a1 = f32x4.splat(0);
        const o = <usize>k << 2;
        for (let e = 0; e < E; e++) {
          const term = first + (<usize>e << 3);
          const wt = v128.load(load<u32>(term));
          const at = <usize>load<u32>(term, 4) + o;
          a0 = f32x4.add(a0, f32x4.mul(wt, v128.load(at)));
          a1 = f32x4.add(a1, f32x4.mul(wt, v128.load(at, 16)));
        }
        v128.store(out + o, a0);
        v128.store(out + o, a1, 16);
      }
      if (k < Lx) {
        let a0 = f32x4.splat(0);
        const o = <usize>k << 2;
        for (let e = 0; e < E; e++) {
          const term = first + (<usize>e << 3);
          a0 = f32x4.add(a0, f32x4.mul(v128.load(load<u32>(term)), v128.load(<usize>load<u32>(term, 4) + o)));
        }
        v128.store(out + o, a0);
      }
    }
    // dx_pad's row in column order (phases interleaved), then its columns padLeft … padLeft + W − 1
    let line = row;
    if (sw == 2) {
      line = row + (<usize>(2 * Lx) << 2);
      for (let k = 0; k < Lx; k += 4) {
        const a = v128.load(row + (<usize>k << 2));
        const b = v128.load(row + (<usize>(Lx + k) << 2));
        v128.store(line + (<usize>k << 3), v128.shuffle<f32>(a, b, 0, 4, 1, 5));
        v128.store(line + (<usize>k << 3), v128.shuffle<f32>(a, b, 2, 6, 3, 7), 16);
      }
    } else if (sw > 2) {
      line = row + (<usize>(sw * Lx) << 2);
      for (let phase = 0; phase < sw; phase++) {
        for (let k = 0; k < Lx; k++) {
          store<f32>(line + (<usize>(k * sw + phase) << 2), load<f32>(row + (<usize>(phase * Lx + k) << 2)));
        }
      }
    }
    copyFloats(dx + (<usize>(h * W) << 2), line + (<usize>padLeft << 2), W);
  }
}

/**
 * Part t of T of the backward: channels [c0, c1) of C, each with its M outputs: dW[o] += ∂L/∂W[o],
 * db[o] += ∂L/∂b[o] (db = 0: no bias) and, when dx ≠ 0, dx's planes (n, c) for every n (overwritten).
 * x is the forward's input, w (C·M, 1, kh, kw), dy (N, C·M, OH, OW). ws: depthwiseThreadScratchBytes.
 */
export function depthwiseBackwardPart(
  t: i32, T: i32, ws: usize, N: i32, C: i32, H: i32, W: i32, M: i32, kh: i32, kw: i32, sh: i32, sw: i32,
  dh: i32, dw: i32, padTop: i32, padLeft: i32, OH: i32, OW: i32, x: usize, w: usize, dy: usize,
  dW: usize, db: usize, dx: usize,
): void {
  const c0 = partStart(C, t, T, 1);
  const c1 = partStart(C, t + 1, T, 1);
  const taps = kh * kw;
  const L = phaseLength(OW, kw, sw, dw);
  const rowPitch = sw * L;
  const shift = maxShift(kw, sw, dw);
  const Ld = dyRowLength(W, OW, kw, sw, dw, padLeft);
  const table = ws + <usize>piece(0, M, H, W, kh, kw, sh, sw, dh, dw, padLeft, OH, OW);
  const wv = ws + <usize>piece(1, M, H, W, kh, kw, sh, sw, dh, dw, padLeft, OH, OW);
  const acc = ws + <usize>piece(2, M, H, W, kh, kw, sh, sw, dh, dw, padLeft, OH, OW);
  const xs = ws + <usize>piece(3, M, H, W, kh, kw, sh, sw, dh, dw, padLeft, OH, OW);
  const dys = ws + <usize>piece(4, M, H, W, kh, kw, sh, sw, dh, dw, padLeft, OH, OW);
  const row = ws + <usize>piece(5, M, H, W, kh, kw, sh, sw, dh, dw, padLeft, OH, OW);
  const terms = ws + <usize>piece(6, M, H, W, kh, kw, sh, sw, dh, dw, padLeft, OH, OW);
  tapTable(kh, kw, W, sw, dh, dw, padLeft, rowPitch, L, table);
  const ranges = table + (<usize>(3 * taps) << 2);
  if (dx != 0) listTerms(H, M, kh, kw, sh, sw, dh, padTop, OH, Ld, shift, table, wv, dys, terms);
  const rows = xsRows(OH, kh, sh, dh);
  const rowStep = <usize>(sh * rowPitch) << 2;
  const OW4 = round4(OW);
  const dbAcc = acc + (<usize>(M * taps) << 4);
  const O = C * M;
  zeroFloats(xs, rows * rowPitch);
  zeroFloats(dys, M * OH * Ld);
  for (let c = c0; c < c1; c++) {
    zeroFloats(acc, (M * taps + M) * 4);
    if (dx != 0) splatWeights(w + (<usize>(c * M * taps) << 2), M * taps, wv);
    for (let n = 0; n < N; n++) {
      copyPlane(x + (<usize>((n * C + c) * H * W) << 2), H, W, sw, padTop, rows, L, ranges, xs);
      copyGradients(dy + (<usize>((n * O + c * M) * OH * OW) << 2), M, OH, OW, shift, Ld, dys);
      for (let m = 0; m < M; m++) {
        const dyPlane = dys + (<usize>(m * OH * Ld + shift) << 2);
        // dW[o, tap] in one vector accumulator per tap, three taps a pass (dy's vector loaded once for them)
        let tap = 0;
        for (; tap + 3 <= taps; tap += 3) {
          const slot = acc + (<usize>(m * taps + tap) << 4);
          // rows in pairs: even rows into a0…a2, odd rows into b0…b2 (six independent sums), added at the end
          let a0 = v128.load(slot), a1 = v128.load(slot, 16), a2 = v128.load(slot, 32);
          let b0 = f32x4.splat(0), b1 = f32x4.splat(0), b2 = f32x4.splat(0);
          const x0 = xs + <usize>load<i32>(table + (<usize>tap << 2));
          const x1 = xs + <usize>load<i32>(table + (<usize>tap << 2), 4);
          const x2 = xs + <usize>load<i32>(table + (<usize>tap << 2), 8);
          const dyStep = <usize>Ld << 2;
          let i = 0;
          for (; i + 2 <= OH; i += 2) {
            const dyRow = dyPlane + (<usize>(i * Ld) << 2);
            const row = <usize>i * rowStep;
            for (let j = 0; j < OW4; j += 4) {
              const o = <usize>j << 2;
              const d = v128.load(dyRow + o);
              const e = v128.load(dyRow + dyStep + o);
              const r = row + o;
              a0 = f32x4.add(a0, f32x4.mul(d, v128.load(x0 + r)));
              a1 = f32x4.add(a1, f32x4.mul(d, v128.load(x1 + r)));
              a2 = f32x4.add(a2, f32x4.mul(d, v128.load(x2 + r)));
              b0 = f32x4.add(b0, f32x4.mul(e, v128.load(x0 + r + rowStep)));
              b1 = f32x4.add(b1, f32x4.mul(e, v128.load(x1 + r + rowStep)));
              b2 = f32x4.add(b2, f32x4.mul(e, v128.load(x2 + r + rowStep)));
            }
          }
          if (i < OH) {
            const dyRow = dyPlane + (<usize>(i * Ld) << 2);
            const row = <usize>i * rowStep;
            for (let j = 0; j < OW4; j += 4) {
              const o = <usize>j << 2;
              const d = v128.load(dyRow + o);
              a0 = f32x4.add(a0, f32x4.mul(d, v128.load(x0 + row + o)));
              a1 = f32x4.add(a1, f32x4.mul(d, v128.load(x1 + row + o)));
              a2 = f32x4.add(a2, f32x4.mul(d, v128.load(x2 + row + o)));
            }
          }
          v128.store(slot, f32x4.add(a0, b0));
          v128.store(slot, f32x4.add(a1, b1), 16);
          v128.store(slot, f32x4.add(a2, b2), 32);
        }
        for (; tap < taps; tap++) {
          const slot = acc + (<usize>(m * taps + tap) << 4);
          let a0 = v128.load(slot);
          const x0 = xs + <usize>load<i32>(table + (<usize>tap << 2));
          for (let i = 0; i < OH; i++) {
            const dyRow = dyPlane + (<usize>(i * Ld) << 2);
            const row = <usize>i * rowStep;
            for (let j = 0; j < OW4; j += 4) {
              const o = <usize>j << 2;
              a0 = f32x4.add(a0, f32x4.mul(v128.load(dyRow + o), v128.load(x0 + row + o)));
            }
          }
          v128.store(slot, a0);
        }
        if (db != 0) {
          const slot = dbAcc + (<usize>m << 4);
          let s = v128.load(slot);
          for (let i = 0; i < OH; i++) {
            const dyRow = dyPlane + (<usize>(i * Ld) << 2);
            for (let j = 0; j < OW4; j += 4) s = f32x4.add(s, v128.load(dyRow + (<usize>j << 2)));
          }
          v128.store(slot, s);
        }
      }
      if (dx != 0) {
        const dxPlane = dx + (<usize>((n * C + c) * H * W) << 2);
        gatherDx(H, W, M, taps, sw, padLeft, terms, row, dxPlane);
      }
    }
    for (let m = 0; m < M; m++) {
      const o = c * M + m;
      for (let tap = 0; tap < taps; tap++) {
        const d = dW + (<usize>(o * taps + tap) << 2);
        store<f32>(d, load<f32>(d) + laneSum(v128.load(acc + (<usize>(m * taps + tap) << 4))));
      }
      if (db != 0) {
        const d = db + (<usize>o << 2);
        store<f32>(d, load<f32>(d) + laneSum(v128.load(dbAcc + (<usize>m << 4))));
      }
    }
  }
}
