// Data augmentation for image batches (N, C, H, W): seeded random affine transforms — shift, rotation,
// scale, shear — resampled bilinearly, and optionally Simard et al.'s elastic distortion (2003: "Best
// Practices for Convolutional Neural Networks Applied to Visual Document Analysis"): a field of uniform
// random displacements in [−1, 1], smoothed by a Gaussian of standard deviation σ and scaled by α.
//
// For each image, the output pixel at (x, y) (column, row) samples the input at
//     (x', y') = M⁻¹ · (x − c_x − t_x + α·Δx(x, y),  y − c_y − t_y + α·Δy(x, y)) + (c_x, c_y)
// with c the image centre ((W − 1)/2, (H − 1)/2), t the shift, Δ the smoothed displacement field and
//     M = R(θ) · Shear(φ) · Scale(s),  R(θ) = [cos θ  −sin θ; sin θ  cos θ],  Shear(φ) = [1  tan φ; 0  1],
// i.e. the image is scaled, sheared along x, rotated about its centre, then shifted. Samples outside
// the image read `fill` (MNIST's background after normalisation, (0 − 0.1307)/0.3081, for example).
// All channels of an image share its transform.
//
// Random draws, in this order per image, all from the given RandomState (nextDouble, u ∈ [0, 1)):
//   θ, s, φ, t_y, t_x (each a + (b − a)·u over its range; always drawn, even for a zero range), then,
//   with elastic distortion, Δx for every pixel row by row, then Δy likewise (2u − 1 each).
// Same seed, same batches ⇒ bit-identical output (float64 arithmetic, rounded once to the batch dtype).
//
// This file is the readable reference, and runs float64 batches and the "js" backend. float32 batches on
// the "wasm" backend run on src/kernels/wasm/augment.as (through kernels/wasm-augment.ts), the images
// spread over the kernel threads: the same draws on the calling thread (a RandomState's made in wasm
// from its own state), the same float64 operations in the same order, so the same bits at any thread count.

import { NDArray, allocate, formatShape, type TypedArray } from "../nd/ndarray.ts";
import { RandomState, type RandomStateInput, type RandomStateState } from "../nd/random.ts";
import { getBackend } from "../kernels/backend.ts";
import { augmentImagesPerCall, augmentWasm } from "../kernels/wasm-augment.ts";

export interface ElasticOptions {
  /** Displacement scale α in pixels (Simard et al. use 34 for MNIST). */
  alpha: number;
  /** Standard deviation σ of the Gaussian smoothing, in pixels, in [0.01, 64] (Simard et al.: 4). */
  sigma: number;
}

export interface AugmentOptions {
  /** Maximum shift in pixels along each axis: t ~ U[−shift, shift] (default 0). */
  shift?: number;
  /** Maximum rotation in degrees: θ ~ U[−rotation, rotation] (default 0). */
  rotation?: number;
  /**
   * Zoom: s ~ U[1 − scale, 1 + scale] for a number in [0, 0.999], U[lo, hi] for [lo, hi] within [0.001, 1000]
   * (default 0: none).
   */
  scale?: number | readonly [number, number];
  /** Maximum shear angle in degrees: φ ~ U[−shear, shear] (default 0). */
  shear?: number;
  /** Value read outside the image, within float32's range (default 0). */
  fill?: number;
  /** Elastic distortion (default none). */
  elastic?: ElasticOptions | null;
}

/** The options with every default filled in: what a run saves to be resumed exactly. */
export interface AugmentConfig {
  shift: number;
  rotation: number;
  scale: [number, number];
  shear: number;
  fill: number;
  elastic: ElasticOptions | null;
}

/**
 * v as a finite number from min up to max (excluded when `upper` is "open", as for the angles), or a RangeError
 * naming the option and its range.
 */
function finiteIn(name: string, v: unknown, min: number, max = Infinity, upper: "open" | "closed" = "closed"): number {
  if (typeof v !== "number" || !Number.isFinite(v) || v < min || v > max || (upper === "open" && v === max)) {
    const range = max === Infinity ? `≥ ${min}` : `in [${min}, ${max}${upper === "open" ? ")" : "]"}`;
    throw new RangeError(`augment: ${name} must be a finite number ${range}, got ${String(v)}`);
  }
  return v;
}

// Bounds past which a setting's images are no longer finite (a checkpoint's "training.augment" can carry any
// number): 1/s and 1/σ² overflow for a scale or σ near 1e-300, and a fill beyond float32's range is ±Infinity
// in a float32 batch. Well inside them, a scale in [1e-3, 1e3] and σ ≥ 0.01 pixel cover every useful setting.
const MIN_SCALE = 1e-3;
const MAX_SCALE = 1e3;
const MIN_SIGMA = 0.01;
const MAX_SIGMA = 64; // pixels: the smoothing's taps reach 4σ either side
const FLOAT32_MAX = 3.4028234663852886e38;
/** The largest scale of the number form (zoom within [1 − scale, 1 + scale]): its least factor is MIN_SCALE. */
export const MAX_SCALE_SPREAD = 1 - MIN_SCALE;

/** Check options and fill in the defaults; errors name the option. */
export function augmentConfig(opts: AugmentOptions = {}): AugmentConfig {
  const scale = opts.scale ?? 0;
  let range: [number, number];
  if (typeof scale === "number") {
    finiteIn("scale", scale, 0, MAX_SCALE_SPREAD);
    range = [1 - scale, 1 + scale];
  } else {
    if (!Array.isArray(scale) || scale.length !== 2) {
      throw new RangeError(`augment: scale must be a number or [lo, hi], got ${String(scale)}`);
    }
    const lo = finiteIn("scale[0]", scale[0], MIN_SCALE, MAX_SCALE);
    const hi = finiteIn("scale[1]", scale[1], lo, MAX_SCALE);
    range = [lo, hi];
  }
  let elastic: ElasticOptions | null = null;
  if (opts.elastic) {
    elastic = {
      alpha: finiteIn("elastic.alpha", opts.elastic.alpha, 0),
      sigma: finiteIn("elastic.sigma", opts.elastic.sigma, MIN_SIGMA, MAX_SIGMA),
    };
  }
  return {
    shift: finiteIn("shift", opts.shift ?? 0, 0),
    rotation: finiteIn("rotation", opts.rotation ?? 0, 0, 180, "open"),
    scale: range,
    shear: finiteIn("shear", opts.shear ?? 0, 0, 90, "open"),
    fill: finiteIn("fill", opts.fill ?? 0, -FLOAT32_MAX, FLOAT32_MAX),
    elastic,
  };
}

/** Normalised Gaussian taps exp(−k²/2σ²), k = −r…r with r = ⌈4σ⌉ (SciPy's gaussian_filter truncation). */
function gaussianTaps(sigma: number): Float64Array {
  const r = Math.ceil(4 * sigma);
  const taps = new Float64Array(2 * r + 1);
  let sum = 0;
  for (let k = -r; k <= r; k++) sum += taps[k + r] = Math.exp((-k * k) / (2 * sigma * sigma));
  for (let i = 0; i < taps.length; i++) taps[i] /= sum;
  return taps;
}

/**
 * Separable Gaussian smoothing, in place, of two H × W displacement fields stored interleaved in `pair`
 * (Δx, Δy of pixel i at 2i, 2i + 1), zeros outside (SciPy's mode="constant"), both in one sweep:
 * out[i] = Σ_k taps[r + k]·f[i + k·stride] over the k in [−r, r] that stay inside the axis; the taps are
 * symmetric, so pairs within range share a multiplication. wasm/augment.as (smoothPass) does the same
 * operations in the same order, the two fields as the two lanes of a vector.
 */
function smoothPair(pair: Float64Array, tmp: Float64Array, H: number, W: number, taps: Float64Array): void {
  const r = (taps.length - 1) >> 1;
  const pass = (src: Float64Array, dst: Float64Array, along: "x" | "y") => {
    const stride = along === "x" ? 2 : 2 * W;
    const n = along === "x" ? W : H;
    for (let y = 0; y < H; y++) {
      for (let x = 0; x < W; x++) {
        const i = 2 * (y * W + x);
        const p = along === "x" ? x : y;
        const below = Math.min(r, p);
        const above = Math.min(r, n - 1 - p);
        const both = Math.min(below, above);
        let sa = taps[r] * src[i];
        let sb = taps[r] * src[i + 1];
        for (let k = 1; k <= both; k++) {
          const t = taps[r + k];
          sa += t * (src[i + k * stride] + src[i - k * stride]);
          sb += t * (src[i + 1 + k * stride] + src[i + 1 - k * stride]);
        }
        for (let k = both + 1; k <= above; k++) {
          sa += taps[r + k] * src[i + k * stride];
          sb += taps[r + k] * src[i + 1 + k * stride];
        }
        for (let k = both + 1; k <= below; k++) {
          sa += taps[r - k] * src[i - k * stride];
          sb += taps[r - k] * src[i + 1 - k * stride];
        }
        dst[i] = sa;
        dst[i + 1] = sb;
      }
    }
  };
  pass(pair, tmp, "x");
  pass(tmp, pair, "y");
}

/** Numbers per image in a batch's transform parameters: ia, ib, ic, id (M⁻¹ row by row), t_x, t_y. */
const PARAMS = 6;

/**
 * Draw one image's uniforms from rng in the documented order: u_θ, u_s, u_φ, u_ty, u_tx into
 * params[at … at + 4], then with `fields` its raw displacements 2u − 1, every Δx then every Δy, stored
 * interleaved from fields[fieldsAt] (Δx, Δy of pixel i at 2i, 2i + 1). wasm/augment.as (augmentDraw)
 * makes the same draws from the same generator state.
 */
function drawUniforms(
  rng: RandomState,
  params: Float64Array,
  at: number,
  fields: Float64Array | null,
  fieldsAt: number,
  pixels: number,
): void {
  for (let j = 0; j < 5; j++) params[at + j] = rng.nextDouble();
  if (fields === null) return;
  for (let i = 0; i < pixels; i++) fields[fieldsAt + 2 * i] = 2 * rng.nextDouble() - 1;
  for (let i = 0; i < pixels; i++) fields[fieldsAt + 2 * i + 1] = 2 * rng.nextDouble() - 1;
}

/** Turn one image's five uniforms at params[at …] into its transform (M⁻¹ row by row, t_x, t_y), in place. */
function toTransform(cfg: AugmentConfig, params: Float64Array, at: number): void {
  const deg = Math.PI / 180;
  const uniform = (lo: number, hi: number, u: number) => lo + (hi - lo) * u;
  const theta = uniform(-cfg.rotation, cfg.rotation, params[at]) * deg;
  const s = uniform(cfg.scale[0], cfg.scale[1], params[at + 1]);
  const phi = uniform(-cfg.shear, cfg.shear, params[at + 2]) * deg;
  const ty = uniform(-cfg.shift, cfg.shift, params[at + 3]);
  const tx = uniform(-cfg.shift, cfg.shift, params[at + 4]);
  // M = R(θ)·Shear(φ)·Scale(s) = [a b; c d]; M⁻¹ = [d −b; −c a] / (ad − bc)
  const cos = Math.cos(theta);
  const sin = Math.sin(theta);
  const tan = Math.tan(phi);
  const a = s * cos;
  const b = s * (cos * tan - sin);
  const c = s * sin;
  const d = s * (sin * tan + cos);
  const det = a * d - b * c;
  params[at] = d / det;
  params[at + 1] = -b / det;
  params[at + 2] = -c / det;
  params[at + 3] = a / det;
  params[at + 4] = tx;
  params[at + 5] = ty;
}

/**
 * Image n of dst ← image n of src resampled bilinearly at M⁻¹·(x − c_x − t_x + α·Δx, y − c_y − t_y + α·Δy)
 * + c with params[at …] = (M⁻¹, t_x, t_y) and `field` the smoothed displacements (null: none),
 * interleaved; every channel alike. wasm/augment.as (resample) does the same operations in the same order.
 */
function resampleImage(
  src: TypedArray,
  dst: TypedArray,
  [n, C, H, W]: [number, number, number, number],
  params: Float64Array,
  at: number,
  field: Float64Array | null,
  alpha: number,
  fill: number,
): void {
  const [ia, ib, ic, id, tx, ty] = params.subarray(at, at + PARAMS);
  const cx = (W - 1) / 2;
  const cy = (H - 1) / 2;
  for (let y = 0; y < H; y++) {
    for (let x0 = 0; x0 < W; x0++) {
      let u = x0 - cx - tx;
      let v = y - cy - ty;
      if (field !== null) {
        u += field[2 * (y * W + x0)] * alpha;
        v += field[2 * (y * W + x0) + 1] * alpha;
      }
      const sx = ia * u + ib * v + cx;
      const sy = ic * u + id * v + cy;
      const fx0 = Math.floor(sx);
      const fy0 = Math.floor(sy);
      const fx = sx - fx0;
      const fy = sy - fy0;
      const inX0 = fx0 >= 0 && fx0 < W;
      const inX1 = fx0 + 1 >= 0 && fx0 + 1 < W;
      const inY0 = fy0 >= 0 && fy0 < H;
      const inY1 = fy0 + 1 >= 0 && fy0 + 1 < H;
      for (let ch = 0; ch < C; ch++) {
        const base = (n * C + ch) * H * W;
        const p00 = inY0 && inX0 ? src[base + fy0 * W + fx0] : fill;
        const p01 = inY0 && inX1 ? src[base + fy0 * W + fx0 + 1] : fill;
        const p10 = inY1 && inX0 ? src[base + (fy0 + 1) * W + fx0] : fill;
        const p11 = inY1 && inX1 ? src[base + (fy0 + 1) * W + fx0 + 1] : fill;
        dst[base + y * W + x0] = (1 - fy) * ((1 - fx) * p00 + fx * p01) + fy * ((1 - fx) * p10 + fx * p11);
      }
    }
  }
}

/**
 * Augment a batch (N, C, H, W) into `out` (a new array of x's shape and dtype when not given): one
 * random transform per image, drawn from rng as documented above. x is not modified.
 *
 * float32 batches run on the WebAssembly kernels when the backend is "wasm" (getBackend), the images
 * spread over the kernel threads (setThreads); every draw still happens here, on the calling thread, in
 * the documented order, and the kernels repeat the float64 arithmetic below operation for operation, so
 * the output is bit-identical to this reference for any backend and thread count (test/augment-wasm.test.ts).
 */
export function augmentBatch(
  x: NDArray,
  rng: RandomState,
  options: AugmentOptions | AugmentConfig = {},
  out?: NDArray,
): NDArray {
  if (x.ndim !== 4) throw new RangeError(`augment: expected images of shape (N, C, H, W), got ${formatShape(x.shape)}`);
  const [N, C, H, W] = x.shape;
  const target = out ?? new NDArray(allocate(x.dtype, x.size), x.shape);
  if (target.dtype !== x.dtype || target.shape.some((d, i) => d !== x.shape[i]) || target.data === x.data) {
    const shape = formatShape(x.shape);
    throw new RangeError(`augment: out must be a separate array of x's shape ${shape} and dtype ${x.dtype}`);
  }
  const cfg = augmentConfig(options);
  const taps = cfg.elastic ? gaussianTaps(cfg.elastic.sigma) : null;
  const alpha = cfg.elastic?.alpha ?? 0;
  const pixels = H * W;
  if (N === 0) return target;
  if (getBackend() === "wasm" && x.data instanceof Float32Array && target.data instanceof Float32Array) {
    augmentOnWasm(x.data, target.data, [N, C, H, W], rng, cfg, taps);
    return target;
  }
  const params = new Float64Array(PARAMS);
  const field = taps ? new Float64Array(2 * pixels) : null;
  const tmp = new Float64Array(taps ? 2 * pixels : 0);
  for (let n = 0; n < N; n++) {
    drawUniforms(rng, params, 0, field, 0, pixels);
    toTransform(cfg, params, 0);
    if (field !== null) smoothPair(field, tmp, H, W, taps!);
    resampleImage(x.data, target.data, [n, C, H, W], params, 0, field, alpha, cfg.fill);
  }
  return target;
}

/**
 * augmentBatch's float32 path on the WebAssembly kernels, in calls of at most augmentImagesPerCall images
 * (so that linear memory stays bounded however large the batch). A RandomState's uniforms are drawn in
 * wasm from its own state (the same numbers in the same order), any other generator's here.
 */
function augmentOnWasm(
  x: Float32Array,
  y: Float32Array,
  [N, C, H, W]: [number, number, number, number],
  rng: RandomState,
  cfg: AugmentConfig,
  taps: Float64Array | null,
): void {
  const state =
    rng instanceof RandomState &&
    rng.nextDouble === RandomState.prototype.nextDouble &&
    rng.nextUint32 === RandomState.prototype.nextUint32
      ? rng.getState()
      : null;
  const pixels = H * W;
  const chunk = augmentImagesPerCall(C, H, W, taps !== null);
  for (let n0 = 0; n0 < N; n0 += chunk) {
    const count = Math.min(chunk, N - n0);
    const draw = (params: Float64Array, fields: Float64Array | null) => {
      for (let n = 0; n < count; n++) drawUniforms(rng, params, n * PARAMS, fields, n * 2 * pixels, pixels);
    };
    const toTransforms = (params: Float64Array) => {
      for (let n = 0; n < count; n++) toTransform(cfg, params, n * PARAMS);
    };
    const [from, to] = [n0 * C * pixels, (n0 + count) * C * pixels];
    const [xs, ys] = [x.subarray(from, to), y.subarray(from, to)];
    augmentWasm({ N: count, C, H, W }, xs, ys, taps, cfg.elastic?.alpha ?? 0, cfg.fill, state ?? draw, toTransforms);
  }
  if (state !== null) rng.setState(state);
}

/**
 * augmentBatch with its own RandomState and a reused output buffer, for the Trainer's `augment` option;
 * getState/setState let a resumed run continue with the same transforms.
 */
export class Augmenter {
  readonly config: AugmentConfig;
  private readonly rng: RandomState;
  private out: NDArray | null = null;

  constructor(options: AugmentOptions & { seed?: number } = {}) {
    this.config = augmentConfig(options);
    this.rng = new RandomState(options.seed ?? 0);
  }

  /** The augmented batch, in a buffer reused from call to call (valid until the next apply). */
  apply(x: NDArray): NDArray {
    const out = this.out;
    const fits = out?.dtype === x.dtype && out.ndim === x.ndim && out.shape.every((d, i) => d === x.shape[i]);
    this.out = fits ? out : new NDArray(allocate(x.dtype, x.size), x.shape);
    return augmentBatch(x, this.rng, this.config, this.out);
  }

  getState(): RandomStateState {
    return this.rng.getState();
  }

  setState(state: RandomStateInput): void {
    this.rng.setState(state);
  }

  toJSON(): AugmentConfig {
    return this.config;
  }
}
