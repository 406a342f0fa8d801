// Hostile optimizer state and layer registrations (second fuzzing round): regressions for the defects
// found. (The mutation loop over a checkpoint's "training" section, with the newer fields, is in
// test/fuzz-trainstate.test.ts.)
import { test } from "node:test";
import assert from "node:assert/strict";
import { NDArray } from "../src/nd/ndarray.ts";
import { Sequential } from "../src/nn/sequential.ts";
import { Dense } from "../src/nn/dense.ts";
import { ReLU } from "../src/nn/activations.ts";
import { Adam } from "../src/nn/optim.ts";
import { SoftmaxCrossEntropy } from "../src/nn/losses.ts";
import { registerLayer, sequentialFromConfig, unregisterLayer } from "../src/nn/registry.ts";
import { Augmenter, type AugmentOptions } from "../src/data/augment.ts";
import { EarlyStopping, ModelCheckpoint, ReduceLROnPlateau } from "../src/nn/callbacks.ts";
import { Trainer } from "../src/nn/trainer.ts";
import { ModelFormatError, deserializeModel, serializeModel } from "../src/io/model-format.ts";
import { assertTypedError, outcome } from "./fuzz-mutate.ts";

function adamCheckpoint() {
  const model = new Sequential([new Dense({ inFeatures: 4, outFeatures: 3 })], { inputShape: [4], seed: 0 });
  const optimizer = new Adam({ lr: 0.01 });
  const x = new NDArray(new Float32Array(8).fill(1), [2, 4]);
  model.trainBatch(x, new Int32Array([0, 1]), new SoftmaxCrossEntropy(), optimizer);
  const saved = serializeModel(model, { optimizer });
  return { saved, json: JSON.parse(saved.json) as { optimizer: { slots: { slot: string; param: number }[] } } };
}

test("defect: an optimizer slot named __proto__ is refused, and Object.prototype stays clean", () => {
  // It loaded: the slot's values were written to Object.prototype[0] (seen by every object of the
  // process) and Adam resumed with that moment missing.
  const { saved, json } = adamCheckpoint();
  json.optimizer.slots[0].slot = "__proto__";
  const r = outcome(() =>
    deserializeModel(JSON.stringify(json), saved.weights, saved.optimizer, { manifest: "fz2/model.json" }),
  );
  assert.ok(!r.ok);
  assertTypedError(r.error, ModelFormatError, "fz2/model.json");
  assert.match((r.error as Error).message, /unknown state slot '__proto__' \(expected m, v\)/);
  assert.equal(Object.prototype.hasOwnProperty.call(Object.prototype, "0"), false);
  assert.equal(({} as Record<number, unknown>)[0], undefined);
});

test("defect: an optimizer slot listed twice is refused naming both entries", () => {
  // The second silently replaced the first when both had the parameter's length.
  const { saved, json } = adamCheckpoint();
  const slots = json.optimizer.slots;
  const dup = slots.findIndex((s, i) => i > 0 && s.param === slots[0].param);
  slots[dup].slot = slots[0].slot;
  const r = outcome(() =>
    deserializeModel(JSON.stringify(json), saved.weights, saved.optimizer, { manifest: "fz2/model.json" }),
  );
  assert.ok(!r.ok);
  assertTypedError(r.error, ModelFormatError, "fz2/model.json");
  assert.match(
    (r.error as Error).message,
    new RegExp(`"optimizer.slots\\[${dup}\\]" repeats "optimizer.slots\\[0\\]" \\(m of 0.weight\\)`),
  );
});

test("defect: a registered factory that throws a non-Error names what it threw (was 'undefined')", () => {
  registerLayer("Fuzz2Thrower", () => {
    // eslint-disable-next-line @typescript-eslint/only-throw-error
    throw "no such variant";
  });
  try {
    assert.throws(
      () => sequentialFromConfig({ layers: [{ type: "Fuzz2Thrower" }] }),
      /layer 0 \(Fuzz2Thrower\): no such variant/,
    );
  } finally {
    unregisterLayer("Fuzz2Thrower");
  }
});

test("registry names: built-ins (models included) cannot be shadowed; Object.prototype names are plain names", () => {
  for (const type of ["Dense", "Sequential", "Model", "Add"])
    assert.throws(() => {
      registerLayer(type, () => new ReLU());
    }, /is a built-in layer type/);
  for (const type of ["__proto__", "constructor", "toString"]) {
    assert.throws(() => sequentialFromConfig({ layers: [{ type }] }), new RegExp(`unknown layer type "${type}"`));
  }
});

test("defect: constructor options meant for code (dtype, rng, bias) are checked when they come from a file", () => {
  // A model.json layer config with "dtype": "float16" built a float64 layer under a float32 model, "rng": {}
  // failed with "rng.uniform is not a function", and Dense took "bias": "false" (a string) as true.
  const m = new Sequential([new Dense({ inFeatures: 4, outFeatures: 3 }), new Dense({ outFeatures: 2 })], {
    inputShape: [4],
    seed: 0,
  });
  const saved = serializeModel(m);
  const cases: [string, unknown, RegExp][] = [
    ["dtype", "float16", /layer 0 \(Dense\): Dense: dtype must be "float32" or "float64", got "float16"/],
    ["rng", {}, /layer 0 \(Dense\): Dense: rng must be a RandomState, got \{\}/],
    ["bias", "false", /layer 0 \(Dense\): Dense: bias must be true or false, got "false"/],
  ];
  for (const [key, value, message] of cases) {
    const j = JSON.parse(saved.json) as { model: { layers: Record<string, unknown>[] } };
    j.model.layers[0][key] = value;
    const r = outcome(() =>
      deserializeModel(JSON.stringify(j), saved.weights, undefined, { manifest: "fz2/model.json" }),
    );
    assert.ok(!r.ok, key);
    assertTypedError(r.error, ModelFormatError, "fz2/model.json");
    assert.match((r.error as Error).message, message);
  }
  for (const config of [
    { type: "LayerNorm", dtype: 5 },
    { type: "GroupNorm", groups: 1, dtype: "half" },
    { type: "BatchNorm2D", dtype: "bf16" },
    { type: "Conv2DTranspose", outChannels: 1, kernelSize: 1, rng: 7 },
    { type: "Conv2D", outChannels: 1, kernelSize: 1, bias: 1 },
  ])
    assert.throws(() => sequentialFromConfig({ layers: [config] }), /must be|rng must be a RandomState/, config.type);
});

test("defect: callbacks' and the Trainer's restore refuse a NaN best, infinite rate, no state, unchanged", () => {
  // restore({best: NaN}) was taken: every comparison then lost, so EarlyStopping stopped after `patience`
  // epochs and ModelCheckpoint never saved; Trainer.restore took baseLr Infinity; restore(null) threw
  // "Cannot read properties of null"; EarlyStopping.restore set best before refusing a bad wait.
  const es = new EarlyStopping({ patience: 2 });
  es.restore({ best: 0.5, bestEpoch: 1, wait: 1 });
  const cases: [string, () => void, RegExp][] = [
    [
      "es NaN",
      () => {
        es.restore({ best: NaN, bestEpoch: 0, wait: 0 });
      },
      /EarlyStopping\.restore: best must be a number/,
    ],
    [
      "es bad wait",
      () => {
        es.restore({ best: 0.1, bestEpoch: 0, wait: -1 });
      },
      /wait must be an integer ≥ 0/,
    ],
    [
      "es null",
      () => {
        es.restore(null as never);
      },
      /EarlyStopping\.restore: expected a state object/,
    ],
    [
      "rl NaN",
      () => {
        new ReduceLROnPlateau({ patience: 1 }).restore({ best: NaN, wait: 0, cooldownLeft: 0 });
      },
      /best/,
    ],
    [
      "ckpt NaN",
      () => {
        new ModelCheckpoint({ save: () => undefined }).restore({ best: NaN });
      },
      /best/,
    ],
  ];
  for (const [what, run, message] of cases) assert.throws(run, message, what);
  assert.deepEqual(es.state(), { best: 0.5, bestEpoch: 1, wait: 1 }, "a refused restore changed the state");
  const model = new Sequential([new Dense({ inFeatures: 4, outFeatures: 3 })], { inputShape: [4], seed: 0 });
  const trainer = new Trainer(
    model,
    { x: new NDArray(new Float32Array(40), [10, 4]), y: new Int32Array(10) },
    { loss: new SoftmaxCrossEntropy(), optimizer: new Adam({ lr: 0.01 }), batchSize: 4 },
  );
  const state = trainer.state();
  assert.throws(() => {
    trainer.restore({ ...state, baseLr: Infinity });
  }, /baseLr must be a finite number ≥ 0, got Infinity/);
  assert.throws(() => {
    trainer.restore(null as never);
  }, /Trainer\.restore: expected a state object \(from state\(\)\), got null/);
});

// Settings whose transforms are not finite (a checkpoint's "training.augment" can carry any number) made every
// augmented image NaN or ±Infinity, and the resumed run stopped at its first step as "diverged", naming no field.
test("augmentation settings whose images would not be finite are refused, naming the setting", () => {
  const images = new NDArray(new Float32Array(2 * 28 * 28).fill(0.5), [2, 1, 28, 28]);
  const refused: [AugmentOptions, RegExp][] = [
    [{ scale: [1e-300, 1e-300] }, /scale\[0\] must be a finite number in \[0\.001, 1000\], got 1e-300/],
    [{ scale: [1, 1e300] }, /scale\[1\] must be a finite number in \[1, 1000\], got 1e\+300/],
    [{ scale: 0.9999999 }, /scale must be a finite number in \[0, 0\.999\], got 0\.9999999/],
    [{ elastic: { alpha: 34, sigma: 1e-300 } }, /elastic\.sigma must be a finite number in \[0\.01, 64\], got 1e-300/],
    [{ fill: 1e300 }, /fill must be a finite number in \[-3\.4028234663852886e\+38, 3\.4028234663852886e\+38\]/],
  ];
  for (const [o, message] of refused) assert.throws(() => new Augmenter({ shift: 2, ...o, seed: 0 }), message);
  // the bounds themselves: every image finite
  const edges: AugmentOptions[] = [
    { scale: [0.001, 1000] },
    { scale: 0.999 },
    { elastic: { alpha: 34, sigma: 0.01 } },
    { fill: -3.4028234663852886e38 },
  ];
  for (const o of edges) {
    const out = new Augmenter({ shift: 2, ...o, seed: 0 }).apply(images).data;
    assert.ok(out.every(Number.isFinite), `not finite: ${JSON.stringify(o)}`);
  }
});
