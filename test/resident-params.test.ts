// Resident parameters (src/kernels/backend.ts keepResident): once a model trains on the wasm backend, its
// trainable float32 params and grads are views of the kernels' shared memory, and so are the optimizer's
// slots. What has to hold for a user: everything that reads the weights after training (saving, export,
// EarlyStopping, copies posted to a worker) sees the trained values and gets ordinary arrays; switching the
// backend, the dtype or the thread count between steps, loading weights into a trained model, or stepping a
// user-built list whose params and grads are resident on one side only gives the same bits as training
// without residency; a loop of models stays within the blocks' limit, and a dropped trained model's blocks
// come back after GC; nested models make the inner layers' own arrays resident.

import assert from "node:assert/strict";
import { describe, test } from "node:test";

import { keepResident, setBackend, setThreads } from "../src/kernels/backend.ts";
import { isResident, residentBytes, setResidentLimit } from "../src/kernels/wasm-memory.ts";
import { NDArray } from "../src/nd/ndarray.ts";
import { RandomState } from "../src/nd/random.ts";
import { deserializeModel, serializeModel } from "../src/io/model-format.ts";
import { toOnnx } from "../src/io/onnx.ts";
import { toTfjsArtifacts } from "../src/io/tfjs/export.ts";
import { ReLU } from "../src/nn/activations.ts";
import { EarlyStopping } from "../src/nn/callbacks.ts";
import { Conv2D } from "../src/nn/conv.ts";
import { Dense } from "../src/nn/dense.ts";
import { Flatten } from "../src/nn/flatten.ts";
import { Reshape } from "../src/nn/reshape.ts";
import { gradcheck } from "../src/nn/gradcheck.ts";
import type { Param } from "../src/nn/layer.ts";
import { SoftmaxCrossEntropy } from "../src/nn/losses.ts";
import { buildModel } from "../src/nn/models.ts";
import { Adam, AdamW, RMSProp, SGD, type Optimizer } from "../src/nn/optim.ts";
import { L2Regularizer } from "../src/nn/regularizers.ts";
import { Sequential } from "../src/nn/sequential.ts";
import { trainStep } from "../src/nn/trainer.ts";
import { noThreads, rand, restoreKernelsAfter, sameBitsOnEveryCount } from "./kernel-helpers.ts";
import {
  assertBlocksBackAfterGc,
  assertFitSameBits,
  digits,
  noShared,
  withoutResidency,
  withoutResidencyAsync,
} from "./resident-helpers.ts";

function weightsOf(model: Sequential): Float32Array[] {
  return model.params().map((p) => p.value.data.slice() as Float32Array);
}

function assertSameArrays(got: ArrayLike<number>[], want: ArrayLike<number>[], what: string): void {
  assert.equal(got.length, want.length, `${what}: how many`);
  want.forEach((w, i) => {
    assert.deepEqual(got[i], w, `${what} ${i}`);
  });
}

/** lenet5 trained a few steps on the wasm backend (resident unless called inside withoutResidency). */
function trained(seed = 4, optimizer: Optimizer = new SGD({ lr: 0.05, momentum: 0.9 }), steps = 3): Sequential {
  setBackend("wasm");
  const model = buildModel("lenet5", { seed });
  const rng = new RandomState(seed + 10);
  const loss = new SoftmaxCrossEntropy();
  for (let s = 0; s < steps; s++) {
    const { x, y } = digits(rng, 6);
    model.trainBatch(x, y, loss, optimizer);
  }
  return model;
}

describe("resident parameters", { skip: noShared }, () => {
  restoreKernelsAfter();

  test("after training: saving (with the optimizer), loading, ONNX and TF.js export see the trained weights", () => {
    const plainOptimizer = new Adam({ lr: 0.01 });
    const plain = withoutResidency(() => trained(4, plainOptimizer));
    const optimizer = new Adam({ lr: 0.01 });
    const model = trained(4, optimizer);
    assert.ok(isResident(model.params()[0].value.data), "the trained model's weights are resident");
    const saved = serializeModel(model, { optimizer });
    const plainSaved = serializeModel(plain, { optimizer: plainOptimizer });
    assert.deepEqual(saved.weights, plainSaved.weights, "weights.bin");
    assert.deepEqual(saved.optimizer, plainSaved.optimizer, "optimizer.bin (the slots, resident beside the weights)");
    assert.ok(saved.optimizer !== undefined && saved.optimizer.byteLength > 0);
    assert.equal(saved.weights.buffer.byteLength, saved.weights.byteLength, "weights.bin is its own buffer");
    assertSameArrays(weightsOf(deserializeModel(saved.json, saved.weights).model), weightsOf(plain), "loaded");
    assert.deepEqual(toOnnx(model), toOnnx(plain), "ONNX");
    const tf = toTfjsArtifacts(model);
    assert.ok(tf.weightData instanceof ArrayBuffer);
    assert.deepEqual(new Uint8Array(tf.weightData), new Uint8Array(toTfjsArtifacts(plain).weightData), "TF.js");
  });

  test("a copy of a resident weight is ordinary and transferable; structuredClone of the view itself aliases", () => {
    const model = trained(5);
    const w = model.params()[0].value.data as Float32Array;
    assert.ok(w.buffer instanceof SharedArrayBuffer && w.buffer.byteLength > w.byteLength, "a view of the memory");
    for (const copy of [w.slice(), Float32Array.from(w)]) {
      assert.ok(copy.buffer instanceof ArrayBuffer && copy.buffer.byteLength === w.byteLength);
      const posted = structuredClone(copy, { transfer: [copy.buffer] });
      assert.deepEqual(posted, w);
    }
    // why the Param's doc says to copy with slice(): a structured clone shares the memory, it is no snapshot
    const clone = structuredClone(w);
    const was = w[0];
    w[0] = -was;
    assert.equal(clone[0], -was);
    w[0] = was;
  });

  test("EarlyStopping restores the best weights into the resident storage (fit and fitAsync): same bits", async () => {
    const rng = new RandomState(21);
    const val = digits(rng, 6);
    await assertFitSameBits({ seed: 2, lr: 0.05, epochs: 4 }, digits(rng, 18), val, (model) => {
      const stop = new EarlyStopping({ patience: 5, restoreBestWeights: true, monitor: "valLoss" });
      const after = (): Float32Array[] => {
        assert.equal(stop.bestEpoch, 1, "the best epoch is not the last: the weights are restored");
        return [model.predict(val.x).data.slice() as Float32Array]; // computed with the restored weights
      };
      return { callbacks: stop, after };
    });
  });

  test("setBackend('js') after resident training, then more steps and a forward: same bits", () => {
    const run = (): Float32Array[] => {
      const opt = new Adam({ lr: 0.01 });
      const model = trained(6, opt);
      setBackend("js");
      try {
        const rng = new RandomState(3);
        for (let s = 0; s < 2; s++) {
          const { x, y } = digits(rng, 5);
          model.trainBatch(x, y, new SoftmaxCrossEntropy(), opt);
        }
        const out = model.forward(digits(rng, 3).x).data.slice() as Float32Array;
        return [...weightsOf(model), out];
      } finally {
        setBackend("wasm");
      }
    };
    assertSameArrays(run(), withoutResidency(run), "after switching to js");
  });

  test("setDtype('float64') and back after resident training, a float64 gradcheck, then more steps: same bits", () => {
    const run = (): Float32Array[] => {
      const opt = new SGD({ lr: 0.05, momentum: 0.9 });
      const model = trained(7, opt);
      model.setDtype("float64");
      assert.ok(model.params().every((p) => p.value.data instanceof Float64Array && !isResident(p.value.data)));
      const x = digits(new RandomState(1), 2).x.astype("float64");
      const r = gradcheck(model, x, { seed: 1, maxPerTensor: 4 });
      assert.ok(r.maxRelError < 1e-6, `gradcheck after resident training: ${r.maxRelError}`);
      model.setDtype("float32");
      const rng = new RandomState(4);
      for (let s = 0; s < 2; s++) {
        const { x: xb, y } = digits(rng, 4);
        model.trainBatch(xb, y, new SoftmaxCrossEntropy(), opt);
      }
      return weightsOf(model);
    };
    assertSameArrays(run(), withoutResidency(run), "after the dtype round trip");
  });

  test("weights loaded into a trained model (as the page's setWeights does) land in the storage it computes with", () => {
    const source = trained(8);
    const loaded = source.params().map((p) => Float32Array.from(p.value.data));
    const target = trained(9);
    assert.ok(isResident(target.params()[0].value.data));
    target.params().forEach((p, i) => {
      p.value.data.set(loaded[i]);
    });
    const x = digits(new RandomState(2), 4).x;
    assert.deepEqual(target.forward(x).data, source.forward(x).data, "the forward");
    // one more step with a fresh optimizer on each: the same bits
    const { x: xb, y } = digits(new RandomState(3), 4);
    for (const m of [source, target]) m.trainBatch(xb, y, new SoftmaxCrossEntropy(), new SGD({ lr: 0.05 }));
    assertSameArrays(weightsOf(target), weightsOf(source), "after a step");
  });

  test("a loop building and training models past the blocks' limit: params fall back to ordinary, same bits", () => {
    setBackend("wasm");
    const sweep = (): { weights: Float32Array[]; resident: boolean[] } => {
      const weights: Float32Array[] = [];
      const resident: boolean[] = [];
      for (let seed = 0; seed < 10; seed++) {
        const model = trained(seed, new Adam({ lr: 0.01 }), 2);
        resident.push(model.params().every((p) => isResident(p.value.data) && isResident(p.grad.data)));
        weights.push(...weightsOf(model));
      }
      return { weights, resident };
    };
    const plain = withoutResidency(sweep);
    const limit = residentBytes() + 2 ** 20; // about two models' parameters, grads, slots and activations
    const was = setResidentLimit(limit);
    try {
      const got = sweep();
      assertSameArrays(got.weights, plain.weights, "weights");
      assert.ok(residentBytes() <= limit, `${residentBytes()} bytes, limit ${limit}`);
      assert.ok(got.resident.includes(false), "past the limit, params stay ordinary arrays");
    } finally {
      setResidentLimit(was);
    }
  });

  test("a dropped trained model gives back its params', grads' and optimizer slots' blocks after GC", async () => {
    await assertBlocksBackAfterGc(() => {
      const model = trained(3, new Adam({ lr: 0.01 }), 2);
      assert.ok(model.params().every((p) => isResident(p.value.data) && isResident(p.grad.data)));
    });
  });

  test("threads switched between steps (1, 2, 1, 2) with resident params: the 1-thread plain bits", async (t) => {
    if (noThreads) {
      t.skip(noThreads);
      return;
    }
    setBackend("wasm");
    const steps = async (counts: number[]): Promise<Float32Array[]> => {
      const model = buildModel("lenet5", { seed: 11 });
      const rng = new RandomState(12);
      const opt = new Adam({ lr: 0.01 });
      for (const n of counts) {
        assert.equal(await setThreads(n), n);
        const { x, y } = digits(rng, 8);
        model.trainBatch(x, y, new SoftmaxCrossEntropy(), opt);
      }
      await setThreads(1);
      return weightsOf(model);
    };
    const plain = await withoutResidencyAsync(() => steps([1, 1, 1, 1]));
    assertSameArrays(await steps([1, 2, 1, 2]), plain, "1, 2, 1, 2 threads");
    assertSameArrays(await steps([2, 2, 1, 1]), plain, "2, 2, 1, 1 threads");
  });

  /** The values after 3 steps of a user-built list whose `side` arrays (value, grad, both) are resident or not. */
  const steppedList = (side: "value" | "grad" | "both" | "none", optimizer: Optimizer): Float32Array[] => {
    // big enough for the update to be split across threads where they run
    const sizes = [5, 64, 70_001];
    const rng = new RandomState(31);
    const params: Param[] = sizes.map((n, i) => ({
      name: `p${i}`,
      value: rand(rng, [n]),
      grad: new NDArray(new Float32Array(n), [n]),
      trainable: true,
    }));
    for (let s = 0; s < 3; s++) {
      for (const p of params) p.grad.data.set(rand(rng, [p.grad.size]).data);
      for (const p of params) {
        if (side === "value" || side === "both") keepResident(p.value);
        if (side === "grad" || side === "both") keepResident(p.grad);
      }
      optimizer.step(params);
    }
    for (const p of params) {
      assert.equal(isResident(p.value.data), side === "value" || side === "both");
      assert.equal(isResident(p.grad.data), side === "grad" || side === "both");
    }
    return params.map((p) => p.value.data.slice() as Float32Array);
  };
  const listOptimizers = [
    () => new Adam({ lr: 0.01 }),
    () => new SGD({ lr: 0.05, momentum: 0.9 }),
    () => new AdamW({ lr: 0.01, weightDecay: 0.1 }),
    () => new RMSProp({ lr: 0.01, momentum: 0.5, weightDecay: 0.01 }), // a JS update over its resident slots
  ];

  for (const side of ["value", "grad", "both"] as const) {
    const which = side === "both" ? "values and grads" : `${side}s alone`;
    test(`a user-built list whose ${which} are resident: every optimizer gives the plain bits`, () => {
      setBackend("wasm");
      for (const make of listOptimizers)
        assertSameArrays(steppedList(side, make()), steppedList("none", make()), make().type);
    });
  }

  test("user-built lists resident on one side or both: the same bits on 1, 2 and 3 threads", async (t) => {
    if (noThreads) {
      t.skip(noThreads);
      return;
    }
    setBackend("wasm");
    await sameBitsOnEveryCount("one-sided resident lists", () =>
      (["value", "grad", "both"] as const).flatMap((side) =>
        listOptimizers.flatMap((make) => steppedList(side, make())),
      ),
    );
    await setThreads(1);
  });

  for (const make of [() => new Adam({ lr: 0.01 }), () => new SGD({ lr: 0.05, momentum: 0.9, nesterov: true })]) {
    test(`${make().type}'s slots after loadStateDict move beside resident params: the plain bits`, () => {
      const run = (): Float32Array[] => {
        const first = make();
        const model = trained(13, first, 2);
        const resumed = make();
        resumed.loadStateDict(structuredClone(first.stateDict()));
        const rng = new RandomState(14);
        for (let s = 0; s < 2; s++) {
          const { x, y } = digits(rng, 4);
          model.trainBatch(x, y, new SoftmaxCrossEntropy(), resumed);
        }
        return weightsOf(model);
      };
      assertSameArrays(run(), withoutResidency(run), "resumed");
    });
  }

  for (const name of ["mobilenet-mini", "cnn-bn", "cnn-small", "mlp"] as const) {
    test(`${name}: steps with clipping and an L2 penalty (JS loops over resident grads): the plain bits`, () => {
      setBackend("wasm");
      const run = (): Float32Array[] => {
        const model = buildModel(name, { seed: 3 });
        const rng = new RandomState(17);
        const opt = new Adam({ lr: 0.01 });
        const opts = {
          clipNorm: 0.5,
          clipValue: 0.01,
          regularizer: new L2Regularizer({ lambda: 1e-3, includeBias: true }),
        };
        for (const n of [4, 3, 4]) {
          const { x, y } = digits(rng, n);
          trainStep(model, x, y, new SoftmaxCrossEntropy(), opt, "a batch", opts);
        }
        // every param: the non-trainable ones (batch-norm statistics) too
        return model.params().map((p) => Float32Array.from(p.value.data));
      };
      assertSameArrays(run(), withoutResidency(run), name);
    });
  }

  test("Flatten and Reshape called on their own with a trained weight or gradient copy it (no alias)", () => {
    const model = trained(15);
    const weight = model.params()[0]; // the first convolution's kernel, (6, 1, 5, 5)
    for (const layer of [new Flatten(), new Reshape({ targetShape: [-1] })]) {
      for (const a of [weight.value, weight.grad]) {
        assert.ok(isResident(a.data));
        const before = a.data.slice();
        const y = layer.forward(a);
        assert.notEqual(y.data, a.data, `${layer.type}'s y is a copy`);
        assert.equal(isResident(y.data), false);
        y.data.fill(7);
        const dx = layer.backward(new NDArray(a.data, y.shape)); // dy: the resident elements under y's shape
        assert.notEqual(dx.data, a.data, `${layer.type}'s dx is a copy`);
        dx.data.fill(8);
        assert.deepEqual(a.data, before, "the parameter's elements are untouched");
      }
    }
  });

  test("a Sequential inside a Sequential: the inner layers' own arrays become resident, same bits", () => {
    setBackend("wasm");
    const build = (): { model: Sequential; conv: Conv2D; dense: Dense } => {
      const conv = new Conv2D({ inChannels: 1, outChannels: 3, kernelSize: 5, rng: new RandomState(1) });
      const dense = new Dense({ inFeatures: 3 * 24 * 24, outFeatures: 10, rng: new RandomState(2) });
      const inner = new Sequential([conv, new ReLU()]);
      const model = new Sequential([inner, new Sequential([new Flatten(), dense])]);
      return { model, conv, dense };
    };
    const run = (): Float32Array[] => {
      const { model, conv, dense } = build();
      const rng = new RandomState(5);
      const opt = new Adam({ lr: 0.01 });
      for (const n of [4, 3, 4]) {
        const { x, y } = digits(rng, n);
        model.trainBatch(x, y, new SoftmaxCrossEntropy(), opt);
      }
      const params = model.params();
      assert.equal(params[0].value, conv.weight.value, "a wrapper shares the inner layer's NDArray");
      return [
        ...weightsOf(model),
        ...[conv, dense].flatMap((l) => l.params().map((p) => p.value.data.slice() as Float32Array)),
      ];
    };
    const plain = withoutResidency(run);
    const got = run();
    assertSameArrays(got, plain, "nested");
    const { model, conv, dense } = build();
    const { x, y } = digits(new RandomState(5), 2);
    model.trainBatch(x, y, new SoftmaxCrossEntropy(), new SGD({ lr: 0.01 }));
    for (const l of [conv, dense])
      for (const p of l.params()) assert.ok(isResident(p.value.data) && isResident(p.grad.data), p.name);
  });
});
