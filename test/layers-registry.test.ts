// registerLayer: a user-defined layer saves, loads and gradient-checks like a built-in one.

import { test } from "node:test";
import assert from "node:assert/strict";

import { NDArray } from "../src/nd/ndarray.ts";
import type { RandomState } from "../src/nd/random.ts";
import { Layer, makeParam, reuse, type LayerConfig, type Param } from "../src/nn/layer.ts";
import { Dense } from "../src/nn/dense.ts";
import { Flatten } from "../src/nn/flatten.ts";
import { Sequential } from "../src/nn/sequential.ts";
import { LAYER_TYPES, layerFromConfig, registerLayer, unregisterLayer } from "../src/nn/registry.ts";
import { runGradcheckSuite, summarize } from "../src/nn/checks.ts";
import { deserializeModel, serializeModel } from "../src/io/model-format.ts";
import { randomInput } from "./helpers.ts";

/** y = a ⊙ x + c with a learnable per-feature scale a and a fixed offset c (the option). */
class ScaleShift extends Layer {
  readonly type = "ScaleShift";
  readonly scale: Param;
  private x: NDArray | null = null;
  private y: NDArray | null = null;
  private dx: NDArray | null = null;
  constructor(
    readonly features: number,
    readonly offset = 0,
  ) {
    super();
    this.scale = makeParam("scale", [features]);
    this.scale.value.data.fill(1);
  }
  override params(): Param[] {
    return [this.scale];
  }
  outputShape(s: readonly number[]): number[] {
    return s.slice();
  }
  forward(x: NDArray): NDArray {
    const y = (this.y = reuse(this.y, x.shape, this.scale.value.dtype));
    const a = this.scale.value.data;
    for (let i = 0; i < x.size; i++) y.data[i] = a[i % this.features] * x.data[i] + this.offset;
    this.x = x;
    return y;
  }
  // ∂L/∂a_f += Σ dy·x over the rows, ∂L/∂x = dy ⊙ a
  backward(dy: NDArray): NDArray {
    const x = this.x!;
    const dx = (this.dx = reuse(this.dx, x.shape, x.dtype));
    const a = this.scale.value.data;
    const da = this.scale.grad.data;
    for (let i = 0; i < x.size; i++) {
      da[i % this.features] += dy.data[i] * x.data[i];
      dx.data[i] = dy.data[i] * a[i % this.features];
    }
    return dx;
  }
  config(): LayerConfig {
    return { type: this.type, features: this.features, offset: this.offset };
  }
}

const factory = (c: LayerConfig) => new ScaleShift(c.features as number, c.offset as number);

test("a registered layer saves, loads bit for bit and is gradient-checked by the suite", () => {
  const check = (rng: RandomState) => {
    const layer = new ScaleShift(3, 0.5);
    for (let i = 0; i < 3; i++) layer.scale.value.data[i] = rng.standardNormal();
    const input = new NDArray(
      new Float64Array(6).map(() => rng.standardNormal()),
      [2, 3],
    );
    return { layer, input, config: "F=3 N=2" };
  };
  registerLayer("ScaleShift", factory, { gradcheck: check });
  try {
    assert.ok(LAYER_TYPES.includes("ScaleShift"));
    const model = new Sequential([new Flatten(), new ScaleShift(4, 0.25), new Dense({ outFeatures: 2 })], {
      inputShape: [2, 2],
      seed: 1,
    });
    model.params()[0].value.data.set([1, 2, 3, 4]);
    const saved = serializeModel(model);
    const back = deserializeModel(saved.json, saved.weights).model;
    const x = randomInput([3, 2, 2], 1);
    assert.deepEqual(Array.from(back.predict(x).data), Array.from(model.predict(x).data));
    const row = summarize(runGradcheckSuite({ seed: 0, configsPerLayer: 1 })).find((r) => r.name === "ScaleShift");
    assert.ok(row?.ok && row.configs === 2, JSON.stringify(row));
  } finally {
    unregisterLayer("ScaleShift");
  }
  assert.ok(!LAYER_TYPES.includes("ScaleShift"));
  assert.throws(() => layerFromConfig({ type: "ScaleShift", features: 1 }), /unknown layer type "ScaleShift"/);
});

test("registerLayer refuses built-in names, bad names and factories that build another type", () => {
  assert.throws(() => {
    registerLayer("Conv2D", factory);
  }, /registerLayer: "Conv2D" is a built-in layer type/);
  assert.throws(() => {
    registerLayer("my layer", factory);
  }, /registerLayer: the type must be a name/);
  assert.throws(() => {
    registerLayer("X", 3 as never);
  }, /registerLayer\("X"\): factory must be a function/);
  registerLayer("Mislabelled", factory);
  try {
    assert.throws(
      () => layerFromConfig({ type: "Mislabelled", features: 2 }, "layer 4"),
      /layer 4: the factory for "Mislabelled" built a layer of type "ScaleShift"/,
    );
  } finally {
    unregisterLayer("Mislabelled");
  }
});
