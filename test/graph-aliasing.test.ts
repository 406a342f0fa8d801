// Gradient sharing inside a graph Model's pass (merge.ts Add.backwardInputs hands dy itself to every input when
// it is internal to the pass; graph.ts accumulate sums a fanned-out tensor's gradients into a kernel output
// buffer; GlobalAvgPool2D's dx is one too). On the wasm backend, where those arrays are resident, a graph with
// every way a shared gradient can travel — a residual Add, Add(s, s), Add as the model's output, a nested
// Model whose output is an Add, a Sequential node, Multiply and Concatenate reading a shared tensor, BN,
// Dropout, MaxPool, Flatten, GlobalAvgPool2D — must give the same bits as the same graph whose Adds copy, over
// steps whose batch size changes (buffers replaced), must leave the caller's dy as given, and must agree with
// the JS backend (no sharing) within float32 rounding.

import { test } from "node:test";
import assert from "node:assert/strict";

import { NDArray } from "../src/nd/ndarray.ts";
import { RandomState } from "../src/nd/random.ts";
import { Conv2D } from "../src/nn/conv.ts";
import { Dense } from "../src/nn/dense.ts";
import { Flatten } from "../src/nn/flatten.ts";
import { Dropout } from "../src/nn/dropout.ts";
import { BatchNorm2D } from "../src/nn/batchnorm.ts";
import { ELU, GELU, LeakyReLU, ReLU, SiLU, Sigmoid, Softmax, Tanh } from "../src/nn/activations.ts";
import { AvgPool2D, GlobalAvgPool2D, MaxPool2D } from "../src/nn/pool.ts";
import { DepthwiseConv2D, SeparableConv2D } from "../src/nn/depthwise.ts";
import { Conv2DTranspose } from "../src/nn/transpose.ts";
import { GroupNorm, LayerNorm } from "../src/nn/norm.ts";
import { GlobalMaxPool2D, Permute, Reshape } from "../src/nn/reshape.ts";
import { UpSampling2D, ZeroPadding2D } from "../src/nn/upsample.ts";
import { Add, Concatenate, Multiply } from "../src/nn/merge.ts";
import { Input, Model } from "../src/nn/graph.ts";
import { Sequential } from "../src/nn/sequential.ts";
import type { Layer } from "../src/nn/layer.ts";
import { setBackend } from "../src/kernels/backend.ts";
import { SoftmaxCrossEntropy } from "../src/nn/losses.ts";
import { Adam } from "../src/nn/optim.ts";
import { noThreads, noWasm, onBackend, restoreKernelsAfter, sameBitsOnEveryCount } from "./kernel-helpers.ts";

restoreKernelsAfter();

/** Add whose backward always copies dy into each input's own buffer: the reference without sharing. */
class CopyingAdd extends Add {
  override backwardInputs(dy: NDArray): NDArray[] {
    return super.backwardInputs(new NDArray(dy.data.slice(), dy.shape)); // not internal: copies
  }
}

type MakeAdd = () => Layer;

/** The graph described above; 8 channels so that its 3×3 convolutions take Winograd on the wasm backend. */
function sharingGraph(makeAdd: MakeAdd): Model {
  const conv = () => new Conv2D({ outChannels: 8, kernelSize: 3, padding: "same" });
  const inner = (() => {
    const u = Input([8, 6, 6]);
    const v = makeAdd().apply([new ReLU().apply(u), conv().apply(u)]);
    return new Model({ inputs: u, outputs: makeAdd().apply([v, new Tanh().apply(v)]), name: "inner" });
  })();
  const x = Input([8, 6, 6]);
  const r1 = new ReLU().apply(new BatchNorm2D({}).apply(conv().apply(x)));
  const s = makeAdd().apply([conv().apply(r1), x]); // residual
  const ss = makeAdd().apply([s, s]); // one tensor twice
  const n = inner.apply(ss);
  const q = new Sequential([conv(), new ReLU()]).apply(n);
  const m = new Multiply().apply([q, s]);
  const cat = new Concatenate({ axis: 1 }).apply([m, ss, n]);
  const d = new Dropout({ rate: 0.25, seed: 5 }).apply(cat);
  const g = new GlobalAvgPool2D().apply(new MaxPool2D({ kernelSize: 2 }).apply(d));
  const f = new Flatten().apply(new Tanh().apply(g));
  const out = makeAdd().apply([new Dense({ outFeatures: 4 }).apply(f), new Dense({ outFeatures: 4 }).apply(g)]);
  return new Model({ inputs: x, outputs: out, name: "sharing" });
}

/**
 * A shared gradient that must outlive a later sum: execution order b, a = relu(b), r = tanh(a), s = a + b,
 * t = r + s. Backward: s hands one array D to a and b; r's dx is then added to a's gradient, and only after
 * that does a's ReLU add its dx to b's, whose first gradient is D. A sum written into the first gradient it
 * borrowed (D) would change b's.
 */
function crossingGraph(makeAdd: MakeAdd): Model {
  const x = Input([8, 6, 6]);
  const b = new Tanh().apply(new Conv2D({ outChannels: 8, kernelSize: 3, padding: "same" }).apply(x));
  const a = new ReLU().apply(b);
  const r = new Tanh().apply(a);
  const s = makeAdd().apply([a, b]);
  const t = makeAdd().apply([r, s]);
  const out = new Dense({ outFeatures: 4 }).apply(new GlobalAvgPool2D().apply(t));
  return new Model({ inputs: x, outputs: out, name: "crossing" });
}

/**
 * Every built-in layer handed a shared gradient that is read after its backward: h ← h + L(h) (L's backward
 * runs first, then h's first gradient, the same array, is summed with L's dx), and for layers that change the
 * shape P(h) + L(h) (L's backward, then P's, both reading the one array). A layer writing into its dy changes
 * the other's gradient.
 */
function everyLayerGraph(makeAdd: MakeAdd): Model {
  const x = Input([8, 6, 6]);
  const same: Layer[] = [
    new Conv2D({ outChannels: 8, kernelSize: 3, padding: "same" }), // Winograd on the wasm backend
    new Conv2D({ outChannels: 8, kernelSize: 1 }),
    new Conv2D({ outChannels: 8, kernelSize: 3, padding: "same", groups: 2 }),
    new DepthwiseConv2D({ kernelSize: 3, padding: "same" }),
    new SeparableConv2D({ outChannels: 8, kernelSize: 3, padding: "same" }),
    new Conv2DTranspose({ outChannels: 8, kernelSize: 3, padding: 1 }),
    new BatchNorm2D({}),
    new GroupNorm({ groups: 2 }),
    new LayerNorm({ axes: 3 }),
    new ReLU(),
    new LeakyReLU({ alpha: 0.1 }),
    new Tanh(),
    new Sigmoid(),
    new GELU(),
    new SiLU(),
    new ELU(),
    new Softmax({ axis: 1 }),
    new Dropout({ rate: 0.25, seed: 9 }),
    new Permute({ dims: [1, 3, 2] }),
    new Reshape({ targetShape: [8, 6, 6] }),
  ];
  let h = x;
  for (const layer of same) h = makeAdd().apply([h, layer.apply(h)]);
  // [reader, layer under test]: the second's backward runs first (it executes later)
  const pairs: [Layer, Layer][] = [
    [new AvgPool2D({ kernelSize: 2 }), new MaxPool2D({ kernelSize: 2 })], // 6×6 → 3×3
    [new Conv2DTranspose({ outChannels: 8, kernelSize: 2, stride: 2 }), new UpSampling2D({ size: 2 })], // → 6×6
    [new Conv2DTranspose({ outChannels: 8, kernelSize: 3 }), new ZeroPadding2D({ padding: 1 })], // → 8×8
    [new MaxPool2D({ kernelSize: 2 }), new AvgPool2D({ kernelSize: 2 })], // → 4×4
  ];
  for (const [first, second] of pairs) h = makeAdd().apply([first.apply(h), second.apply(h)]);
  const gap = () => new GlobalAvgPool2D().apply(h);
  const gmp = () => new GlobalMaxPool2D().apply(h);
  const g = makeAdd().apply([makeAdd().apply([gap(), gmp()]), makeAdd().apply([gmp(), gap()])]);
  const f = makeAdd().apply([new Reshape({ targetShape: [8 * 4 * 4] }).apply(h), new Flatten().apply(h)]);
  const e = makeAdd().apply([new Dense({ outFeatures: 8 }).apply(f), g]);
  const d = makeAdd().apply([e, new Dense({ outFeatures: 8 }).apply(e)]);
  const out = makeAdd().apply([new Dense({ outFeatures: 4 }).apply(d), new Dense({ outFeatures: 4 }).apply(d)]);
  return new Model({ inputs: x, outputs: out, name: "every_layer" });
}

/** One model per kind of Add, with the same weights (drawn once, copied). */
function models(graph: (makeAdd: MakeAdd) => Model): { shared: Model; copied: Model } {
  const shared = graph(() => new Add());
  const copied = graph(() => new CopyingAdd());
  shared.initialize(new RandomState(11));
  copied.initialize(new RandomState(11));
  const from = shared.params();
  copied.params().forEach((p, i) => {
    p.value.data.set(from[i].value.data);
  });
  return { shared, copied };
}

function normal(rng: RandomState, shape: number[]): NDArray {
  const a = new NDArray(new Float32Array(shape.reduce((p, v) => p * v, 1)), shape);
  for (let i = 0; i < a.size; i++) a.data[i] = rng.nextDouble() * 2 - 1;
  return a;
}

/** Steps of batch 3, 2, 3: dx and every parameter gradient of each step, as plain copies; dy checked untouched. */
function steps(model: Model): Float32Array[][] {
  const rng = new RandomState(3);
  const out: Float32Array[][] = [];
  for (const N of [3, 2, 3]) {
    const x = normal(rng, [N, 8, 6, 6]);
    const dy = normal(rng, [N, 4]);
    const given = dy.data.slice();
    model.zeroGrad();
    model.forward(x, { training: true });
    const dx = model.backward(dy);
    assert.deepEqual(dy.data, given, "the caller's dy as given");
    out.push([Float32Array.from(dx.data), ...model.params().map((p) => Float32Array.from(p.grad.data))]);
  }
  return out;
}

test("shared gradients in a graph Model: the bits of copying Adds, on every step", { skip: noWasm }, () => {
  onBackend("wasm", () => {
    for (const graph of [sharingGraph, crossingGraph, everyLayerGraph]) {
      const { shared, copied } = models(graph);
      const got = steps(shared);
      const want = steps(copied);
      got.forEach((arrays, s) => {
        arrays.forEach((a, i) => {
          const at = a.findIndex((v, j) => !Object.is(v, want[s][i][j]));
          const what = i === 0 ? "dx" : shared.params()[i - 1].name;
          assert.equal(at, -1, `${shared.name}, step ${s}, ${what}: differs at ${at}`);
        });
      });
    }
  });
});

test(
  "shared gradients on the wasm backend agree with the JS backend's within float32 rounding",
  { skip: noWasm },
  () => {
    for (const graph of [sharingGraph, crossingGraph, everyLayerGraph]) {
      const got = onBackend("wasm", () => steps(models(graph).shared));
      const want = onBackend("js", () => steps(models(graph).shared));
      got.forEach((arrays, s) => {
        arrays.forEach((a, i) => {
          // at least 0.01: a bias before BN has a zero gradient, which each backend rounds differently
          const scale = Math.max(...want[s][i].map(Math.abs), 1e-2);
          const err = Math.max(...a.map((v, j) => Math.abs(v - want[s][i][j])));
          assert.ok(err <= 1e-4 * scale, `${graph.name}, step ${s}, array ${i}: max error ${err} of ${scale}`);
        });
      });
    }
  },
);

/** The weights after 2 epochs of fit on 8 images (batches of 3, 3, 2; Adam): the trainer asks for no dx. */
function trainedWeights(m: Model): Float32Array[] {
  const rng = new RandomState(21);
  const x = normal(rng, [8, 8, 6, 6]);
  const y = Int32Array.from({ length: 8 }, (_, i) => i % 4);
  m.compile({ loss: new SoftmaxCrossEntropy(), optimizer: new Adam({ lr: 0.01 }) });
  m.fit(x, y, { epochs: 2, batchSize: 3, seed: 4 });
  return m.params().map((p) => Float32Array.from(p.value.data));
}

test(
  "training through shared gradients (fit: no dx wanted) gives the weights of copying Adds",
  { skip: noWasm },
  () => {
    onBackend("wasm", () => {
      for (const graph of [sharingGraph, crossingGraph, everyLayerGraph]) {
        const { shared, copied } = models(graph);
        const want = trainedWeights(copied);
        trainedWeights(shared).forEach((w, i) => {
          const at = w.findIndex((v, j) => !Object.is(v, want[i][j]));
          assert.equal(at, -1, `${shared.name}, ${shared.params()[i].name}: differs at ${at}`);
        });
      }
    });
  },
);

test("training through shared gradients: the same weights on 1, 2 and 3 threads", { skip: noThreads }, async () => {
  setBackend("wasm");
  for (const graph of [sharingGraph, everyLayerGraph]) {
    await sameBitsOnEveryCount(graph.name, () => trainedWeights(models(graph).shared));
  }
});

test("a Model refuses a layer object that would run twice in a pass (inside Sequential or Model nodes too)", () => {
  const x = Input([4]);
  const dense = new Dense({ outFeatures: 4 });
  // inside a Sequential node and applied directly: its gradients were silently wrong (float64 check: 0.68)
  const viaSequential = new Sequential([dense, new Tanh()]).apply(x);
  const direct = dense.apply(new Tanh().apply(x), "direct");
  assert.throws(
    () => new Model({ inputs: x, outputs: new Add().apply([viaSequential, direct]) }),
    /Model: node 'direct' \(Dense\) is the same layer object as layers\[0\] of node 'sequential_\d+'; a layer runs once per pass/,
  );
  // in two Sequential nodes, twice in one, and inside a nested Model as well as a Sequential node
  const shared = new Tanh();
  const twoNodes = new Sequential([shared]).apply(new Sequential([new ReLU(), shared]).apply(x, "s1"), "s2");
  assert.throws(() => new Model({ inputs: x, outputs: twoNodes }), /layers\[0\] of node 's2' \(Tanh\) is the same/);
  // a Sequential refuses it already, on its own as well as nested
  assert.throws(
    () => new Sequential([shared, shared]),
    /sequential: layers\[1\] \(Tanh\) is the same layer object as layers\[0\]; a layer runs once per pass/,
  );
  const d = new Dense({ outFeatures: 4 });
  assert.throws(
    () => new Sequential([d, new Tanh(), new Sequential([new ReLU(), d], { name: "inner" })], { name: "outer" }),
    /outer: layers\[1\] of layers\[2\] \(Dense\) is the same layer object as layers\[0\]/,
  );
  const u = Input([4]);
  const innerDense = new Dense({ outFeatures: 4 });
  const inner = new Model({ inputs: u, outputs: innerDense.apply(u, "inner_dense"), name: "inner" });
  const both = new Add().apply([inner.apply(x, "inner"), new Sequential([innerDense]).apply(x, "seq")]);
  assert.throws(() => new Model({ inputs: x, outputs: both }), /layers\[0\] of node 'seq' \(Dense\) is the same/);
  // the same layer classes, distinct objects: accepted
  const ok = new Add().apply([
    new Sequential([new Dense({ outFeatures: 4 })]).apply(x),
    new Dense({ outFeatures: 4 }).apply(x),
  ]);
  assert.ok(new Model({ inputs: x, outputs: ok }) instanceof Model);
});
