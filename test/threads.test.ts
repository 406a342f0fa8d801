// Tests for the kernel threads (src/kernels/threads.ts, wasm.ts, wasm/parallel.as): every thread count
// gives the same bits as one thread — GEMM (odd shapes, every transpose, α/β, leading dimensions),
// Conv2D forward/backward (padding, stride, dilation, 1×1, with and without bias and dx), Dense,
// MaxPool2D (overlapping windows), ReLU, and a few training steps of a small CNN; the workers really
// run parts; setThreads validates its argument; the fallbacks say why; workers never keep Node alive
// and setThreads(1) stops them (checked in child processes).
//
// poolEveryCall(true) sends every call through the pool however small, so these small shapes exercise
// the same paths as large ones.

import { after, before, describe, test } from "node:test";
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";

import { NDArray } from "../src/nd/ndarray.ts";
import { RandomState } from "../src/nd/random.ts";
import { gemm } from "../src/kernels/gemm.ts";
import {
  getBackend,
  getThreads,
  setBackend,
  setThreads,
  threadsUnavailable,
  wasmAvailable,
} from "../src/kernels/backend.ts";
import { WasmConv2D, WasmDense, WasmMaxPool2D, WasmReLU, poolEveryCall, wasmWorkerParts } from "../src/kernels/wasm.ts";
import { threadSupport } from "../src/kernels/threads.ts";
import { reluPool } from "./kernel-helpers.ts";
import { convGeometry } from "../src/kernels/im2col.ts";
import { Conv2D } from "../src/nn/conv.ts";
import { Dense } from "../src/nn/dense.ts";
import { MaxPool2D } from "../src/nn/pool.ts";
import { ReLU } from "../src/nn/activations.ts";
import { Flatten } from "../src/nn/flatten.ts";
import { Sequential } from "../src/nn/sequential.ts";
import { SoftmaxCrossEntropy } from "../src/nn/losses.ts";
import { SGD } from "../src/nn/optim.ts";

const canThread = wasmAvailable() && threadSupport() === null;
const skip = canThread
  ? false
  : `threads unavailable here: ${wasmAvailable() ? (threadSupport() ?? "") : "no wasm kernels"}`;
const COUNTS = [1, 2, 3];
const initialBackend = getBackend();

before(() => {
  poolEveryCall(true);
});
after(async () => {
  poolEveryCall(false);
  setBackend(initialBackend);
  await setThreads(1);
});

function rand(rng: RandomState, n: number): Float32Array {
  const a = new Float32Array(n);
  for (let i = 0; i < n; i++) a[i] = 2 * rng.random() - 1;
  return a;
}

/** The float32 arrays' bits, for exact comparison (−0 ≠ +0, NaN payloads count). */
function bits(arrays: Float32Array[]): Uint32Array[] {
  return arrays.map((a) => new Uint32Array(a.buffer.slice(a.byteOffset, a.byteOffset + a.byteLength)));
}

/** Run `compute` on 1, 2 and 3 threads; every result must equal the 1-thread one bit for bit. */
async function sameOnEveryCount(what: string, compute: () => Float32Array[]): Promise<void> {
  let reference: Uint32Array[] | null = null;
  for (const n of COUNTS) {
    assert.equal(await setThreads(n), n, `${what}: ${n} threads started (${threadsUnavailable() ?? ""})`);
    const got = bits(compute());
    if (reference === null) reference = got;
    else {
      for (let i = 0; i < got.length; i++) {
        const j = got[i].findIndex((v, k) => v !== reference![i][k]);
        assert.equal(j, -1, `${what}: output ${i} differs from 1 thread's with ${n} threads at element ${j}`);
      }
    }
  }
}

describe("bit-identical on 1, 2 and 3 threads", { skip }, () => {
  test("GEMM: odd shapes, transposes, α/β, offsets and leading dimensions", async () => {
    setBackend("wasm");
    const shapes: [number, number, number][] = [
      [1, 1, 1],
      [7, 13, 5],
      [37, 29, 53],
      [5, 300, 17],
      [129, 7, 600],
      [64, 120, 400],
      [3, 64, 2],
    ];
    await sameOnEveryCount("gemm", () => {
      const rng = new RandomState(11);
      const out: Float32Array[] = [];
      for (const [M, N, K] of shapes) {
        for (const [tA, tB] of [
          [false, false],
          [true, false],
          [false, true],
          [true, true],
        ] as const) {
          for (const [alpha, beta] of [
            [1, 0],
            [-0.75, 1],
            [1.5, 0.5],
          ]) {
            const lda = (tA ? M : K) + 3,
              ldb = (tB ? K : N) + 1,
              ldc = N + 2;
            const A = rand(rng, 2 + (tA ? K : M) * lda),
              B = rand(rng, 1 + (tB ? N : K) * ldb),
              C = rand(rng, 3 + M * ldc);
            gemm(tA, tB, M, N, K, alpha, A, 2, lda, B, 1, ldb, beta, C, 3, ldc);
            out.push(C);
          }
        }
      }
      return out;
    });
  });

  test("Conv2D forward and backward: padding, stride, dilation, 1×1, bias or none, dx or none", async () => {
    const cases = [
      { N: 5, C: 3, H: 9, W: 11, O: 4, k: [3, 3], s: [1, 1], p: [1, 1, 1, 1], d: [1, 1], bias: true, dx: true },
      { N: 3, C: 2, H: 10, W: 7, O: 5, k: [3, 2], s: [2, 3], p: [0, 2, 1, 0], d: [1, 1], bias: false, dx: true },
      { N: 4, C: 6, H: 8, W: 8, O: 7, k: [3, 3], s: [1, 1], p: [2, 2, 2, 2], d: [2, 2], bias: true, dx: false },
      { N: 7, C: 5, H: 6, W: 5, O: 9, k: [1, 1], s: [1, 1], p: [0, 0, 0, 0], d: [1, 1], bias: true, dx: true },
      { N: 2, C: 1, H: 28, W: 28, O: 6, k: [5, 5], s: [1, 1], p: [2, 2, 2, 2], d: [1, 1], bias: true, dx: false },
    ] as const;
    await sameOnEveryCount("conv", () => {
      const rng = new RandomState(12);
      const out: Float32Array[] = [];
      for (const c of cases) {
        const g = convGeometry(
          c.N,
          c.C,
          c.H,
          c.W,
          [c.k[0], c.k[1]],
          [c.s[0], c.s[1]],
          [c.p[0], c.p[1], c.p[2], c.p[3]],
          [c.d[0], c.d[1]],
        );
        const x = rand(rng, c.N * c.C * c.H * c.W),
          w = rand(rng, c.O * c.C * c.k[0] * c.k[1]),
          b = c.bias ? rand(rng, c.O) : null;
        const y = new Float32Array(c.N * c.O * g.OH * g.OW);
        const dy = rand(rng, y.length),
          dW = rand(rng, w.length),
          db = c.bias ? rand(rng, c.O) : null;
        const dx = c.dx ? new Float32Array(x.length) : null;
        const conv = new WasmConv2D();
        conv.forward(g, c.O, x, w, b, y);
        conv.backward(g, c.O, conv.grads.of(x, w, dy, dW, db, dx));
        out.push(y, dW, ...(db ? [db] : []), ...(dx ? [dx] : []));
      }
      return out;
    });
  });

  test("Dense (dx or none), MaxPool2D (overlapping windows) and ReLU, forward and backward", async () => {
    await sameOnEveryCount("dense/pool/relu", () => {
      const rng = new RandomState(13);
      const out: Float32Array[] = [];
      for (const [N, F, O] of [
        [7, 33, 5],
        [64, 400, 120],
        [1, 9, 17],
      ]) {
        const x = rand(rng, N * F),
          w = rand(rng, F * O),
          b = rand(rng, O),
          y = new Float32Array(N * O);
        const dy = rand(rng, N * O),
          dW = rand(rng, F * O),
          db = rand(rng, O),
          dx = new Float32Array(N * F);
        const dense = new WasmDense();
        dense.forward(N, F, O, x, w, b, y);
        dense.backward(N, F, O, dense.grads.of(x, w, dy, dW, db, dx));
        out.push(y, dW, db, dx);
        const dWOnly = rand(rng, F * O); // a first layer's backward: needDx = false, no dx
        dense.backward(N, F, O, dense.grads.of(x, w, dy, dWOnly, null, null));
        out.push(dWOnly);
      }
      for (const [NC, H, W, k, s, p] of [
        [10, 9, 9, 3, 2, 1],
        [13, 8, 12, 2, 2, 0],
        [4, 7, 5, 3, 1, 0],
      ]) {
        const OH = Math.floor((H + 2 * p - k) / s) + 1,
          OW = Math.floor((W + 2 * p - k) / s) + 1;
        const x = rand(rng, NC * H * W),
          y = new Float32Array(NC * OH * OW),
          arg = new Int32Array(y.length);
        const dy = rand(rng, y.length),
          dx = new Float32Array(x.length);
        const pool = new WasmMaxPool2D();
        pool.forward(NC, H, W, k, k, s, s, p, p, OH, OW, x, y, arg);
        pool.backward(dy, arg, dx);
        out.push(y, new Float32Array(arg.buffer), dx);
      }
      const x = rand(rng, 1001),
        y = new Float32Array(1001),
        dy = rand(rng, 1001),
        dx = new Float32Array(1001);
      const relu = new WasmReLU();
      relu.forward(x, y);
      relu.backward(y, dy, dx);
      out.push(y, dx);
      return out;
    });
  });

  test("training a small CNN for a few steps gives byte-identical weights", async () => {
    setBackend("wasm");
    await sameOnEveryCount("training", () => {
      const rng = new RandomState(14);
      const x = new NDArray(rand(rng, 40 * 144), [40, 1, 12, 12]);
      const y = Int32Array.from({ length: 40 }, () => rng.randint(0, 4));
      const model = new Sequential(
        [
          new Conv2D({ inChannels: 1, outChannels: 6, kernelSize: 5, padding: "same" }),
          new ReLU(),
          new MaxPool2D({ kernelSize: 2 }),
          new Conv2D({ inChannels: 6, outChannels: 8, kernelSize: 3 }),
          new ReLU(),
          new Flatten(),
          new Dense({ inFeatures: 8 * 4 * 4, outFeatures: 16 }),
          new ReLU(),
          new Dense({ inFeatures: 16, outFeatures: 4 }),
        ],
        { inputShape: [1, 12, 12], seed: 5 },
      );
      model.compile({ loss: new SoftmaxCrossEntropy(), optimizer: new SGD({ lr: 0.05, momentum: 0.9 }) });
      const history = model.fit(x, y, { epochs: 2, batchSize: 10, seed: 3 });
      return [
        Float32Array.from(history.epochs.map((e) => e.loss)),
        ...model.params().map((p) => p.value.data as Float32Array),
      ];
    });
  });

  test("the workers really run parts, and getThreads reports them", async () => {
    setBackend("wasm");
    assert.equal(await setThreads(3), 3);
    assert.equal(getThreads(), 3);
    assert.equal(threadsUnavailable(), null);
    const rng = new RandomState(15);
    const A = rand(rng, 200 * 300),
      B = rand(rng, 300 * 100),
      C = new Float32Array(200 * 100);
    const before = wasmWorkerParts(); // a pool of 3 that rested since an earlier test counts on
    for (let i = 0; i < 200 && wasmWorkerParts() === before; i++)
      gemm(false, false, 200, 100, 300, 1, A, 0, 300, B, 0, 100, 0, C, 0, 100);
    assert.ok(wasmWorkerParts() > before, "no part ran on a worker");
  });

  test("a pool set aside by setThreads(1) comes back as it was for the same count, at once", async () => {
    setBackend("wasm");
    assert.equal(await setThreads(2), 2);
    const rng = new RandomState(16);
    const A = rand(rng, 200 * 300),
      C = new Float32Array(200 * 200);
    for (let i = 0; i < 200 && wasmWorkerParts() === 0; i++)
      gemm(false, false, 200, 200, 300, 1, A, 0, 300, A, 0, 200, 0, C, 0, 200);
    const parts = wasmWorkerParts();
    assert.ok(parts > 0, "no part ran on a worker");
    await setThreads(1);
    assert.equal(getThreads(), 1);
    assert.equal(wasmWorkerParts(), 0);
    const back = setThreads(2);
    // the same workers, already started: no wait, and their count of parts goes on
    assert.equal(getThreads(), 2);
    assert.equal(wasmWorkerParts(), parts);
    assert.equal(await back, 2);
    // another size ends the resting pool and starts a new one
    await setThreads(1);
    assert.equal(await setThreads(3), 3);
    assert.equal(wasmWorkerParts(), 0);
  });

  test("a kernel that traps is reported as an error, and the pool keeps working", async () => {
    await setThreads(1);
    const { pool } = await reluPool(2);
    try {
      pool.args.set([1 << 20, 0, 1 << 24]); // n, x, y: y is far outside the 64 KiB memory
      assert.throws(() => {
        pool.run(0, 8, 0, 0);
      }, /out of bounds/);
      pool.args.set([64, 0, 1024]);
      pool.run(0, 8, 0, 0);
    } finally {
      await pool.close();
    }
  });
});

describe("setThreads", () => {
  test("rejects anything but an integer ≥ 1, naming the value", () => {
    for (const bad of [0, -1, 1.5, NaN, Infinity, "2", null]) {
      assert.throws(
        () => setThreads(bad as number),
        /^RangeError: setThreads: the number of threads must be an integer ≥ 1, got /,
        String(bad),
      );
    }
    assert.throws(() => setThreads(0), /got 0$/);
    assert.throws(() => setThreads("2" as unknown as number), /got "2"$/);
  });

  test("is 1 until asked", () => {
    const r = node(
      `import("./src/kernels/backend.ts").then((b) => console.log(b.getThreads(), b.threadsUnavailable()))`,
    );
    assert.equal(r.status, 0, r.stderr);
    assert.equal(r.stdout.trim(), "1 null");
  });
});

/** Run a snippet in a child Node process (with tsx), with a deadline: a hang is a failure, not a stuck suite. */
function node(code: string, env: Record<string, string> = {}) {
  return spawnSync(process.execPath, ["--import", "tsx", "-e", code], {
    env: { ...process.env, ...env },
    encoding: "utf8",
    timeout: 20000,
  });
}

describe("workers and the process", { skip }, () => {
  const work = `const g = await import("./src/kernels/gemm.ts");
    const A = new Float32Array(300 * 300).fill(1), C = new Float32Array(300 * 300);
    for (let i = 0; i < 20; i++) g.gemm(false, false, 300, 300, 300, 1, A, 0, 300, A, 0, 300, 0, C, 0, 300);`;

  test("setThreads(1) sets the workers aside, and the process still exits", () => {
    const t0 = Date.now();
    const r = node(`(async () => { const b = await import("./src/kernels/backend.ts");
      console.log(await b.setThreads(3)); ${work} console.log(await b.setThreads(1), b.getThreads()); })()`);
    assert.equal(r.status, 0, `${r.error?.message ?? ""} ${r.stderr}`);
    assert.deepEqual(r.stdout.trim().split("\n"), ["3", "1 1"]);
    assert.ok(Date.now() - t0 < 15000);
  });

  test("running workers do not keep Node alive", () => {
    const r = node(
      `(async () => { const b = await import("./src/kernels/backend.ts"); await b.setThreads(2); ${work} console.log(b.getThreads()); })()`,
    );
    assert.equal(r.status, 0, `${r.error?.message ?? "exited"} ${r.stderr}`);
    assert.equal(r.stdout.trim(), "2");
  });

  test("a pool whose worker failed to start while it rested is not taken back: a new one starts", () => {
    // the first worker started fails (a stand-in for a transient failure: memory, a sandbox); later ones start
    const r = node(`const wt = process.getBuiltinModule("node:worker_threads");
      const failing = 'const { parentPort } = require("node:worker_threads"); parentPort.once("message", () => { parentPort.postMessage({ ready: false, error: "boom" }); parentPort.close(); });';
      let fail = true;
      class W extends wt.Worker { constructor(src, o) { const f = fail; fail = false; super(f ? failing : src, o); } }
      const builtin = process.getBuiltinModule;
      process.getBuiltinModule = (id) => (id === "node:worker_threads" ? { ...wt, Worker: W } : builtin.call(process, id));
      (async () => { const b = await import("./src/kernels/backend.ts");
      const first = b.setThreads(2); await b.setThreads(1); console.log(await first);
      console.log(await b.setThreads(2), b.threadsUnavailable()); })()`);
    assert.equal(r.status, 0, `${r.error?.message ?? ""} ${r.stderr}`);
    assert.deepEqual(r.stdout.trim().split("\n"), ["1", "2 null"]);
  });

  test("HANDPROP_THREADS sets the initial count; a bad value is an error naming it", () => {
    const ok = node(
      `(async () => { const b = await import("./src/kernels/backend.ts"); await new Promise((r) => setTimeout(r, 500)); ${work} console.log(b.getThreads()); })()`,
      { HANDPROP_THREADS: "2" },
    );
    assert.equal(ok.status, 0, ok.stderr);
    assert.equal(ok.stdout.trim(), "2");
    const bad = node(`import("./src/kernels/backend.ts")`, { HANDPROP_THREADS: "many" });
    assert.notEqual(bad.status, 0);
    assert.match(bad.stderr, /HANDPROP_THREADS: the number of threads must be an integer ≥ 1, got "many"/);
  });

  test("without SharedArrayBuffer, or where Atomics.wait may not block, one thread and the reason", () => {
    const noSab =
      node(`delete globalThis.SharedArrayBuffer; (async () => { const b = await import("./src/kernels/backend.ts");
      console.log(await b.setThreads(4), b.getThreads()); console.log(b.threadsUnavailable()); })()`);
    assert.equal(noSab.status, 0, noSab.stderr);
    const [counts, reason] = noSab.stdout.trim().split("\n");
    assert.equal(counts, "1 1");
    assert.match(reason, /^SharedArrayBuffer is unavailable \(a browser page needs cross-origin isolation/);
    const noWait = node(`Atomics.wait = () => { throw new TypeError("Atomics.wait cannot be called in this context"); };
      (async () => { const b = await import("./src/kernels/backend.ts"); console.log(await b.setThreads(2)); console.log(b.threadsUnavailable()); })()`);
    assert.equal(noWait.status, 0, noWait.stderr);
    assert.match(noWait.stdout, /^1\nthis thread may not block in Atomics\.wait \(a browser's main thread\)/);
  });

  test("with HANDPROP_BACKEND=js, threads change nothing and still start and stop", () => {
    const r = node(
      `(async () => { const b = await import("./src/kernels/backend.ts"); console.log(b.getBackend(), await b.setThreads(2), await b.setThreads(1)); })()`,
      { HANDPROP_BACKEND: "js" },
    );
    assert.equal(r.status, 0, r.stderr);
    assert.equal(r.stdout.trim(), "js 2 1");
  });
});
