// Functional graph models (src/nn/graph.ts) and nesting: residual and branching graphs run, check their
// gradients (the fan-out sum of derivation.md §5.7), name nodes and shapes in errors, train with
// Sequential's fit, save and load (format version 2), and print their branches in summary().

import { describe, test } from "node:test";
import assert from "node:assert/strict";

import { NDArray } from "../src/nd/ndarray.ts";
import { Conv2D } from "../src/nn/conv.ts";
import { Dense } from "../src/nn/dense.ts";
import { Flatten } from "../src/nn/flatten.ts";
import { BatchNorm2D } from "../src/nn/batchnorm.ts";
import { ReLU, Tanh } from "../src/nn/activations.ts";
import { GlobalAvgPool2D } from "../src/nn/pool.ts";
import { Add, Concatenate, Multiply } from "../src/nn/merge.ts";
import { Input, Model } from "../src/nn/graph.ts";
import { Sequential } from "../src/nn/sequential.ts";
import { gradcheck } from "../src/nn/gradcheck.ts";
import { SoftmaxCrossEntropy } from "../src/nn/losses.ts";
import { Adam } from "../src/nn/optim.ts";
import { ShapeError } from "../src/nn/layer.ts";
import { deserializeModel, serializeModel } from "../src/io/model-format.ts";
import { randomInput } from "./helpers.ts";
import { isInternal, kernels, setInternalOutputs } from "../src/kernels/backend.ts";
import { noWasm, onBackend } from "./kernel-helpers.ts";

/** x → conv → BN → ReLU → conv → BN, + x, → ReLU: a ResNet basic block, then a classifier. */
function residualNet(seed = 0): Model {
  const x = Input([3, 6, 6], { name: "image" });
  const h1 = new ReLU().apply(
    new BatchNorm2D({}).apply(
      new Conv2D({ outChannels: 3, kernelSize: 3, padding: "same", bias: false }).apply(x, "conv_a"),
      "bn_a",
    ),
    "relu_a",
  );
  const h2 = new BatchNorm2D({}).apply(
    new Conv2D({ outChannels: 3, kernelSize: 3, padding: "same", bias: false }).apply(h1, "conv_b"),
    "bn_b",
  );
  const sum = new Add().apply([x, h2], "add");
  const out = new Dense({ outFeatures: 4 }).apply(
    new Flatten().apply(new ReLU().apply(sum, "relu_out"), "flatten"),
    "logits",
  );
  return new Model({ inputs: x, outputs: out, name: "resnet_block", seed });
}

describe("graph Model", () => {
  test("a residual block computes x + F(x) and passes the float64 gradient check", () => {
    const x = Input([2, 5, 5]);
    const conv = new Conv2D({ outChannels: 2, kernelSize: 3, padding: "same" });
    const f = new Tanh().apply(conv.apply(x));
    const model = new Model({ inputs: x, outputs: new Add().apply([x, f]), seed: 1, dtype: "float64" });
    const input = randomInput([2, 2, 5, 5], 3).astype("float64");
    const y = model.forward(input);
    const fx = new Tanh().forward(conv.forward(input));
    for (let i = 0; i < y.size; i++) assert.ok(Math.abs(y.data[i] - (input.data[i] + fx.data[i])) < 1e-15);
    const r = gradcheck(model, input, { seed: 2 });
    assert.ok(r.ok, JSON.stringify(r));
  });

  test("a tensor read by several nodes gets the sum of their gradients (fan-out, §5.7)", () => {
    const x = Input([4]);
    const a = new Tanh().apply(x);
    const cat = new Concatenate().apply([x, a, x]); // x read three times, twice by the same node
    const prod = new Multiply().apply([new Dense({ outFeatures: 12 }).apply(x), cat]);
    const model = new Model({ inputs: x, outputs: prod, seed: 3, dtype: "float64" });
    const r = gradcheck(model, randomInput([3, 4], 5).astype("float64"), { seed: 4 });
    assert.ok(r.ok, JSON.stringify(r));
    // and dx of y = x + x + x is exactly 3·dy
    const u = Input([3]);
    const triple = new Model({ inputs: u, outputs: new Add().apply([u, u, u]), dtype: "float64" });
    triple.forward(new NDArray(Float64Array.from([1, 2, 3]), [1, 3]));
    assert.deepEqual(
      Array.from(triple.backward(new NDArray(Float64Array.from([1, -2, 0.5]), [1, 3])).data),
      [3, -6, 1.5],
    );
  });

  test("the ResNet block with BatchNorm checks in training and inference mode", () => {
    const model = residualNet(7);
    for (const training of [true, false]) {
      const r = gradcheck(model, randomInput([3, 3, 6, 6], 8).astype("float64"), {
        seed: 9,
        training,
        maxPerTensor: 40,
      });
      assert.ok(r.ok, `${training}: ${JSON.stringify(r.tensors)}`);
    }
  });

  test("shape errors at construction name the node and both shapes", () => {
    const x = Input([3, 8, 8], { name: "img" });
    const y = new Conv2D({ outChannels: 5, kernelSize: 3, padding: "same" }).apply(x, "conv");
    assert.throws(
      () => new Add().apply([x, y], "skip"),
      (e) =>
        e instanceof ShapeError &&
        e.message.includes("node 'skip' (Add) applied to 'img' (3, 8, 8), 'conv' (5, 8, 8)") &&
        e.message.includes("input 1 has shape (5, 8, 8) but input 0 has (3, 8, 8)"),
    );
    assert.throws(
      () => new Dense({ inFeatures: 7, outFeatures: 2 }).apply(new Flatten().apply(y, "flat"), "fc"),
      /node 'fc' \(Dense\) applied to 'flat' \(320,\)/,
    );
  });

  test("misuse is refused clearly: a layer applied twice, a second Input, a model of nothing", () => {
    const x = Input([4]);
    const relu = new ReLU();
    relu.apply(x, "r1");
    assert.throws(() => relu.apply(x, "r2"), /node 'r2' \(ReLU\): this layer is already applied in node 'r1'/);
    const other = Input([4], { name: "other" });
    const s = new Add().apply([x, other]);
    assert.throws(
      () => new Model({ inputs: x, outputs: s }),
      /depends on Input 'other' \(4,\), which is not the model's input 'input'/,
    );
    assert.throws(() => new Model({ inputs: x, outputs: x }), /the output is the input itself/);
  });

  test("summary() shows every node and what it is connected to", () => {
    const text = residualNet().summary();
    assert.match(text, /Connected to/);
    assert.match(text, /add \(Add\)\s+\(None, 3, 6, 6\)\s+0\s+image, bn_b/);
    assert.match(text, /conv_a \(Conv2D\)\s+\(None, 3, 6, 6\)\s+81\s+image/);
    assert.match(text, /Total params: 4?[\d,]+/);
  });

  test("trains with Sequential's fit, deterministically, and lowers the loss", () => {
    const run = () => {
      const m = residualNet(11);
      m.compile({ loss: new SoftmaxCrossEntropy(), optimizer: new Adam({ lr: 0.01 }) });
      const x = randomInput([32, 3, 6, 6], 12);
      const y = Int32Array.from({ length: 32 }, (_, i) => i % 4);
      const h = m.fit(x, y, { epochs: 6, batchSize: 8, seed: 1 });
      return { m, losses: h.epochs.map((e) => e.loss) };
    };
    const a = run();
    const b = run();
    assert.ok(a.losses[5] < a.losses[0], String(a.losses));
    assert.deepEqual(a.losses, b.losses);
    assert.deepEqual(Array.from(a.m.params()[0].value.data), Array.from(b.m.params()[0].value.data));
  });

  test("saves as format version 2 and loads back bit for bit; a Sequential still saves as version 1", () => {
    const m = residualNet(13);
    m.compile({ loss: new SoftmaxCrossEntropy(), optimizer: new Adam() });
    m.fit(randomInput([8, 3, 6, 6], 1), Int32Array.from([0, 1, 2, 3, 0, 1, 2, 3]), { epochs: 1, batchSize: 4 });
    const saved = serializeModel(m);
    assert.equal((JSON.parse(saved.json) as { version: number }).version, 2);
    const back = deserializeModel(saved.json, saved.weights).model;
    assert.ok(back instanceof Model);
    assert.deepEqual(back.config(), m.config());
    const x = randomInput([5, 3, 6, 6], 2);
    assert.deepEqual(Array.from(back.predict(x).data), Array.from(m.predict(x).data));
    const seq = new Sequential([new Flatten(), new Dense({ outFeatures: 2 })], { inputShape: [3] });
    assert.equal((JSON.parse(serializeModel(seq).json) as { version: number }).version, 1);
  });
});

test("a checkpoint of a graph model (weights + Adam state) resumes bit for bit", () => {
  const x = randomInput([8, 3, 6, 6], 21);
  const y = Int32Array.from([0, 1, 2, 3, 3, 2, 1, 0]);
  const loss = new SoftmaxCrossEntropy();
  const a = residualNet(5);
  const optA = new Adam({ lr: 0.01 });
  a.trainBatch(x, y, loss, optA);
  const saved = serializeModel(a, { optimizer: optA });
  const loaded = deserializeModel(saved.json, saved.weights, saved.optimizer);
  assert.ok(loaded.optimizer);
  for (let step = 0; step < 2; step++) {
    a.trainBatch(x, y, loss, optA);
    loaded.model.trainBatch(x, y, loss, loaded.optimizer);
  }
  const pa = a.params();
  loaded.model.params().forEach((p, i) => {
    assert.deepEqual(Array.from(p.value.data), Array.from(pa[i].value.data), p.name);
  });
});

test(
  "Add's backward shares dy with every input inside a model's pass, and copies it when called on its own",
  {
    skip: noWasm,
  },
  () => {
    onBackend("wasm", () => {
      const f32 = (values: number[]) => new NDArray(Float32Array.from(values), [2, 2]);
      const add = new Add();
      add.forwardInputs([f32([1, 2, 3, 4]), f32([5, 6, 7, 8])]);
      // inside a pass (what Model.backward sets): dy is a kernel's resident output, and both gradients are it
      const outer = setInternalOutputs(true);
      try {
        const dy = kernels.outputBuffer(null, [2, 2], "float32");
        dy.data.set([1, -1, 2, -2]);
        assert.ok(isInternal(dy));
        const [da, db] = add.backwardInputs(dy);
        assert.equal(da, dy);
        assert.equal(db, dy);
      } finally {
        setInternalOutputs(outer);
      }
      // on its own: each input's gradient is a copy in its own buffer, none aliasing the caller's dy
      const dy = f32([1, -1, 2, -2]);
      const [da, db] = add.backwardInputs(dy);
      assert.deepEqual(Array.from(da.data), [1, -1, 2, -2]);
      assert.deepEqual(Array.from(db.data), [1, -1, 2, -2]);
      assert.ok(da.data !== dy.data && db.data !== dy.data && da.data !== db.data);
    });
  },
);

describe("nesting", () => {
  test("a Model applied as a node of another graph: forward, float64 gradient check, save/load", () => {
    const inner = (() => {
      const u = Input([3]);
      return new Model({
        inputs: u,
        outputs: new Add().apply([u, new Tanh().apply(new Dense({ outFeatures: 3 }).apply(u))]),
        name: "inner",
      });
    })();
    const x = Input([3]);
    const y = new Dense({ outFeatures: 2 }).apply(new Multiply().apply([x, inner.apply(x, "block")]));
    const outer = new Model({ inputs: x, outputs: y, seed: 2, dtype: "float64" });
    const r = gradcheck(outer, randomInput([4, 3], 3).astype("float64"), { seed: 5 });
    assert.ok(r.ok, JSON.stringify(r.tensors));
    assert.match(outer.summary(), /block \(Model\)\s+\(None, 3\)\s+12\s+input/);
    outer.setDtype("float32");
    const saved = serializeModel(outer);
    const back = deserializeModel(saved.json, saved.weights).model;
    const xs = randomInput([4, 3], 4);
    assert.deepEqual(Array.from(back.predict(xs).data), Array.from(outer.predict(xs).data));
  });

  test("a Sequential inside a Sequential and a Model inside a Sequential: forward, gradients, training, save/load", () => {
    const block = () => {
      const x = Input([2, 4, 4]);
      const f = new ReLU().apply(new Conv2D({ outChannels: 2, kernelSize: 3, padding: "same" }).apply(x));
      return new Model({ inputs: x, outputs: new Add().apply([x, f]), name: "block" });
    };
    const model = new Sequential(
      [
        new Sequential([new Conv2D({ outChannels: 2, kernelSize: 1 }), new Tanh()], { name: "stem" }),
        block(),
        new GlobalAvgPool2D(),
        new Dense({ outFeatures: 3 }),
      ],
      { inputShape: [1, 4, 4], seed: 4 },
    );
    assert.deepEqual(
      model.params().map((p) => p.name),
      ["0.0.weight", "0.0.bias", "1.0.weight", "1.0.bias", "3.weight", "3.bias"],
    );
    const r = gradcheck(model, randomInput([2, 1, 4, 4], 6).astype("float64"), { seed: 1 });
    assert.ok(r.ok, JSON.stringify(r.tensors));
    model.setDtype("float32");
    model.compile({ loss: new SoftmaxCrossEntropy(), optimizer: new Adam({ lr: 0.02 }) });
    const x = randomInput([12, 1, 4, 4], 7);
    const h = model.fit(
      x,
      Int32Array.from({ length: 12 }, (_, i) => i % 3),
      { epochs: 5, batchSize: 4 },
    );
    assert.ok(h.epochs[4].loss < h.epochs[0].loss);
    const saved = serializeModel(model);
    const back = deserializeModel(saved.json, saved.weights).model;
    assert.deepEqual(Array.from(back.predict(x).data), Array.from(model.predict(x).data));
    assert.match(model.summary(), /layer_1|model|Model/);
  });
});
