// Permutations between handprop's NCHW layouts and TF.js's NHWC ones (tfjs.ts's header explains each).

import { samePadding } from "../../nn/conv.ts";

// ---------------------------------------------------------------------------------------------------
// Permutations between handprop's and TF's layouts.

/** Visit every conv kernel entry with its index in handprop's (O, C, kh, kw) and in TF's [kh, kw, C, O]. */
function forEachKernelEntry(
  O: number,
  C: number,
  kh: number,
  kw: number,
  visit: (ochw: number, hwco: number) => void,
): void {
  for (let o = 0; o < O; o++)
    for (let c = 0; c < C; c++)
      for (let p = 0; p < kh; p++)
        for (let q = 0; q < kw; q++) visit(((o * C + c) * kh + p) * kw + q, ((p * kw + q) * C + c) * O + o);
}

/** handprop conv kernel (O, C, kh, kw) → TF [kh, kw, C, O]. */
export function convKernelToTf(w: ArrayLike<number>, O: number, C: number, kh: number, kw: number): Float32Array {
  const out = new Float32Array(O * C * kh * kw);
  forEachKernelEntry(O, C, kh, kw, (ochw, hwco) => (out[hwco] = w[ochw]));
  return out;
}

/** TF conv kernel [kh, kw, C, O] → handprop (O, C, kh, kw). */
export function convKernelFromTf(t: ArrayLike<number>, O: number, C: number, kh: number, kw: number): Float32Array {
  const out = new Float32Array(O * C * kh * kw);
  forEachKernelEntry(O, C, kh, kw, (ochw, hwco) => (out[ochw] = t[hwco]));
  return out;
}

/**
 * For a flattened (C, H, W) image: nhwcIndex[f] = the channels-last position h·W·C + w·C + c of the
 * feature handprop numbers f = c·H·W + h·W + w.
 */
export function nhwcIndex([C, H, W]: readonly number[]): Int32Array {
  const idx = new Int32Array(C * H * W);
  for (let c = 0; c < C; c++)
    for (let h = 0; h < H; h++) for (let w = 0; w < W; w++) idx[c * H * W + h * W + w] = h * W * C + w * C + c;
  return idx;
}

/** Rows of a (F, cols) matrix: out[idx[f]] = x[f] to go to TF, out[f] = x[idx[f]] to come back. */
export function permuteRows(x: ArrayLike<number>, idx: Int32Array, cols: number, toTf: boolean): Float32Array {
  const out = new Float32Array(idx.length * cols);
  for (let f = 0; f < idx.length; f++) {
    const [dst, src] = toTf ? [idx[f], f] : [f, idx[f]];
    for (let j = 0; j < cols; j++) out[dst * cols + j] = x[src * cols + j];
  }
  return out;
}

/** handprop's Softmax axis on an NCHW batch (rank 4) ⇄ TF's on NHWC: N→N, C→3, H→1, W→2. */
export const NCHW_TO_NHWC_AXIS = [0, 3, 1, 2];
export const NHWC_TO_NCHW_AXIS = [0, 2, 3, 1];

/**
 * Does TF's "same" padding give the same windows as explicit padding (before, after) along one axis?
 * Both start the first window at −before; TF makes ⌈size/s⌉ windows, explicit padding
 * ⌊(size + before + after − d·(k − 1) − 1)/s⌋ + 1. Equal starts and counts mean equal results (a
 * window never reads a padded cell the other does not: both pad with zeros, or both ignore padding).
 */
export function matchesTfSame(size: number, k: number, s: number, d: number, before: number, after: number): boolean {
  return (
    samePadding(size, k, s, d)[0] === before &&
    Math.ceil(size / s) === Math.floor((size + before + after - d * (k - 1) - 1) / s) + 1
  );
}
