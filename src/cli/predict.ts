// `handprop predict --model DIR FILE...`: classify digit images (PNG, or PGM P2/P5) with a saved model
// and print the top-3 classes with their probabilities.
//
// Each image is turned into an MNIST-like input:
//   1. grayscale: PNG pixels are composited over white by their alpha, then luminance
//      Y = 0.299·R + 0.587·G + 0.114·B (ITU-R BT.601); PGM values are scaled from [0, maxval] to [0, 255];
//   2. polarity: MNIST digits are white on black. If the image's border (its outermost ring of
//      pixels, which for a centred digit is background) averages lighter than mid-gray (> 127.5),
//      the image is taken as dark-on-light and inverted (255 − Y);
//   3. shape: a non-square image is padded to a square with its background (the border's mean,
//      after step 2), then resized to 28×28: area averaging when shrinking, bilinear when enlarging;
//   4. the model's own normalization (model.json), e.g. (p/255 − 0.1307)/0.3081.
// MNIST digits are centred by mass in a 20×20 box inside the 28×28 frame: crops with a similar margin
// are recognised best.

import { readFileSync } from "node:fs";
import pngjs from "pngjs";
import { NDArray } from "../nd/ndarray.ts";
import { SoftmaxCrossEntropy } from "../nn/losses.ts";
import { loadModel } from "../node/model-io.ts";
import type { Normalization } from "../data/mnist.ts";
import { modelNormalization } from "./eval.ts";
import { UsageError, type FlagValues } from "./args.ts";
import type { Command } from "./main.ts";

/** A grayscale image, values in [0, 255], row-major. */
export interface GrayImage {
  width: number;
  height: number;
  data: Float64Array;
}

/** A file that is not a readable image: names the file and what is wrong. */
export class ImageError extends Error {
  override name = "ImageError";
}

// ---------------------------------------------------------------------------------------------
// Decoding

const isSpace = (b: number): boolean => b === 0x20 || b === 0x09 || b === 0x0a || b === 0x0d || b === 0x0b || b === 0x0c;

/** Parse a PGM file: P2 (ASCII) or P5 (binary, 1 or 2 big-endian bytes per pixel), with # comments. */
export function decodePgm(bytes: Uint8Array, file: string): GrayImage {
  const magic = String.fromCharCode(bytes[0] ?? 0, bytes[1] ?? 0);
  if (magic !== "P2" && magic !== "P5") throw new ImageError(`${file}: not a PGM file: expected "P2" or "P5" at offset 0`);
  let pos = 2;
  // Header tokens: width, height, maxval, separated by whitespace; '#' starts a comment to end of line.
  const token = (what: string): number => {
    while (pos < bytes.length) {
      if (isSpace(bytes[pos])) pos++;
      else if (bytes[pos] === 0x23) while (pos < bytes.length && bytes[pos] !== 0x0a && bytes[pos] !== 0x0d) pos++;
      else break;
    }
    const start = pos;
    while (pos < bytes.length && bytes[pos] >= 0x30 && bytes[pos] <= 0x39) pos++;
    if (pos === start) {
      const got = pos < bytes.length ? `'${String.fromCharCode(bytes[pos])}'` : "the end of the file";
      throw new ImageError(`${file}: bad PGM header: expected the ${what} (a decimal number) at offset ${start}, got ${got}`);
    }
    return Number(String.fromCharCode(...bytes.subarray(start, pos)));
  };
  const width = token("width");
  const height = token("height");
  const maxval = token("maxval");
  if (width < 1 || height < 1) throw new ImageError(`${file}: bad PGM header: size ${width}×${height} is empty`);
  if (maxval < 1 || maxval > 65535) throw new ImageError(`${file}: bad PGM header: maxval must be 1..65535, got ${maxval}`);
  const count = width * height;
  const data = new Float64Array(count);
  const scale = 255 / maxval;
  if (magic === "P5") {
    if (pos >= bytes.length || !isSpace(bytes[pos])) throw new ImageError(`${file}: bad PGM header: expected one whitespace byte after maxval at offset ${pos}`);
    pos++;
    const bpp = maxval < 256 ? 1 : 2;
    const need = count * bpp;
    if (bytes.length - pos < need) {
      throw new ImageError(`${file}: truncated: header says ${width}×${height} pixels × ${bpp} byte(s) = ${need} bytes from offset ${pos}, file has ${bytes.length - pos}`);
    }
    for (let i = 0; i < count; i++) {
      const v = bpp === 1 ? bytes[pos + i] : (bytes[pos + 2 * i] << 8) | bytes[pos + 2 * i + 1];
      if (v > maxval) throw new ImageError(`${file}: pixel ${i} is ${v}, above maxval ${maxval} (offset ${pos + i * bpp})`);
      data[i] = v * scale;
    }
  } else {
    for (let i = 0; i < count; i++) {
      let v: number;
      try {
        v = token(`pixel ${i} of ${count}`);
      } catch (e) {
        if (pos >= bytes.length) throw new ImageError(`${file}: truncated: header says ${width}×${height} = ${count} pixels, file ends after ${i} (offset ${pos})`);
        throw e;
      }
      if (v > maxval) throw new ImageError(`${file}: pixel ${i} is ${v}, above maxval ${maxval}`);
      data[i] = v * scale;
    }
  }
  return { width, height, data };
}

/** Decode a PNG (any bit depth, color type, alpha) to grayscale composited over white. */
export function decodePng(bytes: Uint8Array, file: string): GrayImage {
  let png: { width: number; height: number; data: Buffer };
  try {
    png = pngjs.PNG.sync.read(Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength));
  } catch (e) {
    throw new ImageError(`${file}: not a readable PNG: ${(e as Error).message}`);
  }
  const { width, height, data: rgba } = png;
  const out = new Float64Array(width * height);
  for (let i = 0; i < out.length; i++) {
    const y = 0.299 * rgba[4 * i] + 0.587 * rgba[4 * i + 1] + 0.114 * rgba[4 * i + 2];
    const a = rgba[4 * i + 3] / 255;
    out[i] = a * y + (1 - a) * 255;
  }
  return { width, height, data: out };
}

const PNG_MAGIC = [0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a];

/** Read a PNG or PGM file (told apart by their magic bytes, not the extension). */
export function readImage(path: string): GrayImage {
  let bytes: Uint8Array;
  try {
    bytes = readFileSync(path);
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    throw new ImageError(code === "ENOENT" ? `${path}: no such file` : `${path}: cannot read: ${(e as Error).message}`);
  }
  if (PNG_MAGIC.every((b, i) => bytes[i] === b)) return decodePng(bytes, path);
  if (bytes[0] === 0x50 && (bytes[1] === 0x32 || bytes[1] === 0x35)) return decodePgm(bytes, path);
  const head = Array.from(bytes.subarray(0, 4), (b) => b.toString(16).padStart(2, "0")).join(" ");
  throw new ImageError(`${path}: not a PNG or PGM (P2/P5) image (${bytes.length === 0 ? "empty file" : `starts with ${head}`})`);
}

// ---------------------------------------------------------------------------------------------
// MNIST-like preprocessing

/** Mean of the outermost ring of pixels. */
export function borderMean(img: GrayImage): number {
  const { width: w, height: h, data } = img;
  let sum = 0;
  let n = 0;
  for (let y = 0; y < h; y++) {
    for (let x = 0; x < w; x++) {
      if (y === 0 || y === h - 1 || x === 0 || x === w - 1) {
        sum += data[y * w + x];
        n++;
      }
    }
  }
  return sum / n;
}

/** Pad to a square, centred, with a constant value. */
function padSquare(img: GrayImage, value: number): GrayImage {
  const { width: w, height: h } = img;
  if (w === h) return img;
  const s = Math.max(w, h);
  const out = new Float64Array(s * s).fill(value);
  const ox = Math.floor((s - w) / 2);
  const oy = Math.floor((s - h) / 2);
  for (let y = 0; y < h; y++) out.set(img.data.subarray(y * w, y * w + w), (y + oy) * s + ox);
  return { width: s, height: s, data: out };
}

/**
 * Resize a square image to size×size: area averaging when shrinking (each output pixel is the mean of
 * the input area it covers, partial pixels weighted by overlap), bilinear with half-pixel centres when
 * enlarging.
 */
export function resizeSquare(img: GrayImage, size: number): GrayImage {
  const n = img.width;
  if (n === size) return img;
  const out = new Float64Array(size * size);
  const s = n / size; // input pixels per output pixel
  if (s > 1) {
    for (let oy = 0; oy < size; oy++) {
      const y0 = oy * s;
      const y1 = y0 + s;
      for (let ox = 0; ox < size; ox++) {
        const x0 = ox * s;
        const x1 = x0 + s;
        let acc = 0;
        for (let y = Math.floor(y0); y < Math.min(Math.ceil(y1), n); y++) {
          const wy = Math.min(y + 1, y1) - Math.max(y, y0);
          for (let x = Math.floor(x0); x < Math.min(Math.ceil(x1), n); x++) {
            const wx = Math.min(x + 1, x1) - Math.max(x, x0);
            acc += wy * wx * img.data[y * n + x];
          }
        }
        out[oy * size + ox] = acc / (s * s);
      }
    }
  } else {
    const at = (y: number, x: number): number => img.data[Math.min(Math.max(y, 0), n - 1) * n + Math.min(Math.max(x, 0), n - 1)];
    for (let oy = 0; oy < size; oy++) {
      const fy = (oy + 0.5) * s - 0.5;
      const y = Math.floor(fy);
      const ty = fy - y;
      for (let ox = 0; ox < size; ox++) {
        const fx = (ox + 0.5) * s - 0.5;
        const x = Math.floor(fx);
        const tx = fx - x;
        out[oy * size + ox] = (1 - ty) * ((1 - tx) * at(y, x) + tx * at(y, x + 1)) + ty * ((1 - tx) * at(y + 1, x) + tx * at(y + 1, x + 1));
      }
    }
  }
  return { width: size, height: size, data: out };
}

/** Steps 2–3 of the file comment: white-on-black 28×28 pixels in [0, 255], and whether it was inverted. */
export function toMnistPixels(img: GrayImage): { pixels: Float64Array; inverted: boolean } {
  const inverted = borderMean(img) > 127.5;
  const data = inverted ? img.data.map((v) => 255 - v) : img.data;
  const oriented = { width: img.width, height: img.height, data };
  const square = padSquare(oriented, borderMean(oriented));
  return { pixels: resizeSquare(square, 28).data, inverted };
}

/** (1, 1, 28, 28) float32 input for a model trained with normalization n. */
export function toInput(pixels: Float64Array, n: Normalization): NDArray {
  const x = new Float32Array(784);
  for (let i = 0; i < 784; i++) x[i] = (pixels[i] * n.scale - n.mean) / n.std;
  return new NDArray(x, [1, 1, 28, 28]);
}

export interface Prediction {
  file: string;
  inverted: boolean;
  top: { digit: number; probability: number }[];
}

export const predictCommand: Command = {
  spec: {
    name: "predict",
    summary: "Classify digit images (PNG, PGM P2/P5) with a saved model: top-3 classes with probabilities",
    usage: "handprop predict --model DIR [--json] FILE...",
    positionals: true,
    flags: {
      model: { kind: "string", help: "model folder (model.json + weights.bin), e.g. runs/mnist-lenet5", meta: "DIR" },
      top: { kind: "uint", help: "classes to show per image", default: 3, meta: "K" },
      json: { kind: "boolean", help: 'print {"predictions": [{"file", "inverted", "top": [{"digit", "probability"}]}]} as JSON' },
    },
  },
  run(v: FlagValues, files: string[]) {
    if (v.model === undefined) throw new UsageError("handprop predict: --model DIR is required (a folder saved by handprop train)");
    if (files.length === 0) throw new UsageError("handprop predict: no image files given (handprop predict --model DIR FILE...)");
    const k = v.top as number;
    if (k < 1) throw new UsageError("handprop predict: --top must be at least 1");
    const { model, training } = loadModel(v.model as string);
    const { normalization } = modelNormalization(training);
    const results: Prediction[] = [];
    let failed = 0;
    for (const file of files) {
      try {
        const { pixels, inverted } = toMnistPixels(readImage(file));
        const logits = model.predict(toInput(pixels, normalization));
        const p = SoftmaxCrossEntropy.softmax(logits).data;
        const order = Array.from(p, (_, i) => i).sort((a, b) => p[b] - p[a] || a - b);
        const r: Prediction = { file, inverted, top: order.slice(0, k).map((d) => ({ digit: d, probability: p[d] })) };
        results.push(r);
        if (!v.json) process.stdout.write(`${file}: ${r.top.map((t) => `${t.digit} (${(100 * t.probability).toFixed(2)}%)`).join("  ")}${inverted ? "  [inverted: light background]" : ""}\n`);
      } catch (e) {
        if (!(e instanceof ImageError)) throw e;
        failed++;
        process.stderr.write(`handprop predict: ${e.message}\n`);
      }
    }
    if (v.json) process.stdout.write(JSON.stringify({ predictions: results }) + "\n");
    return failed > 0 ? 1 : 0;
  },
};
