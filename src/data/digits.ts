// Digit preprocessing shared by `handprop predict` (image files) and the playground (a drawing on a
// canvas): any grayscale picture of one digit becomes the 28×28, white-on-black frame MNIST models are
// trained on, then the model's inputs. Browser-safe: no node: imports.
//
// MNIST's own recipe (LeCun et al.): each digit was size-normalised to fit a 20×20 box keeping its
// aspect ratio, anti-aliased, and placed in a 28×28 frame with its centre of mass at the centre. Here:
//   1. grayscale Y ∈ [0, 255]: RGBA composited over white by its alpha, Y = 0.299·R + 0.587·G + 0.114·B
//      (ITU-R BT.601); the PGM decoder scales [0, maxval] to [0, 255];
//   2. polarity: MNIST is white ink on black. If the outermost ring of pixels (background, for a
//      digit with a margin) averages lighter than mid-gray (> 127.5), the picture is dark-on-light
//      and is inverted (255 − Y);
//   3. levels: the background b (that ring's mean, after step 2) becomes 0 and the brightest pixel m
//      becomes 255: u = clamp(255·(v − b)/(m − b), 0, 255). A picture whose contrast m − b is under
//      MIN_CONTRAST has no ink: it gives an empty frame and `ink: false`;
//   4. fit: the bounding box of the ink (u > INK_THRESHOLD) is scaled by k = 20 / (its longer side),
//      and placed so that the centre of mass of u lands on pixel (14, 14) of the frame, the shift
//      rounded to whole pixels, as in MNIST (its test images' centres of mass lie in [14, 15) in
//      continuous coordinates, so a 28×28 MNIST image comes through unchanged);
//   5. resampling straight from the source into the 28×28 frame, without an intermediate image:
//      area averaging when shrinking (k < 1: each frame pixel is the mean of the source area it
//      covers, partial pixels weighted by overlap), bilinear with half-pixel centres when enlarging;
//      outside the picture is background (0). Ink landing outside the frame is dropped;
//   6. the model's normalization (./normalization.ts), x = (p·scale − mean)/std.
// The work is one pass over the source for steps 2–4 and one over the part of it that lands in the
// frame for step 5: memory is the source plus the 784 outputs, whatever the picture's shape.

import { NDArray } from "../nd/ndarray.ts";
import { normalizePixels, type Normalization } from "./normalization.ts";

/** A grayscale picture, values in [0, 255], row-major. */
export interface GrayImage {
  width: number;
  height: number;
  data: Float32Array | Float64Array;
}

/** The frame MNIST digits live in, and the box their longer side is scaled to. */
export const DIGIT_FRAME = 28;
export const DIGIT_BOX = 20;
/** The pixel (row and column) MNIST puts the centre of mass on: 14, in 0-based pixel indices. */
export const MASS_CENTRE = 14;
/** Contrast (of 255) below which a picture is taken as blank. */
export const MIN_CONTRAST = 8;
/** Level (of 255, after step 3) above which a pixel counts as ink for the bounding box. */
export const INK_THRESHOLD = 51;

/** RGBA bytes (4 per pixel) composited over white, then BT.601 luminance (step 1). */
export function rgbaToGray(rgba: ArrayLike<number>, width: number, height: number): GrayImage {
  const data = new Float64Array(width * height);
  for (let i = 0; i < data.length; i++) {
    const y = 0.299 * rgba[4 * i] + 0.587 * rgba[4 * i + 1] + 0.114 * rgba[4 * i + 2];
    const a = rgba[4 * i + 3] / 255;
    data[i] = a * y + (1 - a) * 255;
  }
  return { width, height, data };
}

/** Mean of the outermost ring of pixels. */
export function borderMean(img: GrayImage): number {
  const { width: w, height: h, data } = img;
  let sum = 0;
  let n = 0;
  const add = (i: number) => {
    sum += data[i];
    n++;
  };
  for (let x = 0; x < w; x++) add(x);
  if (h > 1) for (let x = 0; x < w; x++) add((h - 1) * w + x);
  for (let y = 1; y < h - 1; y++) {
    add(y * w);
    if (w > 1) add(y * w + w - 1);
  }
  return sum / n;
}

/** u = clamp(gain·v + bias, 0, 255): the polarity and levels of steps 2–3 as one affine map. */
interface Levels {
  gain: number;
  bias: number;
}

/** Where source pixel (x, y) lands: frame coordinate = k·source + t (continuous, pixel i spans [i, i+1)). */
interface Placement {
  k: number;
  tx: number;
  ty: number;
}

/** Source pixels overlapping the frame's pixel o along one axis, with their overlap weights (area averaging). */
function areaTaps(o: number, k: number, t: number, n: number): { first: number; weights: number[] } {
  const s0 = (o - t) / k;
  const s1 = (o + 1 - t) / k;
  const first = Math.max(0, Math.floor(s0));
  const end = Math.min(n, Math.ceil(s1));
  const weights: number[] = [];
  for (let s = first; s < end; s++) weights.push(Math.min(s + 1, s1) - Math.max(s, s0));
  return { first, weights };
}

/**
 * Resample `img` through levels and a placement into a size×size frame (step 5). `edge: "zero"`
 * takes everything outside the picture as 0; "clamp" repeats its edge pixels (bilinear only).
 */
function resample(
  img: GrayImage,
  levels: Levels,
  place: Placement,
  size: number,
  edge: "zero" | "clamp",
): Float64Array {
  const { width: w, height: h, data } = img;
  const { k, tx, ty } = place;
  const { gain, bias } = levels;
  const u = (i: number): number => Math.min(255, Math.max(0, gain * data[i] + bias));
  const out = new Float64Array(size * size);
  if (k < 1) {
    const cols = Array.from({ length: size }, (_, o) => areaTaps(o, k, tx, w));
    for (let oy = 0; oy < size; oy++) {
      const row = areaTaps(oy, k, ty, h);
      for (let ox = 0; ox < size; ox++) {
        const col = cols[ox];
        let acc = 0;
        for (let j = 0; j < row.weights.length; j++) {
          const base = (row.first + j) * w + col.first;
          let line = 0;
          for (let i = 0; i < col.weights.length; i++) line += col.weights[i] * u(base + i);
          acc += row.weights[j] * line;
        }
        out[oy * size + ox] = acc * k * k; // ÷ the covered area (1/k)²
      }
    }
    return out;
  }
  const at = (y: number, x: number): number => {
    if (edge === "clamp") return u(Math.min(Math.max(y, 0), h - 1) * w + Math.min(Math.max(x, 0), w - 1));
    return y < 0 || y >= h || x < 0 || x >= w ? 0 : u(y * w + x);
  };
  for (let oy = 0; oy < size; oy++) {
    const fy = (oy + 0.5 - ty) / k - 0.5;
    const y = Math.floor(fy);
    const wy = fy - y;
    for (let ox = 0; ox < size; ox++) {
      const fx = (ox + 0.5 - tx) / k - 0.5;
      const x = Math.floor(fx);
      const wx = fx - x;
      const top = (1 - wx) * at(y, x) + wx * at(y, x + 1);
      const bottom = (1 - wx) * at(y + 1, x) + wx * at(y + 1, x + 1);
      out[oy * size + ox] = (1 - wy) * top + wy * bottom;
    }
  }
  return out;
}

/**
 * A square picture resized to size×size (no polarity, levels or centring): area averaging when
 * shrinking, bilinear with clamped edges when enlarging.
 */
export function resizeSquare(img: GrayImage, size: number): GrayImage {
  if (img.width !== img.height)
    throw new RangeError(`resizeSquare: the image is ${img.width}×${img.height}, not square`);
  const data = resample(img, { gain: 1, bias: 0 }, { k: size / img.width, tx: 0, ty: 0 }, size, "clamp");
  return { width: size, height: size, data };
}

export interface DigitPixels {
  /** 28×28 row-major, white ink on black, in [0, 255]. */
  pixels: Float64Array;
  /** True when the picture was dark-on-light and was inverted. */
  inverted: boolean;
  /** False when the picture is blank (contrast under MIN_CONTRAST): pixels are then all 0. */
  ink: boolean;
}

/** Steps 2–5 of the file comment: a picture of one digit as MNIST's 28×28 white-on-black frame. */
export function preprocessDigit(img: GrayImage): DigitPixels {
  const { width: w, height: h, data } = img;
  if (!(w >= 1 && h >= 1 && data.length === w * h)) {
    throw new RangeError(`preprocessDigit: a ${w}×${h} image needs ${w * h} values, got ${data.length}`);
  }
  const edgeMean = borderMean(img);
  const inverted = edgeMean > 127.5;
  const sign = inverted ? -1 : 1;
  const background = inverted ? 255 - edgeMean : edgeMean;
  let peak = -Infinity;
  for (let i = 0; i < data.length; i++) peak = Math.max(peak, inverted ? 255 - data[i] : data[i]);
  const frame = DIGIT_FRAME;
  if (!(peak - background >= MIN_CONTRAST)) return { pixels: new Float64Array(frame * frame), inverted, ink: false };
  // v = sign·Y + (inverted ? 255 : 0);  u = 255·(v − b)/(m − b)
  const gain = (255 / (peak - background)) * sign;
  const levels: Levels = { gain, bias: (255 * ((inverted ? 255 : 0) - background)) / (peak - background) };
  const u = (i: number): number => Math.min(255, Math.max(0, levels.gain * data[i] + levels.bias));

  let x0 = w;
  let y0 = h;
  let x1 = -1;
  let y1 = -1;
  let mass = 0;
  let mx = 0;
  let my = 0;
  for (let y = 0; y < h; y++) {
    for (let x = 0; x < w; x++) {
      const v = u(y * w + x);
      if (v > INK_THRESHOLD) {
        if (x < x0) x0 = x;
        if (x > x1) x1 = x;
        if (y < y0) y0 = y;
        if (y > y1) y1 = y;
      }
      mass += v;
      mx += v * (x + 0.5);
      my += v * (y + 0.5);
    }
  }
  // peak maps to 255 > INK_THRESHOLD, so the box holds at least one pixel, and mass > 0.
  const k = DIGIT_BOX / Math.max(x1 - x0 + 1, y1 - y0 + 1);
  const centre = MASS_CENTRE + 0.5; // pixel MASS_CENTRE spans [14, 15)
  const place: Placement = { k, tx: Math.round(centre - (k * mx) / mass), ty: Math.round(centre - (k * my) / mass) };
  return { pixels: resample(img, levels, place, frame, "zero"), inverted, ink: true };
}

/** A 28×28 frame of pixels in [0, 255] as a (1, 1, 28, 28) float32 model input (step 6). */
export function digitInput(pixels: ArrayLike<number>, n: Normalization): NDArray {
  return new NDArray(normalizePixels(pixels, n, new Float32Array(DIGIT_FRAME * DIGIT_FRAME)), [
    1,
    1,
    DIGIT_FRAME,
    DIGIT_FRAME,
  ]);
}

/** Softmax of one row of logits, in float64 (defined once, in src/nd/rows.ts). */
export { softmax } from "../nd/rows.ts";

/** The k most probable classes, most probable first (ties: the lower class first). */
export function topK(probabilities: ArrayLike<number>, k: number): { digit: number; probability: number }[] {
  const order = Array.from({ length: probabilities.length }, (_, i) => i);
  order.sort((a, b) => probabilities[b] - probabilities[a] || a - b);
  return order.slice(0, k).map((digit) => ({ digit, probability: probabilities[digit] }));
}
