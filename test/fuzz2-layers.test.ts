// Generated stacks of the newer layers with small random options (second fuzzing round): each config
// either is refused when built, with a RangeError or TypeError naming the layer, or gives a model whose
// forward output has the shape outputShape promised and whose forward and backward are finite. (Already
// held when this was written: kept so that a new layer or option keeps its shape inference honest.)
import { test } from "node:test";
import assert from "node:assert/strict";
import fc from "fast-check";
import { NDArray } from "../src/nd/ndarray.ts";
import { sequentialFromConfig } from "../src/nn/registry.ts";
import type { LayerConfig } from "../src/nn/layer.ts";
import { fuzz } from "./fuzz-mutate.ts";

const small = fc.integer({ min: 1, max: 4 });
const pairOrInt = fc.oneof(small, fc.tuple(small, small));
const layer: fc.Arbitrary<LayerConfig> = fc.oneof(
  fc.record({
    type: fc.constant("Conv2D"),
    outChannels: small,
    kernelSize: pairOrInt,
    stride: pairOrInt,
    dilation: pairOrInt,
    padding: fc.constantFrom<unknown>("same", "valid", 1, [1, 2]),
    groups: fc.constantFrom(1, 2),
  }),
  fc.record({
    type: fc.constant("DepthwiseConv2D"),
    kernelSize: pairOrInt,
    stride: pairOrInt,
    dilation: pairOrInt,
    depthMultiplier: small,
    padding: fc.constantFrom("same", "valid"),
  }),
  fc.record({
    type: fc.constant("SeparableConv2D"),
    outChannels: small,
    kernelSize: pairOrInt,
    stride: pairOrInt,
    padding: fc.constantFrom("same", "valid"),
  }),
  fc.record({
    type: fc.constant("Conv2DTranspose"),
    outChannels: small,
    kernelSize: pairOrInt,
    stride: pairOrInt,
    padding: fc.integer({ min: 0, max: 2 }),
    outputPadding: fc.integer({ min: 0, max: 2 }),
    dilation: pairOrInt,
  }),
  fc.record({
    type: fc.constant("UpSampling2D"),
    size: pairOrInt,
    interpolation: fc.constantFrom("nearest", "bilinear"),
  }),
  fc.record({
    type: fc.constant("ZeroPadding2D"),
    padding: fc.oneof(
      fc.integer({ min: 0, max: 2 }),
      fc.tuple(fc.tuple(fc.nat(2), fc.nat(2)), fc.tuple(fc.nat(2), fc.nat(2))),
    ),
  }),
  fc.record({ type: fc.constantFrom("MaxPool2D", "AvgPool2D"), kernelSize: pairOrInt, stride: pairOrInt }),
  fc.record({ type: fc.constant("LayerNorm"), axes: fc.integer({ min: 1, max: 3 }) }),
  fc.record({ type: fc.constant("GroupNorm"), groups: fc.constantFrom(1, 2) }),
  fc.record({
    type: fc.constantFrom(
      "BatchNorm2D",
      "GELU",
      "SiLU",
      "ELU",
      "ReLU",
      "Tanh",
      "GlobalMaxPool2D",
      "GlobalAvgPool2D",
      "Flatten",
    ),
  }),
  fc.record({ type: fc.constant("Permute"), dims: fc.constantFrom([1, 3, 2], [2, 1, 3], [3, 2, 1]) }),
  fc.record({ type: fc.constant("Reshape"), targetShape: fc.constantFrom([-1], [2, -1], [-1, 1, 1]) }),
  fc.record({ type: fc.constant("Dropout"), rate: fc.constantFrom(0, 0.5) }),
);

test("fuzz: generated stacks of the newer layers build consistently or are refused naming the layer", async (t) => {
  let built = 0;
  const runs = await fuzz(fc.tuple(fc.array(layer, { minLength: 1, maxLength: 5 }), small, small), ([layers, C, H]) => {
    const shape = [C, H + 3, H + 4];
    let model;
    try {
      model = sequentialFromConfig({ layers, inputShape: shape });
    } catch (e) {
      assert.ok(e instanceof RangeError || e instanceof TypeError, String(e));
      assert.match(e.message, /^layer \d+ \(\w+\): /);
      return;
    }
    built++;
    const x = new NDArray(
      Float32Array.from({ length: 2 * C * shape[1] * shape[2] }, (_, i) => Math.sin(i)),
      [2, ...shape],
    );
    const expected = model.outputShape(shape);
    const y = model.forward(x, { training: true });
    assert.deepEqual(y.shape.slice(1), expected, JSON.stringify(layers));
    const dx = model.backward(new NDArray(new Float32Array(y.size).fill(0.1), y.shape));
    assert.deepEqual(dx.shape, x.shape);
    assert.ok(y.data.every(Number.isFinite) && dx.data.every(Number.isFinite), JSON.stringify(layers));
  });
  t.diagnostic(`${runs} configs, ${built} built`);
  assert.ok(built > runs / 4);
});
