// How the kernels' *Part entry points cut a call into parts: *Part(t, T, ws, …) computes part t of T,
// with ws the scratch of whichever thread runs it (src/kernels/threads.ts hands parts out to threads
// as they come free; one thread runs them all in turn).
//
// The rule that keeps every thread count bit-identical to one thread: a part owns a disjoint set of
// OUTPUT elements and computes each of them exactly as the whole call would — same operands, same
// summation order. A reduction axis (GEMM's k, the batch axis of a conv's dW) is never split by the
// thread count, so neither T nor which thread ran which part can change a bit. (The one reduction split
// at all, the Winograd weight gradient's sum over the batch, is cut into chunks fixed by the shapes alone,
// whose partial sums are added in chunk order afterwards: winograd.as.)

/**
 * First item of part t when n items are split into T contiguous parts of nearly equal size, boundaries
 * at multiples of `align` (the last part ends at n): parts 0 … (units mod T) − 1 get one unit more, so
 * part 0 is always the largest. partStart(n, T, T, align) = n; empty parts (t ≥ units) start at n.
 */
export function partStart(n: i32, t: i32, T: i32, align: i32): i32 {
  const units = (n + align - 1) / align;
  const u = t * (units / T) + min(t, units % T);
  return min(n, u * align);
}

/** Bytes rounded up to a cache line. */
@inline export function align64(bytes: i32): i32 {
  return (bytes + 63) & ~63;
}

// Scratch sizes are computed in f64 (the *Bytes exports): the true size of any geometry, where i32 products
// wrapped past 2³¹ and a call wrote past a too-small scratch. Callers refuse sizes too large for the memory.

/** align64 in f64. */
@inline export function align64f(bytes: f64): f64 {
  return Math.ceil(bytes / 64) * 64;
}

/** `floats` float32s as a block of scratch: rounded up to a cache line, then a line of slack (in f64). */
@inline export function blockBytes(floats: f64): f64 {
  return align64f(floats * 4) + 64;
}
