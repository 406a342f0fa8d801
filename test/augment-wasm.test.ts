// Augmentation on the WebAssembly kernels (wasm/augment.as through kernels/wasm-augment.ts): bit-identical
// to the TypeScript reference (same float64 operations in the same order, one rounding to float32) for
// affine and elastic transforms of any shape, the generator left in the same state, float64 batches kept on
// the reference, and the same bits on 1 and 2 kernel threads with parts run by a worker.
import { test } from "node:test";
import assert from "node:assert/strict";
import fc from "fast-check";
import { NDArray } from "../src/nd/ndarray.ts";
import { RandomState } from "../src/nd/random.ts";
import { Augmenter, augmentBatch, type AugmentOptions } from "../src/data/augment.ts";
import { getBackend, setBackend, setThreads, wasmAvailable } from "../src/kernels/backend.ts";
import { onBackend } from "./kernel-helpers.ts";
import { poolEveryCall, wasmWorkerParts } from "../src/kernels/wasm.ts";
import { threadSupport } from "../src/kernels/threads.ts";
import { augmentImagesPerCall, setAugmentArenaLimit } from "../src/kernels/wasm-augment.ts";

const wasmSkip = wasmAvailable() ? false : "the WebAssembly kernels are unavailable";
const threadsSkip = wasmAvailable() && threadSupport() === null ? false : "threads unavailable here";

function images(shape: number[], seed: number, dtype: "float32" | "float64" = "float32"): NDArray {
  const rng = new RandomState(seed);
  const values = Array.from({ length: shape.reduce((a, b) => a * b, 1) }, () => 3 * rng.random() - 0.5);
  return new NDArray(dtype === "float32" ? Float32Array.from(values) : Float64Array.from(values), shape);
}

/** augmentBatch on the given backend, from a fresh generator: the output and the generator's next draw. */
function on(backend: "js" | "wasm", x: NDArray, options: AugmentOptions, seed = 11): [NDArray, number] {
  return onBackend(backend, () => {
    const rng = new RandomState(seed);
    const out = augmentBatch(x, rng, options);
    return [out, rng.nextDouble()];
  });
}

function assertSameBits(a: NDArray, b: NDArray, what: string): void {
  assert.equal(a.dtype, b.dtype, what);
  const i = a.data.findIndex((v, j) => !Object.is(v, b.data[j]));
  assert.equal(i, -1, `${what}: element ${i} differs: ${a.data[i]} vs ${b.data[i]}`);
}

const MNIST_LIKE = { shift: 2, rotation: 10, scale: 0.1, shear: 10, fill: -0.4242 };
const CASES: [string, number[], AugmentOptions][] = [
  ["affine, MNIST-sized", [16, 1, 28, 28], MNIST_LIKE],
  [
    "affine + elastic (α 34, σ 4: taps wider than the image)",
    [16, 1, 28, 28],
    { ...MNIST_LIKE, elastic: { alpha: 34, sigma: 4 } },
  ],
  [
    "elastic only, narrow taps, 3 channels, not square",
    [3, 3, 17, 9],
    { elastic: { alpha: 3, sigma: 0.6 }, fill: 1.5 },
  ],
  [
    "far outside: big shifts, rotations and zooms",
    [4, 2, 12, 20],
    { shift: 30, rotation: 170, scale: [0.1, 6], shear: 60, fill: 2 },
  ],
  ["one pixel", [2, 1, 1, 1], { shift: 1, rotation: 45, elastic: { alpha: 2, sigma: 1 } }],
  ["no transform", [2, 1, 5, 6], {}],
];

for (const [name, shape, options] of CASES) {
  test(`wasm == the TypeScript reference, bit for bit: ${name}`, { skip: wasmSkip }, () => {
    const x = images(shape, shape.length + shape[3]);
    const [js, jsNext] = on("js", x, options);
    const [wasm, wasmNext] = on("wasm", x, options);
    assertSameBits(wasm, js, name);
    assert.equal(wasmNext, jsNext, "the generator is left in the same state");
  });
}

test("property: wasm == reference for random options and shapes", { skip: wasmSkip }, () => {
  fc.assert(
    fc.property(
      fc.record({
        N: fc.integer({ min: 1, max: 3 }),
        C: fc.integer({ min: 1, max: 3 }),
        H: fc.integer({ min: 1, max: 24 }),
        W: fc.integer({ min: 1, max: 24 }),
        shift: fc.double({ min: 0, max: 6, noNaN: true }),
        rotation: fc.double({ min: 0, max: 179, noNaN: true }),
        scale: fc.double({ min: 0, max: 0.9, noNaN: true }),
        shear: fc.double({ min: 0, max: 80, noNaN: true }),
        fill: fc.double({ min: -3, max: 3, noNaN: true }),
        alpha: fc.double({ min: 0, max: 40, noNaN: true }),
        sigma: fc.double({ min: 0.1, max: 8, noNaN: true }),
        elastic: fc.boolean(),
        seed: fc.nat(10000),
      }),
      (o) => {
        const x = images([o.N, o.C, o.H, o.W], o.seed);
        const options = { ...o, elastic: o.elastic ? { alpha: o.alpha, sigma: o.sigma } : null };
        const [js, jsNext] = on("js", x, options, o.seed);
        const [wasm, wasmNext] = on("wasm", x, options, o.seed);
        assertSameBits(wasm, js, JSON.stringify(o));
        return wasmNext === jsNext;
      },
    ),
    { numRuns: 60, seed: 14 },
  );
});

test("a batch too large for one call is augmented in several, with the same bits", { skip: wasmSkip }, () => {
  const x = images([11, 2, 9, 7], 8);
  const options = { ...MNIST_LIKE, elastic: { alpha: 5, sigma: 1.5 } };
  const [js, jsNext] = on("js", x, options);
  setAugmentArenaLimit(3 * (2 * 2 * 63 * 4 + 48 + 63 * 16)); // three images a call
  try {
    assert.equal(augmentImagesPerCall(2, 9, 7, true), 3);
    const [wasm, wasmNext] = on("wasm", x, options);
    assertSameBits(wasm, js, "in calls of three images");
    assert.equal(wasmNext, jsNext);
    setAugmentArenaLimit(1);
    assert.equal(augmentImagesPerCall(2, 9, 7, true), 1, "at least one image a call");
    assertSameBits(on("wasm", x, options)[0], js, "one image a call");
  } finally {
    setAugmentArenaLimit(null);
  }
  assert.equal(augmentImagesPerCall(1, 28, 28, true), Math.floor((32 << 20) / (2 * 784 * 4 + 48 + 784 * 16)));
});

test("the generator's cached normal survives the draws made in wasm", { skip: wasmSkip }, () => {
  const x = images([2, 1, 8, 8], 3);
  const next = (backend: "js" | "wasm") => {
    return onBackend(backend, () => {
      const rng = new RandomState(7);
      rng.standardNormal(); // caches the second deviate of the pair
      augmentBatch(x, rng, { rotation: 20, elastic: { alpha: 2, sigma: 1 } });
      return [rng.standardNormal(), rng.standardNormal()];
    });
  };
  assert.deepEqual(next("wasm"), next("js"));
});

test(
  "a generator that draws its own way (a subclass, a stand-in) is drawn through its methods",
  { skip: wasmSkip },
  () => {
    class Halved extends RandomState {
      override nextDouble(): number {
        return super.nextDouble() / 2;
      }
    }
    const x = images([3, 1, 12, 12], 1);
    const options = { ...MNIST_LIKE, elastic: { alpha: 6, sigma: 2 } };
    const run = (backend: "js" | "wasm") => onBackend(backend, () => augmentBatch(x, new Halved(4), options));
    assertSameBits(run("wasm"), run("js"), "subclass");
    assert.notDeepEqual(run("wasm").data, on("wasm", x, options, 4)[0].data, "its own nextDouble was used");
  },
);

test("float64 batches run on the reference whatever the backend", { skip: wasmSkip }, () => {
  const options = { ...MNIST_LIKE, elastic: { alpha: 8, sigma: 2 } };
  const x = images([3, 1, 10, 10], 2, "float64");
  const [js] = on("js", x, options);
  const [wasm] = on("wasm", x, options);
  assert.equal(wasm.dtype, "float64");
  assertSameBits(wasm, js, "float64");
});

test("an Augmenter gives the same batches on both backends, call after call", { skip: wasmSkip }, () => {
  const x = images([8, 1, 28, 28], 4);
  const opts = { ...MNIST_LIKE, elastic: { alpha: 34, sigma: 4 }, seed: 3 };
  const run = (backend: "js" | "wasm") => {
    return onBackend(backend, () => {
      const a = new Augmenter(opts);
      return [0, 1, 2].map(() => a.apply(x).data.slice());
    });
  };
  assert.deepEqual(run("wasm"), run("js"));
});

test("the same bits on 1 and 2 kernel threads, parts run by a worker", { skip: threadsSkip }, async () => {
  const before = getBackend();
  setBackend("wasm");
  poolEveryCall(true);
  try {
    const x = images([12, 2, 28, 28], 6);
    const options = { ...MNIST_LIKE, elastic: { alpha: 34, sigma: 4 } };
    await setThreads(1);
    const one = augmentBatch(x, new RandomState(5), options);
    const affineOne = augmentBatch(x, new RandomState(5), MNIST_LIKE);
    await setThreads(2);
    const parts = wasmWorkerParts();
    for (let i = 0; i < 100 && (i < 3 || wasmWorkerParts() === parts); i++) {
      assertSameBits(augmentBatch(x, new RandomState(5), options), one, `elastic, call ${i}`);
      assertSameBits(augmentBatch(x, new RandomState(5), MNIST_LIKE), affineOne, `affine, call ${i}`);
    }
    assert.ok(wasmWorkerParts() > parts, "no part ran on a worker");
  } finally {
    poolEveryCall(false);
    await setThreads(1);
    setBackend(before);
  }
});
