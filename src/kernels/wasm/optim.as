// Optimizer updates for WebAssembly SIMD (AssemblyScript): Adam's and SGD's per-element rules, bit for bit
// the JS reference's loops (src/kernels/js.ts adamUpdate / sgdUpdate; the formulas are in src/nn/optim.ts).
// Parameters, gradients and slots are float32; every expression is evaluated in float64 in exactly the
// reference's order (JS numbers are float64) and rounded to float32 exactly where the reference stores into
// a Float32Array — and where it reads a stored slot back, the rounded value is used. Two elements per f64x2
// vector: lane arithmetic is IEEE binary64 with round-to-nearest (sqrt included) and nothing is fused, so
// each lane equals the scalar JS expression. Parallel parts are contiguous element ranges. The scalars come
// as a pointer h to float64s in memory, in the order of Kernels.adamUpdate / sgdUpdate (src/kernels/kernels.ts).

import { partStart } from "./parallel";

/** Two float32 at p as float64 lanes. */
@inline function load2(p: usize): v128 {
  return f64x2.promote_low_f32x4(v128.load64_zero(p));
}

/** Round two float64 lanes to float32 (as a Float32Array store does) and store them at p. */
@inline function store2(p: usize, v: v128): void {
  v128.store64_lane(p, f32x4.demote_f64x2_zero(v), 0);
}

/** The float64 value a Float32Array holds after storing v (round to float32, widen again). */
@inline function round2(v: v128): v128 {
  return f64x2.promote_low_f32x4(f32x4.demote_f64x2_zero(v));
}

/**
 * Adam on n elements (src/nn/optim.ts): g = grad + l2·w; m = β₁m + (1 − β₁)g; v = β₂v + (1 − β₂)·g·g;
 * w = w − stepSize·(m / (√v / sqrtBc2 + ε)).
 */
export function adamUpdate(
  n: i32, w: usize, grad: usize, m: usize, v: usize, b1: f64, b2: f64, stepSize: f64, sqrtBc2: f64, eps: f64,
  l2: f64,
): void {
  const B1 = f64x2.splat(b1), C1 = f64x2.splat(1 - b1), B2 = f64x2.splat(b2), C2 = f64x2.splat(1 - b2);
  const S = f64x2.splat(stepSize), Q = f64x2.splat(sqrtBc2), E = f64x2.splat(eps), L = f64x2.splat(l2);
  let i = 0;
  for (; i + 2 <= n; i += 2) {
    const o = <usize>i << 2;
    const wv = load2(w + o);
    const g = l2 == 0 ? load2(grad + o) : f64x2.add(load2(grad + o), f64x2.mul(L, wv));
    const mi = round2(f64x2.add(f64x2.mul(B1, load2(m + o)), f64x2.mul(C1, g)));
    const vi = round2(f64x2.add(f64x2.mul(B2, load2(v + o)), f64x2.mul(f64x2.mul(C2, g), g)));
    store2(m + o, mi);
    store2(v + o, vi);
    store2(w + o, f64x2.sub(wv, f64x2.mul(S, f64x2.div(mi, f64x2.add(f64x2.div(f64x2.sqrt(vi), Q), E)))));
  }
  for (; i < n; i++) {
    const o = <usize>i << 2;
    const wi = <f64>load<f32>(w + o);
    const g = l2 == 0 ? <f64>load<f32>(grad + o) : <f64>load<f32>(grad + o) + l2 * wi;
    const mi = <f64><f32>(b1 * <f64>load<f32>(m + o) + (1 - b1) * g);
    const vi = <f64><f32>(b2 * <f64>load<f32>(v + o) + (1 - b2) * g * g);
    store<f32>(m + o, <f32>mi);
    store<f32>(v + o, <f32>vi);
    store<f32>(w + o, <f32>(wi - stepSize * (mi / (Math.sqrt(vi) / sqrtBc2 + eps))));
  }
}

/** Part t of T of adamUpdate, h → [β₁, β₂, stepSize, sqrtBc2, ε, l2]: elements [i0, i1). No scratch (_ws). */
export function adamUpdatePart(t: i32, T: i32, _ws: usize, n: i32, w: usize, grad: usize, m: usize, v: usize, h: usize): void {
  const i0 = partStart(n, t, T, 16);
  const o = <usize>i0 << 2;
  adamUpdate(
    partStart(n, t + 1, T, 16) - i0, w + o, grad + o, m + o, v + o, load<f64>(h), load<f64>(h, 8), load<f64>(h, 16),
    load<f64>(h, 24), load<f64>(h, 32), load<f64>(h, 40),
  );
}

/**
 * SGD on n elements (src/nn/optim.ts). mu = 0: w = w − (grad + wd·w)·lr (w − grad·lr when wd = 0).
 * Otherwise g = grad + wd·w; buf = first ? g : mu·buf + keep·g; u = nesterov ? g + mu·buf : buf; w = w − u·lr.
 */
export function sgdUpdate(
  n: i32, w: usize, grad: usize, buf: usize, lr: f64, wd: f64, mu: f64, keep: f64, nesterov: i32, first: i32,
): void {
  const R = f64x2.splat(lr), D = f64x2.splat(wd), M = f64x2.splat(mu), K = f64x2.splat(keep);
  let i = 0;
  for (; i + 2 <= n; i += 2) {
    const o = <usize>i << 2;
    const wv = load2(w + o);
    const g = wd == 0 ? load2(grad + o) : f64x2.add(load2(grad + o), f64x2.mul(D, wv));
    let u = g;
    if (mu != 0) {
      const b = round2(first ? g : f64x2.add(f64x2.mul(M, load2(buf + o)), f64x2.mul(K, g)));
      store2(buf + o, b);
      u = nesterov ? f64x2.add(g, f64x2.mul(M, b)) : b;
    }
    store2(w + o, f64x2.sub(wv, f64x2.mul(u, R)));
  }
  for (; i < n; i++) {
    const o = <usize>i << 2;
    const wi = <f64>load<f32>(w + o);
    const g = wd == 0 ? <f64>load<f32>(grad + o) : <f64>load<f32>(grad + o) + wd * wi;
    let u = g;
    if (mu != 0) {
      const b = <f64><f32>(first ? g : mu * <f64>load<f32>(buf + o) + keep * g);
      store<f32>(buf + o, <f32>b);
      u = nesterov ? g + mu * b : b;
    }
    store<f32>(w + o, <f32>(wi - u * lr));
  }
}

/**
 * Part t of T of sgdUpdate, h → [lr, wd, μ, keep, nesterov, first] (buf = 0: no momentum, μ taken as 0):
 * elements [i0, i1). No scratch (_ws).
 */
export function sgdUpdatePart(t: i32, T: i32, _ws: usize, n: i32, w: usize, grad: usize, buf: usize, h: usize): void {
  const i0 = partStart(n, t, T, 16);
  const o = <usize>i0 << 2;
  const mu = buf == 0 ? 0 : load<f64>(h, 16);
  sgdUpdate(
    partStart(n, t + 1, T, 16) - i0, w + o, grad + o, buf + o, load<f64>(h), load<f64>(h, 8), mu, load<f64>(h, 24),
    <i32>(load<f64>(h, 32) != 0), <i32>(load<f64>(h, 40) != 0),
  );
}
