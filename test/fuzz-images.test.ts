// Fuzzing predict's image path (issue 11): fast-check mutates valid PNG (gray, gray+alpha, RGB, RGBA,
// 8 and 16 bit) and PGM (P2, P5 8 and 16 bit) files — bit flips, truncation, inserted bytes, header
// fields rewritten to any value up to 2^32 − 1 (with the PNG chunk CRC fixed up so the change gets
// past it) — and runs each through decodeImage and classifyPicture, predict's per-file code.
// Every input must end in a prediction (finite probabilities summing to 1) or an ImageError whose
// message starts with the file's name, within a time bound and without a large allocation (RSS
// stays within a bound: the header checks make that hold). Never a crash, hang or RangeError.
// The normal run is time-bounded (about 1.3 s per format); HANDPROP_STRESS=1 (npm run test:stress)
// runs a minute per format with a fresh seed.

import { test } from "node:test";
import assert from "node:assert/strict";
import fc from "fast-check";
import pngjs from "pngjs";
import { crc32 } from "node:zlib";
import { join } from "node:path";
import { classifyPicture } from "../src/cli/predict.ts";
import { ImageError, decodeImage } from "../src/cli/images.ts";
import { MNIST_STANDARDIZE } from "../src/data/normalization.ts";
import { MNIST_FILES } from "../src/data/mnist.ts";
import { defaultMnistDir } from "../src/node/mnist.ts";
import { readIdx } from "../src/node/idx.ts";
import { buildModel } from "../src/nn/models.ts";

const STRESS = process.env.HANDPROP_STRESS === "1";
const TIME_PER_FORMAT_MS = STRESS ? 60_000 : 1_300;
const SEED = STRESS ? Date.now() % 2 ** 31 : 20261128;
const MAX_MS_PER_INPUT = 3000;
const MAX_RSS_GROWTH = 768 * 2 ** 20;

const model = buildModel("cnn-small", { seed: 3 });
const images = readIdx(join(defaultMnistDir(), MNIST_FILES.testImages));
const digit = Uint8Array.from(images.data.subarray(0, 784));

function png(colorType: 0 | 2 | 4 | 6, bitDepth: 8 | 16): Uint8Array {
  const p = new pngjs.PNG({ width: 28, height: 28 });
  for (let i = 0; i < 784; i++) {
    p.data[4 * i] = p.data[4 * i + 1] = p.data[4 * i + 2] = 255 - digit[i];
    p.data[4 * i + 3] = 255;
  }
  return new Uint8Array(pngjs.PNG.sync.write(p, { colorType, bitDepth, inputHasAlpha: true }));
}

const ascii = (s: string): Uint8Array => new TextEncoder().encode(s);
const concat = (...parts: Uint8Array[]): Uint8Array => Uint8Array.from(parts.flatMap((p) => Array.from(p)));
const P5 = concat(ascii("P5\n# fuzz\n28 28\n255\n"), digit);
const P5_16 = concat(ascii("P5 28 28 65535\n"), Uint8Array.from(Array.from(digit).flatMap((v) => [v, v])));
const P2 = ascii(`P2\n28 28\n255\n${Array.from(digit).join(" ")}\n`);

/** One mutation of a file. */
type Mutation =
  | { kind: "flip"; at: number; bit: number }
  | { kind: "truncate"; at: number }
  | { kind: "insert"; at: number; bytes: number[] }
  | { kind: "u32"; field: number; value: number }
  | { kind: "pgmHeader"; width: string; height: string; maxval: string };

const position = fc.double({ min: 0, max: 1, maxExcluded: true, noNaN: true });
const hugeOrSmall = fc.oneof(
  fc.integer({ min: 0, max: 64 }),
  fc.integer({ min: 0, max: 0xffffffff }),
  fc.constantFrom(0, 1, 4096, 4097, 65535, 100000, 0x7fffffff, 0xffffffff),
);
const numberText = fc.oneof(
  hugeOrSmall.map(String),
  fc.constantFrom("", "-1", "1e9", "99999999999999999999", "0x10", "28 # c\n"),
);

const mutation: fc.Arbitrary<Mutation> = fc.oneof(
  fc.record({ kind: fc.constant("flip" as const), at: position, bit: fc.integer({ min: 0, max: 7 }) }),
  fc.record({ kind: fc.constant("truncate" as const), at: position }),
  fc.record({
    kind: fc.constant("insert" as const),
    at: position,
    bytes: fc.array(fc.integer({ min: 0, max: 255 }), { minLength: 1, maxLength: 16 }),
  }),
  fc.record({ kind: fc.constant("u32" as const), field: fc.integer({ min: 0, max: 3 }), value: hugeOrSmall }),
  fc.record({ kind: fc.constant("pgmHeader" as const), width: numberText, height: numberText, maxval: numberText }),
);

/** Apply mutations; "u32" rewrites a PNG IHDR field (width, height, depth+type, interlace byte) and fixes its CRC. */
function mutate(seed: Uint8Array, ms: Mutation[]): Uint8Array {
  let b: Uint8Array = Uint8Array.from(seed);
  for (const m of ms) {
    const at = (f: number) => Math.floor(f * b.length);
    switch (m.kind) {
      case "flip":
        if (b.length > 0) b[at(m.at)] ^= 1 << m.bit;
        break;
      case "truncate":
        b = b.slice(0, at(m.at));
        break;
      case "insert": {
        const i = at(m.at);
        b = concat(b.subarray(0, i), Uint8Array.from(m.bytes), b.subarray(i));
        break;
      }
      case "u32": {
        if (b.length < 33 || b[12] !== 0x49) break; // PNGs only (IHDR at offset 12)
        const v = new DataView(b.buffer, b.byteOffset, b.byteLength);
        if (m.field < 2) v.setUint32(16 + 4 * m.field, m.value);
        else if (m.field === 2) v.setUint16(24, m.value & 0xffff);
        else b[28] = m.value & 0xff;
        v.setUint32(29, crc32(b.subarray(12, 29)));
        break;
      }
      case "pgmHeader": {
        if (b[0] !== 0x50) break; // PGMs only: rewrite "Px W H M" keeping the pixels that follow
        const text = new TextDecoder("latin1").decode(b.subarray(0, 40));
        const header = /^P[25]\s+(#[^\n]*\n)?\d+\s+\d+\s+\d+\s/.exec(text);
        if (!header) break;
        b = concat(ascii(`${text.slice(0, 2)}\n${m.width} ${m.height}\n${m.maxval}\n`), b.subarray(header[0].length));
        break;
      }
    }
  }
  return b;
}

let counter = 0;
const baseRss = process.memoryUsage().rss;

/** The property: a prediction or an ImageError naming the file, in bounded time and memory. */
function check(bytes: Uint8Array, ext: string): void {
  const file = `fuzz-${++counter}.${ext}`;
  const t0 = performance.now();
  try {
    const img = decodeImage(bytes, file);
    const r = classifyPicture(model, img, MNIST_STANDARDIZE, file, 10, "model");
    const sum = r.top.reduce((a, t) => a + t.probability, 0);
    assert.ok(Math.abs(sum - 1) < 1e-9 && r.top.length === 10, `${file}: probabilities sum to ${sum}`);
  } catch (e) {
    if (!(e instanceof ImageError)) throw new Error(`${file}: ${String(e)} is not an ImageError`, { cause: e });
    assert.ok(e.message.startsWith(`${file}: `), `the error does not start with the file's name: ${e.message}`);
    assert.ok(!e.message.includes("\n"), `a multi-line message: ${JSON.stringify(e.message)}`);
  }
  const ms = performance.now() - t0;
  assert.ok(ms < MAX_MS_PER_INPUT, `${file}: ${ms.toFixed(0)} ms`);
  const growth = process.memoryUsage().rss - baseRss;
  assert.ok(growth < MAX_RSS_GROWTH, `${file}: RSS grew by ${(growth / 2 ** 20).toFixed(0)} MiB`);
}

function fuzz(name: string, seeds: Uint8Array[], ext: string): void {
  // The unmutated files are valid and classified.
  for (const s of seeds) check(s, ext);
  fc.assert(
    fc.property(fc.nat({ max: seeds.length - 1 }), fc.array(mutation, { minLength: 1, maxLength: 4 }), (which, ms) => {
      check(mutate(seeds[which], ms), ext);
    }),
    { seed: SEED, numRuns: 1_000_000, interruptAfterTimeLimit: TIME_PER_FORMAT_MS, markInterruptAsFailure: false },
  );
  process.stderr.write(`# ${name}: ${counter} inputs so far (seed ${SEED})\n`);
}

test(
  "fuzzed PNG files end in a prediction or an ImageError naming the file",
  { timeout: TIME_PER_FORMAT_MS + 60_000 },
  () => {
    fuzz("PNG", [png(0, 8), png(4, 8), png(2, 8), png(6, 8), png(0, 16), png(6, 16)], "png");
  },
);

test(
  "fuzzed PGM files (P5, P2) end in a prediction or an ImageError naming the file",
  { timeout: TIME_PER_FORMAT_MS + 60_000 },
  () => {
    fuzz("PGM", [P5, P5_16, P2], "pgm");
  },
);
