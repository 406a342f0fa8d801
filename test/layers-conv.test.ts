// Grouped, depthwise, separable and transposed convolutions (src/nn/conv.ts, depthwise.ts, transpose.ts):
// against the seven-loop reference conv applied group by group, the adjoint identity
// <conv(x), y> = <x, convT(y)> (fast-check), shapes, configs and construction errors.

import { describe, test } from "node:test";
import assert from "node:assert/strict";
import fc from "fast-check";

import { NDArray } from "../src/nd/ndarray.ts";
import { RandomState } from "../src/nd/random.ts";
import { conv2dForwardRef } from "../src/kernels/js.ts";
import { Conv2D } from "../src/nn/conv.ts";
import { DepthwiseConv2D, SeparableConv2D } from "../src/nn/depthwise.ts";
import { Conv2DTranspose } from "../src/nn/transpose.ts";
import { layerFromConfig } from "../src/nn/registry.ts";
import { ShapeError } from "../src/nn/layer.ts";
import { assertClose } from "./helpers.ts";

function randn(rng: RandomState, shape: readonly number[]): NDArray {
  const x = new NDArray(new Float64Array(shape.reduce((a, b) => a * b, 1)), shape);
  for (let i = 0; i < x.size; i++) x.data[i] = rng.standardNormal();
  return x;
}

/** Channels [from, to) of an (N, C, H, W) array. */
function channels(x: NDArray, from: number, to: number): NDArray {
  const [N, C, H, W] = x.shape;
  const out = new NDArray(new Float64Array(N * (to - from) * H * W), [N, to - from, H, W]);
  for (let n = 0; n < N; n++)
    out.data.set(x.data.subarray((n * C + from) * H * W, (n * C + to) * H * W), n * (to - from) * H * W);
  return out;
}

/** Grouped convolution by definition: group g is an ordinary conv of input block g with weight block g. */
function groupedRef(
  x: NDArray,
  w: NDArray,
  b: NDArray | null,
  G: number,
  stride: [number, number],
  pad: [number, number, number, number],
  dilation: [number, number] = [1, 1],
): NDArray {
  const C = x.shape[1];
  const O = w.shape[0];
  const parts = Array.from({ length: G }, (_, g) => {
    const wg = new NDArray(w.data.slice(((g * O) / G) * (w.size / O), (((g + 1) * O) / G) * (w.size / O)), [
      O / G,
      ...w.shape.slice(1),
    ]);
    const bg = b ? new NDArray(b.data.slice((g * O) / G, ((g + 1) * O) / G), [O / G]) : null;
    return conv2dForwardRef(channels(x, (g * C) / G, ((g + 1) * C) / G), wg, bg, { stride, padding: pad, dilation });
  });
  const [N, , OH, OW] = parts[0].shape;
  const y = new NDArray(new Float64Array(N * O * OH * OW), [N, O, OH, OW]);
  for (let n = 0; n < N; n++)
    parts.forEach((p, g) => {
      y.data.set(p.data.subarray(n * (O / G) * OH * OW, (n + 1) * (O / G) * OH * OW), (n * O + (g * O) / G) * OH * OW);
    });
  return y;
}

describe("Conv2D groups and DepthwiseConv2D", () => {
  test("a grouped Conv2D equals G independent convolutions (randomized)", () => {
    const rng = new RandomState(3);
    for (let trial = 0; trial < 12; trial++) {
      const G = 1 + Math.floor(rng.nextDouble() * 3);
      const C = G * (1 + Math.floor(rng.nextDouble() * 2));
      const O = G * (1 + Math.floor(rng.nextDouble() * 3));
      const k = 1 + Math.floor(rng.nextDouble() * 3);
      const s = 1 + Math.floor(rng.nextDouble() * 2);
      const p = Math.floor(rng.nextDouble() * 2);
      const layer = new Conv2D({
        inChannels: C,
        outChannels: O,
        groups: G,
        kernelSize: k,
        stride: s,
        padding: p,
        dtype: "float64",
        rng,
      });
      const x = randn(rng, [2, C, 5, 6]);
      const b = layer.bias!.value;
      for (let i = 0; i < b.size; i++) b.data[i] = rng.standardNormal();
      const y = layer.forward(x);
      assertClose(
        y,
        groupedRef(x, layer.weight.value, b, G, [s, s], [p, p, p, p]),
        1e-12,
        1e-12,
        `G=${G} C=${C} O=${O} k=${k}`,
      );
      assert.deepEqual(layer.weight.value.shape, [O, C / G, k, k]);
    }
  });

  test("the direct depthwise loops (one input channel per group) equal G convolutions: strides, dilation, 'same'", () => {
    const rng = new RandomState(8);
    for (const [k, s, d, pad] of [
      [3, 2, 1, "same"],
      [2, 1, 2, "same"],
      [3, 3, 1, 1],
      [1, 2, 1, "valid"],
      [3, 1, 2, 2],
    ] as const) {
      const C = 3;
      const layer = new Conv2D({
        inChannels: C,
        outChannels: 2 * C,
        groups: C,
        kernelSize: k,
        stride: s,
        dilation: d,
        padding: pad,
        dtype: "float64",
        rng,
      });
      const b = layer.bias!.value;
      for (let i = 0; i < b.size; i++) b.data[i] = rng.standardNormal();
      const x = randn(rng, [2, C, 7, 6]);
      const y = layer.forward(x);
      const p4 = layer.paddingFor(7, 6);
      assertClose(
        y,
        groupedRef(x, layer.weight.value, b, C, [s, s], p4, [d, d]),
        1e-12,
        1e-12,
        `k=${k} s=${s} d=${d} p=${String(pad)}`,
      );
    }
  });

  test("float32 grouped Conv2D (JS loops) matches float64 to float32 precision", () => {
    const rng = new RandomState(4);
    const l64 = new Conv2D({
      inChannels: 3,
      outChannels: 6,
      groups: 3,
      kernelSize: 3,
      padding: "same",
      dtype: "float64",
      rng,
    });
    const l32 = new Conv2D({ inChannels: 3, outChannels: 6, groups: 3, kernelSize: 3, padding: "same" });
    l32.weight.value.data.set(l64.weight.value.data);
    const x = randn(rng, [2, 3, 7, 7]);
    assertClose(l32.forward(x.astype("float32")).astype("float64"), l64.forward(x), 1e-4, 1e-5);
  });

  test("DepthwiseConv2D is Conv2D with groups = C and O = C·M", () => {
    const rng = new RandomState(5);
    const dw = new DepthwiseConv2D({ depthMultiplier: 2, kernelSize: 3, stride: 2, padding: 1, dtype: "float64", rng });
    const x = randn(rng, [2, 3, 7, 8]);
    const y = dw.forward(x);
    assert.deepEqual(y.shape, [2, 6, 4, 4]);
    assert.equal(dw.inChannels, 3);
    assert.deepEqual(dw.weight.value.shape, [6, 1, 3, 3]);
    const ref = new Conv2D({
      inChannels: 3,
      outChannels: 6,
      groups: 3,
      kernelSize: 3,
      stride: 2,
      padding: 1,
      dtype: "float64",
    });
    ref.weight.value.data.set(dw.weight.value.data);
    assert.deepEqual(Array.from(y.data), Array.from(ref.forward(x).data));
    assert.deepEqual(dw.config(), {
      type: "DepthwiseConv2D",
      inChannels: 3,
      kernelSize: 3,
      stride: 2,
      padding: 1,
      dilation: 1,
      bias: true,
      init: "he_normal",
      depthMultiplier: 2,
    });
  });

  test("SeparableConv2D = pointwise(depthwise(x)), params named by part, config round trip", () => {
    const rng = new RandomState(6);
    const sep = new SeparableConv2D({ outChannels: 4, kernelSize: 3, padding: "same", dtype: "float64", rng });
    const x = randn(rng, [1, 2, 5, 5]);
    const y = sep.forward(x);
    assert.deepEqual(y.shape, [1, 4, 5, 5]);
    assert.deepEqual(
      sep.params().map((p) => p.name),
      ["depthwise.weight", "pointwise.weight", "pointwise.bias"],
    );
    const back = layerFromConfig(sep.config());
    assert.equal(back.type, "SeparableConv2D");
    assert.deepEqual(back.outputShape([2, 5, 5]), [4, 5, 5]);
    assert.deepEqual(
      back.params().map((p) => p.value.shape),
      sep.params().map((p) => p.value.shape),
    );
  });

  test("construction and shape errors name the layer and the option", () => {
    assert.throws(
      () => new Conv2D({ outChannels: 5, groups: 2, kernelSize: 3 }),
      /Conv2D: outChannels \(5\) must be a multiple of groups \(2\)/,
    );
    assert.throws(
      () => new Conv2D({ inChannels: 3, outChannels: 4, groups: 2, kernelSize: 3 }),
      /input channels \(3\) must be a multiple of groups \(2\)/,
    );
    assert.throws(
      () => new Conv2D({ outChannels: 4, groups: 0, kernelSize: 3 }),
      /Conv2D: groups must be a positive integer, got 0/,
    );
    assert.throws(
      () => new DepthwiseConv2D({ kernelSize: 3, depthMultiplier: 1.5 }),
      /DepthwiseConv2D: depthMultiplier must be a positive integer/,
    );
    assert.throws(
      () => new DepthwiseConv2D({ kernelSize: 3, outChannels: 4 } as never),
      /DepthwiseConv2D: outChannels is inChannels·depthMultiplier/,
    );
    assert.throws(
      () => new DepthwiseConv2D({ kernelSize: 3, padding: "full" as never }),
      /DepthwiseConv2D: padding must be/,
    );
    const conv = new Conv2D({ outChannels: 2, kernelSize: 3 });
    assert.throws(() => conv.weight, /Conv2D: weight is not known yet: give inChannels, or build the model/);
    conv.outputShape([3, 8, 8]);
    assert.throws(
      () => conv.outputShape([4, 8, 8]),
      (e) => e instanceof ShapeError && /expected input samples of shape \(3, H, W\), got \(4, 8, 8\)/.test(e.message),
    );
  });
});

describe("Conv2DTranspose", () => {
  test("is the adjoint of Conv2D: <conv(x), y> = <x, convT(y)> (fast-check)", () => {
    fc.assert(
      fc.property(
        fc.record({
          k: fc.integer({ min: 1, max: 3 }),
          s: fc.integer({ min: 1, max: 3 }),
          p: fc.integer({ min: 0, max: 2 }),
          d: fc.integer({ min: 1, max: 2 }),
          C: fc.integer({ min: 1, max: 3 }),
          O: fc.integer({ min: 1, max: 3 }),
          H: fc.integer({ min: 1, max: 7 }),
          W: fc.integer({ min: 1, max: 7 }),
          seed: fc.integer({ min: 0, max: 1e6 }),
        }),
        ({ k, s, p, d, C, O, H, W, seed }) => {
          const span = d * (k - 1) + 1;
          fc.pre(H + 2 * p >= span && W + 2 * p >= span);
          const rng = new RandomState(seed);
          const conv = new Conv2D({
            inChannels: C,
            outChannels: O,
            kernelSize: k,
            stride: s,
            padding: p,
            dilation: d,
            bias: false,
            dtype: "float64",
            rng,
          });
          const x = randn(rng, [2, C, H, W]);
          const cx = conv.forward(x);
          const [, , OH, OW] = cx.shape;
          // the output padding that makes convT's output exactly H × W
          const oph = (H + 2 * p - span) % s;
          const opw = (W + 2 * p - span) % s;
          const convT = new Conv2DTranspose({
            inChannels: O,
            outChannels: C,
            kernelSize: k,
            stride: s,
            padding: p,
            outputPadding: [oph, opw],
            dilation: d,
            bias: false,
            dtype: "float64",
          });
          convT.weight.value.data.set(conv.weight.value.data); // the same (O, C, kh, kw) array
          const y = randn(rng, [2, O, OH, OW]);
          const ty = convT.forward(y);
          assert.deepEqual(ty.shape, x.shape);
          let lhs = 0;
          let rhs = 0;
          for (let i = 0; i < cx.size; i++) lhs += cx.data[i] * y.data[i];
          for (let i = 0; i < x.size; i++) rhs += x.data[i] * ty.data[i];
          assert.ok(Math.abs(lhs - rhs) <= 1e-10 * Math.max(1, Math.abs(lhs)), `${lhs} vs ${rhs}`);
        },
      ),
      { numRuns: 60, seed: 7 },
    );
  });

  test("output sizes follow PyTorch's formula; a 1×1 input with stride 2 and k 3 gives 3×3", () => {
    const t = new Conv2DTranspose({ outChannels: 2, kernelSize: 3, stride: 2, padding: 1, outputPadding: 1 });
    assert.deepEqual(t.outputShape([4, 7, 7]), [2, 14, 14]); // (7−1)·2 − 2 + 3 + 1
    const one = new Conv2DTranspose({
      inChannels: 1,
      outChannels: 1,
      kernelSize: 3,
      stride: 2,
      bias: false,
      dtype: "float64",
    });
    one.weight.value.data.set([1, 2, 3, 4, 5, 6, 7, 8, 9]);
    const y = one.forward(new NDArray(Float64Array.from([2]), [1, 1, 1, 1]));
    assert.deepEqual(Array.from(y.data), [2, 4, 6, 8, 10, 12, 14, 16, 18]);
  });

  test("errors: output padding too large, padding that crops everything, wrong channels", () => {
    assert.throws(
      () => new Conv2DTranspose({ outChannels: 1, kernelSize: 3, stride: 2, outputPadding: 2 }),
      /Conv2DTranspose: outputPadding\[0\] \(2\) must be smaller than max\(stride, dilation\) = 2/,
    );
    const t = new Conv2DTranspose({ outChannels: 1, kernelSize: 1, padding: 1 });
    assert.throws(() => t.outputShape([1, 1, 1]), /crops the whole/);
    const u = new Conv2DTranspose({ inChannels: 3, outChannels: 1, kernelSize: 2 });
    assert.throws(() => u.outputShape([2, 4, 4]), /expected input samples of shape \(3, H, W\)/);
  });
});
