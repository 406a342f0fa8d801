// 2-D convolution and cross-correlation, mirroring scipy.signal.convolve2d and correlate2d
// (scipy/signal/_signaltools.py over the direct loop pylab_convolve_2d in scipy/signal/_firfilter.cc).
//
// Only SciPy's default boundary is supported: boundary='fill' with fillvalue=0.
//
// Summation order follows SciPy's loop, so float64 results are bit-for-bit SciPy's on platforms
// where SciPy's C loop is compiled without fused multiply-add (e.g. the x86-64 wheels). For each
// output element, kernel rows j are taken in order; within a row, kernel columns are summed in
// groups of four, ((t0 + t1) + t2) + t3, each group added to the running sum, then the 0–3 leftover
// terms one at a time. Out-of-range input positions contribute fill × kernel entry, exactly as in
// SciPy, so an infinite or NaN kernel entry yields NaN wherever it meets the padding.

import { NDArray, formatShape, type DType, type TypedArray } from "./ndarray.ts";

/** Output size, as SciPy's `mode`: "full" (M+P−1)×(N+Q−1), "same" the shape of `a`, "valid" (M−P+1)×(N−Q+1). */
export type ConvMode = "full" | "same" | "valid";

const MODES: readonly string[] = ["full", "same", "valid"];

/**
 * scipy.signal.convolve2d(a, b, mode) with boundary='fill', fillvalue=0: the 2-D discrete linear
 * convolution out[i, j] = Σ_{p,q} a[i−p, j−q] · b[p, q] (b is flipped), cropped by `mode`:
 *
 * - "full": shape (M+P−1, N+Q−1), every overlap.
 * - "same": shape of `a`, centred on "full" as SciPy does: element (i, j) is
 *   full[i + ⌊(P−1)/2⌋, j + ⌊(Q−1)/2⌋] for a P×Q `b` (so for an even P, one more row is dropped from
 *   the end of "full" than from its start; likewise columns), also when `b` is larger than `a`.
 * - "valid": only positions that do not touch the padding. One input must be at least as large as the
 *   other in every dimension; if `b` is the larger, the inputs are swapped (convolution commutes).
 *
 * dtype: float32 if both inputs are float32, else float64. Sums are always accumulated in float64;
 * SciPy accumulates float32 inputs in float32, so float32 results can differ from SciPy's in the
 * last float32 bits (they equal float32 of SciPy's float64 result on the same inputs).
 *
 * Differences from SciPy: no `boundary`/`fillvalue` arguments; inputs with a zero-length dimension
 * throw (SciPy returns ill-defined results for them, e.g. a (1, 4) array of zeros for a (0, 3) input
 * and a (2, 2) kernel in "full" mode, or an output larger than the input for an empty kernel in
 * "valid" mode). Complex inputs do not exist here.
 *
 * @throws TypeError if `a` or `b` is not an NDArray.
 * @throws RangeError if `a` or `b` is not 2-D or is empty, if `mode` is not one of the three modes, or,
 *   in "valid" mode, if neither input is at least as large as the other in every dimension.
 */
export function convolve2d(a: NDArray, b: NDArray, mode: ConvMode = "full"): NDArray {
  return conv2d("convolve2d", a, b, mode, true);
}

/**
 * scipy.signal.correlate2d(a, b, mode) with boundary='fill', fillvalue=0: the 2-D cross-correlation
 * out[i, j] = Σ_{p,q} a[i + p − s0, j + q − s1] · b[p, q] (b is not flipped; inputs are real so no
 * conjugate is taken), where the shift (s0, s1) is set by `mode`: "full" s = (P−1, Q−1), shape
 * (M+P−1, N+Q−1); "same" s = (⌊(P−1)/2⌋, ⌊(Q−1)/2⌋), shape of `a`, i.e. element (i, j) is
 * full[i + ⌊P/2⌋, j + ⌊Q/2⌋] (for an even P, one more row is dropped from the start of "full" than
 * from its end, the opposite of convolve2d, so convolve2d(a, b, "same") equals
 * correlate2d(a, rot90(b, 2), "same") only for odd kernel dimensions); "valid" s = 0, shape
 * (M−P+1, N−Q+1).
 *
 * In "valid" mode with `b` larger than `a`, SciPy swaps the inputs and reverses the result along both
 * axes, which is again the cross-correlation above evaluated where a and b fully overlap; this does
 * the same. As SciPy notes, for even kernels "same" here is one element off from
 * scipy.signal.correlate(..., "same").
 *
 * dtype, accumulation, empty inputs, errors: as {@link convolve2d}.
 */
export function correlate2d(a: NDArray, b: NDArray, mode: ConvMode = "full"): NDArray {
  return conv2d("correlate2d", a, b, mode, false);
}

function describe(value: unknown): string {
  if (typeof value === "string") return `'${value}'`;
  if (typeof value === "symbol") return value.toString();
  if (typeof value === "object" && value !== null) return Object.prototype.toString.call(value);
  return String(value);
}

function check2d(fn: string, arg: "a" | "b", x: unknown): NDArray {
  if (!(x instanceof NDArray)) {
    throw new TypeError(`${fn}: ${arg} must be an NDArray, got ${describe(x)}`);
  }
  if (x.ndim !== 2) {
    throw new RangeError(`${fn}: ${arg} must be a 2-D array, got shape ${formatShape(x.shape)} (${x.ndim}-D)`);
  }
  if (x.shape[0] === 0 || x.shape[1] === 0) {
    throw new RangeError(
      `${fn}: ${arg} is empty (shape ${formatShape(x.shape)}); inputs with a zero-length dimension are not supported`,
    );
  }
  return x;
}

function toFloat64(data: TypedArray): Float64Array {
  return data instanceof Float64Array ? data : Float64Array.from(data);
}

function conv2d(fn: string, a: NDArray, b: NDArray, mode: ConvMode, flip: boolean): NDArray {
  check2d(fn, "a", a);
  check2d(fn, "b", b);
  if (!MODES.includes(mode)) {
    throw new RangeError(`${fn}: invalid mode ${describe(mode)}; acceptable modes are 'full', 'same', 'valid'`);
  }

  // SciPy's _inputs_swap_needed: in "valid" mode the larger input must come first.
  let img = a;
  let ker = b;
  let swapped = false;
  if (mode === "valid") {
    const aCoversB = a.shape[0] >= b.shape[0] && a.shape[1] >= b.shape[1];
    const bCoversA = b.shape[0] >= a.shape[0] && b.shape[1] >= a.shape[1];
    if (!aCoversB && !bCoversA) {
      throw new RangeError(
        `${fn}: For 'valid' mode, one must be at least as large as the other in every dimension ` +
          `(got a with shape ${formatShape(a.shape)} and b with shape ${formatShape(b.shape)})`,
      );
    }
    if (!aCoversB) {
      img = b;
      ker = a;
      swapped = true;
    }
  }

  const M = img.shape[0];
  const N = img.shape[1];
  const P = ker.shape[0];
  const Q = ker.shape[1];
  const O0 = mode === "full" ? M + P - 1 : mode === "same" ? M : M - P + 1;
  const O1 = mode === "full" ? N + Q - 1 : mode === "same" ? N : N - Q + 1;
  const dtype: DType = a.dtype === "float32" && b.dtype === "float32" ? "float32" : "float64";

  // SciPy's loop reads image row r0(m) − j (convolve) or r0(m) + j (correlate) for output row m and
  // kernel row j, where r0(m) = m + o0 with o0 set by mode (likewise for columns):
  //   convolve:  full 0,        same ⌊(P−1)/2⌋,   valid P−1
  //   correlate: full −(P−1),   same −⌊(P−1)/2⌋,  valid 0
  // We copy the window of image rows/columns the loop touches, zero-filled outside the image, into
  // `win` of shape (O0+P−1)×(O1+Q−1) such that output (m, n) is Σ_j Σ_k h[j,k]·win[m'+j, n'+k] with the
  // kernel walked in SciPy's order. For correlate, win is the window as is and (m', n') = (m, n).
  // For convolve, win is the window rotated by 180°, so the image is walked backwards as SciPy's
  // ind = r0 − j does, and (m', n') = (O0−1−m, O1−1−n): the result comes out reversed in both axes.
  const half0 = (P - 1) >> 1;
  const half1 = (Q - 1) >> 1;
  const o0 = flip
    ? mode === "full"
      ? 0
      : mode === "same"
        ? half0
        : P - 1
    : mode === "full"
      ? 1 - P
      : mode === "same"
        ? -half0
        : 0;
  const o1 = flip
    ? mode === "full"
      ? 0
      : mode === "same"
        ? half1
        : Q - 1
    : mode === "full"
      ? 1 - Q
      : mode === "same"
        ? -half1
        : 0;
  const H = O0 + P - 1; // rows of the window
  const W = O1 + Q - 1; // columns of the window
  // First image row/column of the window (correlate) or last (convolve, walked backwards).
  const r0 = flip ? o0 + O0 - 1 : o0;
  const c0 = flip ? o1 + O1 - 1 : o1;
  const step = flip ? -1 : 1;

  const src = img.data;
  const win = new Float64Array(H * W);
  // Window rows i ↔ image row r0 + step·i; only rows and columns inside the image are copied.
  const iLo = Math.max(0, flip ? r0 - (M - 1) : -r0);
  const iHi = Math.min(H - 1, flip ? r0 : M - 1 - r0);
  const lLo = Math.max(0, flip ? c0 - (N - 1) : -c0);
  const lHi = Math.min(W - 1, flip ? c0 : N - 1 - c0);
  for (let i = iLo; i <= iHi; i++) {
    const srcRow = (r0 + step * i) * N + c0;
    const dstRow = i * W;
    for (let l = lLo; l <= lHi; l++) win[dstRow + l] = src[srcRow + step * l];
  }

  const out = dtype === "float32" ? new Float32Array(O0 * O1) : new Float64Array(O0 * O1);
  // Reversing both axes of a row-major array reverses its flat order. Convolution always comes out
  // reversed (rotated window); correlation is reversed when SciPy swapped the inputs.
  const reverse = flip || swapped;
  accumulate(win, W, toFloat64(ker.data), P, Q, out, O0, O1, reverse);
  return new NDArray(out, [O0, O1]);
}

/**
 * out[m, n] = Σ_j Σ_k h[j, k] · x[m + j, n + k] over an x of row length W, for m < O0, n < O1, in
 * SciPy's order (see the header); written in reverse flat order if `reverse`.
 */
function accumulate(
  x: Float64Array,
  W: number,
  h: Float64Array,
  P: number,
  Q: number,
  out: TypedArray,
  O0: number,
  O1: number,
  reverse: boolean,
): void {
  const Q4 = Q - (Q % 4);
  let o = reverse ? O0 * O1 - 1 : 0;
  const oStep = reverse ? -1 : 1;
  for (let m = 0; m < O0; m++) {
    const rowStart = m * W;
    for (let n = 0; n < O1; n++) {
      let s = 0;
      let xr = rowStart + n;
      let hr = 0;
      for (let j = 0; j < P; j++) {
        let k = 0;
        for (; k < Q4; k += 4) {
          const xk = xr + k;
          const hk = hr + k;
          s += h[hk] * x[xk] + h[hk + 1] * x[xk + 1] + h[hk + 2] * x[xk + 2] + h[hk + 3] * x[xk + 3];
        }
        for (; k < Q; k++) s += h[hr + k] * x[xr + k];
        xr += W;
        hr += Q;
      }
      out[o] = s;
      o += oStep;
    }
  }
}
