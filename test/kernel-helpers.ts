// Helpers shared by the kernel tests: random float32 arrays, the thread-count bit-identity check, and the
// per-step allocation budget measured in a fresh process.

import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";

import { NDArray } from "../src/nd/ndarray.ts";
import { RandomState } from "../src/nd/random.ts";
import type { Sequential } from "../src/nn/sequential.ts";
import { SoftmaxCrossEntropy } from "../src/nn/losses.ts";
import { Adam } from "../src/nn/optim.ts";
import { after } from "node:test";
import {
  getBackend,
  setBackend,
  setThreads,
  threadsUnavailable,
  wasmAvailable,
  type BackendName,
} from "../src/kernels/backend.ts";
import { KernelPool, threadSupport } from "../src/kernels/threads.ts";
import { poolEveryCall } from "../src/kernels/wasm.ts";
import type { AllocationReport } from "./alloc-profile.ts";

/** Skip reasons for the wasm kernel tests (false: run): the kernels, and threads on top of them. */
export const noWasm: string | false = wasmAvailable() ? false : "the WebAssembly kernels are unavailable";
export const noThreads: string | false =
  noWasm || (threadSupport() === null ? false : `threads unavailable: ${threadSupport() ?? ""}`);

/**
 * After the file's tests: the backend and thread count as they were, calls no longer forced through the pool.
 * Returns the backend the file started with.
 */
export function restoreKernelsAfter(): BackendName {
  const initialBackend = getBackend();
  after(async () => {
    poolEveryCall(false);
    setBackend(initialBackend);
    await setThreads(1);
  });
  return initialBackend;
}

/** fn's result with the backend set to `name` while it runs, the previous one restored after (also on a throw). */
export function onBackend<T>(name: BackendName, fn: () => T): T {
  const was = getBackend();
  setBackend(name);
  try {
    return fn();
  } finally {
    setBackend(was);
  }
}

/** A float32 array of this shape, shift + scale·N(0, 1) per element. */
export function rand(rng: RandomState, shape: readonly number[], scale = 1, shift = 0): NDArray {
  const a = new NDArray(new Float32Array(shape.reduce((p, d) => p * d, 1)), [...shape]);
  for (let i = 0; i < a.size; i++) a.data[i] = shift + scale * rng.standardNormal();
  return a;
}

/** compute() on 1, 2 and 3 threads (every call through the pool): each result bit-identical to 1 thread's. */
export async function sameBitsOnEveryCount(what: string, compute: () => Float32Array[]): Promise<void> {
  poolEveryCall(true);
  let reference: Uint32Array[] = [];
  for (const n of [1, 2, 3]) {
    assert.equal(await setThreads(n), n, `${n} threads started (${threadsUnavailable() ?? ""})`);
    const got = compute().map((a) => new Uint32Array(a.slice().buffer));
    if (n === 1) reference = got;
    got.forEach((g, i) => {
      const at = g.findIndex((v, t) => v !== reference[i][t]);
      assert.equal(at, -1, `${what}: output ${i} on ${n} threads differs from 1 thread's at element ${at}`);
    });
  }
  poolEveryCall(false);
}

/**
 * Two epochs of a small model (input 1×12×12, 4 classes, 24 random images, batch 8, Adam 0.01) on the wasm
 * backend: its weights bit-identical on 1, 2 and 3 threads.
 */
export async function trainsToSameBitsOnEveryCount(what: string, build: () => Sequential): Promise<void> {
  setBackend("wasm");
  await sameBitsOnEveryCount(what, () => {
    const rng = new RandomState(3);
    const x = rand(rng, [24, 1, 12, 12]);
    const labels = Int32Array.from({ length: 24 }, () => rng.randint(0, 4));
    const model = build();
    model.compile({ loss: new SoftmaxCrossEntropy(), optimizer: new Adam({ lr: 0.01 }) });
    model.fit(x, labels, { epochs: 2, batchSize: 8, seed: 1 });
    return model.params().map((p) => p.value.data as Float32Array);
  });
}

/**
 * Run an allocation-profile script (printing an AllocationReport as JSON) in a fresh process, so that
 * another test's JIT state cannot leak in, and assert that handprop's own frames allocate ≤ budget bytes
 * per step (the frames calling into wasm are left out: see AllocationSite.engine).
 */
export function assertAllocationBudget(script: string, args: string[], budget: number): void {
  const out = execFileSync(process.execPath, ["--import", "tsx", script, ...args], {
    encoding: "utf8",
    timeout: 120_000,
  });
  const r = JSON.parse(out) as AllocationReport;
  const ours = r.oursBytesPerStep - r.engineBytesPerStep;
  const top = r.sites.filter((s) => s.ours && !s.engine).slice(0, 8);
  const list = top.map((s) => `${s.bytesPerStep.toFixed(0)} B/step ${s.site}`).join("\n  ");
  assert.ok(ours <= budget, `${ours.toFixed(0)} B/step allocated in handprop code:\n  ${list}`);
}

/**
 * A KernelPool of `threads` threads running only reluForwardPart (args: n, x, y) over a fresh shared memory
 * of one 64 KiB page, started; close it when done.
 */
export async function reluPool(threads: number): Promise<{ pool: KernelPool; memory: WebAssembly.Memory }> {
  const { wasmSharedBase64 } = (await import("../src/kernels/wasm/kernels.generated.ts")) as {
    wasmSharedBase64: string;
  };
  const module = new WebAssembly.Module(Uint8Array.from(atob(wasmSharedBase64), (ch) => ch.charCodeAt(0)));
  const memory = new WebAssembly.Memory({ initial: 1, maximum: 16, shared: true });
  const exports = new WebAssembly.Instance(module, { env: { memory } }).exports as Record<string, unknown>;
  const pool = new KernelPool({ module, memory, exports, names: ["reluForwardPart"] }, threads);
  assert.equal(await pool.started, threads);
  return { pool, memory };
}
