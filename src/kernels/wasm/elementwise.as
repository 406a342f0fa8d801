// Elementwise kernels for WebAssembly SIMD (AssemblyScript): ReLU forward and backward, the finite check, and
// zeroing.
//
// Branch-free: on activations of random sign the scalar `x > 0 ? x : 0` mispredicts every other element,
// which costs more than the arithmetic. Bit for bit the same as src/nn/activations.ts's loops:
//   forward   y  = x > 0 ? x : 0      (NaN and −0 give +0)     = x AND mask(x > 0)
//   backward  dx = y > 0 ? dy : 0                              = dy AND mask(y > 0)
// Parallel parts are contiguous ranges of elements (multiples of 4).

import { partStart } from "./parallel";

/** y[i] = x[i] > 0 ? x[i] : 0 for i < n. */
export function reluForward(n: i32, x: usize, y: usize): void {
  const zero = f32x4.splat(0);
  let i = 0;
  for (; i + 4 <= n; i += 4) {
    const o = <usize>i << 2;
    const v = v128.load(x + o);
    v128.store(y + o, v128.and(v, f32x4.gt(v, zero)));
  }
  for (; i < n; i++) {
    const v = load<f32>(x + (<usize>i << 2));
    store<f32>(y + (<usize>i << 2), v > 0 ? v : 0);
  }
}

/** dx[i] = y[i] > 0 ? dy[i] : 0 for i < n. */
export function reluBackward(n: i32, y: usize, dy: usize, dx: usize): void {
  const zero = f32x4.splat(0);
  let i = 0;
  for (; i + 4 <= n; i += 4) {
    const o = <usize>i << 2;
    v128.store(dx + o, v128.and(v128.load(dy + o), f32x4.gt(v128.load(y + o), zero)));
  }
  for (; i < n; i++) {
    const o = <usize>i << 2;
    store<f32>(dx + o, load<f32>(y + o) > 0 ? load<f32>(dy + o) : 0);
  }
}

/**
 * The index of the first NaN or ±Infinity among x[0 … n), or −1: x − x is 0 exactly for finite x and NaN
 * otherwise, so a vector is clean when its four differences all equal 0.
 */
export function firstNonFinite(n: i32, x: usize): i32 {
  const zero = f32x4.splat(0);
  let i = 0;
  for (; i + 4 <= n; i += 4) {
    const v = v128.load(x + (<usize>i << 2));
    if (!i32x4.all_true(f32x4.eq(f32x4.sub(v, v), zero))) break;
  }
  for (; i < n; i++) {
    const v = load<f32>(x + (<usize>i << 2));
    if (v - v != 0) return i;
  }
  return -1;
}

/**
 * The first of `count` arrays holding a NaN or ±Infinity, or −1: table holds their (byte offset, length)
 * pairs as i32s. The trainer's checks of every gradient, then every parameter, in one call each.
 */
export function firstNonFiniteAmong(count: i32, table: usize): i32 {
  for (let i = 0; i < count; i++) {
    const entry = table + (<usize>i << 3);
    if (firstNonFinite(load<i32>(entry, 4), <usize>load<i32>(entry)) >= 0) return i;
  }
  return -1;
}

/**
 * x[0 … n) = 0 (+0.0f): zeroGrad of a resident gradient. In JS, fill() on a SharedArrayBuffer's view stores
 * element by element (relaxed atomics), several times slower than these vector stores.
 */
export function fillZero(n: i32, x: usize): void {
  const zero = f32x4.splat(0);
  let i = 0;
  for (; i + 4 <= n; i += 4) v128.store(x + (<usize>i << 2), zero);
  for (; i < n; i++) store<f32>(x + (<usize>i << 2), 0);
}

/** Part t of T of reluForward: elements [i0, i1). No scratch (_ws). */
export function reluForwardPart(t: i32, T: i32, _ws: usize, n: i32, x: usize, y: usize): void {
  const i0 = partStart(n, t, T, 4);
  const off = <usize>i0 << 2;
  reluForward(partStart(n, t + 1, T, 4) - i0, x + off, y + off);
}

/** Part t of T of reluBackward: elements [i0, i1). No scratch (_ws). */
export function reluBackwardPart(t: i32, T: i32, _ws: usize, n: i32, y: usize, dy: usize, dx: usize): void {
  const i0 = partStart(n, t, T, 4);
  const off = <usize>i0 << 2;
  reluBackward(partStart(n, t + 1, T, 4) - i0, y + off, dy + off, dx + off);
}
