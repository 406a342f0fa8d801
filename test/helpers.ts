// Shared test helpers: fixture loading, array comparison with a printed max difference, a test file's temporary folder.
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after } from "node:test";
import assert from "node:assert/strict";
import { NDArray } from "../src/nd/ndarray.ts";
import { RandomState } from "../src/nd/random.ts";
import type { Sequential } from "../src/nn/sequential.ts";

export interface FixtureArray {
  shape: number[];
  data: number[];
}

// eslint-disable-next-line @typescript-eslint/no-unnecessary-type-parameters -- the caller names the fixture's type
export function loadFixture<T>(name: string): T {
  return JSON.parse(readFileSync(new URL(`./fixtures/${name}`, import.meta.url), "utf8")) as T;
}

export function fromFixture(f: FixtureArray): NDArray {
  return new NDArray(Float64Array.from(f.data), f.shape);
}

/** Max |a − b| / max(|b|, tiny) over all elements. */
export function maxRelDiff(a: ArrayLike<number>, b: ArrayLike<number>): number {
  let m = 0;
  for (let i = 0; i < a.length; i++) {
    const d = Math.abs(a[i] - b[i]) / Math.max(Math.abs(b[i]), 1e-300);
    if (d > m || Number.isNaN(d)) m = Number.isNaN(d) ? Infinity : d;
  }
  return m;
}

export function assertClose(
  actual: NDArray,
  expected: FixtureArray | NDArray,
  rtol = 1e-12,
  atol = 1e-14,
  what = "",
): void {
  const eshape = expected.shape;
  const edata = expected instanceof NDArray ? expected.data : expected.data;
  assert.deepEqual(actual.shape, eshape, `${what} shape`);
  for (let i = 0; i < edata.length; i++) {
    const a = actual.data[i];
    const e = edata[i];
    if (!(Math.abs(a - e) <= atol + rtol * Math.abs(e))) {
      assert.fail(`${what} element ${i}: got ${a}, expected ${e} (rtol ${rtol}, atol ${atol})`);
    }
  }
}

/** Random biases and batch-norm parameters/statistics (weights come from the model's seed), from a seed. */
export function randomizeParams(model: Sequential, seed: number): Sequential {
  const rng = new RandomState(seed);
  for (const p of model.params()) {
    if (p.name.endsWith(".weight")) continue;
    const positive = p.name.endsWith(".runningVar") || p.name.endsWith(".gamma");
    const d = p.value.data;
    for (let i = 0; i < d.length; i++) d[i] = positive ? rng.uniform(0.5, 1.5) : rng.uniform(-0.3, 0.3);
  }
  return model;
}

/** A float32 array of standard normals of the given shape, from a seed. */
export function randomInput(shape: number[], seed: number): NDArray {
  const rng = new RandomState(seed);
  const n = shape.reduce((a, b) => a * b, 1);
  return new NDArray(
    Float32Array.from({ length: n }, () => rng.standardNormal()),
    shape,
  );
}

/** A fresh folder under the system's temporary one (named from `prefix`), removed when the calling test file is done. */
export function tempDirForFile(prefix: string): string {
  const dir = mkdtempSync(join(tmpdir(), prefix));
  after(() => {
    rmSync(dir, { recursive: true, force: true });
  });
  return dir;
}
