// Resampling, normalisation, activations, reshapes and merges (src/nn/upsample.ts, norm.ts,
// activations.ts, reshape.ts, merge.ts): values against definitions and known numbers, the Layer
// contract (dy untouched), config round trips through the registry, and construction errors.

import { describe, test } from "node:test";
import assert from "node:assert/strict";

import { NDArray } from "../src/nd/ndarray.ts";
import { RandomState } from "../src/nd/random.ts";
import { transpose } from "../src/nd/ops.ts";
import { UpSampling2D, ZeroPadding2D } from "../src/nn/upsample.ts";
import { GroupNorm, LayerNorm } from "../src/nn/norm.ts";
import { ELU, GELU, SiLU, erf } from "../src/nn/activations.ts";
import { GlobalMaxPool2D, Permute, Reshape } from "../src/nn/reshape.ts";
import { Add, Concatenate, Multiply } from "../src/nn/merge.ts";
import { LAYER_TYPES, layerFromConfig } from "../src/nn/registry.ts";
import type { Layer } from "../src/nn/layer.ts";
import { assertClose } from "./helpers.ts";

function randn(rng: RandomState, shape: readonly number[]): NDArray {
  const x = new NDArray(new Float64Array(shape.reduce((a, b) => a * b, 1)), shape);
  for (let i = 0; i < x.size; i++) x.data[i] = rng.standardNormal();
  return x;
}
const arr = (values: number[], shape: number[]) => new NDArray(Float64Array.from(values), shape);

describe("UpSampling2D and ZeroPadding2D", () => {
  test("nearest repeats pixels; backward sums each block", () => {
    const up = new UpSampling2D({ size: [2, 3] });
    const y = up.forward(arr([1, 2, 3, 4], [1, 1, 2, 2]));
    assert.deepEqual(y.shape, [1, 1, 4, 6]);
    assert.deepEqual(Array.from(y.data.subarray(0, 6)), [1, 1, 1, 2, 2, 2]);
    const dx = up.backward(new NDArray(new Float64Array(24).fill(1), [1, 1, 4, 6]));
    assert.deepEqual(Array.from(dx.data), [6, 6, 6, 6]);
  });

  test("bilinear uses half-pixel centres (PyTorch align_corners=False / TF 2 resize)", () => {
    // torch.nn.functional.interpolate(torch.tensor([[[[1., 2.], [3., 4.]]]]), scale_factor=2, mode="bilinear")
    const y = new UpSampling2D({ interpolation: "bilinear" }).forward(arr([1, 2, 3, 4], [1, 1, 2, 2]));
    const expected = [1, 1.25, 1.75, 2, 1.5, 1.75, 2.25, 2.5, 2.5, 2.75, 3.25, 3.5, 3, 3.25, 3.75, 4];
    assertClose(y, arr(expected, [1, 1, 4, 4]), 1e-15, 1e-15);
  });

  test("ZeroPadding2D pads asymmetrically and crops in backward", () => {
    const zp = new ZeroPadding2D({
      padding: [
        [1, 0],
        [0, 2],
      ],
    });
    const y = zp.forward(arr([1, 2, 3, 4], [1, 1, 2, 2]));
    assert.deepEqual(y.shape, [1, 1, 3, 4]);
    assert.deepEqual(Array.from(y.data), [0, 0, 0, 0, 1, 2, 0, 0, 3, 4, 0, 0]);
    const dy = arr(
      Array.from({ length: 12 }, (_, i) => i),
      [1, 1, 3, 4],
    );
    assert.deepEqual(Array.from(zp.backward(dy).data), [4, 5, 8, 9]);
    assert.deepEqual(zp.config(), {
      type: "ZeroPadding2D",
      padding: [
        [1, 0],
        [0, 2],
      ],
    });
  });
});

describe("LayerNorm and GroupNorm", () => {
  test("LayerNorm over the last axes: zero mean, unit variance per sample, γ and β shaped like those axes", () => {
    const rng = new RandomState(1);
    const ln = new LayerNorm({ axes: 2, eps: 1e-12, dtype: "float64" });
    const x = randn(rng, [3, 2, 4, 5]);
    const y = ln.forward(x);
    assert.deepEqual(ln.gamma!.value.shape, [4, 5]);
    for (let r = 0; r < 6; r++) {
      const row = Array.from(y.data.subarray(r * 20, (r + 1) * 20));
      const mean = row.reduce((a, b) => a + b, 0) / 20;
      const variance = row.reduce((a, b) => a + (b - mean) ** 2, 0) / 20;
      assert.ok(Math.abs(mean) < 1e-12 && Math.abs(variance - 1) < 1e-9, `${mean} ${variance}`);
    }
    assert.throws(
      () => ln.forward(randn(rng, [3, 2, 4, 6])),
      /LayerNorm: expected samples ending in \(4, 5\) \(normalizedShape\), got samples of shape \(2, 4, 6\)/,
    );
  });

  test("GroupNorm with G = 1 equals LayerNorm over (C, H, W) when γ, β are per channel and 1, 0", () => {
    const rng = new RandomState(2);
    const x = randn(rng, [2, 4, 3, 3]);
    const gn = new GroupNorm({ groups: 1, dtype: "float64" });
    const ln = new LayerNorm({ axes: 3, dtype: "float64" });
    assertClose(gn.forward(x), ln.forward(x), 1e-13, 1e-13);
    assert.deepEqual(gn.gamma!.value.shape, [4]);
  });

  test("GroupNorm errors name the layer: groups not dividing the channels, a channel count that changed", () => {
    assert.throws(
      () => new GroupNorm({ groups: 3 }).outputShape([4, 2, 2]),
      /GroupNorm: the 4 channels cannot be split into 3 groups/,
    );
    assert.throws(
      () => new GroupNorm({ groups: 2, numChannels: 4 }).outputShape([6, 2, 2]),
      /GroupNorm: expected 4 channels \(numChannels\), got 6/,
    );
    assert.throws(() => new GroupNorm({ groups: 0 }), /GroupNorm: groups must be a positive integer/);
    assert.throws(() => new LayerNorm({ eps: -1 }), /LayerNorm: eps must be a positive number/);
  });
});

describe("GELU, SiLU, ELU", () => {
  test("erf agrees with known values to a few ulps", () => {
    // Python math.erf
    const known: [number, number][] = [
      [0.1, 0.1124629160182849],
      [0.5, 0.5204998778130465],
      [1, 0.8427007929497149],
      [2, 0.9953222650189527],
      [3, 0.9999779095030014],
      [5, 0.9999999999984626],
      [-1.5, -0.9661051464753108],
    ];
    for (const [x, e] of known) assert.ok(Math.abs(erf(x) - e) <= 4e-16, `erf(${x}) = ${erf(x)}, expected ${e}`);
  });

  test("GELU(1): exact 0.8413447460685429, tanh form 0.8411919906082768 (PyTorch)", () => {
    const x = arr([1, -2, 0], [1, 3]);
    const exact = new GELU().forward(x);
    assert.ok(Math.abs(exact.data[0] - 0.8413447460685429) < 1e-15);
    assert.ok(Math.abs(exact.data[1] - -0.04550026389635842) < 1e-15);
    const approx = new GELU({ approximate: "tanh" }).forward(x);
    assert.ok(Math.abs(approx.data[0] - 0.8411919906082768) < 1e-15);
    assert.throws(() => new GELU({ approximate: "fast" as never }), /GELU: approximate must be "none" or "tanh"/);
  });

  test("SiLU and ELU values", () => {
    const x = arr([2, -1], [1, 2]);
    const s = new SiLU().forward(x);
    assert.ok(Math.abs(s.data[0] - 2 / (1 + Math.exp(-2))) < 1e-15);
    const e = new ELU({ alpha: 0.5 }).forward(x);
    assert.deepEqual(Array.from(e.data), [2, 0.5 * Math.expm1(-1)]);
    assert.throws(() => new ELU({ alpha: NaN }), /ELU: alpha must be a finite number/);
  });
});

describe("Reshape, Permute, GlobalMaxPool2D", () => {
  test("Permute matches np.transpose over the sample axes, backward inverts it", () => {
    const rng = new RandomState(3);
    const x = randn(rng, [2, 3, 4, 5]);
    const p = new Permute({ dims: [3, 1, 2] });
    const y = p.forward(x);
    assert.deepEqual(Array.from(y.data), Array.from(transpose(x, [0, 3, 1, 2]).data));
    const dx = p.backward(y);
    assert.deepEqual(Array.from(dx.data), Array.from(x.data));
    assert.throws(() => new Permute({ dims: [1, 3] }), /Permute: dims must be a permutation of 1…r/);
    assert.throws(() => p.outputShape([3, 4]), /Permute: dims \[3,1,2\] permute 3 axes/);
  });

  test("Reshape infers −1 and names bad shapes", () => {
    const r = new Reshape({ targetShape: [-1, 4] });
    assert.deepEqual(r.outputShape([2, 3, 4]), [6, 4]);
    assert.throws(
      () => r.outputShape([5]),
      /Reshape: cannot reshape samples of shape \(5,\) \(5 values\) to \(-1, 4\)/,
    );
    assert.throws(() => new Reshape({ targetShape: [-1, -1] }), /at most one -1/);
  });

  test("GlobalMaxPool2D takes the max per channel and routes the gradient to it", () => {
    const g = new GlobalMaxPool2D();
    const y = g.forward(arr([1, 5, 3, 2, -1, -7, -3, -2], [1, 2, 2, 2]));
    assert.deepEqual(Array.from(y.data), [5, -1]);
    assert.deepEqual(Array.from(g.backward(arr([10, 20], [1, 2])).data), [0, 10, 0, 0, 20, 0, 0, 0]);
  });
});

describe("merge layers", () => {
  test("Add, Multiply, Concatenate: values, gradients, dy untouched", () => {
    const a = arr([1, 2, 3, 4], [1, 4]);
    const b = arr([5, 6, 7, 8], [1, 4]);
    const add = new Add();
    assert.deepEqual(Array.from(add.forwardInputs([a, b]).data), [6, 8, 10, 12]);
    const dy = arr([1, -1, 2, -2], [1, 4]);
    const [da, db] = add.backwardInputs(dy);
    assert.deepEqual(Array.from(da.data), Array.from(dy.data));
    assert.notEqual(da, dy);
    assert.notEqual(da, db);
    const mul = new Multiply();
    assert.deepEqual(Array.from(mul.forwardInputs([a, b]).data), [5, 12, 21, 32]);
    assert.deepEqual(Array.from(mul.backwardInputs(dy)[0].data), [5, -6, 14, -16]);
    const cat = new Concatenate({ axis: -1 });
    const c = cat.forwardInputs([a, arr([9, 10], [1, 2])]);
    assert.deepEqual(Array.from(c.data), [1, 2, 3, 4, 9, 10]);
    const [d1, d2] = cat.backwardInputs(arr([1, 2, 3, 4, 5, 6], [1, 6]));
    assert.deepEqual(
      [Array.from(d1.data), Array.from(d2.data)],
      [
        [1, 2, 3, 4],
        [5, 6],
      ],
    );
    assert.deepEqual(Array.from(dy.data), [1, -1, 2, -2]);
  });

  test("shape errors name the layer and both shapes", () => {
    assert.throws(
      () =>
        new Add().inferShape([
          [3, 4, 4],
          [2, 4, 4],
        ]),
      /Add: input 1 has shape \(2, 4, 4\) but input 0 has \(3, 4, 4\)/,
    );
    assert.throws(
      () =>
        new Concatenate().inferShape([
          [3, 4, 4],
          [2, 5, 4],
        ]),
      /Concatenate: input 1 has shape \(2, 5, 4\) but input 0 has \(3, 4, 4\); they may differ only along axis 1/,
    );
    assert.throws(() => new Add().inferShape([[3]]), /Add: takes two or more inputs, got 1/);
    assert.throws(() => new Concatenate({ axis: 0 }), /Concatenate: axis 0 is the batch axis/);
  });
});

test("every registered layer type rebuilds from its config()", () => {
  const samples: Layer[] = [
    new UpSampling2D({ size: [2, 1], interpolation: "bilinear" }),
    new ZeroPadding2D({ padding: 2 }),
    new LayerNorm({ axes: 2, eps: 1e-3, affine: false }),
    new GroupNorm({ groups: 2, numChannels: 4 }),
    new GELU({ approximate: "tanh" }),
    new SiLU(),
    new ELU({ alpha: 0.2 }),
    new Reshape({ targetShape: [4, -1] }),
    new Permute({ dims: [2, 1] }),
    new GlobalMaxPool2D(),
    new Add(),
    new Multiply(),
    new Concatenate({ axis: 2 }),
  ];
  for (const l of samples) {
    assert.ok(LAYER_TYPES.includes(l.type), `${l.type} registered`);
    assert.deepEqual(layerFromConfig(l.config()).config(), l.config());
  }
});
