// exp, expm1 and tanh exactly as Node 20's V8 computes Math.exp / Math.expm1 / Math.tanh: the fdlibm
// (FreeBSD msun) algorithms V8 ported to src/base/ieee754.cc, written with plain double arithmetic so
// every JavaScript engine returns the same bits.
//
// Why: `handprop seed` runs in Node, and the playground's page 1 (in a browser) promises the same
// numbers; both run the article's experiment through these functions (src/examples/article*.ts). Math.exp and Math.tanh are
// not the same functions everywhere: Chromium 156's V8 returns a different last bit from Node 20's
// for 20,307 of 200,000 exp arguments in [−20, 20] and 47 of 1,000,000 tanh arguments in [−25, 25]
// (measured on this machine), and after 1000 epochs those bits reach the printed weights. Only
// correctly rounded operations (+ − × ÷) and exact bit manipulation are used below, so the results
// are the same on every engine; test/e2e/article-step.test.ts checks they equal Node's Math functions
// on millions of arguments.

const buf = new DataView(new ArrayBuffer(8));

function highWord(x: number): number {
  buf.setFloat64(0, x);
  return buf.getUint32(0);
}

function lowWord(x: number): number {
  buf.setFloat64(0, x);
  return buf.getUint32(4);
}

function fromWords(hi: number, lo: number): number {
  buf.setUint32(0, hi >>> 0);
  buf.setUint32(4, lo >>> 0);
  return buf.getFloat64(0);
}

const halF = [0.5, -0.5];
const o_threshold = 7.09782712893383973096e2; // 0x40862E42 FEFA39EF
const u_threshold = -7.4513321910194110842e2; // 0xC0874910 D52D3051
const ln2HI = [6.9314718036912381649e-1, -6.9314718036912381649e-1]; // 0x3FE62E42 FEE00000
const ln2LO = [1.90821492927058770002e-10, -1.90821492927058770002e-10]; // 0x3DEA39EF 35793C76
const invln2 = 1.442695040888963387; // 0x3FF71547 652B82FE
const P1 = 1.66666666666666019037e-1; // 0x3FC55555 5555553E
const P2 = -2.77777777770155933842e-3; // 0xBF66C16C 16BEBD93
const P3 = 6.61375632143793436117e-5; // 0x3F11566A AF25DE2C
const P4 = -1.6533902205465251539e-6; // 0xBEBBBD41 C5D26BF1
const P5 = 4.13813679705723846039e-8; // 0x3E663769 72BEA4D0
const twom1000 = 9.3326361850321887899e-302; // 2^-1000
const two1023 = 8.988465674311579539e307; // 2^1023

/**
 * e^x. Reduce x = k·ln2 + r with |r| ≤ ln2/2 (ln2 split in hi + lo so that k·ln2hi is exact),
 * approximate e^r = 1 + r + r·c/(2 − c) with c = r − r²·P(r²) (a Remez polynomial), scale by 2^k.
 */
export function fdlibmExp(x: number): number {
  let hx = highWord(x);
  const xsb = (hx >>> 31) & 1; // sign bit of x
  hx &= 0x7fffffff; // high word of |x|

  // Non-finite and out-of-range arguments.
  if (hx >= 0x40862e42) {
    // |x| ≥ 709.78…
    if (hx >= 0x7ff00000) {
      if (((hx & 0xfffff) | lowWord(x)) !== 0) return x + x; // NaN
      return xsb === 0 ? x : 0; // exp(+∞) = +∞, exp(−∞) = 0
    }
    if (x > o_threshold) return Infinity; // overflow
    if (x < u_threshold) return 0; // underflow
  }

  // Argument reduction: x = k·ln2 + (hi − lo).
  let hi = 0;
  let lo = 0;
  let k: number;
  if (hx > 0x3fd62e42) {
    // |x| > ln2/2
    if (hx < 0x3ff0a2b2) {
      // and |x| < 1.5·ln2
      if (x === 1) return Math.E; // V8's special case: the formula below is one ulp off at exactly 1
      hi = x - ln2HI[xsb];
      lo = ln2LO[xsb];
      k = 1 - xsb - xsb;
    } else {
      k = Math.trunc(invln2 * x + halF[xsb]); // C's (int) conversion truncates
      const t = k;
      hi = x - t * ln2HI[0]; // exact
      lo = t * ln2LO[0];
    }
    x = hi - lo;
  } else if (hx < 0x3e300000) {
    // |x| < 2^-28: exp(x) = 1 + x, rounded
    return 1 + x;
  } else k = 0;

  // x is now in [−ln2/2, ln2/2].
  const t = x * x;
  const twopk = k >= -1021 ? fromWords(0x3ff00000 + (k << 20), 0) : fromWords(0x3ff00000 + ((k + 1000) << 20), 0);
  const c = x - t * (P1 + t * (P2 + t * (P3 + t * (P4 + t * P5))));
  if (k === 0) return 1 - ((x * c) / (c - 2.0) - x);
  const y = 1 - (lo - (x * c) / (2.0 - c) - hi);
  if (k >= -1021) {
    if (k === 1024) return y * 2.0 * two1023;
    return y * twopk;
  }
  return y * twopk * twom1000;
}

const Q1 = -3.33333333333331316428e-2; // BFA11111 111110F4
const Q2 = 1.58730158725481460165e-3; // 3F5A01A0 19FE5585
const Q3 = -7.93650757867487942473e-5; // BF14CE19 9EAADBB7
const Q4 = 4.00821782732936239552e-6; // 3ED0CFCA 86E65239
const Q5 = -2.01099218183624371326e-7; // BE8AFDB7 6E09C32D

/** e^x − 1, accurate near 0 (fdlibm s_expm1.c): the same reduction as exp, a rational approximation of r. */
export function fdlibmExpm1(x: number): number {
  let hx = highWord(x);
  const xsb = hx & 0x80000000; // sign bit of x
  hx &= 0x7fffffff; // high word of |x|

  // Huge and non-finite arguments.
  if (hx >= 0x4043687a) {
    // |x| ≥ 56·ln2
    if (hx >= 0x40862e42) {
      // |x| ≥ 709.78…
      if (hx >= 0x7ff00000) {
        if (((hx & 0xfffff) | lowWord(x)) !== 0) return x + x; // NaN
        return xsb === 0 ? x : -1.0; // expm1(+∞) = +∞, expm1(−∞) = −1
      }
      if (x > o_threshold) return Infinity; // overflow
    }
    if (xsb !== 0) return -1.0; // x < −56·ln2: −1 to double precision
  }

  // Argument reduction: x = k·ln2 + (hi − lo), with c the rounding error of hi − lo.
  let k: number;
  let hi: number;
  let lo: number;
  let c = 0;
  if (hx > 0x3fd62e42) {
    // |x| > ln2/2
    if (hx < 0x3ff0a2b2) {
      // and |x| < 1.5·ln2
      if (xsb === 0) {
        hi = x - ln2HI[0];
        lo = ln2LO[0];
        k = 1;
      } else {
        hi = x + ln2HI[0];
        lo = -ln2LO[0];
        k = -1;
      }
    } else {
      k = Math.trunc(invln2 * x + (xsb === 0 ? 0.5 : -0.5));
      const t = k;
      hi = x - t * ln2HI[0]; // exact
      lo = t * ln2LO[0];
    }
    x = hi - lo;
    c = hi - x - lo;
  } else if (hx < 0x3c900000) {
    // |x| < 2^-54: expm1(x) = x
    return x;
  } else k = 0;

  // x is now in [−ln2/2, ln2/2].
  const hfx = 0.5 * x;
  const hxs = x * hfx;
  const r1 = 1 + hxs * (Q1 + hxs * (Q2 + hxs * (Q3 + hxs * (Q4 + hxs * Q5))));
  let t = 3.0 - r1 * hfx;
  let e = hxs * ((r1 - t) / (6.0 - x * t));
  if (k === 0) return x - (x * e - hxs); // c is 0
  const twopk = fromWords(0x3ff00000 + (k << 20), 0);
  e = x * (e - c) - c;
  e -= hxs;
  if (k === -1) return 0.5 * (x - e) - 0.5;
  if (k === 1) return x < -0.25 ? -2.0 * (e - (x + 0.5)) : 1 + 2.0 * (x - e);
  let y: number;
  if (k <= -2 || k > 56) {
    // exp(x) − 1 ≈ exp(x) to working precision
    y = 1 - (e - x);
    y = k === 1024 ? y * 2.0 * two1023 : y * twopk;
    return y - 1;
  }
  if (k < 20) {
    t = fromWords(0x3ff00000 - (0x200000 >> k), 0); // 1 − 2^-k
    y = t - (e - x);
    y = y * twopk;
  } else {
    t = fromWords((0x3ff - k) << 20, 0); // 2^-k
    y = x - (e + t);
    y += 1;
    y = y * twopk;
  }
  return y;
}

/** tanh x (fdlibm s_tanh.c): 1 − 2/(e^{2|x|} + 1) via expm1 for |x| ≥ 1, −t/(t + 2) with t = expm1(−2|x|) below. */
export function fdlibmTanh(x: number): number {
  const jx = highWord(x) | 0;
  const ix = jx & 0x7fffffff;
  if (ix >= 0x7ff00000) return jx >= 0 ? 1 / x + 1 : 1 / x - 1; // tanh(±∞) = ±1, tanh(NaN) = NaN
  let z: number;
  if (ix < 0x40360000) {
    // |x| < 22
    if (ix < 0x3e300000) return x; // |x| < 2^-28: tanh(x) = x
    if (ix >= 0x3ff00000) {
      // |x| ≥ 1
      const t = fdlibmExpm1(2 * Math.abs(x));
      z = 1 - 2 / (t + 2);
    } else {
      const t = fdlibmExpm1(-2 * Math.abs(x));
      z = -t / (t + 2);
    }
  } else z = 1; // |x| ≥ 22: ±1 to double precision
  return jx >= 0 ? z : -z;
}
