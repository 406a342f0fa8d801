// The MNIST loader: the real files (splits, normalisation, NCHW float32), and MNIST-format folders
// crafted here (raw and .gz, missing files, count mismatches, bad labels).
import { test } from "node:test";
import assert from "node:assert/strict";
import { mkdirSync } from "node:fs";
import { join } from "node:path";
import { writeIdx } from "../src/node/idx.ts";
import { MNIST_FILES, MNIST_STANDARDIZE } from "../src/data/mnist.ts";
import { defaultMnistDir, loadMnist } from "../src/node/mnist.ts";
import { tempDirForFile } from "./helpers.ts";

const tmp = tempDirForFile("handprop-mnist-");

/** A small MNIST-format folder: images whose pixel values encode (image index mod 256). */
function craft(
  name: string,
  opts: {
    train?: number;
    test?: number;
    trainLabels?: number;
    gz?: boolean;
    skip?: string[];
    badLabelAt?: number;
    dims?: [number, number];
  } = {},
): string {
  const dir = join(tmp, name);
  mkdirSync(dir, { recursive: true });
  const train = opts.train ?? 50;
  const testN = opts.test ?? 20;
  const [h, w] = opts.dims ?? [28, 28];
  const ext = opts.gz ? ".gz" : "";
  const images = (n: number) => Uint8Array.from({ length: n * h * w }, (_, i) => Math.floor(i / (h * w)) % 256);
  const labels = (n: number) => Uint8Array.from({ length: n }, (_, i) => (i === opts.badLabelAt ? 12 : i % 10));
  const files: [string, number[], Uint8Array][] = [
    [MNIST_FILES.trainImages, [train, h, w], images(train)],
    [MNIST_FILES.trainLabels, [opts.trainLabels ?? train], labels(opts.trainLabels ?? train)],
    [MNIST_FILES.testImages, [testN, h, w], images(testN)],
    [MNIST_FILES.testLabels, [testN], labels(testN)],
  ];
  for (const [file, shape, data] of files) if (!opts.skip?.includes(file)) writeIdx(join(dir, file + ext), shape, data);
  return dir;
}

test("the real MNIST: default splits, NCHW float32, standardised pixels, Int32 labels", () => {
  const d = loadMnist({ limit: 1000 });
  assert.equal(d.dataDir, defaultMnistDir());
  assert.deepEqual(d.train.images.shape, [1000, 1, 28, 28]);
  assert.equal(d.train.images.dtype, "float32");
  assert.ok(d.train.labels instanceof Int32Array);
  assert.deepEqual(d.validation.images.shape, [5000, 1, 28, 28]);
  assert.deepEqual(d.test.images.shape, [10000, 1, 28, 28]);
  assert.deepEqual([...d.train.labels.subarray(0, 5)], [5, 0, 4, 1, 9]);
  assert.deepEqual(d.normalization, MNIST_STANDARDIZE);
  // background pixel p = 0 → (0 − 0.1307)/0.3081; a full-ink pixel p = 255 → (1 − 0.1307)/0.3081
  const x = d.test.images.data;
  assert.equal(x[0], Math.fround(-0.1307 / 0.3081));
  assert.ok(x.subarray(0, 784).includes(Math.fround((1 - 0.1307) / 0.3081)));
  // the pixels' mean over the first test images is near 0, their std near 1
  let s = 0;
  let ss = 0;
  const n = 784 * 1000;
  for (let i = 0; i < n; i++) {
    s += x[i];
    ss += x[i] * x[i];
  }
  assert.ok(Math.abs(s / n) < 0.05, `mean ${s / n}`);
  assert.ok(Math.abs(Math.sqrt(ss / n - (s / n) ** 2) - 1) < 0.05);
});

test("splits: the validation set is the last N training images; limit and validation 0", () => {
  const dir = craft("splits", { train: 50, test: 20 });
  const d = loadMnist({ dataDir: dir, validation: 10, limit: 30, normalization: "unit" });
  assert.equal(d.train.images.shape[0], 30);
  assert.equal(d.validation.images.shape[0], 10);
  // image k has every pixel = k/255 under "unit" normalisation: the validation set starts at image 40
  assert.equal(d.validation.images.data[0], Math.fround(40 / 255));
  assert.equal(d.train.images.data[29 * 784], Math.fround(29 / 255));
  assert.deepEqual([...d.validation.labels], [0, 1, 2, 3, 4, 5, 6, 7, 8, 9]);
  const none = loadMnist({ dataDir: dir, validation: 0, normalization: "unit" });
  assert.equal(none.train.images.shape[0], 50);
  assert.equal(none.validation.images.shape[0], 0);
  const testOnly = loadMnist({ dataDir: dir, testOnly: true, testLimit: 5 });
  assert.equal(testOnly.train.images.shape[0], 0);
  assert.equal(testOnly.test.images.shape[0], 5);
  assert.throws(
    () => loadMnist({ dataDir: dir, validation: 10, limit: 41 }),
    /limit 41 is more than the 40 training images left after a validation split of 10/,
  );
  assert.throws(
    () => loadMnist({ dataDir: dir, validation: 51 }),
    /a validation split of 51 is more than the 50 training images/,
  );
  assert.throws(() => loadMnist({ dataDir: dir, limit: -1 }), /limit must be a non-negative integer/);
});

test("a folder of .gz files loads the same as raw files", () => {
  const raw = loadMnist({ dataDir: craft("raw"), validation: 5 });
  const gz = loadMnist({ dataDir: craft("gz", { gz: true }), validation: 5 });
  assert.deepEqual(gz.train.images.data, raw.train.images.data);
  assert.deepEqual(gz.test.labels, raw.test.labels);
});

test("missing files are all listed", () => {
  const dir = craft("missing", { skip: [MNIST_FILES.trainLabels, MNIST_FILES.testImages] });
  assert.throws(
    () => loadMnist({ dataDir: dir }),
    (e: Error) => {
      assert.match(
        e.message,
        /^MNIST: missing in .*missing: train-labels-idx1-ubyte\[\.gz\], t10k-images-idx3-ubyte\[\.gz\] \(expected the four files/,
      );
      return true;
    },
  );
  assert.throws(
    () => loadMnist({ dataDir: join(tmp, "no-such-folder") }),
    /data folder .*no-such-folder does not exist/,
  );
});

test("label/image count mismatch, labels outside 0..9, wrong image size", () => {
  assert.throws(
    () => loadMnist({ dataDir: craft("count", { train: 50, trainLabels: 49 }) }),
    /train-labels-idx1-ubyte: label count 49 does not match the image count 50 of .*train-images-idx3-ubyte/,
  );
  assert.throws(
    () => loadMnist({ dataDir: craft("label", { badLabelAt: 7 }) }),
    /t10k-labels-idx1-ubyte: label 7 \(byte offset 15\) is 12, expected a digit 0\.\.9/,
  );
  assert.throws(
    () => loadMnist({ dataDir: craft("dims", { dims: [32, 32] }) }),
    /t10k-images-idx3-ubyte: expected MNIST images \(N×28×28 ubyte\), got 20×32×32 ubyte/,
  );
});
