// Permutations between handprop's NCHW layouts and TF.js's NHWC ones (tfjs.ts's header explains each).

import { samePadding } from "../../nn/conv.ts";

// ---------------------------------------------------------------------------------------------------
// Permutations between handprop's and TF's layouts.

/** Between handprop's conv kernel (O, C, kh, kw) and TF's [kh, kw, C, O], either way. */
function moveConvKernel(src: ArrayLike<number>, O: number, C: number, kh: number, kw: number, toTf: boolean) {
  const out = new Float32Array(O * C * kh * kw);
  for (let o = 0; o < O; o++)
    for (let c = 0; c < C; c++)
      for (let p = 0; p < kh; p++)
        for (let q = 0; q < kw; q++) {
          const ours = ((o * C + c) * kh + p) * kw + q;
          const tf = ((p * kw + q) * C + c) * O + o;
          if (toTf) out[tf] = src[ours];
          else out[ours] = src[tf];
        }
  return out;
}

/** handprop conv kernel (O, C, kh, kw) → TF [kh, kw, C, O]. */
export function convKernelToTf(w: ArrayLike<number>, O: number, C: number, kh: number, kw: number): Float32Array {
  return moveConvKernel(w, O, C, kh, kw, true);
}

/** TF conv kernel [kh, kw, C, O] → handprop (O, C, kh, kw). */
export function convKernelFromTf(t: ArrayLike<number>, O: number, C: number, kh: number, kw: number): Float32Array {
  return moveConvKernel(t, O, C, kh, kw, false);
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

/**
 * Which Keras sample axis (1-based) each handprop sample axis holds: an image (C, H, W) is Keras's (H, W, C),
 * so handprop's axes 1, 2, 3 are Keras's 3, 1, 2; any other tensor has the same axes in both.
 */
export function kerasAxesOf(rank: number): number[] {
  return rank === 3 ? [3, 1, 2] : Array.from({ length: rank }, (_, i) => i + 1);
}

/** The Keras view of a handprop sample shape: (C, H, W) → [H, W, C]; others unchanged. */
export function kerasShapeOf(shape: readonly number[]): number[] {
  return shape.length === 3 ? [shape[1], shape[2], shape[0]] : shape.slice();
}

/**
 * handprop Permute dims doing what Keras's Permute(kerasDims) does to the Keras view of the same tensor
 * (both 1-based over the sample axes). With c = kerasAxesOf(r): handprop output axis i is Keras output axis
 * c[i], which is Keras input axis kerasDims[c[i]], which is handprop input axis c⁻¹(kerasDims[c[i]]).
 */
export function permuteFromTf(kerasDims: readonly number[]): number[] {
  const c = kerasAxesOf(kerasDims.length);
  return c.map((k) => c.indexOf(kerasDims[k - 1]) + 1);
}

/** The inverse of permuteFromTf: Keras dims d with d[c[i]] = c[dims[i]]. */
export function permuteToTf(dims: readonly number[]): number[] {
  const c = kerasAxesOf(dims.length);
  const d = new Array<number>(dims.length);
  dims.forEach((a, i) => (d[c[i] - 1] = c[a - 1]));
  return d;
}

/** The inverse of a 1-based permutation. */
export function inversePermutation(dims: readonly number[]): number[] {
  const inv = new Array<number>(dims.length);
  dims.forEach((a, i) => (inv[a - 1] = i + 1));
  return inv;
}

/**
 * One axis of TF's conv2d_transpose in handprop's terms. TF computes the full (H − 1)·s + k rows and keeps the
 * OH rows from row t on, where t is the top padding of the forward convolution from OH rows to H: "valid" 0,
 * "same" ⌊max((H − 1)·s + k − OH, 0)/2⌋. OH is H·s + max(k − s, 0) ("valid") or H·s ("same"), or with Keras's
 * output_padding op: (H − 1)·s + k − 2·pad + op, pad = ⌊k/2⌋ ("same") or 0. handprop crops `padding` rows from
 * each side and then appends `outputPadding` rows (derivation.md §5.2's output size), so padding = t and
 * outputPadding = OH − ((H − 1)·s + k) + 2t; expressible when that lies in [0, s) (`ok`).
 */
export function transposeAxisFromTf(
  H: number,
  k: number,
  s: number,
  mode: "same" | "valid",
  kerasOutputPadding: number | null,
): { padding: number; outputPadding: number; out: number; bottom: number; ok: boolean } {
  const full = (H - 1) * s + k;
  let out: number;
  if (kerasOutputPadding === null) out = mode === "valid" ? H * s + Math.max(k - s, 0) : H * s;
  else out = full - 2 * (mode === "same" ? Math.floor(k / 2) : 0) + kerasOutputPadding;
  const top = mode === "same" ? Math.floor(Math.max(full - out, 0) / 2) : 0;
  const outputPadding = out - full + 2 * top;
  return {
    padding: top,
    outputPadding,
    out,
    bottom: full - top - out,
    ok: out >= 1 && outputPadding >= 0 && outputPadding < s,
  };
}
