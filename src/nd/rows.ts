// Row-wise argmax and softmax over a flat (N, K) array of class scores, written once for the losses,
// the metrics, the batch counters, predict and the page.
//
//   argmax(z) = the first k with z_k = max_j z_j (np.argmax: the first index on ties; NaN is never larger)
//   softmax(z)_k = e^(z_k − m) / Σ_j e^(z_j − m),  m = max_j z_j   (derivation.md §2.6: the shift by m
//   changes nothing mathematically and keeps every exponential ≤ 1, so none overflows)
//   log Σ_j e^(z_j) = m + log Σ_j e^(z_j − m)

/** Index of the largest of values[offset], …, values[offset + length − 1], relative to offset (first on ties). */
export function argmax(values: ArrayLike<number>, offset = 0, length = values.length - offset): number {
  let best = 0;
  for (let k = 1; k < length; k++) if (values[offset + k] > values[offset + best]) best = k;
  return best;
}

/** argmax of each row of an (N, K) array stored row by row. */
export function argmaxRowsOf(values: ArrayLike<number>, N: number, K: number): Int32Array {
  const out = new Int32Array(N);
  for (let n = 0; n < N; n++) out[n] = argmax(values, n * K, K);
  return out;
}

/**
 * Softmax of each row of z (N, K) into out (same layout); with `lse`, also log Σ_k e^(z_k) of each row.
 * Float64 sums whatever out's type, so float32 and float64 outputs agree to out's rounding.
 */
export function softmaxRows(
  z: ArrayLike<number>,
  N: number,
  K: number,
  out: { [i: number]: number },
  lse: Float64Array | null = null,
): void {
  for (let n = 0; n < N; n++) {
    const row = n * K;
    let m = -Infinity;
    for (let k = 0; k < K; k++) if (z[row + k] > m) m = z[row + k];
    let s = 0;
    for (let k = 0; k < K; k++) s += Math.exp(z[row + k] - m);
    for (let k = 0; k < K; k++) out[row + k] = Math.exp(z[row + k] - m) / s;
    if (lse) lse[n] = m + Math.log(s);
  }
}

/** Softmax of one row of logits, in float64. */
export function softmax(logits: ArrayLike<number>): Float64Array {
  const p = new Float64Array(logits.length);
  softmaxRows(logits, 1, logits.length, p);
  return p;
}
