// Augmentation for WebAssembly (AssemblyScript): the per-image work of src/data/augment.ts's augmentBatch
// on float32 images — Gaussian smoothing of the elastic displacement fields, then bilinear resampling.
// Everything random is drawn by the calling thread (augment.ts, drawTransform) and arrives here as numbers:
//
//   params[6n … 6n + 5]   image n's ia, ib, ic, id (M⁻¹ row by row) and t_x, t_y
//   fields[2·H·W·n …]     image n's raw displacements 2u − 1, (Δx, Δy) interleaved pixel by pixel, row by
//                         row (fields = 0: no elastic distortion); smoothed here in place
//
// The arithmetic is float64 in exactly the reference's order of operations (augment.ts: smoothPair,
// resampleImage), rounded once to float32, so the output is bit-identical to the TypeScript reference.
// The f64x2 lanes of the smoothing are the two fields of one pixel: the same operations on each, as the
// reference's sa and sb. A part owns whole images (parallel.as), so every thread count gives the same bits.

import { align64, partStart } from "./parallel";

/** Scratch bytes each thread needs: one interleaved pair of H × W float64 fields (0 without elastic). */
export function augmentScratchBytes(H: i32, W: i32, elastic: i32): i32 {
  return elastic != 0 ? align64(H * W * 16) : 0;
}

/**
 * One separable pass of smoothPair over an interleaved field pair (src → dst, H × W pixels of 16 bytes):
 * out[i] = taps[r]·f[i] + Σ_{k ≤ both} taps[r + k]·(f[i + k] + f[i − k]) + the one-sided tails, along x
 * (alongX) or y, zeros outside (SciPy's mode="constant"), the taps symmetric (2r + 1 of them).
 */
function smoothPass(src: usize, dst: usize, H: i32, W: i32, taps: usize, r: i32, alongX: bool): void {
  const stride: usize = alongX ? 16 : <usize>W << 4;
  const n = alongX ? W : H;
  const centre = f64x2.splat(load<f64>(taps + (<usize>r << 3)));
  for (let y = 0; y < H; y++) {
    for (let x = 0; x < W; x++) {
      const i = src + (<usize>(y * W + x) << 4);
      const p = alongX ? x : y;
      const below = min(r, p);
      const above = min(r, n - 1 - p);
      const both = min(below, above);
      let s = f64x2.mul(centre, v128.load(i));
      for (let k = 1; k <= both; k++) {
        const t = f64x2.splat(load<f64>(taps + (<usize>(r + k) << 3)));
        const off = <usize>k * stride;
        s = f64x2.add(s, f64x2.mul(t, f64x2.add(v128.load(i + off), v128.load(i - off))));
      }
      for (let k = both + 1; k <= above; k++) {
        const t = f64x2.splat(load<f64>(taps + (<usize>(r + k) << 3)));
        s = f64x2.add(s, f64x2.mul(t, v128.load(i + <usize>k * stride)));
      }
      for (let k = both + 1; k <= below; k++) {
        const t = f64x2.splat(load<f64>(taps + (<usize>(r - k) << 3)));
        s = f64x2.add(s, f64x2.mul(t, v128.load(i - <usize>k * stride)));
      }
      v128.store(dst + (i - src), s);
    }
  }
}

/** A source pixel of one plane, or fill outside the image. */
@inline function pixel(plane: usize, W: i32, row: i32, col: i32, inside: bool, fill: f64): f64 {
  return inside ? <f64>load<f32>(plane + (<usize>(row * W + col) << 2)) : fill;
}

/**
 * Image n of y ← image n of x resampled (resampleImage in augment.ts): the output pixel (x0, y0) reads x
 * bilinearly at M⁻¹·(x0 − c_x − t_x + α·Δx, y0 − c_y − t_y + α·Δy) + c, every channel alike.
 */
function resample(
  n: i32, C: i32, H: i32, W: i32, x: usize, y: usize, params: usize, field: usize, alpha: f64, fill: f64,
): void {
  const p = params + <usize>n * 48;
  const ia = load<f64>(p), ib = load<f64>(p, 8), ic = load<f64>(p, 16), id = load<f64>(p, 24);
  const tx = load<f64>(p, 32), ty = load<f64>(p, 40);
  const cx = <f64>(W - 1) / 2;
  const cy = <f64>(H - 1) / 2;
  const fW = <f64>W, fH = <f64>H;
  const planeBytes = <usize>(H * W) << 2;
  for (let y0 = 0; y0 < H; y0++) {
    for (let x0 = 0; x0 < W; x0++) {
      let u = <f64>x0 - cx - tx;
      let v = <f64>y0 - cy - ty;
      if (field != 0) {
        const d = field + (<usize>(y0 * W + x0) << 4);
        u += load<f64>(d) * alpha;
        v += load<f64>(d, 8) * alpha;
      }
      const sx = ia * u + ib * v + cx;
      const sy = ic * u + id * v + cy;
      const fx0 = Math.floor(sx);
      const fy0 = Math.floor(sy);
      const fx = sx - fx0;
      const fy = sy - fy0;
      const inX0 = fx0 >= 0 && fx0 < fW;
      const inX1 = fx0 + 1 >= 0 && fx0 + 1 < fW;
      const inY0 = fy0 >= 0 && fy0 < fH;
      const inY1 = fy0 + 1 >= 0 && fy0 + 1 < fH;
      // clamped before the conversion, which would trap far outside i32; only read when inside anyway
      const col = <i32>min(max(fx0, -1), fW);
      const row = <i32>min(max(fy0, -1), fH);
      let out = y + (<usize>n * <usize>C) * planeBytes + (<usize>(y0 * W + x0) << 2);
      let plane = x + (<usize>n * <usize>C) * planeBytes;
      for (let ch = 0; ch < C; ch++) {
        const p00 = pixel(plane, W, row, col, inY0 && inX0, fill);
        const p01 = pixel(plane, W, row, col + 1, inY0 && inX1, fill);
        const p10 = pixel(plane, W, row + 1, col, inY1 && inX0, fill);
        const p11 = pixel(plane, W, row + 1, col + 1, inY1 && inX1, fill);
        store<f32>(out, <f32>((1 - fy) * ((1 - fx) * p00 + fx * p01) + fy * ((1 - fx) * p10 + fx * p11)));
        out += planeBytes;
        plane += planeBytes;
      }
    }
  }
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
