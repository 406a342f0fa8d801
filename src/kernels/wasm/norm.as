// Batch normalisation for WebAssembly SIMD (AssemblyScript): the forward and backward of src/nn/batchnorm.ts
// (derivation.md §2.4), per channel c of x (N, C, S) with S positions per channel (S = 1 for BatchNorm1D):
//
//   forward   training:  μ = (1/m) Σ x,  σ² = (1/m) Σ (x − μ)²,  invStd = 1/√(σ² + ε)      (m = N·S)
//             always:    x̂ = (x − μ)·invStd,  y = γ·x̂ + β
//   backward  Σdy, Σ dy·x̂ per channel (wasm-backend.ts adds them to dβ, dγ);
//             dx = (γ·invStd)·(dy − Σdy/m − x̂·(Σ dy·x̂)/m)  in training,  (γ·invStd)·dy  in inference
//
// Precision: the sums run in float64 (f64x2 lanes, each f32 promoted; dy·x̂ multiplied in float64, exact),
// as the JS reference (js.ts) sums in float64, so μ, σ², invStd and the gradient sums differ from its only
// by summation order. The elementwise passes (x̂, y, dx) are float32 with μ, invStd, γ·invStd and the means
// rounded to float32 once per channel: within a few ulps of the reference's float64-then-rounded values.
// Backward recomputes x̂ from x exactly as forward did (the same float32 operations), so forward writes
// only y.
//
// Threads: a part owns whole channels [c0, c1), and each channel's sums run in one fixed order (image by
// image, lanes then the scalar tail, combined in a fixed tree), so any number of parts gives the same bits.

import { partStart } from "./parallel";

/** Byte address of row (n, c) of x (N, C, S) floats. */
@inline function row(base: usize, n: i32, C: i32, c: i32, S: i32): usize {
  return base + (<usize>((n * C + c) * S) << 2);
}

/** The two float64 lanes of the low, and of the high, half of four floats. */
@inline function low(v: v128): v128 {
  return f64x2.promote_low_f32x4(v);
}
@inline function high(v: v128): v128 {
  return f64x2.promote_low_f32x4(v128.shuffle<f32>(v, v, 2, 3, 0, 1));
}

@inline function lanes(v: v128): f64 {
  return f64x2.extract_lane(v, 0) + f64x2.extract_lane(v, 1);
}

// The float64 sums keep four f64x2 accumulators (8 floats a step): one add per accumulator a step, so the
// adds' latency overlaps instead of serialising; they are combined in one fixed order at the end.

/** Σ x over channel c, in float64. */
function channelSum(N: i32, C: i32, c: i32, S: i32, x: usize): f64 {
  let a0 = f64x2.splat(0), a1 = f64x2.splat(0), a2 = f64x2.splat(0), a3 = f64x2.splat(0);
  let tail: f64 = 0;
  const S8 = S & ~7;
  for (let n = 0; n < N; n++) {
    const p = row(x, n, C, c, S);
    for (let i = 0; i < S8; i += 8) {
      const v = v128.load(p + (<usize>i << 2));
      const w = v128.load(p + (<usize>i << 2), 16);
      a0 = f64x2.add(a0, low(v));
      a1 = f64x2.add(a1, high(v));
      a2 = f64x2.add(a2, low(w));
      a3 = f64x2.add(a3, high(w));
    }
    for (let i = S8; i < S; i++) tail += <f64>load<f32>(p + (<usize>i << 2));
  }
  return lanes(f64x2.add(a0, a2)) + lanes(f64x2.add(a1, a3)) + tail;
}

/** (x − μ)², in float64, of the two floats in one f64x2 half. */
@inline function square(h: v128, m: v128): v128 {
  const d = f64x2.sub(h, m);
  return f64x2.mul(d, d);
}

/** Σ (x − μ)² over channel c, in float64. */
function channelSquares(N: i32, C: i32, c: i32, S: i32, x: usize, mu: f64): f64 {
  const m = f64x2.splat(mu);
  let a0 = f64x2.splat(0), a1 = f64x2.splat(0), a2 = f64x2.splat(0), a3 = f64x2.splat(0);
  let tail: f64 = 0;
  const S8 = S & ~7;
  for (let n = 0; n < N; n++) {
    const p = row(x, n, C, c, S);
    for (let i = 0; i < S8; i += 8) {
      const v = v128.load(p + (<usize>i << 2));
      const w = v128.load(p + (<usize>i << 2), 16);
      a0 = f64x2.add(a0, square(low(v), m));
      a1 = f64x2.add(a1, square(high(v), m));
      a2 = f64x2.add(a2, square(low(w), m));
      a3 = f64x2.add(a3, square(high(w), m));
    }
    for (let i = S8; i < S; i++) {
      const d = <f64>load<f32>(p + (<usize>i << 2)) - mu;
      tail += d * d;
    }
  }
  return lanes(f64x2.add(a0, a2)) + lanes(f64x2.add(a1, a3)) + tail;
}

/**
 * Part t of T of the forward: channels [c0, c1). training ≠ 0: writes each channel's μ, σ² (biased) and
 * invStd (float64 arrays of C) from the batch; else reads μ and invStd. Then y = γ·x̂ + β (gamma, beta
 * 0: none). No scratch (_ws).
 */
export function batchNormForwardPart(
  t: i32, T: i32, _ws: usize, N: i32, C: i32, S: i32, training: i32, eps: f64,
  x: usize, gamma: usize, beta: usize, mean: usize, variance: usize, invStd: usize, y: usize,
): void {
  const c0 = partStart(C, t, T, 1);
  const c1 = partStart(C, t + 1, T, 1);
  const m = <f64>N * <f64>S;
  const S4 = S & ~3;
  for (let c = c0; c < c1; c++) {
    const at = <usize>c << 3;
    if (training) {
      const mu = channelSum(N, C, c, S, x) / m;
      const v = channelSquares(N, C, c, S, x, mu) / m;
      store<f64>(mean + at, mu);
      store<f64>(variance + at, v);
      store<f64>(invStd + at, 1 / Math.sqrt(v + eps));
    }
    const mu = <f32>load<f64>(mean + at);
    const inv = <f32>load<f64>(invStd + at);
    const g: f32 = gamma ? load<f32>(gamma + (<usize>c << 2)) : 1;
    const b: f32 = beta ? load<f32>(beta + (<usize>c << 2)) : 0;
    const muV = f32x4.splat(mu), invV = f32x4.splat(inv), gV = f32x4.splat(g), bV = f32x4.splat(b);
    for (let n = 0; n < N; n++) {
      const px = row(x, n, C, c, S);
      const py = row(y, n, C, c, S);
      for (let i = 0; i < S4; i += 4) {
        const o = <usize>i << 2;
        const xh = f32x4.mul(f32x4.sub(v128.load(px + o), muV), invV);
        v128.store(py + o, f32x4.add(f32x4.mul(gV, xh), bV));
      }
      for (let i = S4; i < S; i++) {
        const o = <usize>i << 2;
        store<f32>(py + o, g * ((load<f32>(px + o) - mu) * inv) + b);
      }
    }
  }
}

/** S floats: dst ← scale·src. */
@inline function scaleRow(S: i32, scale: f32, src: usize, dst: usize): void {
  const v = f32x4.splat(scale);
  const S4 = S & ~3;
  for (let i = 0; i < S4; i += 4) v128.store(dst + (<usize>i << 2), f32x4.mul(v, v128.load(src + (<usize>i << 2))));
  for (let i = S4; i < S; i++) store<f32>(dst + (<usize>i << 2), scale * load<f32>(src + (<usize>i << 2)));
}

/**
 * Part t of T of the backward: channels [c0, c1). Writes Σdy and Σ dy·x̂ per channel (float64 arrays of
 * C) and, when dx ≠ 0, dx (training ≠ 0: through the batch statistics; else as a constant affine map).
 * gamma 0: γ ≡ 1. No scratch (_ws).
 */
export function batchNormBackwardPart(
  t: i32, T: i32, _ws: usize, N: i32, C: i32, S: i32, training: i32,
  x: usize, gamma: usize, mean: usize, invStd: usize, dy: usize, sumDy: usize, sumDyXhat: usize, dx: usize,
): void {
  const c0 = partStart(C, t, T, 1);
  const c1 = partStart(C, t + 1, T, 1);
  const m = <f64>N * <f64>S;
  const S4 = S & ~3;
  const S8 = S & ~7;
  for (let c = c0; c < c1; c++) {
    const at = <usize>c << 3;
    const mu = <f32>load<f64>(mean + at);
    const inv = <f32>load<f64>(invStd + at);
    const muV = f32x4.splat(mu), invV = f32x4.splat(inv);
    // Σdy in s0…s3, Σ dy·x̂ in p0…p3 (dy·x̂ of two floats multiplied in float64: exact)
    let s0 = f64x2.splat(0), s1 = f64x2.splat(0), s2 = f64x2.splat(0), s3 = f64x2.splat(0);
    let p0 = f64x2.splat(0), p1 = f64x2.splat(0), p2 = f64x2.splat(0), p3 = f64x2.splat(0);
    let sTail: f64 = 0, pTail: f64 = 0;
    for (let n = 0; n < N; n++) {
      const px = row(x, n, C, c, S);
      const pd = row(dy, n, C, c, S);
      for (let i = 0; i < S8; i += 8) {
        const o = <usize>i << 2;
        const d = v128.load(pd + o), e = v128.load(pd + o, 16);
        const xh = f32x4.mul(f32x4.sub(v128.load(px + o), muV), invV);
        const xi = f32x4.mul(f32x4.sub(v128.load(px + o, 16), muV), invV);
        const d0 = low(d), d1 = high(d), e0 = low(e), e1 = high(e);
        s0 = f64x2.add(s0, d0);
        s1 = f64x2.add(s1, d1);
        s2 = f64x2.add(s2, e0);
        s3 = f64x2.add(s3, e1);
        p0 = f64x2.add(p0, f64x2.mul(d0, low(xh)));
        p1 = f64x2.add(p1, f64x2.mul(d1, high(xh)));
        p2 = f64x2.add(p2, f64x2.mul(e0, low(xi)));
        p3 = f64x2.add(p3, f64x2.mul(e1, high(xi)));
      }
      for (let i = S8; i < S; i++) {
        const o = <usize>i << 2;
        const d = <f64>load<f32>(pd + o);
        sTail += d;
        pTail += d * <f64>((load<f32>(px + o) - mu) * inv);
      }
    }
    const sDy = lanes(f64x2.add(s0, s2)) + lanes(f64x2.add(s1, s3)) + sTail;
    const sDyXhat = lanes(f64x2.add(p0, p2)) + lanes(f64x2.add(p1, p3)) + pTail;
    store<f64>(sumDy + at, sDy);
    store<f64>(sumDyXhat + at, sDyXhat);
    if (!dx) continue;
    const g: f64 = gamma ? <f64>load<f32>(gamma + (<usize>c << 2)) : 1;
    const scale = <f32>(g * load<f64>(invStd + at)); // γ/σ
    const scaleV = f32x4.splat(scale);
    if (!training) {
      for (let n = 0; n < N; n++) scaleRow(S, scale, row(dy, n, C, c, S), row(dx, n, C, c, S));
      continue;
    }
    const meanDy = <f32>(sDy / m);
    const meanDyXhat = <f32>(sDyXhat / m);
    const meanDyV = f32x4.splat(meanDy), meanDyXhatV = f32x4.splat(meanDyXhat);
    for (let n = 0; n < N; n++) {
      const px = row(x, n, C, c, S);
      const pd = row(dy, n, C, c, S);
      const pdx = row(dx, n, C, c, S);
      for (let i = 0; i < S4; i += 4) {
        const o = <usize>i << 2;
        const xh = f32x4.mul(f32x4.sub(v128.load(px + o), muV), invV);
        const r = f32x4.sub(f32x4.sub(v128.load(pd + o), meanDyV), f32x4.mul(xh, meanDyXhatV));
        v128.store(pdx + o, f32x4.mul(scaleV, r));
      }
      for (let i = S4; i < S; i++) {
        const o = <usize>i << 2;
        const xh = (load<f32>(px + o) - mu) * inv;
        store<f32>(pdx + o, scale * (load<f32>(pd + o) - meanDy - xh * meanDyXhat));
      }
    }
  }
}

// ------------------------------------------------------------------------------------------------
// LayerNorm and GroupNorm (src/nn/norm.ts, derivation.md §5.4): x (N, G, Cg, S) normalised per segment
// (n, g) of m = Cg·S contiguous floats, then y = γ_c·x̂ + β_c per channel c = g·Cg + (channel in group);
// LayerNorm is G = 1, Cg = m, S = 1 (γ, β one per float of the segment).
//
//   forward   μ = (1/m) Σ x,  σ² = (1/m) Σ (x − μ)²,  invStd = 1/√(σ² + ε) per segment;  x̂ = (x − μ)·invStd
//   backward  g = γ·dy;  dx = invStd·(g − Σg/m − x̂·(Σ g·x̂)/m) per segment;
//             Σdy and Σ dy·x̂ per channel over every sample (wasm-backend.ts adds them to dβ, dγ)
//
// Precision: as batch norm's above — the statistics and the gradient sums in float64 (f64x2 lanes, each f32
// promoted; γ·dy and dy·x̂ multiplied in float64, exact), the elementwise passes (x̂, y, dx) in float32 with
// μ, invStd and the means rounded to float32 once per segment. Forward writes x̂ (backward reads it rather
// than recomputing it from x) and invStd per segment: what backward needs, as the JS reference saves.
// γ and β are always given (the adapter passes ones and zeros for a layer without affine parameters).
//
// Threads: the forward and dx parts own whole segments [r0, r1) (consecutive segments: samples), and each
// segment's sums run in one fixed order; the dγ/dβ part owns whole channels [c0, c1) and sums each over
// the samples in order. No partial sums are combined across parts, so any number of parts gives the same bits.

/** Byte address of float i of an array at base (i may exceed 2³¹/4: the product is taken in usize). */
@inline function at(base: usize, i: i32): usize {
  return base + (<usize>i << 2);
}

/**
 * One run of n floats of a segment: x̂ = (x − μ)·invStd, y = γ·x̂ + β. perElement: γ, β at gp, bp one per
 * float (LayerNorm); else the run is one channel and γ = gp[0], β = bp[0]. Called with a constant
 * perElement, so each call site compiles to one loop.
 */
@inline function normalizeRun(
  n: i32, px: usize, pxh: usize, py: usize, mu: f32, inv: f32, gp: usize, bp: usize, perElement: bool,
): void {
  const muV = f32x4.splat(mu), invV = f32x4.splat(inv);
  const g0 = load<f32>(gp), b0 = load<f32>(bp);
  const gS = f32x4.splat(g0), bS = f32x4.splat(b0);
  const n4 = n & ~3;
  for (let i = 0; i < n4; i += 4) {
    const o = <usize>i << 2;
    const xh = f32x4.mul(f32x4.sub(v128.load(px + o), muV), invV);
    v128.store(pxh + o, xh);
    const g = perElement ? v128.load(gp + o) : gS;
    const b = perElement ? v128.load(bp + o) : bS;
    v128.store(py + o, f32x4.add(f32x4.mul(g, xh), b));
  }
  for (let i = n4; i < n; i++) {
    const o = <usize>i << 2;
    const xh = (load<f32>(px + o) - mu) * inv;
    store<f32>(pxh + o, xh);
    store<f32>(py + o, (perElement ? load<f32>(gp + o) : g0) * xh + (perElement ? load<f32>(bp + o) : b0));
  }
}

/**
 * Part t of T of the forward: segments [r0, r1) of the N·G. Writes x̂, y and invStd (float64, one per
 * segment). No scratch (_ws).
 */
export function groupNormForwardPart(
  t: i32, T: i32, _ws: usize, N: i32, G: i32, Cg: i32, S: i32, eps: f64,
  x: usize, gamma: usize, beta: usize, xhat: usize, y: usize, invStd: usize,
): void {
  const r0 = partStart(N * G, t, T, 1);
  const r1 = partStart(N * G, t + 1, T, 1);
  const m = Cg * S;
  for (let r = r0; r < r1; r++) {
    const start = <usize>r * <usize>m;
    const px = x + (start << 2);
    // a segment is one contiguous row: batch norm's channel sums with N = C = 1 and S = m
    const mu = channelSum(1, 1, 0, m, px) / <f64>m;
    const inv = 1 / Math.sqrt(channelSquares(1, 1, 0, m, px, mu) / <f64>m + eps);
    store<f64>(invStd + (<usize>r << 3), inv);
    const pxh = xhat + (start << 2), py = y + (start << 2);
    const c0 = (r % G) * Cg;
    if (S == 1) {
      normalizeRun(m, px, pxh, py, <f32>mu, <f32>inv, at(gamma, c0), at(beta, c0), true);
      continue;
    }
    for (let c = 0; c < Cg; c++) {
      const o = <usize>(c * S) << 2;
      normalizeRun(S, px + o, pxh + o, py + o, <f32>mu, <f32>inv, at(gamma, c0 + c), at(beta, c0 + c), false);
    }
  }
}

// Σg and Σ g·x̂ of the current segment, added to run by run (module globals: one instance per thread).
let segmentSumG: f64 = 0;
let segmentSumGXhat: f64 = 0;

/** Adds Σ γ·dy and Σ γ·dy·x̂ over one run of n floats (γ as in normalizeRun) to the segment's sums. */
@inline function gradientSumsRun(n: i32, pd: usize, pxh: usize, gp: usize, perElement: bool): void {
  const gS = f32x4.splat(load<f32>(gp));
  let s0 = f64x2.splat(0), s1 = f64x2.splat(0), p0 = f64x2.splat(0), p1 = f64x2.splat(0);
  let sTail: f64 = 0, pTail: f64 = 0;
  const n4 = n & ~3;
  for (let i = 0; i < n4; i += 4) {
    const o = <usize>i << 2;
    const d = v128.load(pd + o), xh = v128.load(pxh + o);
    const g = perElement ? v128.load(gp + o) : gS;
    const g0 = f64x2.mul(low(g), low(d)), g1 = f64x2.mul(high(g), high(d)); // γ·dy, exact in float64
    s0 = f64x2.add(s0, g0);
    s1 = f64x2.add(s1, g1);
    p0 = f64x2.add(p0, f64x2.mul(g0, low(xh)));
    p1 = f64x2.add(p1, f64x2.mul(g1, high(xh)));
  }
  for (let i = n4; i < n; i++) {
    const o = <usize>i << 2;
    const g = <f64>load<f32>(perElement ? gp + o : gp) * <f64>load<f32>(pd + o);
    sTail += g;
    pTail += g * <f64>load<f32>(pxh + o);
  }
  segmentSumG += lanes(f64x2.add(s0, s1)) + sTail;
  segmentSumGXhat += lanes(f64x2.add(p0, p1)) + pTail;
}

/** dx = invStd·(γ·dy − meanG − x̂·meanGXhat) over one run of n floats (γ as in normalizeRun). */
@inline function dxRun(
  n: i32, pd: usize, pxh: usize, pdx: usize, gp: usize, perElement: bool, inv: f32, meanG: f32, meanGXhat: f32,
): void {
  const invV = f32x4.splat(inv), meanGV = f32x4.splat(meanG), meanGXhatV = f32x4.splat(meanGXhat);
  const g0 = load<f32>(gp);
  const gS = f32x4.splat(g0);
  const n4 = n & ~3;
  for (let i = 0; i < n4; i += 4) {
    const o = <usize>i << 2;
    const g = f32x4.mul(perElement ? v128.load(gp + o) : gS, v128.load(pd + o));
    const r = f32x4.sub(f32x4.sub(g, meanGV), f32x4.mul(v128.load(pxh + o), meanGXhatV));
    v128.store(pdx + o, f32x4.mul(invV, r));
  }
  for (let i = n4; i < n; i++) {
    const o = <usize>i << 2;
    const g = (perElement ? load<f32>(gp + o) : g0) * load<f32>(pd + o);
    store<f32>(pdx + o, inv * (g - meanG - load<f32>(pxh + o) * meanGXhat));
  }
}

/** Part t of T of the backward's dx: segments [r0, r1) of the N·G. No scratch (_ws). */
export function groupNormBackwardPart(
  t: i32, T: i32, _ws: usize, N: i32, G: i32, Cg: i32, S: i32,
  dy: usize, xhat: usize, gamma: usize, invStd: usize, dx: usize,
): void {
  const r0 = partStart(N * G, t, T, 1);
  const r1 = partStart(N * G, t + 1, T, 1);
  const m = Cg * S;
  for (let r = r0; r < r1; r++) {
    const o = (<usize>r * <usize>m) << 2;
    const pd = dy + o, pxh = xhat + o, pdx = dx + o;
    const c0 = (r % G) * Cg;
    segmentSumG = 0;
    segmentSumGXhat = 0;
    if (S == 1) gradientSumsRun(m, pd, pxh, at(gamma, c0), true);
    else for (let c = 0; c < Cg; c++) gradientSumsRun(S, at(pd, c * S), at(pxh, c * S), at(gamma, c0 + c), false);
    const inv = <f32>load<f64>(invStd + (<usize>r << 3));
    const meanG = <f32>(segmentSumG / <f64>m), meanGXhat = <f32>(segmentSumGXhat / <f64>m);
    if (S == 1) {
      dxRun(m, pd, pxh, pdx, at(gamma, c0), true, inv, meanG, meanGXhat);
      continue;
    }
    for (let c = 0; c < Cg; c++) {
      const q = <usize>(c * S) << 2;
      dxRun(S, pd + q, pxh + q, pdx + q, at(gamma, c0 + c), false, inv, meanG, meanGXhat);
    }
  }
}

/** Σ dy·x̂ over channel c of (N, C, S) arrays, in float64 (the products exact), four accumulators as channelSum. */
function channelDot(N: i32, C: i32, c: i32, S: i32, dy: usize, xhat: usize): f64 {
  let a0 = f64x2.splat(0), a1 = f64x2.splat(0), a2 = f64x2.splat(0), a3 = f64x2.splat(0);
  let tail: f64 = 0;
  const S8 = S & ~7;
  for (let n = 0; n < N; n++) {
    const pd = row(dy, n, C, c, S), pxh = row(xhat, n, C, c, S);
    for (let i = 0; i < S8; i += 8) {
      const o = <usize>i << 2;
      const d = v128.load(pd + o), e = v128.load(pd + o, 16);
      const xh = v128.load(pxh + o), xi = v128.load(pxh + o, 16);
      a0 = f64x2.add(a0, f64x2.mul(low(d), low(xh)));
      a1 = f64x2.add(a1, f64x2.mul(high(d), high(xh)));
      a2 = f64x2.add(a2, f64x2.mul(low(e), low(xi)));
      a3 = f64x2.add(a3, f64x2.mul(high(e), high(xi)));
    }
    for (let i = S8; i < S; i++) {
      const o = <usize>i << 2;
      tail += <f64>load<f32>(pd + o) * <f64>load<f32>(pxh + o);
    }
  }
  return lanes(f64x2.add(a0, a2)) + lanes(f64x2.add(a1, a3)) + tail;
}

/**
 * Part t of T of the backward's dγ, dβ sums: channels [c0, c1) of C. Writes Σdy and Σ dy·x̂ per channel
 * (float64 arrays of C) over every sample and position. S = 1 (LayerNorm: a channel is a column of the
 * (N, C) matrix): four channels at a time, each a lane summing down its column in sample order; else
 * channel by channel as batch norm's sums. No scratch (_ws).
 */
export function groupNormAffinePart(
  t: i32, T: i32, _ws: usize, N: i32, C: i32, S: i32, dy: usize, xhat: usize, sumDy: usize, sumDyXhat: usize,
): void {
  const c0 = partStart(C, t, T, 4);
  const c1 = partStart(C, t + 1, T, 4);
  if (S != 1) {
    for (let c = c0; c < c1; c++) {
      store<f64>(sumDy + (<usize>c << 3), channelSum(N, C, c, S, dy));
      store<f64>(sumDyXhat + (<usize>c << 3), channelDot(N, C, c, S, dy, xhat));
    }
    return;
  }
  const c4 = c0 + ((c1 - c0) & ~3);
  for (let c = c0; c < c4; c += 4) {
    let s0 = f64x2.splat(0), s1 = f64x2.splat(0), p0 = f64x2.splat(0), p1 = f64x2.splat(0);
    for (let n = 0; n < N; n++) {
      const i = n * C + c;
      const d = v128.load(at(dy, i)), xh = v128.load(at(xhat, i));
      s0 = f64x2.add(s0, low(d));
      s1 = f64x2.add(s1, high(d));
      p0 = f64x2.add(p0, f64x2.mul(low(d), low(xh)));
      p1 = f64x2.add(p1, f64x2.mul(high(d), high(xh)));
    }
    const o = <usize>c << 3;
    v128.store(sumDy + o, s0);
    v128.store(sumDy + o, s1, 16);
    v128.store(sumDyXhat + o, p0);
    v128.store(sumDyXhat + o, p1, 16);
  }
  for (let c = c4; c < c1; c++) {
    let s: f64 = 0, p: f64 = 0;
    for (let n = 0; n < N; n++) {
      const d = <f64>load<f32>(at(dy, n * C + c));
      s += d;
      p += d * <f64>load<f32>(at(xhat, n * C + c));
    }
    store<f64>(sumDy + (<usize>c << 3), s);
    store<f64>(sumDyXhat + (<usize>c << 3), p);
  }
}
