// Buffers reused from batch to batch, so that steady-state training allocates nothing.

import { NDArray, allocate, shapeSize, type DType } from "../nd/ndarray.ts";

/** Return `buf` if it already has this shape and dtype, else a fresh zeroed array. */
export function reuse(buf: NDArray | null, shape: readonly number[], dtype: DType): NDArray {
  const fits = buf !== null && buf.dtype === dtype && buf.shape.length === shape.length;
  if (fits && buf.shape.every((d, i) => d === shape[i])) return buf;
  return new NDArray(allocate(dtype, shapeSize(shape)), shape);
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
