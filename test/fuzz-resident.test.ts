// Resident activations (src/kernels/wasm-memory.ts) must never change a bit: random small models
// (Sequential and graph Models of conv — ordinary, grouped, depthwise —, ReLU, max pooling, BatchNorm, Dense,
// Add, Concatenate, Flatten, Dropout) trained for a few steps on random batch sizes end with the same
// parameters with resident arrays on and off, on 1 thread and on 2 (every call through the pool), and with
// inference passes of other batch sizes between the steps. Runs for HANDPROP_FUZZ_SECONDS (default 2, see
// fuzz-mutate.ts; `npm run fuzz` runs it for a minute).

import fc from "fast-check";
import assert from "node:assert/strict";
import { describe, test } from "node:test";

import { setBackend, setThreads } from "../src/kernels/backend.ts";
import { poolEveryCall } from "../src/kernels/wasm.ts";
import { allowResidentArrays } from "../src/kernels/wasm-memory.ts";
import { RandomState } from "../src/nd/random.ts";
import { ReLU } from "../src/nn/activations.ts";
import { BatchNorm2D } from "../src/nn/batchnorm.ts";
import { Conv2D } from "../src/nn/conv.ts";
import { Dense } from "../src/nn/dense.ts";
import { Dropout } from "../src/nn/dropout.ts";
import { Flatten } from "../src/nn/flatten.ts";
import { Input, Model } from "../src/nn/graph.ts";
import type { Layer } from "../src/nn/layer.ts";
import { SoftmaxCrossEntropy } from "../src/nn/losses.ts";
import { Add, Concatenate } from "../src/nn/merge.ts";
import { SGD } from "../src/nn/optim.ts";
import { MaxPool2D } from "../src/nn/pool.ts";
import { Sequential } from "../src/nn/sequential.ts";
import { FUZZ_MS, FUZZ_SEED } from "./fuzz-mutate.ts";
import { noThreads, rand, restoreKernelsAfter } from "./kernel-helpers.ts";

const noShared = noThreads || (typeof SharedArrayBuffer === "function" ? false : "no SharedArrayBuffer");

/** A block of the model: what it does to the running tensor (C channels of H×H); `out`: channels it makes. */
interface Block {
  kind: "conv" | "relu" | "bn" | "pool" | "dropout" | "residual" | "concat";
  out: number;
  groups: "one" | "two" | "depthwise"; // a conv's
  k: 1 | 3; // a conv's kernel size
}

const blockArb: fc.Arbitrary<Block> = fc.record({
  kind: fc.constantFrom("conv", "conv", "relu", "bn", "pool", "dropout", "residual", "concat"),
  out: fc.constantFrom(2, 4),
  groups: fc.constantFrom("one", "two", "depthwise"),
  k: fc.constantFrom(1, 3),
});

interface Case {
  graph: boolean; // a graph Model (residual and concat blocks branch), else a Sequential (they become convs)
  blocks: Block[];
  hidden: boolean; // a ReLU and a second Dense after the first
  sizes: number[]; // the training batches' sizes (≥ 2: BatchNorm needs 2 values per channel)
  inference: number[]; // after step i, an inference pass of inference[i] images (0: none)
}

const caseArb: fc.Arbitrary<Case> = fc.record({
  graph: fc.boolean(),
  blocks: fc.array(blockArb, { minLength: 1, maxLength: 6 }),
  hidden: fc.boolean(),
  sizes: fc.array(fc.integer({ min: 2, max: 6 }), { minLength: 2, maxLength: 4 }),
  inference: fc.array(fc.constantFrom(0, 0, 1, 7), { minLength: 4, maxLength: 4 }),
});

const C0 = 2;
const H0 = 8;

/** The model of case c (weights from its seed), input (C0, H0, H0), 3 classes. */
function build(c: Case): Sequential {
  let C = C0;
  let H = H0;
  const conv = (out: number, k: 1 | 3, groups = 1): Conv2D =>
    new Conv2D({ outChannels: out, kernelSize: k, padding: "same", groups });
  // one block's layers, applied to t (graph) or appended to layers (Sequential)
  const layers: Layer[] = [];
  const input = Input([C0, H0, H0]);
  let t: ReturnType<typeof Input> = input;
  const push = (l: Layer): void => {
    if (c.graph) t = l.apply(t);
    else layers.push(l);
  };
  for (const b of c.blocks) {
    if (b.kind === "conv") {
      const groups = b.groups === "depthwise" ? C : b.groups === "two" && C % 2 === 0 && b.out % 2 === 0 ? 2 : 1;
      const out = b.groups === "depthwise" ? C * (b.out / 2) : b.out;
      push(conv(out, b.k, groups));
      C = out;
    } else if (b.kind === "relu") push(new ReLU());
    else if (b.kind === "bn") push(new BatchNorm2D({}));
    else if (b.kind === "dropout") push(new Dropout({ rate: 0.25 }));
    else if (b.kind === "pool") {
      if (H < 2) continue;
      push(new MaxPool2D({ kernelSize: 2 }));
      H = H >> 1;
    } else if (!c.graph) {
      push(conv(b.out, 3));
      C = b.out;
    } else if (b.kind === "residual") {
      // t + conv(relu(t)): t is read twice (fan-out), and Add reads a resident conv output
      t = new Add().apply([t, conv(C, 3).apply(new ReLU().apply(t))]);
    } else {
      t = new Concatenate().apply([t, conv(b.out, 1).apply(t)]);
      C += b.out;
    }
  }
  push(new Flatten());
  push(new Dense({ outFeatures: c.hidden ? 5 : 3 }));
  if (c.hidden) {
    push(new ReLU());
    push(new Dense({ outFeatures: 3 }));
  }
  if (c.graph) return new Model({ inputs: input, outputs: t, seed: 7 });
  return new Sequential(layers, { inputShape: [C0, H0, H0], seed: 7 });
}

/** Case c's parameters after its training steps, as bits. */
function train(c: Case): Uint32Array[] {
  const model = build(c);
  const rng = new RandomState(11);
  const loss = new SoftmaxCrossEntropy();
  const opt = new SGD({ lr: 0.05, momentum: 0.9 });
  c.sizes.forEach((n, i) => {
    const y = Int32Array.from({ length: n }, () => rng.randint(0, 3));
    model.trainBatch(rand(rng, [n, C0, H0, H0]), y, loss, opt);
    if (c.inference[i] > 0) model.forward(rand(rng, [c.inference[i], C0, H0, H0]), { training: false });
  });
  return model.params().map((p) => new Uint32Array((p.value.data as Float32Array).slice().buffer));
}

function trainWith(c: Case, resident: boolean): Uint32Array[] {
  allowResidentArrays(resident);
  try {
    return train(c);
  } finally {
    allowResidentArrays(true);
  }
}

describe("resident activations (fuzzed)", { skip: noShared }, () => {
  restoreKernelsAfter();

  test("random models train to the same bits with and without residency, on 1 and 2 threads", async (t) => {
    setBackend("wasm");
    let runs = 0;
    await fc.assert(
      fc.asyncProperty(caseArb, async (c) => {
        runs++;
        await setThreads(1);
        poolEveryCall(false);
        const reference = trainWith(c, false);
        const results: [string, Uint32Array[]][] = [["resident, 1 thread", trainWith(c, true)]];
        await setThreads(2);
        poolEveryCall(true);
        results.push(["resident, 2 threads", trainWith(c, true)], ["copied, 2 threads", trainWith(c, false)]);
        poolEveryCall(false);
        for (const [what, params] of results) {
          params.forEach((p, i) => {
            const at = p.findIndex((v, k) => v !== reference[i][k]);
            assert.equal(at, -1, `${what}: parameter ${i} differs at element ${at}`);
          });
        }
      }),
      { numRuns: 1_000_000, interruptAfterTimeLimit: FUZZ_MS, markInterruptAsFailure: false, seed: FUZZ_SEED },
    );
    t.diagnostic(`${runs} models`);
    assert.ok(runs > 0);
  });
});
