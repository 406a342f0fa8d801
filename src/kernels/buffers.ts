// Buffers reused from batch to batch, so that steady-state training allocates nothing.

import { NDArray, allocate, shapeSize, type DType } from "../nd/ndarray.ts";

/** Return `buf` if it already has this shape and dtype, else a fresh zeroed array. */
export function reuse(buf: NDArray | null, shape: readonly number[], dtype: DType): NDArray {
  let fits = buf !== null && buf.dtype === dtype && buf.shape.length === shape.length;
  for (let i = 0; fits && i < shape.length; i++) fits = buf!.shape[i] === shape[i]; // a loop: no closure per call
  if (fits) return buf!;
  return new NDArray(allocate(dtype, shapeSize(shape)), shape);
}

/**
 * reuse for a shape given as 2 or 4 dimensions (d2, d3 < 0: absent): the shape array is built only when
 * a new buffer is, so a steady-state call allocates nothing.
 */
export function reuseDims(buf: NDArray | null, dtype: DType, d0: number, d1: number, d2 = -1, d3 = -1): NDArray {
  if (buf !== null && hasDims(buf, dtype, d0, d1, d2, d3)) return buf;
  return reuse(null, dimsShape(d0, d1, d2, d3), dtype);
}

/** True if buf has this dtype and shape (d0, d1) or (d0, d1, d2, d3) (d2 < 0: rank 2). */
export function hasDims(buf: NDArray, dtype: DType, d0: number, d1: number, d2 = -1, d3 = -1): boolean {
  const rank = d2 < 0 ? 2 : 4;
  if (buf.dtype !== dtype || buf.shape.length !== rank || buf.shape[0] !== d0 || buf.shape[1] !== d1) return false;
  return rank === 2 || (buf.shape[2] === d2 && buf.shape[3] === d3);
}

/** The shape (d0, d1) or (d0, d1, d2, d3) (d2 < 0: rank 2). */
export function dimsShape(d0: number, d1: number, d2 = -1, d3 = -1): number[] {
  return d2 < 0 ? [d0, d1] : [d0, d1, d2, d3];
}

/** The previous forward's context when this backend made it (its buffers are reused), else a fresh one. */
export function reuseContext<T>(prev: unknown, backendClass: new () => T): T {
  return prev instanceof backendClass ? prev : new backendClass();
}

/**
 * A saved context as the backend class that created it. The dispatcher (backend.ts) sends each backward
 * to its context's backend, so a mismatch is a caller's bug: say so rather than read the wrong fields.
 */
export function ownContext<T>(ctx: unknown, backendClass: abstract new () => T): T {
  if (!(ctx instanceof backendClass)) {
    const got = typeof ctx === "object" && ctx !== null ? ctx.constructor.name : typeof ctx;
    const wanted = backendClass.name;
    throw new TypeError(`handprop kernels: a backward was given a ${got}, not the ${wanted} its forward saves`);
  }
  return ctx;
}
