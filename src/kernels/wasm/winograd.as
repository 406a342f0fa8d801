// The 3×3 stride-1 convolution by Winograd's minimal filtering F(2×2, 3×3) (Lavin & Gray 2016), for
// WebAssembly SIMD. docs/derivation.md §6 derives it and its backward; the notation here is the same.
//
// Each 2×2 block of outputs (a tile) of one output channel o is
//
//   Y = Aᵀ [ Σ_c U[o,c] ⊙ V[c] ] A          U[o,c] = G g[o,c] Gᵀ   (4×4: the weights' transform)
//                                           V[c]   = Bᵀ d[c] B      (4×4: the transform of the input
//                                                                    patch d[c] the tile reads)
//
//        ⎡1  0 −1  0⎤        ⎡ 1    0    0 ⎤        ⎡1  1  1  0⎤
//   Bᵀ = ⎢0  1  1  0⎥    G = ⎢1/2  1/2  1/2⎥   Aᵀ = ⎣0  1 −1 −1⎦
//        ⎢0 −1  1  0⎥        ⎢1/2 −1/2  1/2⎥
//        ⎣0  1  0 −1⎦        ⎣ 0    0    1 ⎦
//
// so the Σ_c is, for each of the 16 positions ξ = 4i + j of the 4×4 transforms, one GEMM
// M_ξ (O × tiles) = U_ξ (O × C) · V_ξ (C × tiles): 16·O·C multiply-adds per tile of 4 outputs where the
// direct convolution spends 36·O·C — 2.25× fewer — at the price of the transforms (additions only).
//
// Layout of one group of images (a part of the call: its images' tiles side by side, so that the GEMMs
// have enough columns even for 7×7 maps):
//   V  [(ξ·C + c)·ld + t]     t = image·tilesPerImage + tileRow·tilesPerRow + tileCol
//   M  [(ξ·O + o)·ld + t]     ld = tiles + 4: the transforms run over 4 tiles of a row at a time
//                             (a tile per lane) and the last group of a row spills up to 3 lanes past
//                             it, into the next row's tiles (written afterwards) or the slack
//   U  packed per ξ for gemmPacked (packA of the O × C matrix U_ξ)
// Every output's sums run in a fixed order that depends only on the shapes, and a part owns whole
// images: any number of parts on any threads gives the same bits.
//
// Backward (§6): the input gradient is the forward of dy with the transposed, 180°-rotated kernel
// (winogradPackWeights(…, flipped)); the weight gradient, by the chain rule through the transforms,
//
//   dU[o,c] = Σ_tiles Z[o] ⊙ V[c]    Z[o] = A dY[o] Aᵀ   (4×4: the transform of the tile's 2×2 of dy)
//   dg[o,c] += Gᵀ dU[o,c] G
//
// — per ξ one GEMM dU_ξ (O × C) = Z_ξ (O × tiles) · V_ξᵀ, its sum over the batch's tiles. That sum is
// split into chunks of images fixed by the shapes alone (winogradWeightChunks, never by the thread count),
// each chunk's partial dU summed by one part, and the chunks' partials added in chunk order afterwards:
// the same bits on any number of threads, and the input transform computed once per image.

import { PACKED_WS_BYTES, gemmNT, gemmPacked, packA, packedSize } from "./gemm";
import { channelSums } from "./conv";
import { align64, blockBytes, partStart } from "./parallel";

/** Tiles a part puts side by side in one GEMM at least (images are added until there are as many). */
const GROUP_TILES: i32 = 64;
/** Most chunks the weight gradient's sum over the batch is split into (winogradWeightChunks). */
const WEIGHT_CHUNKS: i32 = 8;

@inline function tilesOf(size: i32): i32 {
  return (size + 1) >> 1;
}

/** Tiles per row rounded up to whole groups of 4 lanes: the padded image's width covers them. */
@inline function laneTiles(OW: i32): i32 {
  return (tilesOf(OW) + 3) & ~3;
}

/** Images a part takes into one group of GEMMs (tiles counted in f64: no overflow on any map). */
export function winogradGroupImages(OH: i32, OW: i32): i32 {
  const per = <f64>tilesOf(OH) * <f64>tilesOf(OW);
  return <i32>max(1, Math.ceil(<f64>GROUP_TILES / per));
}

/** Height and width of the zero-padded image the input transform reads (4×4 patches at stride 2). */
@inline function paddedHeight(H: i32, padTop: i32, OH: i32): f64 {
  return max(<f64>H + padTop, 2 * <f64>tilesOf(OH) + 2);
}
@inline function paddedWidth(W: i32, padLeft: i32, OW: i32): f64 {
  return max(<f64>W + padLeft, 2 * <f64>laneTiles(OW) + 2);
}

/** Bytes of the 16 packed U_ξ (winogradPackWeights). */
export function winogradPackedBytes(C: i32, O: i32): i32 {
  return 16 * align64(packedSize(O, C) << 2) + 64;
}

// Sizes and offsets of the scratch are computed in f64, so that winogradThreadScratchBytes reports the true
// size of any geometry (in i32, 64 → 64 channels at 1024×1024 wrapped to a negative size); the callers run
// Winograd only where it is small enough (wasm-ops.ts winogradFits), and there every offset fits an i32.

/**
 * Scratch bytes each thread of winogradForwardPart, winogradWeightGradPart and winogradWeightGradFinishPart
 * needs: the padded image, V, M (or Z) and gemmPacked's edge buffers (the finish: 16 rows of C float64 sums,
 * C rounded up to even, from ws's start — at most 128·(C + 1) bytes, less than V's 64·C·ld + 64 alone, as
 * ld ≥ 5). In f64: the true size, however large.
 */
export function winogradThreadScratchBytes(N: i32, C: i32, H: i32, W: i32, O: i32, padTop: i32, padLeft: i32, OH: i32, OW: i32): f64 {
  const ld = ldOf(N, OH, OW);
  return padBytes(C, H, W, O, padTop, padLeft, OH, OW) + blockBytes(16 * <f64>C * ld) + blockBytes(16 * <f64>O * ld) + blockBytes(PACKED_WS_BYTES >> 2);
}

/** The padded-image buffer: x's padded planes, or (weight gradient) dy's, whichever is larger. */
@inline function padBytes(C: i32, H: i32, W: i32, O: i32, padTop: i32, padLeft: i32, OH: i32, OW: i32): f64 {
  const xPlanes = <f64>C * paddedHeight(H, padTop, OH) * paddedWidth(W, padLeft, OW);
  const dyPlanes = <f64>O * 2 * <f64>tilesOf(OH) * 2 * <f64>laneTiles(OW);
  return blockBytes(max(xPlanes, dyPlanes));
}

/**
 * U_ξ = (G g Gᵀ)_ξ for every output channel o and input channel c, packed per ξ for gemmPacked into
 * upack (winogradPackedBytes); tmp: 16·O·C floats. g[o, c] = w[o, c] (O, C, 3, 3), or, when `flipped`,
 * w's transposed and rotated kernel: g[o, c] = rot180(w[c, o]) with w (C, O, 3, 3) — the convolution
 * whose output is the input's gradient (derivation §6). The transform runs in float64, one rounding.
 * One thread: winogradPackWeightsPart(0, 1, …).
 */
export function winogradPackWeights(O: i32, C: i32, w: usize, flipped: bool, upack: usize, tmp: usize): void {
  winogradPackWeightsPart(0, 1, 0, O, C, w, flipped, upack, tmp);
}

/**
 * Part t of T (T ≤ 4) of winogradPackWeights: rows i of the 4×4 transforms [i0, i1) (partStart over 4),
 * so the positions ξ = 4i … 4i + 3, transformed and packed. Each U_ξ's values are those of a single call.
 */
export function winogradPackWeightsPart(
  t: i32, T: i32, _ws: usize, O: i32, C: i32, w: usize, flipped: bool, upack: usize, tmp: usize,
): void {
  const i1 = partStart(4, t + 1, T, 1);
  const xiBytes = <usize>(O * C) << 2; // next ξ, same (o, c)
  const packedBytes = <usize>align64(packedSize(O, C) << 2);
  for (let i = partStart(4, t, T, 1); i < i1; i++) {
    for (let o = 0; o < O; o++) {
      for (let c = 0; c < C; c++) {
        const g = w + (<usize>((flipped ? c * O + o : o * C + c) * 9) << 2);
        // row i of h = G·g (4×3): row i of G applied to each column q of g (read rotated by 180° when
        // flipped); then row i of u = h·Gᵀ (4×4): row j of G applied to it
        const h0 = gRow(i, tap(g, flipped, 0, 0), tap(g, flipped, 1, 0), tap(g, flipped, 2, 0));
        const h1 = gRow(i, tap(g, flipped, 0, 1), tap(g, flipped, 1, 1), tap(g, flipped, 2, 1));
        const h2 = gRow(i, tap(g, flipped, 0, 2), tap(g, flipped, 1, 2), tap(g, flipped, 2, 2));
        const row = tmp + <usize>(4 * i) * xiBytes + (<usize>(o * C + c) << 2);
        for (let j = 0; j < 4; j++) store<f32>(row + <usize>j * xiBytes, <f32>gRow(j, h0, h1, h2));
      }
    }
    for (let xi = 4 * i; xi < 4 * i + 4; xi++) {
      packA(false, O, C, 1, tmp + <usize>xi * xiBytes, C, upack + <usize>xi * packedBytes);
    }
  }
}

/** (G·v)_i for a 3-vector v = (a, b, c): G's rows are (1, 0, 0), ½(1, 1, 1), ½(1, −1, 1), (0, 0, 1). */
@inline function gRow(i: i32, a: f64, b: f64, c: f64): f64 {
  return i == 0 ? a : i == 1 ? 0.5 * (a + b + c) : i == 2 ? 0.5 * (a - b + c) : c;
}

@inline function tap(g: usize, flipped: bool, p: i32, q: i32): f64 {
  return <f64>load<f32>(g + (<usize>(flipped ? (2 - p) * 3 + 2 - q : p * 3 + q) << 2));
}

/**
 * Part t of T of the forward: images [n0, n1) (partStart over groups of winogradGroupImages), y (N, O,
 * OH, OW) = conv3×3(x (N, C, H, W)) (+ bias; 0: none), stride 1, no dilation, padding (padTop, padLeft);
 * upack from winogradPackWeights; ws: winogradThreadScratchBytes of this thread's scratch.
 */
export function winogradForwardPart(
  t: i32, T: i32, ws: usize, N: i32, C: i32, H: i32, W: i32, O: i32, padTop: i32, padLeft: i32, OH: i32, OW: i32,
  x: usize, upack: usize, bias: usize, y: usize,
): void {
  const G = winogradGroupImages(OH, OW);
  const groups = (N + G - 1) / G;
  const g1 = partStart(groups, t + 1, T, 1);
  for (let g = partStart(groups, t, T, 1); g < g1; g++) {
    const n0 = g * G;
    winogradGroup(n0, min(N, n0 + G) - n0, ws, N, C, H, W, O, padTop, padLeft, OH, OW, x, upack, bias, y);
  }
}

// The scratch of one part (winogradThreadScratchBytes), fixed per call: the padded-image buffer from ws,
// then V, then M (the weight gradient's Z in its place), then the GEMMs' edge buffers; ld is V's and M's
// leading dimension. (Plain offsets, no objects: the module has no allocator, and parts run on several
// threads over one memory.)

@inline function ldOf(N: i32, OH: i32, OW: i32): f64 {
  return <f64>min(N, winogradGroupImages(OH, OW)) * <f64>tilesOf(OH) * <f64>tilesOf(OW) + 4;
}
@inline function vAt(ws: usize, C: i32, H: i32, W: i32, O: i32, padTop: i32, padLeft: i32, OH: i32, OW: i32): usize {
  return ws + <usize>padBytes(C, H, W, O, padTop, padLeft, OH, OW);
}
@inline function mAt(v: usize, C: i32, ld: i32): usize {
  return v + <usize>blockBytes(16 * <f64>C * ld);
}
@inline function edgeAt(m: usize, O: i32, ld: i32): usize {
  return m + <usize>blockBytes(16 * <f64>O * ld);
}

/** V (leading dimension ld) for images [n0, n0 + count) of x: each zero-padded into pad, its C planes transformed. */
function transformInputs(
  n0: i32, count: i32, C: i32, H: i32, W: i32, padTop: i32, padLeft: i32, OH: i32, OW: i32, x: usize, pad: usize,
  V: usize, ld: i32,
): void {
  const tH = tilesOf(OH), tW = tilesOf(OW);
  const per = tH * tW;
  const Hp = <i32>paddedHeight(H, padTop, OH), Wp = <i32>paddedWidth(W, padLeft, OW);
  for (let i = 0; i < count; i++) {
    padInto(x + (<usize>((n0 + i) * C * H * W) << 2), C, H, W, padTop, padLeft, Hp, Wp, pad);
    for (let c = 0; c < C; c++) {
      inputTransform(pad + (<usize>(c * Hp * Wp) << 2), Wp, tH, tW, V + (<usize>(c * ld + i * per) << 2), <usize>(C * ld) << 2);
    }
  }
}

/** Forward of images [n0, n0 + count): transform the inputs, 16 GEMMs, transform the outputs. */
function winogradGroup(
  n0: i32, count: i32, ws: usize, N: i32, C: i32, H: i32, W: i32, O: i32, padTop: i32, padLeft: i32, OH: i32, OW: i32,
  x: usize, upack: usize, bias: usize, y: usize,
): void {
  const ld = <i32>ldOf(N, OH, OW);
  const V = vAt(ws, C, H, W, O, padTop, padLeft, OH, OW);
  const M = mAt(V, C, ld);
  const edge = edgeAt(M, O, ld);
  const tH = tilesOf(OH), tW = tilesOf(OW);
  const per = tH * tW;
  transformInputs(n0, count, C, H, W, padTop, padLeft, OH, OW, x, ws, V, ld);
  const packedBytes = align64(packedSize(O, C) << 2);
  for (let xi = 0; xi < 16; xi++) {
    gemmPacked(O, count * per, C, upack + <usize>(xi * packedBytes), V + (<usize>(xi * C * ld) << 2), ld, M + (<usize>(xi * O * ld) << 2), ld, false, edge);
  }
  for (let i = 0; i < count; i++) {
    const n = n0 + i;
    for (let o = 0; o < O; o++) {
      const b: f32 = bias == 0 ? 0 : load<f32>(bias + (<usize>o << 2));
      outputTransform(M + (<usize>(o * ld + i * per) << 2), <usize>(O * ld) << 2, tH, tW, OH, OW, b, bias != 0, y + (<usize>((n * O + o) * OH * OW) << 2));
    }
  }
}

/** Chunks the weight gradient's sum over N images is split into: depends on the shapes only. */
export function winogradWeightChunks(N: i32, OH: i32, OW: i32): i32 {
  const G = winogradGroupImages(OH, OW);
  return min((N + G - 1) / G, WEIGHT_CHUNKS);
}

/** Bytes of the chunks' partial dU (16·O·C floats each). */
export function winogradPartialBytes(C: i32, O: i32, chunks: i32): i32 {
  return chunks * align64((16 * O * C) << 2) + 64;
}

/**
 * Part t of T = winogradWeightChunks(N, OH, OW) of the weight gradient: chunk t's images (partStart over the
 * groups of winogradGroupImages), its partial dU_ξ = Σ_tiles Z_ξ · V_ξᵀ into partials + t·(its bytes), the
 * groups' GEMMs added in order. x (N, C, H, W) the forward's input, dy (N, O, OH, OW).
 */
export function winogradWeightGradPart(
  t: i32, T: i32, ws: usize, N: i32, C: i32, H: i32, W: i32, O: i32, padTop: i32, padLeft: i32, OH: i32, OW: i32,
  x: usize, dy: usize, partials: usize,
): void {
  const ld = <i32>ldOf(N, OH, OW);
  const V = vAt(ws, C, H, W, O, padTop, padLeft, OH, OW);
  const Z = mAt(V, C, ld);
  const G = winogradGroupImages(OH, OW);
  const groups = (N + G - 1) / G;
  const dU = partials + <usize>(t * align64((16 * O * C) << 2));
  const tH = tilesOf(OH), tW = tilesOf(OW);
  const per = tH * tW;
  // dy's planes zero-padded to whole tiles (a tile's outputs past the map's edge have no gradient) and to
  // whole groups of 4 lanes
  const Hd = 2 * tH, Wd = 2 * laneTiles(OW);
  const g0 = partStart(groups, t, T, 1), g1 = partStart(groups, t + 1, T, 1);
  for (let g = g0; g < g1; g++) {
    const n0 = g * G;
    const count = min(N, n0 + G) - n0;
    transformInputs(n0, count, C, H, W, padTop, padLeft, OH, OW, x, ws, V, ld);
    for (let i = 0; i < count; i++) {
      padInto(dy + (<usize>((n0 + i) * O * OH * OW) << 2), O, OH, OW, 0, 0, Hd, Wd, ws);
      for (let o = 0; o < O; o++) {
        gradientTransform(ws + (<usize>(o * Hd * Wd) << 2), Wd, tH, tW, Z + (<usize>(o * ld + i * per) << 2), <usize>(O * ld) << 2);
      }
    }
    const beta: f32 = g == g0 ? 0 : 1;
    for (let xi = 0; xi < 16; xi++) {
      gemmNT(O, C, count * per, 1, Z + (<usize>(xi * O * ld) << 2), ld, V + (<usize>(xi * C * ld) << 2), ld, beta, dU + (<usize>(xi * O * C) << 2), C);
    }
  }
}

/**
 * Part t of T of the weight gradient's end, output channels [o0, o1) (partStart): dU = the chunks' partials
 * added in chunk order (in float64, into this thread's scratch ws: winogradThreadScratchBytes), then
 * dW[o, c] += Gᵀ dU G (one rounding); and db[o] += Σ dy[·, o, ·] (channelSums; db = 0: no bias). P = OH·OW.
 * Two input channels a vector (f64x2 lanes: each lane's operations are the scalar ones, so the same bits).
 */
export function winogradWeightGradFinishPart(
  t: i32, T: i32, ws: usize, O: i32, C: i32, chunks: i32, partials: usize, dW: usize, N: i32, P: i32, dy: usize, db: usize,
): void {
  const o0 = partStart(O, t, T, 1), o1 = partStart(O, t + 1, T, 1);
  const chunkBytes = <usize>align64((16 * O * C) << 2);
  // S[ξ][c] in float64, rows of C rounded up to pairs (the last pair's second lane 0 when C is odd)
  const rowBytes = <usize>((C + 1) & ~1) << 3;
  const half = f64x2.splat(0.5);
  for (let o = o0; o < o1; o++) {
    for (let xi = 0; xi < 16; xi++) {
      const from = partials + (<usize>((xi * O + o) * C) << 2);
      const to = ws + <usize>xi * rowBytes;
      let c = 0;
      for (; c + 2 <= C; c += 2) v128.store(to + (<usize>c << 3), chunkSum(from + (<usize>c << 2), chunks, chunkBytes, false));
      if (c < C) v128.store(to + (<usize>c << 3), chunkSum(from + (<usize>c << 2), chunks, chunkBytes, true));
    }
    for (let c = 0; c < C; c += 2) {
      const s = ws + (<usize>c << 3);
      // r = Gᵀ dU, column by column j: rows (d0 + (d1 + d2)/2, (d1 − d2)/2, (d1 + d2)/2 + d3) of column j
      let r00 = f64x2.splat(0), r01 = r00, r02 = r00, r03 = r00;
      let r10 = r00, r11 = r00, r12 = r00, r13 = r00;
      let r20 = r00, r21 = r00, r22 = r00, r23 = r00;
      for (let j = 0; j < 4; j++) {
        const at = s + <usize>j * rowBytes;
        const d0 = v128.load(at), d1 = v128.load(at + 4 * rowBytes);
        const d2 = v128.load(at + 8 * rowBytes), d3 = v128.load(at + 12 * rowBytes);
        const mid = f64x2.mul(half, f64x2.add(d1, d2));
        const a = f64x2.add(d0, mid), b = f64x2.mul(half, f64x2.sub(d1, d2)), e = f64x2.add(mid, d3);
        if (j == 0) { r00 = a; r10 = b; r20 = e; }
        else if (j == 1) { r01 = a; r11 = b; r21 = e; }
        else if (j == 2) { r02 = a; r12 = b; r22 = e; }
        else { r03 = a; r13 = b; r23 = e; }
      }
      const w = dW + (<usize>((o * C + c) * 9) << 2);
      const two = c + 1 < C;
      addGRow(w, r00, r01, r02, r03, two);
      addGRow(w + 12, r10, r11, r12, r13, two);
      addGRow(w + 24, r20, r21, r22, r23, two);
    }
  }
  if (db != 0) channelSums(N, O, P, dy, db, o0, o1);
}

/** The chunks' values at p, p + chunkBytes, … added in order, in float64: two channels (`one`: the first only). */
@inline function chunkSum(p: usize, chunks: i32, chunkBytes: usize, one: bool): v128 {
  let s = f64x2.splat(0);
  for (let k = 0; k < chunks; k++) {
    const at = p + <usize>k * chunkBytes;
    s = f64x2.add(s, f64x2.promote_low_f32x4(one ? v128.load32_zero(at) : v128.load64_zero(at)));
  }
  return s;
}

/**
 * w[0…2] += r G for one row r (4 values) of two channels' dg (lane 1: the next channel's, 9 floats on; `two`
 * false: lane 0 only): (r0 + (r1 + r2)/2, (r1 − r2)/2, (r1 + r2)/2 + r3).
 */
@inline function addGRow(w: usize, r0: v128, r1: v128, r2: v128, r3: v128, two: bool): void {
  const half = f64x2.splat(0.5);
  const mid = f64x2.mul(half, f64x2.add(r1, r2));
  addPair(w, f64x2.add(r0, mid), two);
  addPair(w + 4, f64x2.mul(half, f64x2.sub(r1, r2)), two);
  addPair(w + 8, f64x2.add(mid, r3), two);
}

@inline function addPair(w: usize, v: v128, two: bool): void {
  store<f32>(w, load<f32>(w) + <f32>f64x2.extract_lane(v, 0));
  if (two) store<f32>(w, load<f32>(w, 36) + <f32>f64x2.extract_lane(v, 1), 36);
}

/** x_n (C × H × W) zero-padded into xp (C × Hp × Wp) at (padTop, padLeft). */
function padInto(x: usize, C: i32, H: i32, W: i32, padTop: i32, padLeft: i32, Hp: i32, Wp: i32, xp: usize): void {
  const n = C * Hp * Wp;
  let j = 0;
  for (; j + 4 <= n; j += 4) v128.store(xp + (<usize>j << 2), f32x4.splat(0));
  for (; j < n; j++) store<f32>(xp + (<usize>j << 2), 0);
  for (let c = 0; c < C; c++) {
    for (let i = 0; i < H; i++) {
      const to = xp + (<usize>((c * Hp + padTop + i) * Wp + padLeft) << 2);
      const from = x + (<usize>((c * H + i) * W) << 2);
      let k = 0;
      for (; k + 4 <= W; k += 4) v128.store(to + (<usize>k << 2), v128.load(from + (<usize>k << 2)));
      for (; k < W; k++) store<f32>(to + (<usize>k << 2), load<f32>(from + (<usize>k << 2)));
    }
  }
}

/**
 * V = Bᵀ d B for every tile of one padded plane (tH × tW tiles; the tile (a, b) reads rows 2a…2a+3 and
 * columns 2b…2b+3), four tiles of a row per vector: v[ξ] lands at out + ξ·xiStride + (a·tW + b)·4.
 */
function inputTransform(xp: usize, Wp: i32, tH: i32, tW: i32, out: usize, xiStride: usize): void {
  const rowBytes = <usize>Wp << 2;
  for (let a = 0; a < tH; a++) {
    for (let b = 0; b < tW; b += 4) {
      const p = xp + (<usize>(2 * a) * rowBytes) + (<usize>(2 * b) << 2);
      // d[i][q]: row i, column q of the four tiles' patches (lane l: tile b + l), the even and odd
      // columns of 8 (and of 8 from 2 further on) split apart
      let r = p;
      let a0 = v128.load(r), a1 = v128.load(r, 16), a2 = v128.load(r, 8), a3 = v128.load(r, 24);
      const d00 = v128.shuffle<f32>(a0, a1, 0, 2, 4, 6), d01 = v128.shuffle<f32>(a0, a1, 1, 3, 5, 7);
      const d02 = v128.shuffle<f32>(a2, a3, 0, 2, 4, 6), d03 = v128.shuffle<f32>(a2, a3, 1, 3, 5, 7);
      r += rowBytes;
      a0 = v128.load(r); a1 = v128.load(r, 16); a2 = v128.load(r, 8); a3 = v128.load(r, 24);
      const d10 = v128.shuffle<f32>(a0, a1, 0, 2, 4, 6), d11 = v128.shuffle<f32>(a0, a1, 1, 3, 5, 7);
      const d12 = v128.shuffle<f32>(a2, a3, 0, 2, 4, 6), d13 = v128.shuffle<f32>(a2, a3, 1, 3, 5, 7);
      r += rowBytes;
      a0 = v128.load(r); a1 = v128.load(r, 16); a2 = v128.load(r, 8); a3 = v128.load(r, 24);
      const d20 = v128.shuffle<f32>(a0, a1, 0, 2, 4, 6), d21 = v128.shuffle<f32>(a0, a1, 1, 3, 5, 7);
      const d22 = v128.shuffle<f32>(a2, a3, 0, 2, 4, 6), d23 = v128.shuffle<f32>(a2, a3, 1, 3, 5, 7);
      r += rowBytes;
      a0 = v128.load(r); a1 = v128.load(r, 16); a2 = v128.load(r, 8); a3 = v128.load(r, 24);
      const d30 = v128.shuffle<f32>(a0, a1, 0, 2, 4, 6), d31 = v128.shuffle<f32>(a0, a1, 1, 3, 5, 7);
      const d32 = v128.shuffle<f32>(a2, a3, 0, 2, 4, 6), d33 = v128.shuffle<f32>(a2, a3, 1, 3, 5, 7);
      // e = Bᵀ d: rows d0 − d2, d1 + d2, d2 − d1, d1 − d3
      const e00 = f32x4.sub(d00, d20), e01 = f32x4.sub(d01, d21), e02 = f32x4.sub(d02, d22), e03 = f32x4.sub(d03, d23);
      const e10 = f32x4.add(d10, d20), e11 = f32x4.add(d11, d21), e12 = f32x4.add(d12, d22), e13 = f32x4.add(d13, d23);
      const e20 = f32x4.sub(d20, d10), e21 = f32x4.sub(d21, d11), e22 = f32x4.sub(d22, d12), e23 = f32x4.sub(d23, d13);
      const e30 = f32x4.sub(d10, d30), e31 = f32x4.sub(d11, d31), e32 = f32x4.sub(d12, d32), e33 = f32x4.sub(d13, d33);
      // v = e B: columns e·0 − e·2, e·1 + e·2, e·2 − e·1, e·1 − e·3
      const o = out + (<usize>(a * tW + b) << 2);
      storeRow(o, xiStride, 0, e00, e01, e02, e03);
      storeRow(o, xiStride, 4, e10, e11, e12, e13);
      storeRow(o, xiStride, 8, e20, e21, e22, e23);
      storeRow(o, xiStride, 12, e30, e31, e32, e33);
    }
  }
}

/** Row i of V (ξ = first … first + 3) from row i of e = Bᵀ d: (e0 − e2, e1 + e2, e2 − e1, e1 − e3). */
@inline function storeRow(o: usize, xiStride: usize, first: i32, e0: v128, e1: v128, e2: v128, e3: v128): void {
  const at = o + <usize>first * xiStride;
  v128.store(at, f32x4.sub(e0, e2));
  v128.store(at + xiStride, f32x4.add(e1, e2));
  v128.store(at + 2 * xiStride, f32x4.sub(e2, e1));
  v128.store(at + 3 * xiStride, f32x4.sub(e1, e3));
}

/**
 * Y = Aᵀ m A (+ b) for every tile of one output channel of one image, m[ξ] at from + ξ·xiStride + tile·4,
 * four tiles of a row per vector, written into the channel's OH × OW plane (rows and columns past its
 * edge dropped).
 */
function outputTransform(from: usize, xiStride: usize, tH: i32, tW: i32, OH: i32, OW: i32, b: f32, hasBias: bool, y: usize): void {
  const bias = f32x4.splat(b);
  for (let a = 0; a < tH; a++) {
    for (let tb = 0; tb < tW; tb += 4) {
      const m = from + (<usize>(a * tW + tb) << 2);
      // s = Aᵀ m: rows m0 + m1 + m2, m1 − m2 − m3 (per column j)
      const m0 = v128.load(m), m1 = v128.load(m + xiStride), m2 = v128.load(m + 2 * xiStride), m3 = v128.load(m + 3 * xiStride);
      const m4 = v128.load(m + 4 * xiStride), m5 = v128.load(m + 5 * xiStride), m6 = v128.load(m + 6 * xiStride), m7 = v128.load(m + 7 * xiStride);
      const m8 = v128.load(m + 8 * xiStride), m9 = v128.load(m + 9 * xiStride), m10 = v128.load(m + 10 * xiStride), m11 = v128.load(m + 11 * xiStride);
      const m12 = v128.load(m + 12 * xiStride), m13 = v128.load(m + 13 * xiStride), m14 = v128.load(m + 14 * xiStride), m15 = v128.load(m + 15 * xiStride);
      const s00 = f32x4.add(f32x4.add(m0, m4), m8), s01 = f32x4.add(f32x4.add(m1, m5), m9);
      const s02 = f32x4.add(f32x4.add(m2, m6), m10), s03 = f32x4.add(f32x4.add(m3, m7), m11);
      const s10 = f32x4.sub(f32x4.sub(m4, m8), m12), s11 = f32x4.sub(f32x4.sub(m5, m9), m13);
      const s12 = f32x4.sub(f32x4.sub(m6, m10), m14), s13 = f32x4.sub(f32x4.sub(m7, m11), m15);
      // y = s A: columns s0 + s1 + s2, s1 − s2 − s3
      let y00 = f32x4.add(f32x4.add(s00, s01), s02), y01 = f32x4.sub(f32x4.sub(s01, s02), s03);
      let y10 = f32x4.add(f32x4.add(s10, s11), s12), y11 = f32x4.sub(f32x4.sub(s11, s12), s13);
      if (hasBias) {
        y00 = f32x4.add(y00, bias); y01 = f32x4.add(y01, bias); y10 = f32x4.add(y10, bias); y11 = f32x4.add(y11, bias);
      }
      // lanes are tiles: interleave (y·0, y·1) into 8 consecutive columns from 2·tb
      const row = 2 * a;
      const col = 2 * tb;
      const top = y + (<usize>(row * OW + col) << 2);
      const lo0 = v128.shuffle<f32>(y00, y01, 0, 4, 1, 5), hi0 = v128.shuffle<f32>(y00, y01, 2, 6, 3, 7);
      const lo1 = v128.shuffle<f32>(y10, y11, 0, 4, 1, 5), hi1 = v128.shuffle<f32>(y10, y11, 2, 6, 3, 7);
      const second = row + 1 < OH;
      if (col + 8 <= OW) {
        v128.store(top, lo0);
        v128.store(top, hi0, 16);
        if (second) {
          v128.store(top + (<usize>OW << 2), lo1);
          v128.store(top + (<usize>OW << 2), hi1, 16);
        }
      } else {
        const cols = OW - col;
        storeLanes(top, lo0, hi0, cols);
        if (second) storeLanes(top + (<usize>OW << 2), lo1, hi1, cols);
      }
    }
  }
}

/** The first n (< 8) of the 8 floats (lo, hi) at dst. */
@inline function storeLanes(dst: usize, lo: v128, hi: v128, n: i32): void {
  if (n >= 4) {
    v128.store(dst, lo);
    if (n > 4) store<f32>(dst, f32x4.extract_lane(hi, 0), 16);
    if (n > 5) store<f32>(dst, f32x4.extract_lane(hi, 1), 20);
    if (n > 6) store<f32>(dst, f32x4.extract_lane(hi, 2), 24);
  } else {
    if (n > 0) store<f32>(dst, f32x4.extract_lane(lo, 0));
    if (n > 1) store<f32>(dst, f32x4.extract_lane(lo, 1), 4);
    if (n > 2) store<f32>(dst, f32x4.extract_lane(lo, 2), 8);
  }
}

/**
 * Z = A dY Aᵀ for every tile of one padded dy plane (Wd floats a row, zeros past the map's edge): the tile
 * (a, b)'s 2×2 of dy (rows 2a, 2a+1, columns 2b, 2b+1) becomes 4×4, rows (y0, y0 + y1, y0 − y1, −y1) of the
 * columns, then the same along each row; four tiles of a row per vector, z[ξ] at out + ξ·xiStride + tile·4.
 */
function gradientTransform(dy: usize, Wd: i32, tH: i32, tW: i32, out: usize, xiStride: usize): void {
  const rowBytes = <usize>Wd << 2;
  const zero = f32x4.splat(0);
  for (let a = 0; a < tH; a++) {
    for (let b = 0; b < tW; b += 4) {
      const p = dy + <usize>(2 * a) * rowBytes + (<usize>(2 * b) << 2);
      const t0 = v128.load(p), t1 = v128.load(p, 16);
      const b0 = v128.load(p + rowBytes), b1 = v128.load(p + rowBytes, 16);
      // lanes are tiles: y00, y01 (top row's even and odd columns), y10, y11
      const y00 = v128.shuffle<f32>(t0, t1, 0, 2, 4, 6), y01 = v128.shuffle<f32>(t0, t1, 1, 3, 5, 7);
      const y10 = v128.shuffle<f32>(b0, b1, 0, 2, 4, 6), y11 = v128.shuffle<f32>(b0, b1, 1, 3, 5, 7);
      // rows of A dY: (y0·), (y0· + y1·), (y0· − y1·), (−y1·), each a pair (column 0, column 1)
      const o = out + (<usize>(a * tW + b) << 2);
      storeZRow(o, xiStride, 0, y00, y01);
      storeZRow(o, xiStride, 4, f32x4.add(y00, y10), f32x4.add(y01, y11));
      storeZRow(o, xiStride, 8, f32x4.sub(y00, y10), f32x4.sub(y01, y11));
      storeZRow(o, xiStride, 12, f32x4.sub(zero, y10), f32x4.sub(zero, y11));
    }
  }
}

/** Row i of Z (ξ = first … first + 3) from row i of A dY, (u0, u1): (u0, u0 + u1, u0 − u1, −u1). */
@inline function storeZRow(o: usize, xiStride: usize, first: i32, u0: v128, u1: v128): void {
  const at = o + <usize>first * xiStride;
  v128.store(at, u0);
  v128.store(at + xiStride, f32x4.add(u0, u1));
  v128.store(at + 2 * xiStride, f32x4.sub(u0, u1));
  v128.store(at + 3 * xiStride, f32x4.sub(f32x4.splat(0), u1));
}
