// Augmentation for WebAssembly (AssemblyScript): the per-image work of src/data/augment.ts's augmentBatch
// on float32 images — Gaussian smoothing of the elastic displacement fields, then bilinear resampling.
// Everything random is drawn on the calling thread, before the parts run (augment.ts, or augmentDraw below),
// and arrives as numbers:
//
//   params[6n … 6n + 5]   image n's ia, ib, ic, id (M⁻¹ row by row) and t_x, t_y
//   fields[2·H·W·n …]     image n's raw displacements 2u − 1, (Δx, Δy) interleaved pixel by pixel, row by
//                         row (fields = 0: no elastic distortion); smoothed here in place
//
// The arithmetic is float64 in exactly the reference's order of operations (augment.ts: smoothPair,
// resampleImage), rounded once to float32, so the output is bit-identical to the TypeScript reference.
// The f64x2 lanes of the smoothing are the two fields of one pixel: the same operations on each, as the
// reference's sa and sb. A part owns whole images (parallel.as), so every thread count gives the same bits.

import { align64f, partStart } from "./parallel";

/** Scratch bytes each thread needs: one interleaved pair of H × W float64 fields (0 without elastic). */
export function augmentScratchBytes(H: i32, W: i32, elastic: i32): f64 {
  // in f64: the true size, however large the images (in i32, H·W·16 wrapped past 11 585²)
  return elastic != 0 ? align64f(<f64>H * <f64>W * 16) : 0;
}

/** taps[r + k] in both lanes. */
@inline function tap(taps: usize, r: i32, k: i32): v128 {
  return f64x2.splat(load<f64>(taps + (<usize>(r + k) << 3)));
}

/**
 * One pixel of a pass (i its address, off the step along the pass): taps[r]·f[i] + Σ_{k ≤ both}
 * taps[r + k]·(f[i + k] + f[i − k]) + Σ_{both < k ≤ above} taps[r + k]·f[i + k] + Σ_{both < k ≤ below}
 * taps[r − k]·f[i − k], accumulated in that order (smoothPair's).
 */
@inline function smoothPixel(i: usize, off: usize, taps: usize, r: i32, both: i32, above: i32, below: i32): v128 {
  let s = f64x2.mul(tap(taps, r, 0), v128.load(i));
  for (let k = 1; k <= both; k++) {
    const o = <usize>k * off;
    s = f64x2.add(s, f64x2.mul(tap(taps, r, k), f64x2.add(v128.load(i + o), v128.load(i - o))));
  }
  for (let k = both + 1; k <= above; k++) s = f64x2.add(s, f64x2.mul(tap(taps, r, k), v128.load(i + <usize>k * off)));
  for (let k = both + 1; k <= below; k++) s = f64x2.add(s, f64x2.mul(tap(taps, r, -k), v128.load(i - <usize>k * off)));
  return s;
}

/**
 * Four pixels of a pass, `across` bytes apart, that share their bounds (a column of four rows along x, a
 * row of four columns along y): smoothPixel for each, the four sums interleaved so that their chains of
 * dependent additions overlap instead of each waiting for the last (the order within each is unchanged).
 */
@inline function smoothFour(
  i: usize, across: usize, off: usize, taps: usize, r: i32, both: i32, above: i32, below: i32, dst: usize,
): void {
  const t0 = tap(taps, r, 0);
  const i1 = i + across, i2 = i1 + across, i3 = i2 + across;
  let s0 = f64x2.mul(t0, v128.load(i));
  let s1 = f64x2.mul(t0, v128.load(i1));
  let s2 = f64x2.mul(t0, v128.load(i2));
  let s3 = f64x2.mul(t0, v128.load(i3));
  for (let k = 1; k <= both; k++) {
    const t = tap(taps, r, k);
    const o = <usize>k * off;
    s0 = f64x2.add(s0, f64x2.mul(t, f64x2.add(v128.load(i + o), v128.load(i - o))));
    s1 = f64x2.add(s1, f64x2.mul(t, f64x2.add(v128.load(i1 + o), v128.load(i1 - o))));
    s2 = f64x2.add(s2, f64x2.mul(t, f64x2.add(v128.load(i2 + o), v128.load(i2 - o))));
    s3 = f64x2.add(s3, f64x2.mul(t, f64x2.add(v128.load(i3 + o), v128.load(i3 - o))));
  }
  for (let k = both + 1; k <= above; k++) {
    const t = tap(taps, r, k);
    const o = <usize>k * off;
    s0 = f64x2.add(s0, f64x2.mul(t, v128.load(i + o)));
    s1 = f64x2.add(s1, f64x2.mul(t, v128.load(i1 + o)));
    s2 = f64x2.add(s2, f64x2.mul(t, v128.load(i2 + o)));
    s3 = f64x2.add(s3, f64x2.mul(t, v128.load(i3 + o)));
  }
  for (let k = both + 1; k <= below; k++) {
    const t = tap(taps, r, -k);
    const o = <usize>k * off;
    s0 = f64x2.add(s0, f64x2.mul(t, v128.load(i - o)));
    s1 = f64x2.add(s1, f64x2.mul(t, v128.load(i1 - o)));
    s2 = f64x2.add(s2, f64x2.mul(t, v128.load(i2 - o)));
    s3 = f64x2.add(s3, f64x2.mul(t, v128.load(i3 - o)));
  }
  v128.store(dst, s0);
  v128.store(dst + across, s1);
  v128.store(dst + 2 * across, s2);
  v128.store(dst + 3 * across, s3);
}

/**
 * One separable pass of smoothPair over an interleaved field pair (src → dst, H × W pixels of 16 bytes),
 * along x (alongX) or y, zeros outside (SciPy's mode="constant"), the taps symmetric (2r + 1 of them).
 * A pixel's bounds depend only on its position p along the pass, so the pixels at p are done four at a time.
 */
function smoothPass(src: usize, dst: usize, H: i32, W: i32, taps: usize, r: i32, alongX: bool): void {
  const off: usize = alongX ? 16 : <usize>W << 4;
  const across: usize = alongX ? <usize>W << 4 : 16;
  const n = alongX ? W : H;
  const m = alongX ? H : W;
  for (let p = 0; p < n; p++) {
    const below = min(r, p);
    const above = min(r, n - 1 - p);
    const both = min(below, above);
    let q = 0;
    for (; q + 4 <= m; q += 4) {
      const at = <usize>p * off + <usize>q * across;
      smoothFour(src + at, across, off, taps, r, both, above, below, dst + at);
    }
    for (; q < m; q++) {
      const at = <usize>p * off + <usize>q * across;
      v128.store(dst + at, smoothPixel(src + at, off, taps, r, both, above, below));
    }
  }
}

/** A source pixel of one plane, or fill outside the image (inside: the pixel is in the plane). */
@inline function pixel(plane: usize, W: i32, row: i32, col: i32, inside: bool, fill: f64): f64 {
  return inside ? <f64>load<f32>(plane + (<usize>(row * W + col) << 2)) : fill;
}

/**
 * Image n of y ← image n of x resampled (resampleImage in augment.ts): the output pixel (x0, y0) reads x
 * bilinearly at M⁻¹·(x0 − c_x − t_x + α·Δx, y0 − c_y − t_y + α·Δy) + c, every channel alike. Two pixels of a
 * row at a time, one per f64x2 lane (each lane the reference's operations); the four neighbours are read
 * lane by lane. At the end of an odd row the second lane is a spare: whatever it reads is inside linear
 * memory (the arena's slack follows every buffer), and only the first lane is stored.
 */
function resample(
  n: i32, C: i32, H: i32, W: i32, x: usize, y: usize, params: usize, field: usize, alpha: f64, fill: f64,
): void {
  const p = params + <usize>n * 48;
  const ia = f64x2.splat(load<f64>(p)), ib = f64x2.splat(load<f64>(p, 8));
  const ic = f64x2.splat(load<f64>(p, 16)), id = f64x2.splat(load<f64>(p, 24));
  const tx = load<f64>(p, 32), ty = load<f64>(p, 40);
  const cx = <f64>(W - 1) / 2;
  const cy = <f64>(H - 1) / 2;
  const vcx = f64x2.splat(cx), vcy = f64x2.splat(cy), vtx = f64x2.splat(tx), va = f64x2.splat(alpha);
  const one = f64x2.splat(1), lowest = f64x2.splat(-2), right = f64x2.splat(<f64>W), bottom = f64x2.splat(<f64>H);
  const planeBytes = <usize>(H * W) << 2;
  const image = (<usize>n * <usize>C) * planeBytes;
  for (let y0 = 0; y0 < H; y0++) {
    const v0 = f64x2.splat(<f64>y0 - cy - ty);
    for (let x0 = 0; x0 < W; x0 += 2) {
      let u = f64x2.sub(f64x2.sub(f64x2.replace_lane(f64x2.splat(<f64>x0), 1, <f64>(x0 + 1)), vcx), vtx);
      let v = v0;
      if (field != 0) {
        const d = field + (<usize>(y0 * W + x0) << 4);
        const d0 = v128.load(d), d1 = v128.load(d, 16);
        u = f64x2.add(u, f64x2.mul(v128.shuffle<f64>(d0, d1, 0, 2), va));
        v = f64x2.add(v, f64x2.mul(v128.shuffle<f64>(d0, d1, 1, 3), va));
      }
      const sx = f64x2.add(f64x2.add(f64x2.mul(ia, u), f64x2.mul(ib, v)), vcx);
      const sy = f64x2.add(f64x2.add(f64x2.mul(ic, u), f64x2.mul(id, v)), vcy);
      const fx0 = f64x2.floor(sx), fy0 = f64x2.floor(sy);
      const fx = f64x2.sub(sx, fx0), fy = f64x2.sub(sy, fy0);
      const gx = f64x2.sub(one, fx), gy = f64x2.sub(one, fy);
      // clamped to [−2, W] before the conversion: an index outside [0, W) then still reads as outside
      const cols = i32x4.trunc_sat_f64x2_s_zero(f64x2.min(f64x2.max(fx0, lowest), right));
      const rows = i32x4.trunc_sat_f64x2_s_zero(f64x2.min(f64x2.max(fy0, lowest), bottom));
      const c0 = i32x4.extract_lane(cols, 0), c1 = i32x4.extract_lane(cols, 1);
      const r0 = i32x4.extract_lane(rows, 0), r1 = i32x4.extract_lane(rows, 1);
      const in00 = inside(r0, H) && inside(c0, W), in01 = inside(r0, H) && inside(c0 + 1, W);
      const in10 = inside(r0 + 1, H) && inside(c0, W), in11 = inside(r0 + 1, H) && inside(c0 + 1, W);
      const jn00 = inside(r1, H) && inside(c1, W), jn01 = inside(r1, H) && inside(c1 + 1, W);
      const jn10 = inside(r1 + 1, H) && inside(c1, W), jn11 = inside(r1 + 1, H) && inside(c1 + 1, W);
      let plane = x + image;
      let out = y + image + (<usize>(y0 * W + x0) << 2);
      for (let ch = 0; ch < C; ch++) {
        const p00 = pixels(plane, W, r0, c0, in00, r1, c1, jn00, fill);
        const p01 = pixels(plane, W, r0, c0 + 1, in01, r1, c1 + 1, jn01, fill);
        const p10 = pixels(plane, W, r0 + 1, c0, in10, r1 + 1, c1, jn10, fill);
        const p11 = pixels(plane, W, r0 + 1, c0 + 1, in11, r1 + 1, c1 + 1, jn11, fill);
        const top = f64x2.add(f64x2.mul(gx, p00), f64x2.mul(fx, p01));
        const low = f64x2.add(f64x2.mul(gx, p10), f64x2.mul(fx, p11));
        const o = f32x4.demote_f64x2_zero(f64x2.add(f64x2.mul(gy, top), f64x2.mul(fy, low)));
        if (x0 + 1 < W) v128.store64_lane(out, o, 0);
        else v128.store32_lane(out, o, 0);
        out += planeBytes;
        plane += planeBytes;
      }
    }
  }
}

/** Two source pixels of one plane, one per lane (pixel). */
@inline function pixels(
  plane: usize, W: i32, row0: i32, col0: i32, inside0: bool, row1: i32, col1: i32, inside1: bool, fill: f64,
): v128 {
  const first = f64x2.splat(pixel(plane, W, row0, col0, inside0, fill));
  return f64x2.replace_lane(first, 1, pixel(plane, W, row1, col1, inside1, fill));
}

/** 0 ≤ i < n. */
@inline function inside(i: i32, n: i32): bool {
  return <u32>i < <u32>n;
}

// ------------------------------------------------------------------------------------------------
// The batch's uniform draws, made on the calling thread from a RandomState's own MT19937 state (its words
// at state, then pos at state + 2496; augment.ts copies getState() in and setState()s the result): the
// same generator as src/nd/random.ts (NumPy's mt19937_gen, next32 and next_double), so the same numbers
// in the same order as the reference's nextDouble calls, only without a JS call per number.

const MT_N = 624;
const MT_M = 397;
let mtState: usize = 0;
let mtPos: i32 = 0;

/** mt[i] ← mt[from] ^ twist(mt[i], mt[next]) (random.ts generate's step). */
@inline function mtTwist(mt: usize, i: i32, next: i32, from: i32): void {
  const y = (load<u32>(mt + (<usize>i << 2)) & 0x80000000) | (load<u32>(mt + (<usize>next << 2)) & 0x7fffffff);
  store<u32>(mt + (<usize>i << 2), load<u32>(mt + (<usize>from << 2)) ^ (y >>> 1) ^ (-(y & 1) & 0x9908b0df));
}

/** Regenerate the 624 words (random.ts generate). */
function mtGenerate(): void {
  const mt = mtState;
  let i = 0;
  for (; i < MT_N - MT_M; i++) mtTwist(mt, i, i + 1, i + MT_M);
  for (; i < MT_N - 1; i++) mtTwist(mt, i, i + 1, i + MT_M - MT_N);
  mtTwist(mt, MT_N - 1, 0, MT_M - 1);
  mtPos = 0;
}

/** The next tempered word (random.ts nextUint32). */
@inline function mtNext32(): u32 {
  if (mtPos == MT_N) mtGenerate();
  let y = load<u32>(mtState + (<usize>mtPos << 2));
  mtPos++;
  y ^= y >>> 11;
  y ^= (y << 7) & 0x9d2c5680;
  y ^= (y << 15) & 0xefc60000;
  y ^= y >>> 18;
  return y;
}

/** The next double in [0, 1) with 53 random bits (random.ts nextDouble). */
@inline function mtNextDouble(): f64 {
  const a = mtNext32() >>> 5;
  const b = mtNext32() >>> 6;
  return (<f64>a * 67108864 + <f64>b) / 9007199254740992;
}

/**
 * The uniform draws of N images in augment.ts's order (drawUniforms): per image u_θ, u_s, u_φ, u_ty, u_tx
 * into params[6n … 6n + 4], then (fields ≠ 0) 2u − 1 for every Δx, then every Δy, interleaved in fields.
 */
export function augmentDraw(state: usize, N: i32, pixels: i32, params: usize, fields: usize): void {
  mtState = state;
  mtPos = load<i32>(state, MT_N * 4);
  for (let n = 0; n < N; n++) {
    const p = params + <usize>n * 48;
    for (let j = 0; j < 5; j++) store<f64>(p + (<usize>j << 3), mtNextDouble());
    if (fields == 0) continue;
    const f = fields + (<usize>(n * pixels) << 4);
    for (let i = 0; i < pixels; i++) store<f64>(f + (<usize>i << 4), 2 * mtNextDouble() - 1);
    for (let i = 0; i < pixels; i++) store<f64>(f + (<usize>i << 4), 2 * mtNextDouble() - 1, 8);
  }
  store<i32>(state, mtPos, MT_N * 4);
}

/**
 * Part t of T of augmenting N images (N, C, H, W) x → y: images [n0, n1), each smoothed (with fields) in
 * the scratch ws (augmentScratchBytes) and resampled. taps: the 2r + 1 Gaussian taps (with fields).
 */
export function augmentPart(
  t: i32, T: i32, ws: usize, N: i32, C: i32, H: i32, W: i32, x: usize, y: usize, params: usize, fields: usize,
  taps: usize, r: i32, alpha: f64, fill: f64,
): void {
  const n1 = partStart(N, t + 1, T, 1);
  for (let n = partStart(N, t, T, 1); n < n1; n++) {
    let field: usize = 0;
    if (fields != 0) {
      field = fields + (<usize>(n * H * W) << 4);
      smoothPass(field, ws, H, W, taps, r, true);
      smoothPass(ws, field, H, W, taps, r, false);
    }
    resample(n, C, H, W, x, y, params, field, alpha, fill);
  }
}
