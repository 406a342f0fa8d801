// RandomState: NumPy's legacy `numpy.random.RandomState` (MT19937), reproduced bit for bit.
//
// Streams match NumPy exactly for the same seed and the same sequence of calls:
// seeding (`init_genrand` / `init_by_array`), raw 32-bit words, doubles (`random_sample`,
// `rand`, `uniform`), integers (`randint`, masked rejection), `shuffle`/`permutation`,
// `choice`, and the legacy polar Box–Muller normals (`randn`, `normal`,
// `standard_normal`), including the cached second deviate and `get_state`/`set_state`.
//
// Normals are bit-identical to NumPy running on Linux x86-64 (glibc >= 2.28, FMA-capable
// CPU) — measured: 10^6 consecutive normals identical. legacy_gauss calls the C
// library's `log`, reproduced here by `logGlibc` (see log.ts). For comparison, over
// 2·10^6 normals, using V8's Math.log would change 63,051 of them and even a correctly
// rounded log 617 (by one ulp). Where NumPy's libm is not glibc (macOS, Windows) or its
// compiled code fuses multiply-adds (aarch64 builds), NumPy's own normals differ from
// the x86-64 Linux ones in rare last bits; this class follows x86-64 Linux. Uniforms,
// integers and permutations involve no libm call and are identical everywhere.

import { NDArray } from "./ndarray.ts";
import { logGlibc } from "./log.ts";

/** Output shape of a draw: a length, or a list of dimensions (`[]` makes a 0-d array). */
export type Size = number | readonly number[];

/** A snapshot of the generator, as NumPy's `get_state()` tuple
 * `('MT19937', key, pos, has_gauss, cached_gaussian)`. */
export interface RandomStateState {
  /** The 624-word Mersenne Twister state. */
  key: Uint32Array;
  /** Index of the next word to temper, 0..624 (624: regenerate before the next draw). */
  pos: number;
  /** Whether a second normal deviate is cached for the next normal draw. */
  hasGauss: boolean;
  /** The cached deviate (0 when none). */
  cachedGaussian: number;
}

/** State accepted by `setState`: the object form, or NumPy's legacy tuple as a JS array
 * (e.g. parsed from JSON), `["MT19937", key, pos]` or `["MT19937", key, pos, has_gauss,
 * cached_gaussian]`. */
export type RandomStateInput =
  | {
      key: ArrayLike<number>;
      pos: number;
      hasGauss?: boolean | number;
      cachedGaussian?: number;
    }
  | readonly [string, ArrayLike<number>, number]
  | readonly [string, ArrayLike<number>, number, boolean | number, number];

/** Arrays `shuffle` can permute in place. */
export type ShuffleTarget =
  | number[]
  | Float64Array
  | Float32Array
  | Int32Array
  | Uint32Array
  | Int16Array
  | Uint16Array
  | Int8Array
  | Uint8Array
  | Uint8ClampedArray
  | NDArray;

const N = 624;
const M = 397;
const MATRIX_A = 0x9908b0df;
const UPPER_MASK = 0x80000000;
const LOWER_MASK = 0x7fffffff;
const TWO32 = 4294967296;
const MAX_SEED = 4294967295;
/** Largest range span randint supports exactly: results stay within ±(2^53 - 1). */
const TWO53 = 9007199254740992;

function describe(v: unknown): string {
  if (typeof v === "number") return Object.is(v, -0) ? "-0" : String(v);
  if (typeof v === "string") return JSON.stringify(v);
  try {
    return JSON.stringify(v) ?? String(v);
  } catch {
    return String(v);
  }
}

/** Normalise a size argument to a shape, with NumPy's errors. */
function toShape(size: Size, where: string): number[] {
  const shape = typeof size === "number" ? [size] : Array.from(size);
  for (const d of shape) {
    if (typeof d !== "number" || !Number.isInteger(d)) {
      throw new TypeError(`${where}: size must contain integers, got ${describe(size)}`);
    }
    if (d < 0) throw new RangeError(`${where}: negative dimensions are not allowed (size ${describe(size)})`);
  }
  return shape;
}

function shapeCount(shape: readonly number[]): number {
  let n = 1;
  for (const d of shape) n *= d;
  return n;
}

/** Smallest mask 2^b - 1 >= max, for 0 <= max < 2^53. */
function genMask(max: number): number {
  let mask = 1;
  while (mask < max) mask = mask * 2 + 1;
  return max === 0 ? 0 : mask;
}

function checkSeedWord(v: unknown): number {
  if (typeof v !== "number" || !Number.isInteger(v)) {
    throw new TypeError(`Seed must be an integer (or an array of integers), got ${describe(v)}`);
  }
  if (v < 0 || v > MAX_SEED) {
    throw new RangeError(`Seed must be between 0 and 2**32 - 1, got ${describe(v)}`);
  }
  return v;
}

/**
 * NumPy's legacy random generator, `numpy.random.RandomState`, on the MT19937 bit
 * generator. Same seed + same calls ⇒ the same numbers as NumPy, bit for bit (see the
 * file header for the one platform caveat on normals).
 *
 * Scalar-parameter forms only: `low`, `high`, `loc`, `scale` are numbers, not arrays.
 * Methods with a `size` return a float64 `NDArray` (integer-valued for `randint`,
 * `choice`); without it they return a plain number.
 */
export class RandomState {
  private readonly mt = new Uint32Array(N);
  private pos = N;
  private hasGauss = false;
  private gauss = 0;

  /**
   * As `np.random.RandomState(seed)`. An integer in [0, 2**32 - 1] seeds with
   * `init_genrand`; an array of such integers with `init_by_array`. A `Uint32Array` is
   * treated like a NumPy array: one of length 1 is squeezed to its scalar (so
   * `Uint32Array.of(5)` seeds like `5`, while the plain array `[5]` uses
   * init_by_array, exactly as in NumPy). Without a seed, the whole state is filled from
   * `crypto.getRandomValues` (key[0] = 0x80000000, as NumPy does for entropy seeding).
   */
  constructor(seed?: number | readonly number[] | Uint32Array) {
    this.seed(seed);
  }

  /** As `RandomState.seed(seed)`: reseeds (see the constructor) and drops any cached normal. */
  seed(seed?: number | readonly number[] | Uint32Array): void {
    if (seed === undefined) {
      globalThis.crypto.getRandomValues(this.mt);
      this.mt[0] = 0x80000000;
      this.pos = N;
    } else if (typeof seed === "number") {
      this.initGenrand(checkSeedWord(seed));
    } else if (seed instanceof Uint32Array && seed.length === 1) {
      this.initGenrand(seed[0]);
    } else if (Array.isArray(seed) || seed instanceof Uint32Array) {
      if (seed.length === 0) throw new RangeError("Seed must be non-empty");
      const words = new Uint32Array(seed.length);
      for (let i = 0; i < seed.length; i++) words[i] = checkSeedWord(seed[i]);
      this.initByArray(words);
    } else {
      throw new TypeError(`Seed must be an integer or an array of integers, got ${describe(seed)}`);
    }
    this.hasGauss = false;
    this.gauss = 0;
  }

  /** MT19937 `mt19937_seed` (Knuth's initialisation, as init_genrand). */
  private initGenrand(s: number): void {
    const mt = this.mt;
    mt[0] = s;
    for (let i = 1; i < N; i++) {
      const prev = mt[i - 1];
      mt[i] = Math.imul(1812433253, prev ^ (prev >>> 30)) + i;
    }
    this.pos = N;
  }

  /** MT19937 `init_by_array`. */
  private initByArray(key: Uint32Array): void {
    this.initGenrand(19650218);
    const mt = this.mt;
    let i = 1;
    let j = 0;
    for (let k = Math.max(N, key.length); k > 0; k--) {
      const prev = mt[i - 1];
      mt[i] = (mt[i] ^ Math.imul(prev ^ (prev >>> 30), 1664525)) + key[j] + j;
      i++;
      j++;
      if (i >= N) {
        mt[0] = mt[N - 1];
        i = 1;
      }
      if (j >= key.length) j = 0;
    }
    for (let k = N - 1; k > 0; k--) {
      const prev = mt[i - 1];
      mt[i] = (mt[i] ^ Math.imul(prev ^ (prev >>> 30), 1566083941)) - i;
      i++;
      if (i >= N) {
        mt[0] = mt[N - 1];
        i = 1;
      }
    }
    mt[0] = 0x80000000;
    this.pos = N;
  }

  /** Regenerate the 624 words (`mt19937_gen`). */
  private generate(): void {
    const mt = this.mt;
    let i = 0;
    let y: number;
    for (; i < N - M; i++) {
      y = (mt[i] & UPPER_MASK) | (mt[i + 1] & LOWER_MASK);
      mt[i] = mt[i + M] ^ (y >>> 1) ^ (-(y & 1) & MATRIX_A);
    }
    for (; i < N - 1; i++) {
      y = (mt[i] & UPPER_MASK) | (mt[i + 1] & LOWER_MASK);
      mt[i] = mt[i + M - N] ^ (y >>> 1) ^ (-(y & 1) & MATRIX_A);
    }
    y = (mt[N - 1] & UPPER_MASK) | (mt[0] & LOWER_MASK);
    mt[N - 1] = mt[M - 1] ^ (y >>> 1) ^ (-(y & 1) & MATRIX_A);
    this.pos = 0;
  }

  /** The next raw 32-bit word, in [0, 2^32) (`mt19937_next32`; NumPy's `random_raw`). */
  nextUint32(): number {
    if (this.pos === N) this.generate();
    let y = this.mt[this.pos++];
    y ^= y >>> 11;
    y ^= (y << 7) & 0x9d2c5680;
    y ^= (y << 15) & 0xefc60000;
    y ^= y >>> 18;
    return y >>> 0;
  }

  /** The next double in [0, 1) with 53 random bits (`mt19937_next_double`):
   * (a >> 5, b >> 6) → (a·2^26 + b) / 2^53. Consumes two words. */
  nextDouble(): number {
    const a = this.nextUint32() >>> 5;
    const b = this.nextUint32() >>> 6;
    return (a * 67108864 + b) / 9007199254740992;
  }

  /** A standard normal deviate (`legacy_gauss`): the polar Box–Muller method, which makes
   * two deviates per accepted point and caches the second for the next call. */
  private nextGauss(): number {
    if (this.hasGauss) {
      const g = this.gauss;
      this.hasGauss = false;
      this.gauss = 0;
      return g;
    }
    let x1: number;
    let x2: number;
    let r2: number;
    do {
      x1 = 2 * this.nextDouble() - 1;
      x2 = 2 * this.nextDouble() - 1;
      r2 = x1 * x1 + x2 * x2;
    } while (r2 >= 1 || r2 === 0);
    const f = Math.sqrt((-2 * logGlibc(r2)) / r2);
    this.gauss = f * x1;
    this.hasGauss = true;
    return f * x2;
  }

  /** Uniform integer in [0, max] by masked rejection on 32- or 64-bit words
   * (`random_interval`, used by shuffle). */
  private interval(max: number): number {
    if (max === 0) return 0;
    if (max <= 0xffffffff) {
      const mask = genMask(max);
      let v: number;
      do v = (this.nextUint32() & mask) >>> 0;
      while (v > max);
      return v;
    }
    return this.masked64(max, genMask(max));
  }

  /** Masked rejection on 64-bit words (hi word first, as `mt19937_next64`), for
   * 2^32 <= rng < 2^53; mask = 2^b - 1 >= rng, so its low word is all ones. */
  private masked64(rng: number, mask: number): number {
    const maskHi = Math.floor(mask / TWO32);
    let v: number;
    do {
      const hi = (this.nextUint32() & maskHi) >>> 0;
      v = hi * TWO32 + this.nextUint32();
    } while (v > rng);
    return v;
  }

  private fill(size: Size, where: string, draw: () => number): NDArray {
    const shape = toShape(size, where);
    const data = new Float64Array(shapeCount(shape));
    for (let i = 0; i < data.length; i++) data[i] = draw();
    return new NDArray(data, shape);
  }

  /** The two deviates the generator draws, as functions of it (made once: a scalar draw allocates nothing). */
  private static readonly uniformDeviate = (rng: RandomState): number => rng.nextDouble();
  private static readonly gaussianDeviate = (rng: RandomState): number => rng.nextGauss();

  /** One draw of `deviate` without size, else an array of `size` draws. */
  private drawOrFill(size: Size | undefined, where: string, deviate: (rng: RandomState) => number): number | NDArray {
    if (size === undefined) return deviate(this);
    return this.fill(size, where, () => deviate(this));
  }

  // -------------------------------------------------------------------------------------
  // Uniform floats.

  /** Uniform floats in [0, 1), as `random_sample(size)` (alias `random`). */
  randomSample(): number;
  randomSample(size: Size): NDArray;
  randomSample(size?: Size): number | NDArray;
  randomSample(size?: Size): number | NDArray {
    return this.drawOrFill(size, "randomSample", RandomState.uniformDeviate);
  }

  /** Alias of `randomSample`, as NumPy's `random(size)`. */
  random(): number;
  random(size: Size): NDArray;
  random(size?: Size): number | NDArray;
  random(size?: Size): number | NDArray {
    return this.randomSample(size);
  }

  /** Uniform floats in [0, 1) of shape (d0, d1, ...), as `rand(d0, d1, ...)`; a number
   * when called without dimensions. */
  rand(): number;
  rand(d0: number, ...dims: number[]): NDArray;
  rand(...dims: number[]): number | NDArray;
  rand(...dims: number[]): number | NDArray {
    return dims.length === 0 ? this.nextDouble() : this.randomSample(dims);
  }

  /** low + (high - low)·U[0, 1), as `uniform(low, high, size)`. high < low is allowed
   * (as in NumPy); a non-finite high - low throws. */
  uniform(low?: number, high?: number): number;
  uniform(low: number | undefined, high: number | undefined, size: Size): NDArray;
  uniform(low?: number, high?: number, size?: Size): number | NDArray;
  uniform(low = 0, high = 1, size?: Size): number | NDArray {
    const range = high - low;
    if (!Number.isFinite(range)) throw new RangeError(`uniform: Range exceeds valid bounds (low ${low}, high ${high})`);
    const draw = (): number => low + range * this.nextDouble();
    return size === undefined ? draw() : this.fill(size, "uniform", draw);
  }

  // -------------------------------------------------------------------------------------
  // Normals.

  /** Standard normal deviates of shape (d0, d1, ...), as `randn(d0, d1, ...)`; a number
   * when called without dimensions. */
  randn(): number;
  randn(d0: number, ...dims: number[]): NDArray;
  randn(...dims: number[]): number | NDArray;
  randn(...dims: number[]): number | NDArray {
    return dims.length === 0 ? this.nextGauss() : this.standardNormal(dims);
  }

  /** Standard normal deviates, as `standard_normal(size)`. */
  standardNormal(): number;
  standardNormal(size: Size): NDArray;
  standardNormal(size?: Size): number | NDArray;
  standardNormal(size?: Size): number | NDArray {
    return this.drawOrFill(size, "standardNormal", RandomState.gaussianDeviate);
  }

  /** loc + scale·N(0, 1), as `normal(loc, scale, size)`. scale must be >= 0 (and, as in
   * NumPy, not -0). */
  normal(loc?: number, scale?: number): number;
  normal(loc: number | undefined, scale: number | undefined, size: Size): NDArray;
  normal(loc?: number, scale?: number, size?: Size): number | NDArray;
  normal(loc = 0, scale = 1, size?: Size): number | NDArray {
    if (scale < 0 || Object.is(scale, -0)) throw new RangeError(`normal: scale < 0 (got ${describe(scale)})`);
    const draw = (): number => loc + scale * this.nextGauss();
    return size === undefined ? draw() : this.fill(size, "normal", draw);
  }

  // -------------------------------------------------------------------------------------
  // Integers.

  /**
   * Uniform integers in [low, high), as `randint(low, high, size)` with the default
   * int64 dtype (`random_bounded_uint64_fill`, masked rejection): ranges up to 2^32 draw
   * one 32-bit word per attempt, larger ones a 64-bit word (hi word first). With `high`
   * omitted the range is [0, low). Bounds must be integers with -(2^53 - 1) <= low and
   * high <= 2^53 (so every result is a safe integer), and high - low <= 2^53.
   * Values are returned as numbers (in a float64 NDArray with a size).
   */
  randint(low: number, high?: number): number;
  randint(low: number, high: number | undefined, size: Size): NDArray;
  randint(low: number, high?: number, size?: Size): number | NDArray;
  randint(low: number, high?: number, size?: Size): number | NDArray {
    let lo = low;
    let hi = high;
    if (hi === undefined) {
      hi = lo;
      lo = 0;
    }
    let shape: number[] | undefined;
    if (size !== undefined) {
      shape = toShape(size, "randint");
      // NumPy returns an empty array before looking at the bounds.
      if (shapeCount(shape) === 0) return new NDArray(new Float64Array(0), shape);
    }
    for (const [name, v] of [
      ["low", lo],
      ["high", hi],
    ] as const) {
      if (typeof v !== "number" || !Number.isInteger(v)) {
        throw new TypeError(`randint: ${name} must be an integer, got ${describe(v)}`);
      }
      // Results must be safe integers: low >= -(2^53 - 1), high - 1 <= 2^53 - 1.
      if (!Number.isSafeInteger(v) && !(name === "high" && v === TWO53)) {
        throw new RangeError(`randint: ${name} = ${v} is outside the safe integer range ±(2^53 - 1)`);
      }
    }
    if (lo >= hi)
      throw new RangeError(lo === 0 ? "randint: high <= 0" : `randint: low >= high (low ${lo}, high ${hi})`);
    if (BigInt(hi) - BigInt(lo) > BigInt(TWO53)) {
      throw new RangeError(`randint: range high - low = ${BigInt(hi) - BigInt(lo)} exceeds 2^53`);
    }
    const rng = hi - lo - 1; // exact: hi - lo <= 2^53
    const off = lo;
    let draw: () => number;
    if (rng === 0) {
      draw = () => off;
    } else if (rng === 0xffffffff) {
      draw = () => off + this.nextUint32();
    } else if (rng < 0xffffffff) {
      const mask = genMask(rng);
      draw = () => {
        let v: number;
        do v = (this.nextUint32() & mask) >>> 0;
        while (v > rng);
        return off + v;
      };
    } else {
      const mask = genMask(rng);
      draw = () => off + this.masked64(rng, mask);
    }
    if (shape === undefined) return draw();
    const data = new Float64Array(shapeCount(shape));
    for (let i = 0; i < data.length; i++) data[i] = draw();
    return new NDArray(data, shape);
  }

  // -------------------------------------------------------------------------------------
  // Permutations.

  /**
   * Shuffle in place, as `shuffle(x)`: for i = n-1 down to 1, j = uniform integer in
   * [0, i] (`random_interval`), swap x[i] and x[j]. An NDArray is shuffled along its
   * first axis (whole rows move), with the same draws; an NDArray with no elements is
   * left alone without drawing, as in NumPy. A 0-d NDArray throws (NumPy: len() of
   * unsized object).
   */
  shuffle(x: ShuffleTarget): void {
    if (x instanceof NDArray) {
      if (x.shape.length === 0) throw new TypeError("shuffle: cannot shuffle a 0-d array (len() of unsized object)");
      if (x.size === 0) return;
      const n = x.shape[0];
      const row = x.size / n;
      const data = x.data;
      if (row === 1) {
        for (let i = n - 1; i > 0; i--) {
          const j = this.interval(i);
          const t = data[i];
          data[i] = data[j];
          data[j] = t;
        }
        return;
      }
      const buf = data.slice(0, row);
      for (let i = n - 1; i > 0; i--) {
        const j = this.interval(i);
        if (i === j) continue;
        buf.set(data.subarray(j * row, (j + 1) * row));
        data.copyWithin(j * row, i * row, (i + 1) * row);
        data.set(buf, i * row);
      }
      return;
    }
    for (let i = x.length - 1; i > 0; i--) {
      const j = this.interval(i);
      const t = x[i];
      x[i] = x[j];
      x[j] = t;
    }
  }

  /**
   * As `permutation(x)`: for an integer n, a shuffled `[0, 1, ..., n-1]` (empty for
   * n <= 0, as np.arange); for an array, a shuffled copy (an NDArray has its rows
   * shuffled). The input is not modified.
   */
  permutation(x: number | readonly number[]): number[];
  permutation(x: NDArray): NDArray;
  permutation(x: number | readonly number[] | NDArray): number[] | NDArray;
  permutation(x: number | readonly number[] | NDArray): number[] | NDArray {
    if (typeof x === "number") {
      if (!Number.isSafeInteger(x))
        throw new TypeError(`permutation: x must be an integer or an array, got ${describe(x)}`);
      const arr: number[] = [];
      for (let i = 0; i < x; i++) arr.push(i);
      this.shuffle(arr);
      return arr;
    }
    if (x instanceof NDArray) {
      if (x.shape.length === 0) throw new RangeError("permutation: x must be an integer or at least 1-dimensional");
      const copy = x.copy();
      this.shuffle(copy);
      return copy;
    }
    const arr = Array.from(x);
    this.shuffle(arr);
    return arr;
  }

  /**
   * As `choice(a, size, replace, p)`: samples from `a` (an array, or an integer n meaning
   * arange(n)). Legacy semantics: with replacement and no p it is randint(0, len(a));
   * without replacement and no p, the first `size` entries of permutation(len(a)); with
   * p, inverse-CDF sampling on p.cumsum() / p.cumsum()[-1] (and, without replacement,
   * NumPy's redraw loop). Returns a number without a size, else a float64 NDArray.
   */
  choice(a: number | ArrayLike<number> | NDArray, size?: undefined, replace?: boolean, p?: ArrayLike<number>): number;
  choice(a: number | ArrayLike<number> | NDArray, size: Size, replace?: boolean, p?: ArrayLike<number>): NDArray;
  choice(
    a: number | ArrayLike<number> | NDArray,
    size?: Size,
    replace?: boolean,
    p?: ArrayLike<number>,
  ): number | NDArray;
  choice(
    a: number | ArrayLike<number> | NDArray,
    size?: Size,
    replace = true,
    p?: ArrayLike<number>,
  ): number | NDArray {
    const shape = size === undefined ? [] : toShape(size, "choice");
    const count = shapeCount(shape);
    let pool: ArrayLike<number> | undefined;
    let popSize: number;
    if (typeof a === "number") {
      if (!Number.isSafeInteger(a))
        throw new TypeError(`choice: a must be 1-dimensional or an integer, got ${describe(a)}`);
      popSize = a;
      if (popSize <= 0 && count !== 0)
        throw new RangeError("choice: a must be greater than 0 unless no samples are taken");
    } else {
      if (a instanceof NDArray) {
        if (a.shape.length !== 1) throw new RangeError("choice: a must be 1-dimensional");
        pool = a.data;
      } else {
        pool = a;
      }
      popSize = pool.length;
      if (popSize === 0 && count !== 0) throw new RangeError("choice: 'a' cannot be empty unless no samples are taken");
    }

    let probs: Float64Array | undefined;
    if (p !== undefined) {
      probs = Float64Array.from(p);
      if (probs.length !== popSize) throw new RangeError("choice: 'a' and 'p' must have same size");
      // Kahan summation, as NumPy's check.
      let sum = probs.length > 0 ? probs[0] : 0;
      let c = 0;
      for (let i = 1; i < probs.length; i++) {
        const y = probs[i] - c;
        const t = sum + y;
        c = t - sum - y;
        sum = t;
      }
      if (Number.isNaN(sum)) throw new RangeError("choice: probabilities contain NaN");
      if (probs.some((v) => v < 0)) throw new RangeError("choice: probabilities are not non-negative");
      if (Math.abs(sum - 1) > Math.sqrt(Number.EPSILON)) throw new RangeError("choice: probabilities do not sum to 1");
    }

    let idx: Float64Array;
    if (replace) {
      if (probs !== undefined) {
        const cdf = cumulative(probs);
        idx = new Float64Array(count);
        for (let i = 0; i < count; i++) idx[i] = searchRight(cdf, this.nextDouble());
      } else {
        idx = this.randint(0, popSize, shape).data as Float64Array;
      }
    } else {
      if (count > popSize)
        throw new RangeError("choice: Cannot take a larger sample than population when 'replace=False'");
      if (probs !== undefined) {
        let nonZero = 0;
        for (const v of probs) if (v > 0) nonZero++;
        if (nonZero < count) throw new RangeError("choice: Fewer non-zero entries in p than size");
        idx = new Float64Array(count);
        const pw = probs.slice();
        let found = 0;
        while (found < count) {
          const x = new Float64Array(count - found);
          for (let i = 0; i < x.length; i++) x[i] = this.nextDouble();
          for (let i = 0; i < found; i++) pw[idx[i]] = 0;
          const cdf = cumulative(pw);
          // np.unique(return_index=True) then sorting the indices: the distinct values of
          // the new draws in order of first appearance.
          const seen = new Set<number>();
          for (const u of x) {
            const v = searchRight(cdf, u);
            if (!seen.has(v)) {
              seen.add(v);
              idx[found++] = v;
            }
          }
        }
      } else {
        idx = Float64Array.from(this.permutation(popSize).slice(0, count));
      }
    }

    const out = pool === undefined ? idx : idx.map((i) => pool[i]);
    if (size === undefined) return out[0];
    return new NDArray(out, shape);
  }

  // -------------------------------------------------------------------------------------
  // State.

  /** A copy of the state, as `get_state()` (legacy tuple fields, named). */
  getState(): RandomStateState {
    return { key: this.mt.slice(), pos: this.pos, hasGauss: this.hasGauss, cachedGaussian: this.gauss };
  }

  /**
   * Restore a state, as `set_state(state)`: the object from `getState`, or NumPy's
   * legacy tuple `('MT19937', key, pos[, has_gauss, cached_gaussian])` as an array, e.g.
   * `JSON.parse` of `[s[0], s[1].tolist(), *s[2:]]` from Python. Everything is validated
   * before anything changes: key must hold 624 integers in [0, 2^32), pos an integer in
   * [0, 624].
   */
  setState(state: RandomStateInput): void {
    let key: ArrayLike<number>;
    let pos: number;
    let hasGauss: boolean | number;
    let cached: number;
    if (Array.isArray(state)) {
      const t = state as readonly unknown[];
      if (t[0] !== "MT19937") {
        throw new RangeError(
          `setState: set_state can only be used with legacy MT19937 state instances, got ${describe(t[0])}`,
        );
      }
      if (t.length !== 3 && t.length !== 5) {
        throw new RangeError(`setState: a legacy state tuple has 3 or 5 entries, got ${t.length}`);
      }
      key = t[1] as ArrayLike<number>;
      pos = t[2] as number;
      hasGauss = t.length === 5 ? (t[3] as boolean | number) : false;
      cached = t.length === 5 ? (t[4] as number) : 0;
    } else {
      const o = state as Exclude<RandomStateInput, readonly unknown[]>;
      key = o.key;
      pos = o.pos;
      hasGauss = o.hasGauss ?? false;
      cached = o.cachedGaussian ?? 0;
    }
    if (key === null || typeof key !== "object" || typeof key.length !== "number") {
      throw new TypeError("setState: key must be an array of 624 unsigned 32-bit integers");
    }
    if (key.length !== N) throw new RangeError(`setState: key must have 624 entries, got ${key.length}`);
    for (let i = 0; i < N; i++) {
      const v = key[i];
      if (typeof v !== "number" || !Number.isInteger(v) || v < 0 || v > MAX_SEED) {
        throw new RangeError(`setState: key[${i}] = ${describe(v)} is not an unsigned 32-bit integer`);
      }
    }
    if (typeof pos !== "number" || !Number.isInteger(pos) || pos < 0 || pos > N) {
      throw new RangeError(`setState: pos must be an integer in [0, 624], got ${describe(pos)}`);
    }
    if (typeof hasGauss !== "boolean" && hasGauss !== 0 && hasGauss !== 1) {
      throw new TypeError(`setState: hasGauss must be a boolean (or 0/1), got ${describe(hasGauss)}`);
    }
    if (typeof cached !== "number") {
      throw new TypeError(`setState: cachedGaussian must be a number, got ${describe(cached)}`);
    }
    for (let i = 0; i < N; i++) this.mt[i] = key[i];
    this.pos = pos;
    this.hasGauss = hasGauss === true || hasGauss === 1;
    this.gauss = cached;
  }
}

/** p.cumsum() / p.cumsum()[-1], sequentially, as NumPy. */
function cumulative(p: Float64Array): Float64Array {
  const cdf = new Float64Array(p.length);
  let acc = 0;
  for (let i = 0; i < p.length; i++) {
    acc += p[i];
    cdf[i] = acc;
  }
  const last = cdf[cdf.length - 1];
  for (let i = 0; i < cdf.length; i++) cdf[i] /= last;
  return cdf;
}

/** searchsorted(cdf, u, side='right'): the first index i with u < cdf[i]. */
function searchRight(cdf: Float64Array, u: number): number {
  let lo = 0;
  let hi = cdf.length;
  while (lo < hi) {
    const mid = (lo + hi) >>> 1;
    if (u < cdf[mid]) hi = mid;
    else lo = mid + 1;
  }
  return lo;
}
