// The IDX reader on the real MNIST files (shapes, magic numbers, documented label counts) and on
// crafted bad files: every defect is an error naming the file, what was expected and the offset.
import { test } from "node:test";
import assert from "node:assert/strict";
import { readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { gzipSync } from "node:zlib";
import { IdxError, decodeIdx, encodeIdx, type IdxData } from "../src/io/idx.ts";
import { readIdx, writeIdx } from "../src/node/idx.ts";
import { MNIST_FILES } from "../src/data/mnist.ts";
import { defaultMnistDir } from "../src/node/mnist.ts";
import { tempDirForFile } from "./helpers.ts";

const dir = defaultMnistDir();
const tmp = tempDirForFile("handprop-idx-");

// Per-digit counts of the MNIST label files, as documented (e.g. in the dataset's description).
const TEST_COUNTS = [980, 1135, 1032, 1010, 982, 892, 958, 1028, 974, 1009];
const TRAIN_COUNTS = [5923, 6742, 5958, 6131, 5842, 5421, 5918, 6265, 5851, 5949];

function counts(labels: IdxData): number[] {
  const c = new Array<number>(10).fill(0);
  for (const l of labels) c[l]++;
  return c;
}

test("the real MNIST files: magic numbers, shapes, types, label counts", () => {
  const raw = readFileSync(join(dir, MNIST_FILES.trainImages)).subarray(0, 16);
  assert.deepEqual([...raw.subarray(0, 4)], [0, 0, 0x08, 3]); // 0x00000803: ubyte, rank 3
  const trainImages = readIdx(join(dir, MNIST_FILES.trainImages));
  assert.equal(trainImages.type, "ubyte");
  assert.deepEqual(trainImages.shape, [60000, 28, 28]);
  assert.ok(trainImages.data instanceof Uint8Array);
  assert.equal(trainImages.data.length, 47040000);
  const testImages = readIdx(join(dir, MNIST_FILES.testImages));
  assert.deepEqual(testImages.shape, [10000, 28, 28]);

  const trainLabels = readIdx(join(dir, MNIST_FILES.trainLabels));
  const testLabels = readIdx(join(dir, MNIST_FILES.testLabels));
  assert.deepEqual(trainLabels.shape, [60000]);
  assert.deepEqual(testLabels.shape, [10000]);
  assert.deepEqual([...readFileSync(join(dir, MNIST_FILES.testLabels)).subarray(0, 4)], [0, 0, 0x08, 1]);
  assert.deepEqual(counts(testLabels.data), TEST_COUNTS);
  assert.deepEqual(counts(trainLabels.data), TRAIN_COUNTS);
  assert.deepEqual([...trainLabels.data.subarray(0, 10)], [5, 0, 4, 1, 9, 2, 1, 3, 1, 4]);
  assert.deepEqual([...testLabels.data.subarray(0, 10)], [7, 2, 1, 0, 4, 1, 4, 9, 5, 9]);
  // pixels are 0..255 with a dark background: the corner of every image is 0
  assert.equal(testImages.data[0], 0);
  assert.equal(Math.max(...testImages.data.subarray(0, 784)), 255);
});

test("gzipped files are read by magic number or by name, with identical contents", () => {
  const raw = readFileSync(join(dir, MNIST_FILES.testLabels));
  const gz = gzipSync(raw);
  writeFileSync(join(tmp, "labels.gz"), gz);
  writeFileSync(join(tmp, "labels-no-extension"), gz);
  const expected = readIdx(join(dir, MNIST_FILES.testLabels));
  assert.deepEqual(readIdx(join(tmp, "labels.gz")), expected);
  assert.deepEqual(readIdx(join(tmp, "labels-no-extension")), expected);
});

test("encode → decode round-trips every IDX type, big-endian", () => {
  const cases: [number[], IdxData][] = [
    [[2, 3], Uint8Array.from([0, 1, 2, 253, 254, 255])],
    [[4], Int8Array.from([-128, -1, 0, 127])],
    [[2, 2], Int16Array.from([-32768, -2, 258, 32767])],
    [[3], Int32Array.from([-2147483648, 16909060, 2147483647])],
    [[1, 3], Float32Array.from([-1.5, Math.fround(0.1), 3e38])],
    [[2], Float64Array.from([Math.PI, -0])],
    [[0, 28, 28], new Uint8Array(0)],
  ];
  for (const [shape, data] of cases) {
    const bytes = encodeIdx(shape, data);
    const back = decodeIdx(bytes, "x");
    assert.deepEqual(back.shape, shape);
    assert.equal(back.data.constructor, data.constructor);
    assert.deepEqual(back.data, data);
  }
  // big-endian on disk: int 0x01020304 is stored 01 02 03 04
  assert.deepEqual([...encodeIdx([1], Int32Array.from([0x01020304]))], [0, 0, 0x0c, 1, 0, 0, 0, 1, 1, 2, 3, 4]);
  writeIdx(join(tmp, "w.idx.gz"), [2], Int16Array.from([1, -1]));
  assert.deepEqual(readFileSync(join(tmp, "w.idx.gz")).subarray(0, 2), Buffer.from([0x1f, 0x8b]));
  assert.deepEqual(readIdx(join(tmp, "w.idx.gz")).data, Int16Array.from([1, -1]));
});

/** The IdxError thrown for bytes written to a file called `name`. */
function errorFor(name: string, bytes: Uint8Array): IdxError {
  const path = join(tmp, name);
  writeFileSync(path, bytes);
  try {
    readIdx(path);
  } catch (e) {
    assert.ok(e instanceof IdxError, String(e));
    return e;
  }
  assert.fail(`${name}: no error`);
}

test("crafted bad files: an error names the file, the expectation and the offset", () => {
  const images = encodeIdx([3, 28, 28], new Uint8Array(3 * 784).fill(7));

  // header says 60000×28×28 but the file stops after 1000 bytes (the example)
  const header = new Uint8Array(1000);
  header.set([0, 0, 0x08, 3, 0, 0, 0xea, 0x60, 0, 0, 0, 28, 0, 0, 0, 28]); // 60000 = 0xea60
  let e = errorFor("train-images-idx3-ubyte", header);
  assert.equal(
    e.message,
    "train-images-idx3-ubyte: truncated: header says 60000×28×28 ubyte = 47040000 data bytes from offset 16, file has 1000 bytes (47039016 short; it ends at offset 1000)",
  );
  assert.equal(e.offset, 1000);
  assert.equal(e.file, "train-images-idx3-ubyte");

  e = errorFor("tiny", images.subarray(0, 3));
  assert.match(e.message, /^tiny: truncated header: the magic number needs 4 bytes from offset 0, file has 3 bytes$/);

  e = errorFor("short-dims", images.subarray(0, 10));
  assert.match(
    e.message,
    /^short-dims: truncated header: rank 3 needs 16 header bytes \(3 big-endian uint32 dimensions from offset 4\), file has 10 bytes$/,
  );

  const badMagic = images.slice();
  badMagic[0] = 0x42;
  e = errorFor("bad-magic", badMagic);
  assert.match(
    e.message,
    /^bad-magic: not an IDX file: the magic number at offset 0 must start with 00 00, got 42 00 08 03$/,
  );
  assert.equal(e.offset, 0);

  const badType = images.slice();
  badType[2] = 0x07;
  e = errorFor("bad-type", badType);
  assert.match(
    e.message,
    /^bad-type: unknown type code 0x07 at offset 2 \(expected one of 0x08 ubyte, 0x09 byte, 0x0b short, 0x0c int, 0x0d float, 0x0e double\)$/,
  );
  assert.equal(e.offset, 2);

  const rank0 = images.slice(0, 4);
  rank0[3] = 0;
  assert.match(errorFor("rank0", rank0).message, /rank 0 at offset 3/);

  const trailing = new Uint8Array(images.length + 5);
  trailing.set(images);
  e = errorFor("trailing", trailing);
  assert.match(
    e.message,
    /^trailing: 5 unexpected trailing bytes: header says 3×28×28 ubyte = 2352 data bytes from offset 16, but the file continues past offset 2368 to 2373$/,
  );

  // a short file of another type: sizes count bytes, not values
  const ints = encodeIdx([4], Int32Array.from([1, 2, 3, 4]));
  assert.match(
    errorFor("ints", ints.subarray(0, 20)).message,
    /^ints: truncated: header says 4 int = 16 data bytes from offset 8, file has 20 bytes \(4 short; it ends at offset 20\)$/,
  );
});

test("gzip: a truncated file inside a valid stream, and a truncated stream", () => {
  const images = encodeIdx([3, 28, 28], new Uint8Array(3 * 784).fill(7));
  // gzip of a truncated IDX file: the offsets are those of the decompressed bytes
  let e = errorFor("t10k-images-idx3-ubyte.gz", gzipSync(images.subarray(0, 100)));
  assert.match(
    e.message,
    /^t10k-images-idx3-ubyte\.gz \(after gunzip\): truncated: header says 3×28×28 ubyte = 2352 data bytes from offset 16, file has 100 bytes/,
  );
  // a gzip stream cut short
  const gz = gzipSync(images);
  e = errorFor("cut.gz", gz.subarray(0, gz.length - 10));
  assert.match(e.message, /^cut\.gz: corrupt or truncated gzip data \(\d+ compressed bytes\): unexpected end of file$/);
  // named .gz but not gzip at all
  e = errorFor("plain.gz", images);
  assert.match(e.message, /^plain\.gz: corrupt or truncated gzip data/);
});

test("a missing file is named", () => {
  assert.throws(
    () => readIdx(join(tmp, "nope-idx1-ubyte")),
    (e: unknown) => e instanceof IdxError && /^nope-idx1-ubyte: no such file/.test(e.message),
  );
});
