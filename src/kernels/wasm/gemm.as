// f32 GEMM for WebAssembly SIMD (AssemblyScript, compiled by scripts/build-wasm.mjs).
//
//   C[M×N] = alpha · op(A)[M×K] · op(B)[K×N] + beta · C,     row-major, leading dimensions in elements
//
// Pointers are byte offsets into linear memory; every operand already lives there (src/kernels/wasm.ts
// copies them in). Two inner engines, chosen by the form of op(B):
//
// 1. op(B) = B (the NN and TN products: conv forward W·col, conv dcol = Wᵀ·dy, dense x·W and xᵀ·dy).
//    BLIS-style: op(A) is packed once into row panels of MR ≤ 5 rows, k-major, each value stored already
//    broadcast to the 4 lanes of a v128 (packA), then a register tile of MR×8 outputs (10 f32x4
//    accumulators) sweeps k, reading B's rows in place (ldb apart):
//        acc[r][0..7] += a[r,k] · B[k, j..j+7]           for k = 0 … kc−1
//    Blocking: K in blocks of KC (the A panel and B micro-panel of one block stay in L1/L2), M in
//    blocks of MC rows split evenly into ⌈mc/5⌉ panels (so M = 6 runs as 3+3, not 5+1).
//    The accumulators are loaded from C at the start of each K block and stored at its end, and each
//    product is added with a separate multiply and add (no FMA), so every C[i,j] is the plain sequential
//    f32 sum  c = β·c;  c = c + (α·a[i,0])·b[0,j];  c = c + (α·a[i,1])·b[1,j]; …  in k order — the same
//    bits whatever the block sizes, panel split, or which rows a thread is given.
//
// 2. op(B) = Bᵀ (the NT product: conv dW = dy·colᵀ, dense dx = dy·Wᵀ): both operands are contiguous
//    along k, so a 2×4 tile of dot products runs over k in f32x4 lanes (lane l sums the k ≡ l mod 4
//    terms in order), reduced as (l0 + l2) + (l1 + l3), plus the k mod 4 tail summed in order, then
//    C = β·C + α·sum. Again a fixed order that depends on K only, never on the tiling.
//
// Both orders differ from the pure-JS gemm's (float64 intermediates) in the last bits; each is
// deterministic. Scratch: callers pass `ws`, at least gemmScratchBytes(...) bytes (see wasm.ts).
//
// Threads: gemmPart runs one part of a call — a block of C's rows (or of its columns when C is wider
// than tall) through the same gemm() on that sub-problem — and by the two orders above every C[i,j]
// gets the same bits as in a one-thread call.

import { align64f, partStart } from "./parallel";

// K block: a 5×256 A panel (20 KB, pre-broadcast) + a 256×8 B micro-panel (8 KB) sit in L1 (KC = 128 measured
// 1–2% slower on the conv and dense shapes of bench/ab.ts)
export const KC: i32 = 256;
export const MC: i32 = 120; // M block: 120×256 packed A (480 KB, pre-broadcast) stays in L2 while a K block of B streams by
export const MR: i32 = 5; // at most 5 rows × 2 vectors = 10 accumulators: x64 V8 has 16 xmm registers
export const NR: i32 = 8;
// Measured with bench/ab.ts (interleaved, CPU time; AMD EPYC, Node 20.20): MR = 4 was 4–13% slower than 5
// on every GEMM and conv shape, and tile8 with two k steps per loop iteration 13–28% slower: V8 11.3
// (node --print-wasm-code) hoists the second step's loads above the first step's arithmetic and spills
// accumulators. For the same reason the k loop is a `while` on the A pointer: as a do-while V8 hoisted
// all of a step's loads and spilled three accumulators (GEMM 256³ at 0.53×).

/** Number of row panels an mc-row block is split into: ⌈mc / MR⌉ of nearly equal height. */
@inline export function panelCount(mc: i32): i32 {
  return (mc + MR - 1) / MR;
}

/** Height of panel p of an mc-row block split into np panels: the first mc mod np panels get one more row. */
@inline export function panelRows(mc: i32, np: i32, p: i32): i32 {
  return mc / np + (p < mc % np ? 1 : 0);
}

// ------------------------------------------------------------------------------------------------
// Engine 1: packed A × B in place.

/**
 * Register tile: C[mr×8] (+)= Apanel · B over kc ≥ 1 steps. a: packed panel (kc × mr v128s, k-major,
 * each value in all 4 lanes: one v128.load with a constant offset per row, where v128.load32_splat(a, 4·r)
 * made V8 11.3 emit an extra lea per row: 40 instructions per 10 multiply-adds, now 35); b: B[k0, j0]
 * with rows ldb bytes apart; c: C[i0, j0] with rows ldc bytes apart. accumulate = false starts from zero
 * (β = 0, first K block) instead of reading C — or, when rowBias ≠ 0, from rowBias[r] in every column of
 * row r (a convolution's bias: the sums then start from the very value a bias-filled C would give, so
 * the bits are those of fill-then-accumulate, without the pass that fills C). mr is a compile-time
 * constant at every call site, so the unused accumulators and branches fold away.
 */
@inline function tile8(mr: i32, kc: i32, a: usize, b: usize, ldb: usize, c: usize, ldc: usize, accumulate: bool, rowBias: usize): void {
  let c00 = f32x4.splat(0);
  let c01 = c00, c10 = c00, c11 = c00, c20 = c00, c21 = c00, c30 = c00, c31 = c00, c40 = c00, c41 = c00;
  if (accumulate) {
    c00 = v128.load(c); c01 = v128.load(c, 16);
    if (mr > 1) { c10 = v128.load(c + ldc); c11 = v128.load(c + ldc, 16); }
    if (mr > 2) { c20 = v128.load(c + 2 * ldc); c21 = v128.load(c + 2 * ldc, 16); }
    if (mr > 3) { c30 = v128.load(c + 3 * ldc); c31 = v128.load(c + 3 * ldc, 16); }
    if (mr > 4) { c40 = v128.load(c + 4 * ldc); c41 = v128.load(c + 4 * ldc, 16); }
  } else if (rowBias != 0) {
    c00 = v128.load32_splat(rowBias); c01 = c00;
    if (mr > 1) { c10 = v128.load32_splat(rowBias, 4); c11 = c10; }
    if (mr > 2) { c20 = v128.load32_splat(rowBias, 8); c21 = c20; }
    if (mr > 3) { c30 = v128.load32_splat(rowBias, 12); c31 = c30; }
    if (mr > 4) { c40 = v128.load32_splat(rowBias, 16); c41 = c40; }
  }
  const aEnd = a + (<usize>(kc * mr) << 4);
  while (a < aEnd) {
    const b0 = v128.load(b);
    const b1 = v128.load(b, 16);
    let av = v128.load(a);
    c00 = f32x4.add(c00, f32x4.mul(av, b0)); c01 = f32x4.add(c01, f32x4.mul(av, b1));
    if (mr > 1) {
      av = v128.load(a, 16);
      c10 = f32x4.add(c10, f32x4.mul(av, b0)); c11 = f32x4.add(c11, f32x4.mul(av, b1));
    }
    if (mr > 2) {
      av = v128.load(a, 32);
      c20 = f32x4.add(c20, f32x4.mul(av, b0)); c21 = f32x4.add(c21, f32x4.mul(av, b1));
    }
    if (mr > 3) {
      av = v128.load(a, 48);
      c30 = f32x4.add(c30, f32x4.mul(av, b0)); c31 = f32x4.add(c31, f32x4.mul(av, b1));
    }
    if (mr > 4) {
      av = v128.load(a, 64);
      c40 = f32x4.add(c40, f32x4.mul(av, b0)); c41 = f32x4.add(c41, f32x4.mul(av, b1));
    }
    a += <usize>(mr << 4);
    b += ldb;
  }
  v128.store(c, c00); v128.store(c, c01, 16);
  if (mr > 1) { v128.store(c + ldc, c10); v128.store(c + ldc, c11, 16); }
  if (mr > 2) { v128.store(c + 2 * ldc, c20); v128.store(c + 2 * ldc, c21, 16); }
  if (mr > 3) { v128.store(c + 3 * ldc, c30); v128.store(c + 3 * ldc, c31, 16); }
  if (mr > 4) { v128.store(c + 4 * ldc, c40); v128.store(c + 4 * ldc, c41, 16); }
}

/** tile8 for a panel of mr ≤ MR rows (mr a run-time value). */
export function tile(mr: i32, kc: i32, a: usize, b: usize, ldb: usize, c: usize, ldc: usize, accumulate: bool, rowBias: usize = 0): void {
  switch (mr) {
    case 5: tile8(5, kc, a, b, ldb, c, ldc, accumulate, rowBias); break;
    case 4: tile8(4, kc, a, b, ldb, c, ldc, accumulate, rowBias); break;
    case 3: tile8(3, kc, a, b, ldb, c, ldc, accumulate, rowBias); break;
    case 2: tile8(2, kc, a, b, ldb, c, ldc, accumulate, rowBias); break;
    default: tile8(1, kc, a, b, ldb, c, ldc, accumulate, rowBias); break;
  }
}

/** Floats of packed A for an M×K op(A): every element once, broadcast to 4 lanes (panels are not padded). */
@inline export function packedSize(M: i32, K: i32): i32 {
  return M * K * 4;
}

/**
 * Pack α·op(A) (M×K; op(A) = A, or Aᵀ when transA, A stored with leading dimension lda) into the layout
 * tile8 reads: K blocks of KC in order, each holding M×kc v128s: M blocks of MC rows, each split into
 * panels (panelRows), each panel kc × mr, k-major, every value splatted to 4 lanes. Panel (rows r0…,
 * K block pc) starts at apack + (pc·M + r0·kc)·16.
 */
export function packA(transA: bool, M: i32, K: i32, alpha: f32, a: usize, lda: i32, apack: usize): void {
  for (let pc = 0; pc < K; pc += KC) {
    const kc = min(KC, K - pc);
    for (let ic = 0; ic < M; ic += MC) {
      const mc = min(MC, M - ic);
      const np = panelCount(mc);
      let r0 = ic;
      for (let p = 0; p < np; p++) {
        const mr = panelRows(mc, np, p);
        let dst = apack + (<usize>(pc * M + r0 * kc) << 4);
        if (transA) {
          // op(A)[r, k] = A[k, r]: each k reads mr consecutive floats
          for (let k = 0; k < kc; k++) {
            const src = a + (<usize>((pc + k) * lda + r0) << 2);
            for (let i = 0; i < mr; i++) v128.store(dst + (<usize>i << 4), f32x4.splat(load<f32>(src + (<usize>i << 2)) * alpha));
            dst += <usize>(mr << 4);
          }
        } else {
          for (let i = 0; i < mr; i++) {
            const src = a + (<usize>((r0 + i) * lda + pc) << 2);
            let d = dst + (<usize>i << 4);
            for (let k = 0; k < kc; k++) {
              v128.store(d, f32x4.splat(load<f32>(src + (<usize>k << 2)) * alpha));
              d += <usize>(mr << 4);
            }
          }
        }
        r0 += mr;
      }
    }
  }
}

/** Row panels from which gemmPacked copies B's strips into a contiguous block (see there). */
const PACK_B_PANELS: i32 = 6;

/** Scratch bytes gemmPacked needs: a KC×8 packed strip of B (zero-padded at the edge), a 5×8 C edge tile. */
export const PACKED_WS_BYTES: i32 = (KC * NR + MR * NR) * 4;

/**
 * C[M×N] (+)= packedA · B, B read in place (rows ldb elements apart). accumulate = false: C is overwritten
 * (β = 0), else accumulated into. With ≥ PACK_B_PANELS row panels each 8-column strip of B is copied
 * into a contiguous kc × 8 block first (reused by every row panel); the last N mod 8 columns go through
 * a zero-padded copy of B's edge and a temporary C tile, so the same tile8 serves them (same bits).
 */
export function gemmPacked(M: i32, N: i32, K: i32, apack: usize, b: usize, ldb: i32, c: usize, ldc: i32, accumulate: bool, ws: usize): void {
  gemmPackedBias(M, N, K, apack, b, ldb, c, ldc, accumulate, 0, ws);
}

/**
 * gemmPacked that, when not accumulating and rowBias ≠ 0, starts row i of C from rowBias[i] (M floats)
 * instead of zero: C = rowBias·1ᵀ + packedA · B, with the bits of filling C with the bias and then
 * accumulating (tile8).
 */
export function gemmPackedBias(M: i32, N: i32, K: i32, apack: usize, b: usize, ldb: i32, c: usize, ldc: i32, accumulate: bool, rowBias: usize, ws: usize): void {
  if (M <= 0 || N <= 0) return;
  const ldbB = <usize>ldb << 2;
  const ldcB = <usize>ldc << 2;
  const nFull = N & ~7;
  const rem = N - nFull;
  const bEdge = ws;
  const cEdge = ws + <usize>((KC * NR) << 2);
  if (K <= 0) {
    if (!accumulate) {
      for (let i = 0; i < M; i++) {
        const v = rowBias != 0 ? load<f32>(rowBias + (<usize>i << 2)) : 0;
        for (let j = 0; j < N; j++) store<f32>(c + <usize>i * ldcB + (<usize>j << 2), v);
      }
    }
    return;
  }
  for (let pc = 0; pc < K; pc += KC) {
    const kc = min(KC, K - pc);
    const ld = accumulate || pc > 0;
    const bBlock = b + <usize>pc * ldbB;
    const aBlock = apack + (<usize>(pc * M) << 4);
    for (let ic = 0; ic < M; ic += MC) {
      const mc = min(MC, M - ic);
      const np = panelCount(mc);
      // With many row panels, pack each kc × 8 strip of B contiguously first: read in place its rows are
      // ldb apart, and with a power-of-two ldb (N = 256: 1 KiB) they map to a few L1 sets and evict each
      // other (GEMM 256³: +12% measured with bench/ab.ts). With few panels the copy costs more than it
      // saves (LeNet's convolutions, 2 and 4 panels: 2–4% slower), so B is read in place there; from 6 on
      // it pays (the 3×3 conv 16→32, 7 panels over a 784-float ldb: forward +5%, threshold 8 → 6). A
      // copy changes no value: the sums, and their bits, are the same either way.
      const packB = np >= PACK_B_PANELS;
      for (let jc = 0; jc < nFull; jc += NR) {
        let bStrip = bBlock + (<usize>jc << 2);
        let ldStrip = ldbB;
        if (packB) {
          for (let k = 0; k < kc; k++) {
            const from = bStrip + <usize>k * ldbB;
            const to = bEdge + (<usize>(k * NR) << 2);
            v128.store(to, v128.load(from));
            v128.store(to, v128.load(from, 16), 16);
          }
          bStrip = bEdge;
          ldStrip = NR << 2;
        }
        let r0 = ic;
        for (let p = 0; p < np; p++) {
          const mr = panelRows(mc, np, p);
          const cTile = c + <usize>r0 * ldcB + (<usize>jc << 2);
          tile(mr, kc, aBlock + (<usize>(r0 * kc) << 4), bStrip, ldStrip, cTile, ldcB, ld, rowBias == 0 ? 0 : rowBias + (<usize>r0 << 2));
          r0 += mr;
        }
      }
      if (rem > 0) {
        for (let k = 0; k < kc; k++) {
          const from = bBlock + <usize>k * ldbB + (<usize>nFull << 2);
          const to = bEdge + (<usize>(k * NR) << 2);
          v128.store(to, f32x4.splat(0));
          v128.store(to, f32x4.splat(0), 16);
          for (let j = 0; j < rem; j++) store<f32>(to + (<usize>j << 2), load<f32>(from + (<usize>j << 2)));
        }
        let r0 = ic;
        for (let p = 0; p < np; p++) {
          const mr = panelRows(mc, np, p);
          const cTile = c + <usize>r0 * ldcB + (<usize>nFull << 2);
          if (ld) {
            for (let i = 0; i < mr; i++) {
              for (let j = 0; j < rem; j++) store<f32>(cEdge + (<usize>(i * NR + j) << 2), load<f32>(cTile + <usize>i * ldcB + (<usize>j << 2)));
            }
          }
          tile(mr, kc, aBlock + (<usize>(r0 * kc) << 4), bEdge, NR << 2, cEdge, NR << 2, ld, rowBias == 0 ? 0 : rowBias + (<usize>r0 << 2));
          for (let i = 0; i < mr; i++) {
            for (let j = 0; j < rem; j++) store<f32>(cTile + <usize>i * ldcB + (<usize>j << 2), load<f32>(cEdge + (<usize>(i * NR + j) << 2)));
          }
          r0 += mr;
        }
      }
    }
  }
}

// ------------------------------------------------------------------------------------------------
// Engine 2: dot products, C = β·C + α·A·Bᵀ with A (M×K) and B (N×K) both contiguous along k.

/** (l0 + l2) + (l1 + l3). */
@inline function hsum(v: v128): f32 {
  const h = f32x4.add(v, v128.shuffle<f32>(v, v, 2, 3, 0, 1));
  return f32x4.extract_lane(h, 0) + f32x4.extract_lane(h, 1);
}

/**
 * [hsum(a), hsum(b), hsum(c), hsum(d)] in 7 vector operations instead of 4 × 5: the same pairs added in
 * the same grouping, (l0 + l2) + (l1 + l3), so the same bits.
 */
@inline function hsum4(a: v128, b: v128, c: v128, d: v128): v128 {
  const ab = f32x4.add(v128.shuffle<f32>(a, b, 0, 1, 4, 5), v128.shuffle<f32>(a, b, 2, 3, 6, 7));
  const cd = f32x4.add(v128.shuffle<f32>(c, d, 0, 1, 4, 5), v128.shuffle<f32>(c, d, 2, 3, 6, 7));
  return f32x4.add(v128.shuffle<f32>(ab, cd, 0, 2, 4, 6), v128.shuffle<f32>(ab, cd, 1, 3, 5, 7));
}

/** finish for four consecutive entries of C at once (lane j: c + 4j). */
@inline function finish4(c: usize, sums: v128, alpha: f32, beta: f32): void {
  const scaled = f32x4.mul(f32x4.splat(alpha), sums);
  if (beta == 0) v128.store(c, scaled);
  else v128.store(c, f32x4.add(f32x4.mul(f32x4.splat(beta), v128.load(c)), scaled));
}

@inline function finish(c: usize, sum: f32, alpha: f32, beta: f32): void {
  if (beta == 0) store<f32>(c, alpha * sum);
  else store<f32>(c, beta * load<f32>(c) + alpha * sum);
}

/** An r×s tile (r ≤ 2 rows of A, s ≤ 4 rows of B) of dot products over K; r and s are constants. */
@inline function dotTile(r: i32, s: i32, K: i32, a: usize, lda: usize, b: usize, ldb: usize, c: usize, ldc: usize, alpha: f32, beta: f32): void {
  let s00 = f32x4.splat(0);
  let s01 = s00, s02 = s00, s03 = s00, s10 = s00, s11 = s00, s12 = s00, s13 = s00;
  const K4 = K & ~3;
  const a1 = a + lda;
  const b1 = b + ldb, b2 = b + 2 * ldb, b3 = b + 3 * ldb;
  for (let k = 0; k < K4; k += 4) {
    const o = <usize>k << 2;
    const x0 = v128.load(a + o);
    let x1 = x0;
    if (r > 1) x1 = v128.load(a1 + o);
    let y = v128.load(b + o);
    s00 = f32x4.add(s00, f32x4.mul(x0, y));
    if (r > 1) s10 = f32x4.add(s10, f32x4.mul(x1, y));
    if (s > 1) {
      y = v128.load(b1 + o);
      s01 = f32x4.add(s01, f32x4.mul(x0, y));
      if (r > 1) s11 = f32x4.add(s11, f32x4.mul(x1, y));
    }
    if (s > 2) {
      y = v128.load(b2 + o);
      s02 = f32x4.add(s02, f32x4.mul(x0, y));
      if (r > 1) s12 = f32x4.add(s12, f32x4.mul(x1, y));
    }
    if (s > 3) {
      y = v128.load(b3 + o);
      s03 = f32x4.add(s03, f32x4.mul(x0, y));
      if (r > 1) s13 = f32x4.add(s13, f32x4.mul(x1, y));
    }
  }
  if (s == 4) {
    // four dot products per row of the tile reduced, tailed and stored as one vector each
    let h0 = hsum4(s00, s01, s02, s03);
    let h1 = h0;
    if (r > 1) h1 = hsum4(s10, s11, s12, s13);
    for (let k = K4; k < K; k++) {
      const o = <usize>k << 2;
      let y = v128.load32_splat(b + o);
      y = f32x4.replace_lane(y, 1, load<f32>(b1 + o));
      y = f32x4.replace_lane(y, 2, load<f32>(b2 + o));
      y = f32x4.replace_lane(y, 3, load<f32>(b3 + o));
      h0 = f32x4.add(h0, f32x4.mul(v128.load32_splat(a + o), y));
      if (r > 1) h1 = f32x4.add(h1, f32x4.mul(v128.load32_splat(a1 + o), y));
    }
    finish4(c, h0, alpha, beta);
    if (r > 1) finish4(c + ldc, h1, alpha, beta);
    return;
  }
  // the K mod 4 tail, in order, after the lane reduction
  let t00: f32 = hsum(s00), t01: f32 = hsum(s01), t02: f32 = hsum(s02), t03: f32 = hsum(s03);
  let t10: f32 = hsum(s10), t11: f32 = hsum(s11), t12: f32 = hsum(s12), t13: f32 = hsum(s13);
  for (let k = K4; k < K; k++) {
    const o = <usize>k << 2;
    const x0 = load<f32>(a + o);
    const x1 = r > 1 ? load<f32>(a1 + o) : <f32>0;
    let y = load<f32>(b + o);
    t00 += x0 * y; if (r > 1) t10 += x1 * y;
    if (s > 1) { y = load<f32>(b1 + o); t01 += x0 * y; if (r > 1) t11 += x1 * y; }
    if (s > 2) { y = load<f32>(b2 + o); t02 += x0 * y; if (r > 1) t12 += x1 * y; }
    if (s > 3) { y = load<f32>(b3 + o); t03 += x0 * y; if (r > 1) t13 += x1 * y; }
  }
  finish(c, t00, alpha, beta);
  if (s > 1) finish(c + 4, t01, alpha, beta);
  if (s > 2) finish(c + 8, t02, alpha, beta);
  if (s > 3) finish(c + 12, t03, alpha, beta);
  if (r > 1) {
    const c1 = c + ldc;
    finish(c1, t10, alpha, beta);
    if (s > 1) finish(c1 + 4, t11, alpha, beta);
    if (s > 2) finish(c1 + 8, t12, alpha, beta);
    if (s > 3) finish(c1 + 12, t13, alpha, beta);
  }
}

/** C[M×N] = β·C + α·A·Bᵀ; A is M×K (lda), B is N×K (ldb), all row-major, leading dimensions in elements. */
export function gemmNT(M: i32, N: i32, K: i32, alpha: f32, a: usize, lda: i32, b: usize, ldb: i32, beta: f32, c: usize, ldc: i32): void {
  const ldaB = <usize>lda << 2;
  const ldbB = <usize>ldb << 2;
  const ldcB = <usize>ldc << 2;
  const N4 = N & ~3;
  const sRem = N - N4;
  for (let i = 0; i < M; i += 2) {
    const ai = a + <usize>i * ldaB;
    const ci = c + <usize>i * ldcB;
    if (i + 1 < M) {
      for (let j = 0; j < N4; j += 4) dotTile(2, 4, K, ai, ldaB, b + <usize>j * ldbB, ldbB, ci + (<usize>j << 2), ldcB, alpha, beta);
      const bj = b + <usize>N4 * ldbB;
      const cj = ci + (<usize>N4 << 2);
      if (sRem == 3) dotTile(2, 3, K, ai, ldaB, bj, ldbB, cj, ldcB, alpha, beta);
      else if (sRem == 2) dotTile(2, 2, K, ai, ldaB, bj, ldbB, cj, ldcB, alpha, beta);
      else if (sRem == 1) dotTile(2, 1, K, ai, ldaB, bj, ldbB, cj, ldcB, alpha, beta);
    } else {
      for (let j = 0; j < N4; j += 4) dotTile(1, 4, K, ai, ldaB, b + <usize>j * ldbB, ldbB, ci + (<usize>j << 2), ldcB, alpha, beta);
      const bj = b + <usize>N4 * ldbB;
      const cj = ci + (<usize>N4 << 2);
      if (sRem == 3) dotTile(1, 3, K, ai, ldaB, bj, ldbB, cj, ldcB, alpha, beta);
      else if (sRem == 2) dotTile(1, 2, K, ai, ldaB, bj, ldbB, cj, ldcB, alpha, beta);
      else if (sRem == 1) dotTile(1, 1, K, ai, ldaB, bj, ldbB, cj, ldcB, alpha, beta);
    }
  }
}

// ------------------------------------------------------------------------------------------------
// The general entry point.

/** C[i, 0..N) *= beta for every row (beta = 0 writes zeros without reading C, as BLAS). */
export function scaleRows(M: i32, N: i32, beta: f32, c: usize, ldc: i32): void {
  const ldcB = <usize>ldc << 2;
  for (let i = 0; i < M; i++) {
    const row = c + <usize>i * ldcB;
    if (beta == 0) memory.fill(row, 0, <usize>N << 2);
    else for (let j = 0; j < N; j++) store<f32>(row + (<usize>j << 2), beta * load<f32>(row + (<usize>j << 2)));
  }
}

/**
 * Scratch bytes gemm() needs for these arguments (a packed or transposed copy of A, plus edge buffers), in f64:
 * the true size however large (in i32 it wrapped past 2³¹ bytes, and a call wrote past a too-small scratch).
 */
export function gemmScratchBytes(transA: bool, transB: bool, M: i32, K: i32): f64 {
  if (transB) return transA ? <f64>M * <f64>K * 4 : 0;
  return <f64>M * <f64>K * 16 + PACKED_WS_BYTES;
}

/**
 * C = α·op(A)·op(B) + β·C. A, B, C are byte offsets of the first element; lda/ldb/ldc in elements.
 * ws: gemmScratchBytes(...) bytes of scratch.
 */
export function gemm(transA: bool, transB: bool, M: i32, N: i32, K: i32, alpha: f32, a: usize, lda: i32, b: usize, ldb: i32, beta: f32, c: usize, ldc: i32, ws: usize): void {
  if (M <= 0 || N <= 0) return;
  if (K <= 0 || alpha == 0) {
    if (beta != 1) scaleRows(M, N, beta, c, ldc);
    return;
  }
  if (transB) {
    if (transA) {
      // op(A) = Aᵀ: transpose A (K×M) into ws as M×K so both operands run along k
      for (let i = 0; i < M; i++) {
        for (let k = 0; k < K; k++) store<f32>(ws + (<usize>(i * K + k) << 2), load<f32>(a + (<usize>(k * lda + i) << 2)));
      }
      gemmNT(M, N, K, alpha, ws, K, b, ldb, beta, c, ldc);
    } else {
      gemmNT(M, N, K, alpha, a, lda, b, ldb, beta, c, ldc);
    }
    return;
  }
  if (beta != 0 && beta != 1) scaleRows(M, N, beta, c, ldc);
  packA(transA, M, K, alpha, a, lda, ws);
  gemmPacked(M, N, K, ws, b, ldb, c, ldc, beta != 0, ws + (<usize>packedSize(M, K) << 2));
}

// ------------------------------------------------------------------------------------------------
// Threads.

/** Scratch bytes gemmPart(t, T, …) needs (the largest part's, cache-line aligned). */
export function gemmPartScratchBytes(transA: bool, transB: bool, M: i32, N: i32, K: i32, T: i32): f64 {
  const rows = M >= N ? partStart(M, 1, T, 1) : M; // part 0 is the largest
  return align64f(gemmScratchBytes(transA, transB, rows, K)) + 64;
}

/**
 * Part t of T of gemm(...): rows [m0, m1) of C when M ≥ N, else columns [j0, j1) (in multiples of 8,
 * the register tile's width). ws: gemmPartScratchBytes(…, T) bytes of scratch for this call alone.
 */
export function gemmPart(
  t: i32, T: i32, ws: usize, transA: bool, transB: bool, M: i32, N: i32, K: i32, alpha: f32, a: usize, lda: i32, b: usize, ldb: i32,
  beta: f32, c: usize, ldc: i32,
): void {
  if (M >= N) {
    const m0 = partStart(M, t, T, 1);
    const m1 = partStart(M, t + 1, T, 1);
    if (m0 >= m1) return;
    // op(A)'s rows m0…: rows of A, or columns of A when it is transposed
    const aOff = transA ? <usize>m0 << 2 : <usize>m0 * (<usize>lda << 2);
    gemm(transA, transB, m1 - m0, N, K, alpha, a + aOff, lda, b, ldb, beta, c + <usize>m0 * (<usize>ldc << 2), ldc, ws);
  } else {
    const j0 = partStart(N, t, T, NR);
    const j1 = partStart(N, t + 1, T, NR);
    if (j0 >= j1) return;
    // op(B)'s columns j0…: columns of B, or rows of B when it is transposed
    const bOff = transB ? <usize>j0 * (<usize>ldb << 2) : <usize>j0 << 2;
    gemm(transA, transB, M, j1 - j0, K, alpha, a, lda, b + bOff, ldb, beta, c + (<usize>j0 << 2), ldc, ws);
  }
}
