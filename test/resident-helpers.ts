// Helpers shared by the residency tests (resident.test.ts, resident-params.test.ts): the skip reason, a batch
// of random digit-shaped images, running a computation with resident arrays turned off, the GC check, and fit's
// same-bits check.

import assert from "node:assert/strict";
import { setFlagsFromString } from "node:v8";
import { runInNewContext } from "node:vm";

import { allowResidentArrays, residentLiveBytes } from "../src/kernels/wasm-memory.ts";
import { setBackend } from "../src/kernels/backend.ts";
import type { NDArray } from "../src/nd/ndarray.ts";
import type { RandomState } from "../src/nd/random.ts";
import { SoftmaxCrossEntropy } from "../src/nn/losses.ts";
import { buildModel } from "../src/nn/models.ts";
import { SGD } from "../src/nn/optim.ts";
import type { Sequential } from "../src/nn/sequential.ts";
import type { Callbacks } from "../src/nn/trainer.ts";
import { noWasm, rand } from "./kernel-helpers.ts";

/** Skip reason for the residency tests (false: run): the wasm kernels and a SharedArrayBuffer to hold them. */
export const noShared = noWasm || (typeof SharedArrayBuffer === "function" ? false : "no SharedArrayBuffer");

/** n random (1, 28, 28) images and labels cycling through the ten classes. */
export function digits(rng: RandomState, n: number): { x: NDArray; y: Int32Array } {
  return { x: rand(rng, [n, 1, 28, 28]), y: Int32Array.from({ length: n }, (_, i) => (i * 3) % 10) };
}

/** f() with resident arrays turned off (every kernel call copies its operands, as before residency). */
export function withoutResidency<T>(f: () => T): T {
  allowResidentArrays(false);
  try {
    return f();
  } finally {
    allowResidentArrays(true);
  }
}

export async function withoutResidencyAsync<T>(f: () => Promise<T>): Promise<T> {
  allowResidentArrays(false);
  try {
    return await f();
  } finally {
    allowResidentArrays(true);
  }
}

/**
 * Run drop() (which makes arrays that hold resident blocks and drops them), then collect garbage until the
 * blocks in use are back where they were: the FinalizationRegistry returned every block.
 */
export async function assertBlocksBackAfterGc(drop: () => void): Promise<void> {
  setFlagsFromString("--expose-gc");
  const gc = runInNewContext("gc") as () => void;
  const start = residentLiveBytes(); // in use: earlier tests may have left free space below the top
  drop();
  assert.ok(residentLiveBytes() > start, "drop() made resident arrays");
  for (let i = 0; i < 20 && residentLiveBytes() > start; i++) {
    gc();
    await new Promise((r) => setTimeout(r, 10));
  }
  assert.ok(residentLiveBytes() <= start, `${residentLiveBytes()} bytes still held, ${start} before`);
}

/** What a fit run of assertFitSameBits watches: its callbacks, and the arrays it returns after the fit. */
export interface FitProbe {
  callbacks: Callbacks;
  after: () => Float32Array[];
}

/**
 * LeNet-5 (seed `seed`) fitted for `epochs` epochs of batch 6 with SGD (lr, momentum 0.9) on `data`, with
 * validation on `val`, by fit and by fitAsync: the weights and probe's arrays are those of a fit without
 * resident arrays, bit for bit. probe(model) gives each run its callbacks.
 */
export async function assertFitSameBits(
  opts: { seed: number; lr: number; epochs: number },
  data: { x: NDArray; y: Int32Array },
  val: { x: NDArray; y: Int32Array },
  probe: (model: Sequential) => FitProbe,
): Promise<void> {
  setBackend("wasm");
  const fitted = async (asynchronously: boolean): Promise<Float32Array[]> => {
    const model = buildModel("lenet5", { seed: opts.seed });
    model.compile({ loss: new SoftmaxCrossEntropy(), optimizer: new SGD({ lr: opts.lr, momentum: 0.9 }) });
    const { callbacks, after } = probe(model);
    const fit = { epochs: opts.epochs, batchSize: 6, seed: 3, validationData: [val.x, val.y] as [NDArray, Int32Array] };
    if (asynchronously) await model.fitAsync(data.x, data.y, { ...fit, callbacks, yieldEveryMs: 0 });
    else model.fit(data.x, data.y, { ...fit, callbacks });
    return [...model.params().map((p) => p.value.data.slice() as Float32Array), ...after()];
  };
  const plain = await withoutResidencyAsync(() => fitted(false));
  for (const asynchronously of [false, true]) {
    (await fitted(asynchronously)).forEach((w, i) => {
      assert.deepEqual(w, plain[i], `${asynchronously ? "fitAsync" : "fit"}: array ${i}`);
    });
  }
}
