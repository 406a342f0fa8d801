// predict's image reading and the shared digit preprocessing (issue 11, defects 4, 8, 10, 11, 14;
// issue 10 point 6), in process: header sizes are refused before anything is allocated, non-regular
// files are refused without blocking, the preprocessing is invariant to where and how large the
// digit is drawn, a 28×28 MNIST image comes through unchanged, normalization is validated by field,
// and Sequential.predict handles 0 images and bad batch sizes.

import { test } from "node:test";
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { symlinkSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { crc32, deflateSync } from "node:zlib";
import { decodeImage, decodePgm, decodePng, ImageError, MAX_IMAGE_PIXELS, readImage } from "../src/cli/images.ts";
import { printable } from "../src/io/text.ts";
import { classifyPicture } from "../src/cli/predict.ts";
import { REPO_ROOT } from "../src/cli/serve.ts";
import { loadModel } from "../src/node/model-io.ts";
import { preprocessDigit, rgbaToGray, softmax, topK, type GrayImage } from "../src/data/digits.ts";
import {
  MNIST_STANDARDIZE,
  NormalizationError,
  normalizationFromTraining,
  validateNormalization,
} from "../src/data/normalization.ts";
import { MNIST_FILES } from "../src/data/mnist.ts";
import { defaultMnistDir } from "../src/node/mnist.ts";
import { readIdx } from "../src/node/idx.ts";
import { buildModel } from "../src/nn/models.ts";
import { NDArray } from "../src/nd/ndarray.ts";
import { tempDirForFile } from "./helpers.ts";

const tmp = tempDirForFile("handprop-predict-");

const maxDiff = (a: ArrayLike<number>, b: ArrayLike<number>): number =>
  Math.max(...Array.from(a, (v, i) => Math.abs(v - b[i])));
const ascii = (s: string): Uint8Array => new TextEncoder().encode(s);

/** A PNG chunk: length, type, data, CRC-32 of type + data. */
export function pngChunk(type: string, data: Uint8Array): Uint8Array {
  const out = new Uint8Array(12 + data.length);
  const view = new DataView(out.buffer);
  view.setUint32(0, data.length);
  out.set(ascii(type), 4);
  out.set(data, 8);
  view.setUint32(8 + data.length, crc32(out.subarray(4, 8 + data.length)));
  return out;
}

/** A PNG from its parts: IHDR fields and the zlib stream for IDAT. */
export function craftPng(
  width: number,
  height: number,
  idat: Uint8Array,
  opts: { depth?: number; colorType?: number; interlace?: number } = {},
): Uint8Array {
  const ihdr = new Uint8Array(13);
  const v = new DataView(ihdr.buffer);
  v.setUint32(0, width);
  v.setUint32(4, height);
  ihdr[8] = opts.depth ?? 8;
  ihdr[9] = opts.colorType ?? 0;
  ihdr[12] = opts.interlace ?? 0;
  const parts = [
    Uint8Array.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]),
    pngChunk("IHDR", ihdr),
    pngChunk("IDAT", idat),
    pngChunk("IEND", new Uint8Array(0)),
  ];
  return Uint8Array.from(parts.flatMap((p) => Array.from(p)));
}

/** A grayscale 8-bit PNG of `gray` (w×h), non-interlaced: filter byte 0 before each row. */
export function grayPng(gray: ArrayLike<number>, w: number, h: number): Uint8Array {
  const raw = new Uint8Array(h * (w + 1));
  for (let y = 0; y < h; y++) for (let x = 0; x < w; x++) raw[y * (w + 1) + 1 + x] = gray[y * w + x];
  return craftPng(w, h, deflateSync(raw));
}

const timed = <T>(f: () => T): { value: T; ms: number } => {
  const t0 = performance.now();
  const value = f();
  return { value, ms: performance.now() - t0 };
};

test("header sizes above 16 megapixels are refused before decoding, naming the file and the limit", () => {
  const huge = timed(() => {
    assert.throws(() => decodePgm(ascii("P5\n100000 100000\n255\n"), "huge.pgm"), ImageError);
  });
  assert.ok(huge.ms < 1000, `${huge.ms} ms`);
  assert.throws(
    () => decodePgm(ascii("P5\n100000 100000\n255\n"), "huge.pgm"),
    new RegExp(
      "^ImageError: huge\\.pgm: the PGM header declares 100,000×100,000 = 10,000,000,000 pixels, " +
        "above predict's limit of 16,777,216 \\(16 megapixels, e\\.g\\. 4096×4096\\)",
    ),
  );
  assert.throws(
    () => decodePng(craftPng(20000, 20000, deflateSync(new Uint8Array(100))), "big.png"),
    /big\.png: the PNG header \(IHDR\) declares 20,000×20,000 = 400,000,000 pixels, above predict's limit/,
  );
  // Within the limit but with far too little compressed data to fill it: refused before pngjs allocates.
  assert.throws(
    () => decodePng(craftPng(4000, 4000, deflateSync(new Uint8Array(10))), "thin.png"),
    new RegExp(
      "thin\\.png: not a readable PNG: IHDR declares 4,000×4,000 pixels \\(16,004,000 bytes of image data\\), " +
        "but its IDAT chunks hold only \\d+ compressed bytes",
    ),
  );
  // An interlaced image whose data inflates to more than its header implies: stopped at that bound.
  const bomb = craftPng(64, 64, deflateSync(new Uint8Array(4 * 2 ** 20)), { interlace: 1 });
  assert.throws(
    () => decodePng(bomb, "bomb.png"),
    /bomb\.png: not a readable PNG: the image data does not inflate: more than the [\d,]+ bytes IHDR implies/,
  );
  assert.ok(MAX_IMAGE_PIXELS === 2 ** 24);
  // Numbers in a PGM are at most 10 digits: a megabyte of digits is an error, not a stack overflow.
  assert.throws(
    () => decodePgm(ascii("P2 " + "9".repeat(1e6)), "digits.pgm"),
    /digits\.pgm: bad PGM: the width at offset 3 has more than 10 digits/,
  );
  // A P2 file too short for the pixels it declares is refused by counting, before allocating.
  const p2 = timed(() => {
    assert.throws(
      () => decodePgm(ascii("P2 4000 4000 255\n1 2 3"), "short.pgm"),
      /short\.pgm: truncated: header says 4000×4000 = 16000000 pixels, file ends after 3/,
    );
  });
  assert.ok(p2.ms < 1000, `${p2.ms} ms`);
});

test("valid PNGs decode: 8-bit gray, RGBA over white", () => {
  const gray = Uint8Array.from({ length: 30 * 20 }, (_, i) => (i * 7) % 256);
  const img = decodePng(grayPng(gray, 30, 20), "g.png");
  assert.deepEqual([img.width, img.height], [30, 20]);
  assert.ok(maxDiff(img.data, gray) < 1e-9);
  assert.deepEqual(
    rgbaToGray([0, 0, 0, 0, 255, 255, 255, 255, 0, 0, 0, 255], 3, 1).data,
    Float64Array.from([255, 255, 0]),
  );
});

test("files: regular files only, bounded reads, names escaped in messages", () => {
  assert.throws(() => readImage(tmp), /not a regular file \(a directory\)/);
  symlinkSync("/dev/zero", join(tmp, "zero.pgm"));
  assert.throws(() => readImage(join(tmp, "zero.pgm")), /zero\.pgm: not a regular file \(a device, pipe or socket\)/);
  const fifo = join(tmp, "fifo.png");
  if (spawnSync("mkfifo", [fifo]).status === 0) {
    const t0 = performance.now(); // opening a FIFO for reading would wait for a writer: it must not
    assert.throws(() => readImage(fifo), /fifo\.png: not a regular file \(a device, pipe or socket\)/);
    assert.ok(performance.now() - t0 < 5000);
  }
  const evil = join(tmp, "evil\u001b[2J\u0007.pgm");
  writeFileSync(evil, "P5 2 2 255\n");
  assert.throws(
    () => readImage(evil),
    (e: Error) =>
      e instanceof ImageError &&
      e.message.includes("evil\\e[2J\\x07.pgm: truncated") &&
      !Array.from(e.message).some((c) => c.charCodeAt(0) < 0x20),
  );
  assert.equal(printable("a\u0000b\tc\r\n\u009b\u202ed"), "a\\0b\\tc\\r\\n\\x9b\\u{202e}d");
  assert.throws(
    () => decodeImage(ascii("GIF89a"), "x.gif"),
    /x\.gif: not a PNG or PGM \(P2\/P5\) image \(starts with 47 49 46 38\)/,
  );
});

// ---------------------------------------------------------------------------------------------
// preprocessing

const testImages = readIdx(join(defaultMnistDir(), MNIST_FILES.testImages));
const mnist = (i: number): Float64Array => Float64Array.from(testImages.data.subarray(i * 784, (i + 1) * 784));

/** The picture `src` (28×28) enlarged k times by nearest neighbour and placed at (ox, oy) on a w×h canvas of `bg`. */
function canvas(src: Float64Array, k: number, w: number, h: number, ox: number, oy: number, invert = false): GrayImage {
  const data = new Float64Array(w * h).fill(invert ? 255 : 0);
  for (let y = 0; y < 28 * k; y++)
    for (let x = 0; x < 28 * k; x++) {
      const v = src[Math.floor(y / k) * 28 + Math.floor(x / k)];
      data[(oy + y) * w + ox + x] = invert ? 255 - v : v;
    }
  return { width: w, height: h, data };
}

test("a 28×28 MNIST image comes through unchanged; position, size, polarity and shape do not matter", () => {
  for (const i of [0, 1, 2, 3, 4, 5, 6, 7]) {
    const img = mnist(i);
    const peak = Math.max(...img);
    const plain = preprocessDigit({ width: 28, height: 28, data: img });
    assert.equal(plain.ink, true);
    assert.equal(plain.inverted, false);
    // Levels stretch the brightest pixel to 255; MNIST's box and centring are reproduced exactly.
    assert.ok(
      maxDiff(
        plain.pixels,
        img.map((v) => (v * 255) / peak),
      ) < 1e-9,
      `image ${i}`,
    );
    // Enlarged 3× by nearest neighbour anywhere on a wide canvas (on the 3-pixel grid, so that no
    // sub-pixel shift blurs it), dark on light: area averaging undoes it.
    const placed = preprocessDigit(canvas(img, 3, 300, 120, 150 + 3 * i, 21, true));
    assert.equal(placed.inverted, true);
    assert.ok(maxDiff(placed.pixels, plain.pixels) < 1e-9, `image ${i}: ${maxDiff(placed.pixels, plain.pixels)}`);
  }
  const blank = preprocessDigit({ width: 40, height: 30, data: new Float64Array(1200).fill(200) });
  assert.deepEqual([blank.ink, blank.pixels.every((v) => v === 0)], [false, true]);
});

test("a 20000×1 picture is resampled without a padded square", () => {
  const w = 20000;
  const data = new Float64Array(w).fill(255);
  for (let x = 9000; x < 11000; x++) data[x] = 0;
  const rss0 = process.memoryUsage().rss;
  const { value, ms } = timed(() => preprocessDigit({ width: w, height: 1, data }));
  assert.ok(ms < 500, `${ms} ms`);
  assert.ok(process.memoryUsage().rss - rss0 < 50 * 2 ** 20);
  assert.equal(value.inverted, true);
  // A 2000-pixel bar scaled to 20 pixels wide, 0.01 pixel tall: a faint line across the middle of the frame.
  const row = Array.from(value.pixels.subarray(14 * 28, 15 * 28));
  assert.ok(
    row.slice(5, 25).every((v) => Math.abs(v - 2.55) < 1e-9),
    row.join(" "),
  );
  assert.equal(
    value.pixels.reduce((a, b) => a + b, 0),
    row.reduce((a, b) => a + b, 0),
  );
});

test("softmax and top-k", () => {
  const p = softmax([1000, 1000, -Infinity, 999]);
  assert.ok(Math.abs(p.reduce((a, b) => a + b, 0) - 1) < 1e-15);
  assert.equal(p[2], 0);
  assert.deepEqual(
    topK(p, 2).map((t) => t.digit),
    [0, 1],
  );
  assert.deepEqual(
    topK([0.1, 0.5, 0.4], 5).map((t) => t.digit),
    [1, 2, 0],
  );
});

test("a stored normalization is validated by file and field, never replaced by defaults", () => {
  const ok = { scale: 1 / 255, mean: 0.1307, std: 0.3081 };
  assert.deepEqual(normalizationFromTraining({ dataset: { normalization: ok } }, "m.json"), {
    normalization: ok,
    stored: true,
  });
  assert.deepEqual(normalizationFromTraining(undefined, "m.json"), { normalization: MNIST_STANDARDIZE, stored: false });
  assert.deepEqual(normalizationFromTraining({ dataset: {} }, "m.json").stored, false);
  const bad: [unknown, RegExp][] = [
    [{ ...ok, std: 0 }, /m\.json: training\.dataset\.normalization\.std must be a finite number > 0, got 0/],
    [{ ...ok, std: -1 }, /normalization\.std must be a finite number > 0, got -1/],
    [{ ...ok, mean: "0.1307" }, /normalization\.mean must be a finite number, got "0\.1307"/],
    [{ ...ok, scale: Infinity }, /normalization\.scale must be a finite number > 0, got Infinity/],
    [{ scale: 1, mean: 0 }, /normalization\.std must be a finite number > 0, got nothing/],
    ["standardize", /training\.dataset\.normalization must be an object \{scale, mean, std\}, got "standardize"/],
  ];
  for (const [n, re] of bad)
    assert.throws(
      () => normalizationFromTraining({ dataset: { normalization: n } }, "m.json"),
      (e: Error) => e instanceof NormalizationError && re.test(e.message),
    );
  assert.throws(
    () => normalizationFromTraining({ dataset: [] }, "m.json"),
    /m\.json: training\.dataset must be an object, got an array/,
  );
  assert.throws(
    () => validateNormalization(null, "x.json", "meta.n"),
    /x\.json: meta\.n must be an object \{scale, mean, std\}, got null/,
  );
});

test("Sequential.predict: 0 images give (0, 10); batchSize must be a positive integer", () => {
  const model = buildModel("cnn-small", { seed: 1 });
  assert.deepEqual(model.predict(new NDArray(new Float32Array(0), [0, 1, 28, 28])).shape, [0, 10]);
  const x = new NDArray(new Float32Array(784 * 3), [3, 1, 28, 28]);
  for (const batchSize of [0, -1, 1.5, NaN])
    assert.throws(
      () => model.predict(x, { batchSize }),
      (e: Error) => e instanceof RangeError && /predict: batchSize must be a positive integer/.test(e.message),
    );
  assert.deepEqual(model.predict(x, { batchSize: 2 }).shape, [3, 10]);
});

/** A white-on-black drawing like the page's pad: a 22-px round-capped polyline on 280×280, anti-aliased by coverage. */
function drawing(points: [number, number][], size = 280, stroke = 22): GrayImage {
  const data = new Float64Array(size * size);
  const r = stroke / 2;
  for (let y = 0; y < size; y++)
    for (let x = 0; x < size; x++) {
      let d = Infinity;
      for (let s = 0; s + 1 < points.length; s++) {
        const [ax, ay] = points[s];
        const [bx, by] = points[s + 1];
        const t = Math.max(
          0,
          Math.min(1, ((x + 0.5 - ax) * (bx - ax) + (y + 0.5 - ay) * (by - ay)) / ((bx - ax) ** 2 + (by - ay) ** 2)),
        );
        d = Math.min(d, Math.hypot(x + 0.5 - ax - t * (bx - ax), y + 0.5 - ay - t * (by - ay)));
      }
      data[y * size + x] = 255 * Math.max(0, Math.min(1, r - d + 0.5));
    }
  return { width: size, height: size, data };
}

test("drawings like the page's are read as the digits drawn by the shipped LeNet-5", () => {
  const { model, training } = loadModel(join(REPO_ROOT, "web", "public", "models", "lenet5"));
  const { normalization } = normalizationFromTraining(training, "lenet5/model.json");
  const seven: [number, number][] = [
    [70, 70],
    [140, 68],
    [210, 70],
    [180, 140],
    [150, 210],
    [130, 250],
  ];
  const one: [number, number][] = [
    [150, 40],
    [140, 240],
  ];
  const zero: [number, number][] = Array.from({ length: 25 }, (_, i) => [
    140 + 60 * Math.sin((i / 24) * 2 * Math.PI),
    140 - 95 * Math.cos((i / 24) * 2 * Math.PI),
  ]);
  for (const [label, points] of [
    [7, seven],
    [1, one],
    [0, zero],
  ] as const) {
    const r = classifyPicture(model, drawing([...points]), normalization, `drawn-${label}`, 3, "lenet5");
    assert.equal(r.top[0].digit, label, `drawn ${label}: ${JSON.stringify(r.top)}`);
    // The same drawing small and off-centre on a light page reads the same.
    const big = drawing(
      points.map(([x, y]) => [x / 2 + 300, y / 2 + 40]),
      600,
    );
    const inverted = { ...big, data: big.data.map((v) => 255 - v) };
    assert.equal(classifyPicture(model, inverted, normalization, `page-${label}`, 1, "lenet5").top[0].digit, label);
  }
});
