// The optimizer updates on the WebAssembly kernels (src/kernels/wasm/optim.as) are bit-identical to the JS
// reference (src/kernels/js.ts adamUpdate / sgdUpdate, the loops src/nn/optim.ts always ran): over several
// steps, on lengths with and without a vector tail, every option, on 1, 2 and 3 threads (every call through
// the pool); and an optimizer on the wasm backend trains LeNet-5 to the same bits as on the JS loops.

import { after, test } from "node:test";
import assert from "node:assert/strict";
import { RandomState } from "../src/nd/random.ts";
import { adamUpdate as jsAdamUpdate, jsBackend, sgdUpdate as jsSgdUpdate } from "../src/kernels/js.ts";
import { wasmBackend } from "../src/kernels/wasm-backend.ts";
import { getBackend, setBackend, setThreads, wasmAvailable } from "../src/kernels/backend.ts";
import { threadSupport } from "../src/kernels/threads.ts";
import { poolEveryCall } from "../src/kernels/wasm.ts";
import type { Kernels } from "../src/kernels/kernels.ts";
import { NDArray } from "../src/nd/ndarray.ts";
import { buildModel } from "../src/nn/models.ts";
import { Adam, SGD, type Optimizer } from "../src/nn/optim.ts";
import { SoftmaxCrossEntropy } from "../src/nn/losses.ts";
import { trainStep } from "../src/nn/trainer.ts";
import { serializeModel } from "../src/io/model-format.ts";

const skip = wasmAvailable() ? false : "no wasm kernels";
const threadCounts = threadSupport() === null ? [1, 2, 3] : [1];
const initialBackend = getBackend();
after(async () => {
  poolEveryCall(false);
  setBackend(initialBackend);
  await setThreads(1);
});

function rand(rng: RandomState, n: number, scale: number): Float32Array {
  return Float32Array.from({ length: n }, () => scale * rng.standardNormal());
}

function sameBits(a: Float32Array, b: Float32Array, what: string): void {
  const x = new Uint32Array(a.buffer, a.byteOffset, a.length);
  const y = new Uint32Array(b.buffer, b.byteOffset, b.length);
  const i = x.findIndex((v, k) => v !== y[k]);
  assert.equal(i, -1, `${what}: element ${i} differs: ${a[i]} vs ${b[i]}`);
}

interface State {
  w: Float32Array;
  m: Float32Array;
  v: Float32Array;
}

const LENGTHS = [1, 2, 3, 17, 64, 1001, 48000];

type Run = (k: Kernels, s: State, g: Float32Array, t: number) => void;

const cases: [string, Run][] = [
  [
    "Adam",
    (k, s, g, t) => {
      k.adamUpdate(
        s.w,
        g,
        s.m,
        s.v,
        Float64Array.of(0.9, 0.999, 2e-3 / (1 - 0.9 ** t), Math.sqrt(1 - 0.999 ** t), 1e-8, 0),
      );
    },
  ],
  [
    "Adam l2",
    (k, s, g, t) => {
      k.adamUpdate(
        s.w,
        g,
        s.m,
        s.v,
        Float64Array.of(0.8, 0.99, 0.01 / (1 - 0.8 ** t), Math.sqrt(1 - 0.99 ** t), 1e-6, 1e-2),
      );
    },
  ],
  [
    "SGD",
    (k, s, g) => {
      k.sgdUpdate(s.w, g, null, Float64Array.of(0.01, 0, 0, 1, 0, 1));
    },
  ],
  [
    "SGD wd",
    (k, s, g) => {
      k.sgdUpdate(s.w, g, null, Float64Array.of(0.01, 1e-3, 0, 1, 0, 1));
    },
  ],
  [
    "SGD momentum",
    (k, s, g, t) => {
      k.sgdUpdate(s.w, g, s.m, Float64Array.of(0.01, 0, 0.9, 1, 0, +(t === 1)));
    },
  ],
  [
    "SGD momentum wd dampening",
    (k, s, g, t) => {
      k.sgdUpdate(s.w, g, s.m, Float64Array.of(0.05, 1e-4, 0.9, 0.7, 0, +(t === 1)));
    },
  ],
  [
    "SGD nesterov wd",
    (k, s, g, t) => {
      k.sgdUpdate(s.w, g, s.m, Float64Array.of(0.01, 5e-4, 0.95, 1, 1, +(t === 1)));
    },
  ],
];

for (const threads of threadCounts) {
  test(`optimizer updates: wasm = JS bit for bit on ${threads} thread(s)`, { skip }, async () => {
    await setThreads(threads);
    poolEveryCall(threads > 1);
    for (const [name, run] of cases) {
      for (const n of LENGTHS) {
        const rng = new RandomState(n);
        const w0 = rand(rng, n, 0.5);
        const ref: State = { w: w0.slice(), m: new Float32Array(n), v: new Float32Array(n) };
        const got: State = { w: w0.slice(), m: new Float32Array(n), v: new Float32Array(n) };
        for (let t = 1; t <= 4; t++) {
          const g = rand(rng, n, t === 3 ? 1e-3 : 1);
          run(jsBackend, ref, g, t);
          run(wasmBackend, got, g, t);
          for (const key of ["w", "m", "v"] as const)
            sameBits(got[key], ref[key], `${name}, n = ${n}, step ${t}, ${key}`);
        }
      }
    }
    poolEveryCall(false);
  });
}

test("LeNet-5 trained with the optimizer on the wasm kernels = on the JS loops, bit for bit", { skip }, () => {
  setBackend("wasm");
  const train = (optimizerOnWasm: boolean, makeOptimizer: () => Optimizer): Uint8Array => {
    const saved = { ...wasmBackend };
    if (!optimizerOnWasm) Object.assign(wasmBackend, { adamUpdate: jsAdamUpdate, sgdUpdate: jsSgdUpdate });
    try {
      const model = buildModel("lenet5", { seed: 3 });
      const rng = new RandomState(4);
      const x = new NDArray(rand(rng, 16 * 784, 1), [16, 1, 28, 28]);
      const y = Int32Array.from({ length: 16 }, (_, i) => (i * 7) % 10);
      const loss = new SoftmaxCrossEntropy();
      const optimizer = makeOptimizer();
      for (let i = 0; i < 6; i++) trainStep(model, x, y, loss, optimizer);
      return serializeModel(model).weights;
    } finally {
      Object.assign(wasmBackend, saved);
    }
  };
  for (const make of [() => new Adam({ lr: 2e-3 }), () => new SGD({ lr: 0.01, momentum: 0.9, weightDecay: 1e-4 })]) {
    const a = train(true, make);
    const b = train(false, make);
    assert.ok(Buffer.from(a).equals(Buffer.from(b)), `${make().type}: weights differ`);
  }
});
