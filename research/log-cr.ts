// The correctly rounded natural logarithm, logCR, and its exact BigInt reference, logExact: research
// code kept out of the library (src/) and seen only by the tests (test/random.test.ts checks glibc's
// misroundings against it) and the benchmark. RandomState uses src/nd/log.ts's logGlibc, which
// reproduces glibc's own rounding instead; see that file's header for why both exist.
//
// logCR is the mathematically best answer, the same on every platform: a double-double evaluation
// with a rounding test and an exact BigInt fallback. Pure JavaScript, no allocation on the fast path.

// ---------------------------------------------------------------------------------------
// Bit access to doubles.

const F64 = new Float64Array(1);
const U32 = new Uint32Array(F64.buffer);
const LITTLE_ENDIAN = new Uint8Array(new Uint16Array([1]).buffer)[0] === 1;
/** Index in U32 of the word holding sign, exponent and the top 20 mantissa bits. */
const HI = LITTLE_ENDIAN ? 1 : 0;

/** Veltkamp splitting constant 2^27 + 1. */
const SPLITTER = 134217729;
const MIN_NORMAL = 2.2250738585072014e-308;
const TWO54 = 18014398509481984;

// ---------------------------------------------------------------------------------------
// Correctly rounded log.

// ln 2 = LN2_H + LN2_L + O(2^-110).
const LN2_H = 0.6931471805599453; // 0x1.62e42fefa39efp-1
const LN2_L = 2.3190468138462996e-17; // 0x1.abc9e3b39803fp-56

// 1/(2n+1) for n = 0..10 as double-double pairs (hi, lo), and for n = 11..21 as doubles.
const HEAD_TERMS = 11;
const TAIL_TERMS = 11;
const INV_ODD = new Float64Array(2 * HEAD_TERMS);
const INV_ODD_TAIL = new Float64Array(TAIL_TERMS);
for (let n = 0; n < HEAD_TERMS; n++) {
  const d = 2 * n + 1;
  const q = 1 / d;
  // The residual 1 - q·d of a correctly rounded quotient is exact: split q·d = p + e.
  let t = SPLITTER * q;
  const qh = t - (t - q);
  const ql = q - qh;
  t = SPLITTER * d;
  const dh = t - (t - d);
  const dl = d - dh;
  const p = q * d;
  const e = qh * dh - p + qh * dl + ql * dh + ql * dl;
  INV_ODD[2 * n] = q;
  INV_ODD[2 * n + 1] = (1 - p - e) / d;
}
for (let n = 0; n < TAIL_TERMS; n++) INV_ODD_TAIL[n] = 1 / (2 * (n + HEAD_TERMS) + 1);

/** Relative error bound of the double-double evaluation (≈ 2^-100 with a wide margin). */
const DD_REL_ERROR = 2 ** -92;

/** The exponent k of the last reduceArgument call (a module variable: no object per call). */
let reducedExponent = 0;

/**
 * x = 2^k · m with m in [√½, √2] (subnormals scaled by 2^54 first), the reduction logCR and
 * logExact share: ln x = k·ln 2 + ln m. Returns m; k is left in reducedExponent.
 */
function reduceArgument(x: number): number {
  let k = 0;
  let xs = x;
  if (xs < MIN_NORMAL) {
    xs *= TWO54;
    k = -54;
  }
  F64[0] = xs;
  const hw = U32[HI];
  k += (hw >>> 20) - 1023;
  U32[HI] = (hw & 0x000fffff) | 0x3ff00000;
  let m = F64[0];
  if (m > Math.SQRT2) {
    m *= 0.5;
    k += 1;
  }
  reducedExponent = k;
  return m;
}

/**
 * The correctly rounded natural logarithm: the double nearest to the exact ln(x) (ties to
 * even), for every double x. Special values as Math.log: logCR(1) = 0, logCR(±0) =
 * -Infinity, negative or NaN → NaN, logCR(Infinity) = Infinity.
 *
 * Method: x = 2^k·m with m in [√½, √2); ln m = 2·atanh(s), s = (m-1)/(m+1), |s| < 0.1716,
 * summed as 2s·Σ s^(2n)/(2n+1) (22 terms) in double-double arithmetic, plus k·ln2 in
 * double-double. The result carries a relative error below 2^-100; when that bound cannot
 * decide the rounding (probability about 2^-40 per input), `logExact` settles it.
 *
 * Throughput is a few million calls per second.
 */
export function logCR(x: number): number {
  if (!(x > 0) || x === Infinity) {
    if (x === 0) return -Infinity;
    return x === Infinity ? Infinity : NaN;
  }
  if (x === 1) return 0;
  const m = reduceArgument(x);
  const k = reducedExponent;

  // s = (m - 1)/(m + 1) in double-double. m - 1 is exact (Sterbenz).
  const num = m - 1;
  const denH = m + 1;
  let bv = denH - m;
  const denL = m - (denH - bv) + (1 - bv);
  const q1 = num / denH;
  // rem = num - q1·(denH + denL), with q1·denH = p + e exactly.
  let t = SPLITTER * q1;
  let ah = t - (t - q1);
  let al = q1 - ah;
  t = SPLITTER * denH;
  let bh = t - (t - denH);
  let bl = denH - bh;
  let p = q1 * denH;
  let e = ah * bh - p + ah * bl + al * bh + al * bl;
  const q2 = (num - p - e - q1 * denL) / denH;
  const sH = q1 + q2;
  const sL = q2 - (sH - q1);

  // z = s² in double-double.
  t = SPLITTER * sH;
  ah = t - (t - sH);
  al = sH - ah;
  p = sH * sH;
  e = ah * ah - p + 2 * ah * al + al * al;
  const zH = p + (e + 2 * sH * sL);
  const zL = e + 2 * sH * sL - (zH - p);

  // Tail Σ_{n=11}^{21} z^(n-11)/(2n+1) in double: it only contributes below 2^-56.
  let tail = INV_ODD_TAIL[TAIL_TERMS - 1];
  for (let n = TAIL_TERMS - 2; n >= 0; n--) tail = tail * zH + INV_ODD_TAIL[n];

  // Horner in double-double: acc = acc·z + 1/(2n+1) for n = 10..0.
  let accH = tail;
  let accL = 0;
  t = SPLITTER * zH;
  const zh = t - (t - zH);
  const zl = zH - zh;
  for (let n = HEAD_TERMS - 1; n >= 0; n--) {
    // (accH + accL)·(zH + zL)
    t = SPLITTER * accH;
    ah = t - (t - accH);
    al = accH - ah;
    p = accH * zH;
    e = ah * zh - p + ah * zl + al * zh + al * zl + (accH * zL + accL * zH);
    let hi = p + e;
    let lo = e - (hi - p);
    // + (cH + cL)
    const cH = INV_ODD[2 * n];
    const cL = INV_ODD[2 * n + 1];
    const sum = hi + cH;
    bv = sum - hi;
    lo += hi - (sum - bv) + (cH - bv) + cL;
    hi = sum;
    accH = hi + lo;
    accL = lo - (accH - hi);
  }

  // ln m = 2·(sH + sL)·(accH + accL).
  t = SPLITTER * sH;
  ah = t - (t - sH);
  al = sH - ah;
  t = SPLITTER * accH;
  bh = t - (t - accH);
  bl = accH - bh;
  p = sH * accH;
  e = ah * bh - p + ah * bl + al * bh + al * bl + (sH * accL + sL * accH);
  let lnH = 2 * (p + e);
  let lnL = 2 * (e - (p + e - p));

  if (k !== 0) {
    // k·ln2 in double-double: k has at most 11 bits, so k·LN2_H = kp + ke exactly.
    t = SPLITTER * k;
    ah = t - (t - k);
    al = k - ah;
    t = SPLITTER * LN2_H;
    bh = t - (t - LN2_H);
    bl = LN2_H - bh;
    const kp = k * LN2_H;
    const ke = ah * bh - kp + ah * bl + al * bh + al * bl + k * LN2_L;
    // (kp + ke) + (lnH + lnL), accurate double-double addition.
    let s1 = kp + lnH;
    bv = s1 - kp;
    let s2 = kp - (s1 - bv) + (lnH - bv);
    const t1 = ke + lnL;
    bv = t1 - ke;
    const t2 = ke - (t1 - bv) + (lnL - bv);
    s2 += t1;
    let h = s1 + s2;
    s2 = s2 - (h - s1);
    s1 = h;
    s2 += t2;
    h = s1 + s2;
    lnL = s2 - (h - s1);
    lnH = h;
  } else {
    const h = lnH + lnL;
    lnL = lnL - (h - lnH);
    lnH = h;
  }

  // Rounding test: if both ends of the error interval round to the same double, that is
  // the correctly rounded result.
  const bound = Math.abs(lnH) * DD_REL_ERROR;
  const up = lnH + (lnL + bound);
  const down = lnH + (lnL - bound);
  if (up === down) return up;
  return logExact(x);
}

// ---------------------------------------------------------------------------------------
// Exact fallback in BigInt fixed point.

const FIX_BITS = 320n;
const FIX_SCALE = 2 ** 320;

/** atanh(S·2^-320)·2^320 for 0 <= S < 2^320/2, with an error of a few units. */
function atanhFixed(S: bigint): bigint {
  const s2 = (S * S) >> FIX_BITS;
  let pow = S;
  let sum = S;
  for (let d = 3n; pow !== 0n; d += 2n) {
    pow = (pow * s2) >> FIX_BITS;
    sum += pow / d;
  }
  return sum;
}

let ln2Fixed: bigint | undefined;

/**
 * ln(x) correctly rounded, computed in 320-bit fixed point with BigInt (error below
 * 2^-300 absolute, far below what any double needs to round correctly). Slow (tens of
 * microseconds); logCR's fallback and a reference for tests. Special values as logCR.
 */
export function logExact(x: number): number {
  if (!(x > 0) || x === Infinity) {
    if (x === 0) return -Infinity;
    return x === Infinity ? Infinity : NaN;
  }
  if (x === 1) return 0;
  ln2Fixed ??= 2n * atanhFixed((1n << FIX_BITS) / 3n);
  const m = reduceArgument(x);
  const k = reducedExponent;
  // m = M / 2^53 exactly; s = (m - 1)/(m + 1) = (M - 2^53)/(M + 2^53).
  const M = BigInt(m * 9007199254740992);
  const D = 9007199254740992n;
  const num = M - D;
  const den = M + D;
  const S = ((num < 0n ? -num : num) << FIX_BITS) / den;
  let lnm = 2n * atanhFixed(S);
  if (num < 0n) lnm = -lnm;
  const total = BigInt(k) * ln2Fixed + lnm;
  // Number(bigint) rounds to nearest; dividing by a power of two is then exact.
  return Number(total) / FIX_SCALE;
}
