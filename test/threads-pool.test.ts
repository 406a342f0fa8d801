// Tests for the kernel pool's protocol (src/kernels/thread-worker.ts publishCall/claimParts) on one thread,
// with other threads' turns simulated: a part's function may itself run another thread's claim loop, which
// is what that thread would do while this one runs the part. Every part of a call runs exactly once, with
// its call's function, T and scratch, whatever the thread count (beyond MAX_CHUNKS too) and however the
// turns interleave; a thread that read the call long ago (its tag come round again after 2^19 calls) or
// that sees the next call's PARTS before the chunk words were closed runs nothing of another call.
// Then thousands of small calls on a real pool, resting pools of another size, and the bound on setThreads.

import { after, describe, test } from "node:test";
import assert from "node:assert/strict";
import fc from "fast-check";

import { CONTROL, claimParts, publishCall } from "../src/kernels/thread-worker.ts";
import { getThreads, setBackend, getBackend, setThreads, wasmAvailable } from "../src/kernels/backend.ts";
import { wasmWorkerParts } from "../src/kernels/wasm.ts";
import { threadSupport } from "../src/kernels/threads.ts";
import { reluPool } from "./kernel-helpers.ts";
import { RandomState } from "../src/nd/random.ts";
import { gemm } from "../src/kernels/gemm.ts";

const { NEXT, CHUNK_STRIDE, MAX_CHUNKS, THREADS, FINISHED, TAG_MASK } = CONTROL;

/** A control block for a pool of `threads` threads, as KernelPool makes it. */
function controlBlock(threads: number): Int32Array {
  const ctl = new Int32Array(new SharedArrayBuffer(4 * (NEXT + CHUNK_STRIDE * MAX_CHUNKS)));
  ctl[THREADS] = threads;
  return ctl;
}

interface Run {
  fn: number;
  t: number;
  T: number;
  ws: number;
}

/** Part functions that record what they ran; `during(run)` runs inside each part (other threads' turns). */
function recorders(count: number, runs: Run[], during: (r: Run) => void = () => undefined) {
  return Array.from({ length: count }, (_, fn) => (t: number, T: number, ws: number) => {
    const r = { fn, t, T, ws };
    runs.push(r);
    during(r);
  });
}

const args = new Float64Array(CONTROL.MAX_ARGS);
const fail = (e: unknown): void => {
  throw e;
};

describe("claimParts and publishCall", () => {
  test("every part runs once, with its call's T and its thread's scratch, for any threads and turns", () => {
    fc.assert(
      fc.property(
        fc.integer({ min: 2, max: 300 }),
        fc.integer({ min: 1, max: 700 }),
        fc.array(fc.integer({ min: 0, max: 299 }), { maxLength: 40 }),
        (threads, parts, turns) => {
          const ctl = controlBlock(threads);
          const runs: Run[] = [];
          const tag = 5;
          let turn = 0;
          // while a part runs, the next scheduled worker (if any) takes its turn: runs its whole claim loop
          const fns = recorders(1, runs, () => {
            if (turn < turns.length) {
              const index = 1 + (turns[turn++] % (threads - 1));
              claimParts(ctl, CONTROL, tag, fns, args, index, fail);
            }
          });
          publishCall(ctl, CONTROL, tag, 0, parts, 1000, 10);
          claimParts(ctl, CONTROL, tag, fns, args, 0, fail);
          assert.equal(Atomics.load(ctl, FINISHED), parts);
          const ts = runs.map((r) => r.t).sort((x, y) => x - y);
          assert.deepEqual(
            ts,
            Array.from({ length: parts }, (_, t) => t),
            "each part exactly once",
          );
          for (const r of runs) {
            assert.equal(r.T, parts);
            assert.equal((r.ws - 1000) % 10, 0);
            assert.ok(r.ws >= 1000 && r.ws < 1000 + 10 * threads);
          }
        },
      ),
      { numRuns: 300, seed: 11 },
    );
  });

  test("thread i takes its own chunk first, in order", () => {
    const ctl = controlBlock(4);
    const runs: Run[] = [];
    const fns = recorders(1, runs);
    publishCall(ctl, CONTROL, 1, 0, 10, 0, 100);
    claimParts(ctl, CONTROL, 1, fns, args, 2, fail);
    // chunks of 10 parts on 4 threads: [0, 2) [2, 5) [5, 7) [7, 10); thread 2 starts at 5
    assert.deepEqual(
      runs.map((r) => r.t),
      [5, 6, 7, 8, 9, 0, 1, 2, 3, 4],
    );
  });

  test("when the workers took every part, the calling thread runs none and reports FINISHED as 0", () => {
    const ctl = controlBlock(3);
    const runs: Run[] = [];
    const fns = recorders(1, runs);
    publishCall(ctl, CONTROL, 2, 0, 5, 0, 0);
    assert.equal(claimParts(ctl, CONTROL, 2, fns, args, 1, fail), 5, "the worker that ran the last part sees all");
    assert.equal(claimParts(ctl, CONTROL, 2, fns, args, 0, fail), 0);
    assert.equal(runs.length, 5);
    assert.equal(Atomics.load(ctl, CONTROL.WORKER_PARTS), 5);
  });

  test("a thread that sees the next call's PARTS before the chunk words are closed claims nothing", () => {
    const ctl = controlBlock(2);
    const runs: Run[] = [];
    const fns = recorders(2, runs);
    publishCall(ctl, CONTROL, 7, 0, 4, 0, 0);
    claimParts(ctl, CONTROL, 7, fns, args, 0, fail);
    runs.length = 0;
    // the next call's fields, visible to a worker still on call 7 before the words' closing stores are (a
    // reordering CPU, or the JS memory model, allows that view)
    ctl[CONTROL.PARTS] = 8;
    ctl[CONTROL.FN] = 1;
    assert.equal(claimParts(ctl, CONTROL, 7, fns, args, 1, fail), 0);
    assert.deepEqual(runs, []);
  });

  test("a thread whose tag came round again (2^19 calls later) runs that call's parts as that call's", () => {
    const ctl = controlBlock(2);
    const runs: Run[] = [];
    const g = 3;
    let stale = true;
    // the stale thread (index 1) read call g; call g + 2^19 (same tag) has another function and T
    const fns = recorders(2, runs, () => {
      if (stale) {
        stale = false;
        claimParts(ctl, CONTROL, g & TAG_MASK, fns, args, 1, fail);
      }
    });
    publishCall(ctl, CONTROL, (g + TAG_MASK + 1) & TAG_MASK, 1, 6, 0, 50);
    claimParts(ctl, CONTROL, g & TAG_MASK, fns, args, 0, fail);
    assert.deepEqual(
      runs.map((r) => [r.fn, r.t, r.T]).sort((x, y) => x[1] - y[1]),
      Array.from({ length: 6 }, (_, t) => [1, t, 6]),
    );
    assert.deepEqual(
      runs.filter((r) => r.ws === 50).map((r) => r.t),
      [3, 4, 5, 1, 2],
      "the stale thread ran its chunk, then what was left of the other, with its own scratch",
    );
  });
});

const canThread = wasmAvailable() && threadSupport() === null;
const skip = canThread ? false : "threads unavailable here";

describe("a real pool", { skip }, () => {
  test("thousands of small calls of varying parts (fewer than the threads too) each write all their output", async () => {
    const { pool, memory } = await reluPool(3);
    try {
      const X = 0,
        Y = 20000,
        N = 4096;
      const x = new Float32Array(memory.buffer, X, N),
        y = new Float32Array(memory.buffer, Y, N + 1);
      const rng = new RandomState(9);
      for (let call = 0; call < 3000; call++) {
        const n = 1 + Math.floor(rng.random() * N);
        const parts = 1 + Math.floor(rng.random() * 12);
        for (let j = 0; j < n; j++) x[j] = ((call + j) % 5) - 2;
        y.fill(-7);
        pool.args.set([n, X, Y]);
        pool.run(0, parts, 0, 0);
        for (let j = 0; j < n; j++) {
          if (y[j] !== Math.max(0, x[j]))
            assert.fail(`call ${call} (${n} elements, ${parts} parts): y[${j}] = ${y[j]}`);
        }
        assert.equal(y[n], -7, `call ${call}: wrote past its output`);
      }
      assert.ok(pool.workerParts() > 0, "no part ran on a worker");
    } finally {
      await pool.close();
    }
  });
});

describe("setThreads bounds", () => {
  test("rejects more threads than it can use, naming the bound", () => {
    assert.throws(() => setThreads(100_000), /^RangeError: setThreads: at most 1024 threads, got 100000/);
    assert.throws(() => setThreads(1025), /at most 1024 threads, got 1025/);
  });
});

describe("resting pools", { skip }, () => {
  const initialBackend = getBackend();
  after(async () => {
    setBackend(initialBackend);
    await setThreads(1);
  });

  test("a pool set aside for another count comes back for its own", async () => {
    setBackend("wasm");
    assert.equal(await setThreads(2), 2);
    const A = new Float32Array(200 * 300).fill(0.5),
      C = new Float32Array(200 * 200);
    for (let i = 0; i < 200 && wasmWorkerParts() === 0; i++)
      gemm(false, false, 200, 200, 300, 1, A, 0, 300, A, 0, 200, 0, C, 0, 200);
    const parts = wasmWorkerParts();
    assert.ok(parts > 0, "no part ran on a worker");
    assert.equal(await setThreads(3), 3);
    const back = setThreads(2);
    assert.equal(getThreads(), 2, "the 2-thread pool is back at once");
    assert.equal(wasmWorkerParts(), parts);
    assert.equal(await back, 2);
    // asking again for the count running keeps the pool running
    const again = setThreads(2);
    assert.equal(getThreads(), 2);
    assert.equal(wasmWorkerParts(), parts);
    assert.equal(await again, 2);
  });
});
