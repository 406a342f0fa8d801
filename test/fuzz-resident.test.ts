// Resident activations (src/kernels/wasm-memory.ts) must never change a bit: random small models
// (Sequential and graph Models of conv — ordinary, grouped, depthwise, separable, transposed —, ReLU, Tanh,
// LeakyReLU, max and average pooling, BatchNorm, GroupNorm, LayerNorm, Dense, Add, Multiply, Concatenate,
// Flatten, Dropout, Permute, Reshape, UpSampling2D, ZeroPadding2D, a nested Sequential) trained for a few
// steps on random batch sizes end with the same parameters with resident arrays on and off, starting on
// 1 thread or 2 (every call split), with events around the steps: inference passes of other batch sizes,
// layers called on their own (after a step, or between its forward and backward), a step on the JS
// backend, a switch of thread count; with the blocks' limit low, so that some outputs are resident and
// others not; and float64 models (JS kernels inside the passes too). Runs for HANDPROP_FUZZ_SECONDS
// (default 2, see fuzz-mutate.ts; `npm run fuzz` runs it for a minute).

import fc from "fast-check";
import assert from "node:assert/strict";
import { describe, test } from "node:test";

import { setBackend, setThreads } from "../src/kernels/backend.ts";
import { poolEveryCall } from "../src/kernels/wasm.ts";
import { allowResidentArrays, residentBytes, setResidentLimit } from "../src/kernels/wasm-memory.ts";
import type { NDArray } from "../src/nd/ndarray.ts";
import { RandomState } from "../src/nd/random.ts";
import { LeakyReLU, ReLU, Sigmoid, Tanh } from "../src/nn/activations.ts";
import { BatchNorm2D } from "../src/nn/batchnorm.ts";
import { Conv2D } from "../src/nn/conv.ts";
import { Dense } from "../src/nn/dense.ts";
import { Dropout } from "../src/nn/dropout.ts";
import { Flatten } from "../src/nn/flatten.ts";
import { Input, Model } from "../src/nn/graph.ts";
import type { Layer } from "../src/nn/layer.ts";
import { SoftmaxCrossEntropy } from "../src/nn/losses.ts";
import { SeparableConv2D } from "../src/nn/depthwise.ts";
import { Add, Concatenate, Multiply } from "../src/nn/merge.ts";
import { GroupNorm, LayerNorm } from "../src/nn/norm.ts";
import { Conv2DTranspose } from "../src/nn/transpose.ts";
import { SGD } from "../src/nn/optim.ts";
import { AvgPool2D, MaxPool2D } from "../src/nn/pool.ts";
import { Permute, Reshape } from "../src/nn/reshape.ts";
import { Sequential } from "../src/nn/sequential.ts";
import { UpSampling2D, ZeroPadding2D } from "../src/nn/upsample.ts";
import { FUZZ_MS, FUZZ_SEED } from "./fuzz-mutate.ts";
import { noThreads, noWasm, rand, restoreKernelsAfter } from "./kernel-helpers.ts";

const noShared = noWasm || (typeof SharedArrayBuffer === "function" ? false : "no SharedArrayBuffer");
/** Thread counts the runs start on and switch between: 1 and 2, or only 1 where threads cannot run. */
const counts = noThreads ? [1] : [1, 2];

/** A block of the model: what it does to the running tensor (C channels of H×H); `out`: channels it makes. */
interface Block {
  kind:
    | "conv"
    | "relu"
    | "bn"
    | "pool"
    | "dropout"
    | "residual"
    | "concat"
    | "nested"
    | "reshape"
    | "resize"
    | "norm"
    | "separable"
    | "act"
    | "gate";
  out: number;
  groups: "one" | "two" | "depthwise"; // a conv's
  k: 1 | 3; // a conv's kernel size
}

const blockArb: fc.Arbitrary<Block> = fc.record({
  kind: fc.constantFrom(
    "conv",
    "conv",
    "relu",
    "bn",
    "pool",
    "dropout",
    "residual",
    "concat",
    "nested",
    "reshape",
    "resize",
    "norm",
    "separable",
    "act",
    "gate",
  ),
  out: fc.constantFrom(2, 4),
  groups: fc.constantFrom("one", "two", "depthwise"),
  k: fc.constantFrom(1, 3),
});

/** What happens around a training step besides it. */
type Event =
  | "none"
  | "infer" // after the step, an inference pass of another batch size
  | "probe" // after the step, every layer called on its own (the page's feature maps: web/src/mnist/model.ts)
  | "probe-mid" // the first `cut` layers called on their own on the step's batch, before its backward
  | "js" // the step on the JS backend
  | "threads"; // from this step on, the other thread count

interface Case {
  graph: boolean; // a graph Model (residual and concat blocks branch), else a Sequential (they become convs)
  blocks: Block[];
  hidden: boolean; // a ReLU and a second Dense after the first
  sizes: number[]; // the training batches' sizes (≥ 2: BatchNorm needs 2 values per channel)
  events: Event[]; // events[i]: around step i
  cut: number;
  room: number | null; // resident runs: the blocks' limit this far above their span (null: the default)
  float64: boolean; // a float64 model
}

const caseArb: fc.Arbitrary<Case> = fc.record({
  graph: fc.boolean(),
  blocks: fc.array(blockArb, { minLength: 1, maxLength: 6 }),
  hidden: fc.boolean(),
  sizes: fc.array(fc.integer({ min: 2, max: 6 }), { minLength: 2, maxLength: 4 }),
  events: fc.array(fc.constantFrom<Event>("none", "none", "infer", "probe", "probe-mid", "js", "threads"), {
    minLength: 4,
    maxLength: 4,
  }),
  cut: fc.integer({ min: 1, max: 8 }),
  room: fc.constantFrom(null, null, 0, 4096, 65536),
  float64: fc.constantFrom(false, false, false, true),
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
    else if (b.kind === "norm")
      push(b.k === 1 ? new GroupNorm({ groups: C % 2 === 0 ? 2 : 1 }) : new LayerNorm({ axes: 3 }));
    else if (b.kind === "act") push(b.k === 1 ? new Tanh() : new LeakyReLU());
    else if (b.kind === "separable") {
      // SeparableConv2D (depthwise then pointwise, one layer), or Conv2DTranspose (JS, over gemm)
      push(
        b.k === 1
          ? new SeparableConv2D({ outChannels: b.out, kernelSize: 3, padding: "same" })
          : new Conv2DTranspose({ outChannels: b.out, kernelSize: 3, padding: 1 }),
      );
      C = b.out;
    } else if (b.kind === "gate") {
      // t · σ(conv(t)) (Multiply reads both inputs in its backward), or average pooling
      if (c.graph) t = new Multiply().apply([t, new Sigmoid().apply(conv(C, 1).apply(t))]);
      else if (H >= 2) {
        push(new AvgPool2D({ kernelSize: 2 }));
        H = H >> 1;
      }
    } else if (b.kind === "nested") {
      // a Sequential as one layer: its layers' outputs stay resident, and so does what it returns
      push(new Sequential([conv(b.out, b.k), new ReLU()]));
      C = b.out;
    } else if (b.kind === "reshape") {
      // JS layers that copy: H and W swapped (square: the same shape), the same shape again
      push(new Permute({ dims: [1, 3, 2] }));
      push(new Reshape({ targetShape: [C, H, H] }));
    } else if (b.kind === "resize") {
      push(H <= 4 ? new UpSampling2D({ size: 2 }) : new ZeroPadding2D({ padding: 1 }));
      H = H <= 4 ? 2 * H : H + 2;
    } else if (b.kind === "pool") {
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
  const dtype = c.float64 ? "float64" : undefined; // float64 runs on the JS kernels, inside passes as well
  if (c.graph) return new Model({ inputs: input, outputs: t, seed: 7, dtype });
  return new Sequential(layers, { inputShape: [C0, H0, H0], seed: 7, dtype });
}

/**
 * The outputs for x of the first `count` layers (every layer when count is undefined), each called on its
 * own, as web/src/mnist/model.ts's forwardAll does; a partial probe stops before the first Dropout.
 */
function probe(model: Sequential, x: NDArray, training: boolean, count?: number): void {
  const opts = { training };
  const stop = (l: Layer, k: number): boolean => count !== undefined && (k >= count || l instanceof Dropout);
  if (model instanceof Model) {
    const outs = new Map<unknown, NDArray>();
    for (const [k, n] of model.nodes.entries()) {
      if (stop(n.layer, k)) return;
      outs.set(
        n,
        n.layer.forwardInputs(
          n.inputs.map((t) => (t.node === null ? x : outs.get(t.node)!)),
          opts,
        ),
      );
    }
  } else {
    let a = x;
    for (const [k, l] of model.layers.entries()) {
      if (stop(l, k)) return;
      a = l.forward(a, opts);
    }
  }
}

/** Case c's parameters after its training steps (threads: the count to start on), as bits. */
async function train(c: Case, threads: number): Promise<Uint32Array[]> {
  await setThreads(threads);
  const model = build(c);
  const rng = new RandomState(11);
  const loss = new SoftmaxCrossEntropy();
  const images = (n: number) => rand(rng, [n, C0, H0, H0]).astype(c.float64 ? "float64" : "float32");
  const opt = new SGD({ lr: 0.05, momentum: 0.9 });
  for (let i = 0; i < c.sizes.length; i++) {
    const n = c.sizes[i];
    const event = c.events[i];
    const x = images(n);
    const y = Int32Array.from({ length: n }, () => rng.randint(0, 3));
    if (event === "threads") await setThreads((threads = counts[(counts.indexOf(threads) + 1) % counts.length]));
    if (event === "js") setBackend("js");
    // trainStep's steps (src/nn/trainer.ts), with room for a probe between forward and backward
    model.zeroGrad();
    loss.forward(model.forward(x, { training: true }), y);
    // the first layers again on the same batch, so with the same values: with copies each writes them into
    // the buffer the next layer saved, resident the next layer keeps the pass's array, which must stay intact
    if (event === "probe-mid") probe(model, x, true, c.cut);
    model.backward(loss.backward(), { needDx: false });
    opt.step(model.params());
    setBackend("wasm");
    if (event === "probe") probe(model, images(n + 1), false);
    if (event === "infer") model.forward(images(n + 5), { training: false });
  }
  return model.params().map((p) => new Uint32Array(p.value.data.slice().buffer));
}

async function trainWith(c: Case, resident: boolean, threads: number): Promise<Uint32Array[]> {
  allowResidentArrays(resident);
  // a low limit: some outputs resident, the rest ordinary, switching as blocks come and go
  const limit = resident && c.room !== null ? setResidentLimit(residentBytes() + c.room) : null;
  try {
    return await train(c, threads);
  } finally {
    allowResidentArrays(true);
    if (limit !== null) setResidentLimit(limit);
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
        poolEveryCall(true); // 2 threads: every call split
        const reference = await trainWith(c, false, 1);
        const results: [string, Uint32Array[]][] = [];
        for (const n of counts) {
          results.push([`resident, starting on ${n} thread(s)`, await trainWith(c, true, n)]);
          if (n > 1) results.push([`copied, starting on ${n} threads`, await trainWith(c, false, n)]);
        }
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
