// Resident activations (src/kernels/wasm-memory.ts): inside a model's pass the wasm backend keeps each
// layer's output in linear memory, where the next kernel reads it without a copy. What has to hold: the
// arrays a model or a layer returns to its caller are ordinary and stay the caller's; training gives the
// same bits with or without residency, also when the memory grows mid-run and batch sizes vary; freed
// blocks are reused, so the blocks stay bounded; and a dropped model's blocks come back after GC.

import fc from "fast-check";
import assert from "node:assert/strict";
import { describe, test } from "node:test";

import { firstNonFiniteAmong, keepResident, setBackend } from "../src/kernels/backend.ts";
import {
  isResident,
  releaseResident,
  residentArray,
  residentBytes,
  residentOutputs,
  setInternalOutputs,
  setResidentLimit,
} from "../src/kernels/wasm-memory.ts";
import { NDArray } from "../src/nd/ndarray.ts";
import { RandomState } from "../src/nd/random.ts";
import { Flatten } from "../src/nn/flatten.ts";
import { SoftmaxCrossEntropy } from "../src/nn/losses.ts";
import { buildModel } from "../src/nn/models.ts";
import { SGD } from "../src/nn/optim.ts";
import { Sequential } from "../src/nn/sequential.ts";
import { Conv2D } from "../src/nn/conv.ts";
import { ReLU } from "../src/nn/activations.ts";
import { Dense } from "../src/nn/dense.ts";
import { rand, restoreKernelsAfter } from "./kernel-helpers.ts";
import { assertBlocksBackAfterGc, assertFitSameBits, digits, noShared, withoutResidency } from "./resident-helpers.ts";

/** Weights after training `name` on batches of these sizes, with (true) or without resident activations. */
function trainedWeights(
  name: "lenet5" | "resnet-mini",
  sizes: number[],
  between?: () => void,
  seed = 4,
): Float32Array[] {
  const model = buildModel(name, { seed });
  const rng = new RandomState(9);
  const loss = new SoftmaxCrossEntropy();
  const opt = new SGD({ lr: 0.05, momentum: 0.9 });
  for (const n of sizes) {
    const { x, y } = digits(rng, n);
    model.trainBatch(x, y, loss, opt);
    between?.();
  }
  return model.params().map((p) => p.value.data.slice() as Float32Array);
}

describe("resident activations", { skip: noShared }, () => {
  restoreKernelsAfter();

  test("a model's output and input gradient are ordinary arrays; its layers' outputs inside the pass are not", () => {
    setBackend("wasm");
    const model = buildModel("lenet5", { seed: 1 });
    const { x } = digits(new RandomState(1), 8);
    const first = model.layers[0];
    const forward = first.forward.bind(first);
    const inner: NDArray[] = [];
    first.forward = (a, o) => {
      const out = forward(a, o);
      inner.push(out);
      return out;
    };
    const y = model.forward(x, { training: true });
    assert.equal(isResident(y.data), false, "the model's output is the caller's");
    assert.ok(inner.length > 0 && inner.every((a) => isResident(a.data)), "the first layer's outputs are resident");
    const dx = model.backward(new NDArray(new Float32Array(y.size).fill(0.1), y.shape));
    assert.equal(isResident(dx.data), false, "dx is the caller's");
    // a layer called on its own is not inside a model's pass
    const conv = new Conv2D({ inChannels: 1, outChannels: 2, kernelSize: 3 });
    assert.equal(isResident(conv.forward(x).data), false);
  });

  test("an output the caller keeps is not overwritten by later passes of other batch sizes", () => {
    setBackend("wasm");
    const model = buildModel("lenet5", { seed: 2 });
    const rng = new RandomState(2);
    const a = digits(rng, 5).x;
    const kept = model.forward(a, { training: false });
    const copy = kept.data.slice();
    for (const n of [3, 17, 5, 64]) model.forward(digits(rng, n).x, { training: false });
    assert.deepEqual(kept.data, copy);
  });

  test("a model ending in a layer that passes its input on still returns an ordinary array", () => {
    setBackend("wasm");
    const model = new Sequential([
      new Conv2D({ inChannels: 1, outChannels: 2, kernelSize: 3 }),
      new ReLU(),
      new Flatten(),
    ]);
    const x = rand(new RandomState(3), [2, 1, 6, 6]);
    const y = model.forward(x);
    assert.equal(isResident(y.data), false);
    const again = model.forward(x).data.slice();
    assert.deepEqual(y.data, again);
  });

  test("training keeps parameters and gradients resident; the Params' NDArrays stay the same objects", () => {
    setBackend("wasm");
    const model = buildModel("lenet5", { seed: 8 });
    const params = model.params();
    const held = params.map((p) => [p.value, p.grad]);
    const before = params.map((p) => p.value.data.slice());
    assert.ok(
      params.every((p) => !isResident(p.value.data)),
      "ordinary until the first step",
    );
    const { x, y } = digits(new RandomState(8), 4);
    model.trainBatch(x, y, new SoftmaxCrossEntropy(), new SGD({ lr: 0.1, momentum: 0.9 }));
    params.forEach((p, i) => {
      assert.equal(p.value, held[i][0]);
      assert.equal(p.grad, held[i][1]);
      assert.ok(isResident(p.value.data) && isResident(p.grad.data), `${p.name} resident`);
      assert.notDeepEqual(p.value.data, before[i], `${p.name} was updated`);
    });
    // zeroGrad clears a resident gradient (a kernel's vector stores) to +0 everywhere, odd lengths too
    for (const p of params) p.grad.data.fill(-1.5);
    model.zeroGrad();
    for (const p of params)
      assert.ok(
        p.grad.data.every((v) => Object.is(v, 0)),
        `${p.name}'s gradient is +0`,
      );
    // a forward outside training reads them where they lie, and a saved copy is an ordinary array
    const out = model.forward(x, { training: false });
    assert.equal(isResident(out.data), false);
    assert.equal(isResident(params[0].value.data.slice()), false);
  });

  test("firstNonFiniteAmong finds the first array holding NaN or ±Infinity, resident and ordinary mixed", () => {
    setBackend("wasm");
    const bad = [NaN, Infinity, -Infinity];
    fc.assert(
      fc.property(
        fc.array(fc.record({ n: fc.nat(13), resident: fc.boolean(), plant: fc.option(fc.nat(40)) }), {
          maxLength: 8,
        }),
        (specs) => {
          const arrays = specs.map(({ n, resident, plant }) => {
            const a = new NDArray(
              Float32Array.from({ length: n }, (_, i) => i - 6.5),
              [n],
            );
            if (resident) keepResident(a);
            if (plant !== null && n > 0) a.data[plant % n] = bad[plant % 3];
            return a.data;
          });
          const expected = arrays.findIndex((a) => a.some((v) => !Number.isFinite(v)));
          assert.equal(firstNonFiniteAmong(arrays), expected);
        },
      ),
      { numRuns: 150 },
    );
  });

  test("Flatten inside a model's pass shares its input's elements and dy's (no copies); on its own it copies", () => {
    setBackend("wasm");
    const model = buildModel("lenet5", { seed: 6 });
    const flatten = model.layers.findIndex((l) => l.type === "Flatten");
    const seen: Record<string, NDArray> = {};
    const spy = (i: number, name: string): void => {
      const layer = model.layers[i];
      const forward = layer.forward.bind(layer);
      const backward = layer.backward.bind(layer);
      layer.forward = (a, o) => (seen[`${name} y`] = forward(a, o));
      layer.backward = (d, o) => (seen[`${name} dx`] = backward(d, o));
    };
    spy(flatten - 1, "pool");
    spy(flatten, "flatten");
    spy(flatten + 1, "dense");
    const { x, y } = digits(new RandomState(6), 4);
    for (let step = 0; step < 2; step++) {
      model.trainBatch(x, y, new SoftmaxCrossEntropy(), new SGD({ lr: 0.01 }));
      assert.equal(seen["flatten y"].data, seen["pool y"].data, "y is x's elements");
      assert.deepEqual(seen["flatten y"].shape, [4, seen["pool y"].size / 4]);
      assert.equal(seen["flatten dx"].data, seen["dense dx"].data, "dx is dy's elements");
      assert.deepEqual(seen["flatten dx"].shape, seen["pool y"].shape);
    }
    const alone = new Flatten();
    const x4 = rand(new RandomState(7), [2, 3, 2, 2]);
    const out = alone.forward(x4);
    assert.notEqual(out.data, x4.data, "a caller's x is copied");
    assert.deepEqual(out.data, x4.data);
    const dy = rand(new RandomState(8), [2, 12]);
    const dx = alone.backward(dy);
    assert.notEqual(dx.data, dy.data);
    assert.deepEqual(dx.shape, [2, 3, 2, 2]);
  });

  for (const name of ["lenet5", "resnet-mini"] as const) {
    test(`${name}: the same bits with and without residency, over varying batch sizes and memory growth`, () => {
      setBackend("wasm");
      const sizes = [8, 8, 3, 8, 1, 8];
      const plain = withoutResidency(() => trainedWeights(name, sizes));
      const resident = trainedWeights(name, sizes);
      // between steps, another model's large forward grows the shared memory (views of it stay valid)
      const big = buildModel("lenet5", { seed: 5 });
      const grown = trainedWeights(name, sizes, () => big.forward(digits(new RandomState(1), 512).x));
      plain.forEach((w, i) => {
        assert.deepEqual(resident[i], w, `parameter ${i}`);
        assert.deepEqual(grown[i], w, `parameter ${i} (memory grown)`);
      });
    });
  }

  test("a layer called on its own between a model's forward and backward leaves the pass's arrays intact", () => {
    setBackend("wasm");
    // the direct call (outside a model's pass) makes an ordinary output; the resident one it replaces is
    // still the second conv's saved input, which its backward reads
    const gradients = (): Float32Array[] => {
      const model = new Sequential([
        new Conv2D({ inChannels: 1, outChannels: 2, kernelSize: 3, rng: new RandomState(1) }),
        new Conv2D({ inChannels: 2, outChannels: 2, kernelSize: 3, rng: new RandomState(2) }),
        new Flatten(),
        new Dense({ inFeatures: 2 * 4 * 4, outFeatures: 40, rng: new RandomState(3) }),
      ]);
      const x = rand(new RandomState(4), [4, 1, 8, 8]);
      let held = 0;
      for (let step = 0; step < 20; step++) {
        const y = model.forward(x, { training: true });
        model.layers[0].forward(x); // the same input: the same values
        model.backward(new NDArray(new Float32Array(y.size).fill(0.5), y.shape));
        if (step === 1) held = residentBytes();
      }
      assert.equal(residentBytes(), held, "alternating passes and direct calls reuse their buffers");
      return model.params().map((p) => p.grad.data.slice() as Float32Array);
    };
    const plain = withoutResidency(gradients);
    gradients().forEach((g, i) => {
      assert.deepEqual(g, plain[i], `gradient ${i}`);
    });
  });

  for (const name of ["lenet5", "resnet-mini", "mobilenet-mini", "cnn-bn"] as const) {
    test(`${name}: no kernel writes into an operand it reads (every y and dx stays as it was made)`, () => {
      setBackend("wasm");
      const model = buildModel(name, { seed: 3 });
      // the layers' resident outputs, forward's and backward's, each with a copy as it was made
      const outputs: [string, Float32Array, Float32Array][] = [];
      model.layers.forEach((layer, i) => {
        const keep = (what: string, out: NDArray): NDArray => {
          const a = out.data as Float32Array;
          if (isResident(a)) outputs.push([`layer ${i} (${layer.type})'s ${what}`, a, a.slice()]);
          return out;
        };
        const forward = layer.forward.bind(layer);
        const backward = layer.backward.bind(layer);
        layer.forward = (a, o) => keep("y", forward(a, o));
        layer.backward = (d, o) => keep("dx", backward(d, o));
      });
      const { x, y } = digits(new RandomState(7), 4);
      model.trainBatch(x, y, new SoftmaxCrossEntropy(), new SGD({ lr: 0.01 }));
      assert.ok(outputs.some(([what]) => what.endsWith("dx")));
      for (const [what, now, then] of outputs) assert.deepEqual(now, then, `${what} changed after it was made`);
    });
  }

  test("layers shared by two models trained in turn, on batches of different sizes: the same bits", () => {
    setBackend("wasm");
    const trained = (): Float32Array[] => {
      const rng = new RandomState(12);
      const conv = new Conv2D({ inChannels: 1, outChannels: 4, kernelSize: 3, rng: new RandomState(1) });
      const relu = new ReLU();
      const heads = [10, 3].map(
        (n, i) =>
          new Sequential([
            new Flatten(),
            new Dense({ inFeatures: 4 * 26 * 26, outFeatures: n, rng: new RandomState(i) }),
          ]),
      );
      // the second model's first layer reads the shared ReLU's output, which the first model's head also read
      const models = heads.map((head) => new Sequential([conv, relu, head]));
      const loss = new SoftmaxCrossEntropy();
      const opt = new SGD({ lr: 0.05 });
      for (const n of [4, 2, 4, 5, 1]) {
        models.forEach((m, i) => {
          const { x, y } = digits(rng, n + i);
          m.trainBatch(x, i === 0 ? y : y.map((v) => v % 3), loss, opt);
        });
      }
      return [conv, ...heads].flatMap((l) => l.params().map((p) => p.value.data.slice() as Float32Array));
    };
    const plain = withoutResidency(trained);
    trained().forEach((w, i) => {
      assert.deepEqual(w, plain[i], `parameter ${i}`);
    });
  });

  test("fit and fitAsync with validation and callbacks that predict mid-training: the same bits", async () => {
    const rng = new RandomState(6);
    const data = digits(rng, 20);
    const val = digits(rng, 7);
    await assertFitSameBits({ seed: 8, lr: 0.05, epochs: 2 }, data, val, (model) => {
      const predictions: number[] = [];
      const callbacks = {
        // another batch size between steps; what predict returns must stay as it was
        onBatchEnd: () => {
          predictions.push(model.predict(val.x, { batchSize: 3 }).data[0]);
        },
        onEpochEnd: () => {
          model.evaluate(data.x, data.y, { batchSize: 9 });
        },
      };
      return { callbacks, after: () => [Float32Array.from(predictions)] };
    });
  });

  test("freed blocks are reused: varying batch sizes do not grow the resident blocks without bound", () => {
    setBackend("wasm");
    const model = buildModel("lenet5", { seed: 3 });
    const rng = new RandomState(4);
    model.forward(digits(rng, 40).x, { training: false });
    const largest = residentBytes();
    for (let n = 1; n <= 40; n++) model.forward(digits(rng, n).x, { training: false });
    for (let n = 40; n >= 1; n -= 3) model.forward(digits(rng, n).x, { training: false });
    assert.ok(residentBytes() <= 2 * largest, `${residentBytes()} bytes after, ${largest} for the largest batch`);
  });

  test("a synchronous loop of models stays within the blocks' limit (ordinary arrays past it), same bits", () => {
    setBackend("wasm");
    // dropped models' blocks come back only after the current job (FinalizationRegistry): without a limit
    // this loop would hold every model's activations at once
    const sweep = (): Float32Array[] => {
      const weights: Float32Array[] = [];
      for (let seed = 0; seed < 12; seed++) weights.push(...trainedWeights("lenet5", [16, 16], undefined, seed));
      return weights;
    };
    const plain = withoutResidency(sweep);
    const limit = residentBytes() + 2 ** 21;
    const was = setResidentLimit(limit);
    try {
      sweep().forEach((w, i) => {
        assert.deepEqual(w, plain[i], `weights ${i}`);
      });
      assert.ok(residentBytes() <= limit, `${residentBytes()} bytes, limit ${limit}`);
    } finally {
      setResidentLimit(was);
    }
  });

  test("the blocks: live arrays never overlap, freed space is coalesced and reused, all freed is all back", () => {
    setBackend("wasm");
    const outer = setInternalOutputs(true);
    try {
      assert.ok(residentOutputs());
      const start = residentBytes();
      const op = fc.oneof(fc.record({ take: fc.integer({ min: 1, max: 3000 }) }), fc.record({ free: fc.nat() }));
      fc.assert(
        fc.property(fc.array(op, { maxLength: 60 }), (ops) => {
          const live: Float32Array[] = [];
          let mark = 0;
          for (const o of ops) {
            if ("take" in o) {
              const a = residentArray(Float32Array, o.take)!;
              assert.equal(a.byteOffset % 64, 0);
              assert.ok(
                a.every((v) => v === 0),
                "a new array is zeroed",
              );
              live.push(a.fill(++mark));
            } else if (live.length > 0) releaseResident(live.splice(o.free % live.length, 1)[0]);
            // each live array still holds its own mark: no block was handed out twice
            for (const a of live) assert.ok(a[0] === a[a.length - 1] && a.every((v) => v === a[0]));
          }
          for (const a of live.reverse()) releaseResident(a);
          assert.equal(residentBytes(), start, "every block back: the top is where it started");
        }),
        { numRuns: 200, seed: 20261129 },
      );
    } finally {
      setInternalOutputs(outer);
    }
  });

  test("a dropped model's blocks come back after garbage collection", async () => {
    setBackend("wasm");
    await assertBlocksBackAfterGc(() => {
      const model = buildModel("lenet5", { seed: 6 });
      model.forward(digits(new RandomState(5), 300).x, { training: false });
    });
  });
});
