// Tests for Conv2D (src/nn/conv.ts): the im2col + GEMM path against the seven-loop reference
// (conv2dForwardRef in src/kernels/js.ts) on randomized shapes, against scipy-compatible correlate2d, finite-difference
// gradient checks, the Layer contract (dy untouched, gradients accumulate, buffers reused), TF "same"
// sizes, and the error messages of bad options and shapes.

import { describe, test } from "node:test";
import assert from "node:assert/strict";
import fc from "fast-check";

import { NDArray, type DType } from "../src/nd/ndarray.ts";
import { RandomState } from "../src/nd/random.ts";
import { correlate2d } from "../src/nd/signal.ts";
import { col2im, colSize, convGeometry, im2col } from "../src/kernels/im2col.ts";
import { conv2dBackwardRef, conv2dForwardRef } from "../src/kernels/js.ts";
import { Conv2D, samePadding, type Conv2DOptions, type Conv2DPadding } from "../src/nn/conv.ts";
import { gradcheck } from "../src/nn/gradcheck.ts";
import { ShapeError } from "../src/nn/layer.ts";
import { assertClose } from "./helpers.ts";

function randn(rng: RandomState, shape: readonly number[], dtype: DType = "float64"): NDArray {
  const n = shape.reduce((a, b) => a * b, 1);
  const data = dtype === "float32" ? new Float32Array(n) : new Float64Array(n);
  for (let i = 0; i < n; i++) data[i] = rng.standardNormal();
  return new NDArray(data, shape);
}

/** A float64 layer with random weights and (if any) random bias, so the bias path is exercised too. */
function makeLayer(opts: Conv2DOptions, seed: number): Conv2D {
  const rng = new RandomState(seed);
  const layer = new Conv2D({ dtype: "float64", rng, ...opts });
  if (layer.bias) for (let i = 0; i < layer.bias.value.size; i++) layer.bias.value.data[i] = rng.standardNormal();
  return layer;
}

/** TF's documented "same" rule (tf.nn, "SAME" padding), written the other way round from samePadding. */
function tfSame(size: number, k: number, s: number, d = 1): { out: number; before: number; after: number } {
  const kEff = d * (k - 1) + 1;
  const total = size % s === 0 ? Math.max(kEff - s, 0) : Math.max(kEff - (size % s), 0);
  return { out: Math.ceil(size / s), before: Math.floor(total / 2), after: total - Math.floor(total / 2) };
}

interface Case {
  N: number;
  C: number;
  O: number;
  kh: number;
  kw: number;
  sh: number;
  sw: number;
  dh: number;
  dw: number;
  padding: Conv2DPadding;
  extraH: number;
  extraW: number;
  bias: boolean;
  seed: number;
}

const caseArb: fc.Arbitrary<Case> = fc.record({
  N: fc.integer({ min: 1, max: 3 }),
  C: fc.integer({ min: 1, max: 4 }),
  O: fc.integer({ min: 1, max: 4 }),
  kh: fc.integer({ min: 1, max: 5 }),
  kw: fc.integer({ min: 1, max: 5 }),
  sh: fc.integer({ min: 1, max: 3 }),
  sw: fc.integer({ min: 1, max: 3 }),
  dh: fc.integer({ min: 1, max: 3 }),
  dw: fc.integer({ min: 1, max: 3 }),
  padding: fc.oneof(
    fc.constant<Conv2DPadding>("same"),
    fc.constant<Conv2DPadding>("valid"),
    fc.integer({ min: 0, max: 3 }),
    fc.tuple(fc.integer({ min: 0, max: 3 }), fc.integer({ min: 0, max: 3 })),
  ),
  extraH: fc.integer({ min: 0, max: 6 }),
  extraW: fc.integer({ min: 0, max: 6 }),
  bias: fc.boolean(),
  seed: fc.nat({ max: 2 ** 31 - 1 }),
});

/** Smallest input size that fits the dilated kernel under this padding, plus `extra`. */
function inputSize(k: number, d: number, pad: Conv2DPadding, axis: 0 | 1, extra: number): number {
  const kEff = d * (k - 1) + 1;
  const total = pad === "same" ? kEff : pad === "valid" ? 0 : typeof pad === "number" ? 2 * pad : 2 * pad[axis];
  return Math.max(1, kEff - total) + extra;
}

function setup(c: Case): { layer: Conv2D; x: NDArray; dy: NDArray; pad: [number, number, number, number] } {
  const layer = makeLayer(
    {
      inChannels: c.C,
      outChannels: c.O,
      kernelSize: [c.kh, c.kw],
      stride: [c.sh, c.sw],
      dilation: [c.dh, c.dw],
      padding: c.padding,
      bias: c.bias,
    },
    c.seed,
  );
  const H = inputSize(c.kh, c.dh, c.padding, 0, c.extraH);
  const W = inputSize(c.kw, c.dw, c.padding, 1, c.extraW);
  const rng = new RandomState(c.seed + 1);
  const x = randn(rng, [c.N, c.C, H, W]);
  const [, OH, OW] = layer.outputShape([c.C, H, W]);
  const dy = randn(rng, [c.N, c.O, OH, OW]);
  return { layer, x, dy, pad: layer.paddingFor(H, W) };
}

describe("Conv2D fast path vs seven-loop reference", () => {
  test("forward, dx, dW, db agree on randomized shapes (float64)", () => {
    fc.assert(
      fc.property(caseArb, (c) => {
        const { layer, x, dy, pad } = setup(c);
        const opts = { stride: layer.stride, padding: pad, dilation: layer.dilation };
        const y = layer.forward(x);
        const yRef = conv2dForwardRef(x, layer.weight.value, layer.bias?.value ?? null, opts);
        assertClose(y, yRef, 1e-12, 1e-12, "y");

        layer.zeroGrad();
        const dx = layer.backward(dy);
        const ref = conv2dBackwardRef(x, layer.weight.value, dy, opts);
        assertClose(dx, ref.dx, 1e-12, 1e-12, "dx");
        assertClose(layer.weight.grad, ref.dw, 1e-12, 1e-12, "dW");
        if (layer.bias) assertClose(layer.bias.grad, ref.db, 1e-12, 1e-12, "db");
      }),
      { seed: 20240601, numRuns: 200 },
    );
  });

  test("buffers are reused across batches, and a new batch shape re-plans", () => {
    const layer = makeLayer({ inChannels: 2, outChannels: 3, kernelSize: 3, stride: 2, padding: "same" }, 1);
    const rng = new RandomState(2);
    const x1 = randn(rng, [2, 2, 7, 6]);
    const y1 = layer.forward(x1);
    const y1Again = layer.forward(randn(rng, [2, 2, 7, 6]));
    assert.equal(y1Again, y1, "same batch shape: same output buffer");
    const dx1 = layer.backward(randn(rng, y1.shape));
    assert.equal(layer.backward(randn(rng, y1.shape)), dx1, "same batch shape: same dx buffer");

    const x2 = randn(rng, [3, 2, 5, 9]);
    const y2 = layer.forward(x2);
    assert.deepEqual(y2.shape, [3, 3, 3, 5]);
    const pad = layer.paddingFor(5, 9);
    assertClose(
      y2,
      conv2dForwardRef(x2, layer.weight.value, layer.bias!.value, { stride: [2, 2], padding: pad }),
      1e-12,
      1e-12,
      "y after re-plan",
    );
  });
});

describe("Conv2D vs scipy-compatible correlate2d", () => {
  test("single channel, stride 1, valid == correlate2d(x, w, 'valid')", () => {
    const rng = new RandomState(3);
    for (const [H, W, kh, kw] of [
      [7, 9, 3, 3],
      [6, 5, 2, 4],
      [5, 5, 5, 5],
      [8, 3, 1, 2],
    ]) {
      const layer = makeLayer({ inChannels: 1, outChannels: 1, kernelSize: [kh, kw], bias: false }, H * 100 + kw);
      const x = randn(rng, [1, 1, H, W]);
      const y = layer.forward(x);
      const expected = correlate2d(
        new NDArray(x.data, [H, W]),
        new NDArray(layer.weight.value.data, [kh, kw]),
        "valid",
      );
      assertClose(new NDArray(y.data, [y.shape[2], y.shape[3]]), expected, 1e-12, 1e-12, `valid ${kh}x${kw}`);
    }
  });

  test("single channel, stride 1, 'same' == correlate2d(x, w, 'same') for odd and even kernels", () => {
    // TF puts the odd padding row at the bottom; SciPy's 'same' correlation shifts by ⌊(k−1)/2⌋: the same thing.
    const rng = new RandomState(4);
    for (const [H, W, kh, kw] of [
      [7, 9, 3, 3],
      [6, 5, 2, 4],
      [5, 6, 4, 5],
      [4, 4, 1, 6],
    ]) {
      const layer = makeLayer(
        { inChannels: 1, outChannels: 1, kernelSize: [kh, kw], padding: "same", bias: false },
        H * 100 + kw,
      );
      const x = randn(rng, [1, 1, H, W]);
      const y = layer.forward(x);
      const expected = correlate2d(new NDArray(x.data, [H, W]), new NDArray(layer.weight.value.data, [kh, kw]), "same");
      assertClose(new NDArray(y.data, [H, W]), expected, 1e-12, 1e-12, `same ${kh}x${kw}`);
    }
  });
});

describe("Conv2D gradcheck", () => {
  test("≤ 1e-6 on randomized configurations (float64)", (t) => {
    const rng = new RandomState(5);
    const pick = (lo: number, hi: number): number => lo + Math.floor(rng.nextDouble() * (hi - lo + 1));
    const paddings: Conv2DPadding[] = ["valid", "same", 1, [2, 0], [0, 1]];
    let worst = 0;
    for (let k = 0; k < 10; k++) {
      const c: Case = {
        N: pick(1, 2),
        C: pick(1, 3),
        O: pick(1, 3),
        kh: pick(1, 3),
        kw: pick(1, 3),
        sh: pick(1, 2),
        sw: pick(1, 2),
        dh: pick(1, 2),
        dw: pick(1, 2),
        padding: paddings[k % paddings.length],
        extraH: pick(0, 3),
        extraW: pick(0, 3),
        bias: k % 3 !== 2,
        seed: 100 + k,
      };
      const { layer, x } = setup(c);
      const r = gradcheck(layer, x, { seed: k, maxPerTensor: 60 });
      const desc = `N${c.N} C${c.C}→O${c.O} k${c.kh}×${c.kw} s${c.sh}×${c.sw} d${c.dh}×${c.dw} pad ${JSON.stringify(c.padding)} x ${x.shape.join("×")}`;
      t.diagnostic(`${desc}: max rel error ${r.maxRelError.toExponential(2)}`);
      assert.ok(r.ok && r.maxRelError <= 1e-6, `${desc}: ${JSON.stringify(r.tensors)}`);
      for (const tc of r.tensors)
        assert.ok(
          tc.checked > 0 && tc.skippedKinks === 0,
          `${desc}: ${tc.tensor} checked ${tc.checked}, skipped ${tc.skippedKinks}`,
        );
      worst = Math.max(worst, r.maxRelError);
    }
    t.diagnostic(`worst max rel error over 10 configs: ${worst.toExponential(2)}`);
  });
});

describe("Conv2D layer contract", () => {
  const opts: Conv2DOptions = {
    inChannels: 3,
    outChannels: 2,
    kernelSize: [3, 2],
    stride: [2, 1],
    padding: [1, 0],
    dilation: [1, 2],
  };

  test("backward leaves dy untouched", () => {
    const layer = makeLayer(opts, 6);
    const rng = new RandomState(7);
    const y = layer.forward(randn(rng, [2, 3, 7, 8]));
    const dy = randn(rng, y.shape);
    const before = dy.data.slice();
    layer.backward(dy);
    assert.deepEqual(dy.data, before);
  });

  test("dW and db accumulate: two backward calls give twice one call; dx does not accumulate", () => {
    const layer = makeLayer(opts, 8);
    const rng = new RandomState(9);
    const x = randn(rng, [2, 3, 7, 8]);
    const y = layer.forward(x);
    const dy = randn(rng, y.shape);
    layer.zeroGrad();
    const dx1 = layer.backward(dy).data.slice();
    const dW1 = layer.weight.grad.data.slice();
    const db1 = layer.bias!.grad.data.slice();
    const dx2 = layer.backward(dy).data.slice();
    // (equal up to rounding: each call adds its per-image terms onto the running sum)
    assertClose(
      layer.weight.grad,
      new NDArray(
        dW1.map((v) => 2 * v),
        layer.weight.grad.shape,
      ),
      1e-14,
      1e-14,
      "dW after two calls",
    );
    assertClose(
      layer.bias!.grad,
      new NDArray(
        db1.map((v) => 2 * v),
        [2],
      ),
      1e-14,
      1e-14,
      "db after two calls",
    );
    assert.deepEqual(dx2, dx1);
    // and across forward/backward pairs, as in gradient accumulation over micro-batches
    layer.forward(x);
    layer.backward(dy);
    assertClose(
      layer.weight.grad,
      new NDArray(
        dW1.map((v) => 3 * v),
        layer.weight.grad.shape,
      ),
      1e-14,
      1e-14,
      "dW after three calls",
    );
  });

  test("backward before forward, and dy of the wrong shape, throw", () => {
    const layer = makeLayer(opts, 10);
    assert.throws(
      () => layer.backward(new NDArray(new Float64Array(4), [1, 2, 2, 1])),
      /Conv2D: backward called before forward/,
    );
    layer.forward(new NDArray(new Float64Array(3 * 49), [1, 3, 7, 7]));
    assert.throws(
      () => layer.backward(new NDArray(new Float64Array(4), [1, 2, 2, 1])),
      (e: unknown) => e instanceof ShapeError && /backward expected dy of shape \(1, 2, 4, 5\)/.test(e.message),
    );
  });

  test("float32 forward agrees with float64 within 1e-5", () => {
    const rng = new RandomState(11);
    const layer32 = new Conv2D({ ...opts, dtype: "float32", rng: new RandomState(12) });
    const layer64 = new Conv2D({ ...opts, dtype: "float64" });
    layer64.weight.value.data.set(layer32.weight.value.data);
    for (let o = 0; o < 2; o++) layer32.bias!.value.data[o] = layer64.bias!.value.data[o] = Math.fround(0.1 * (o + 1));
    const x32 = randn(rng, [2, 3, 9, 8], "float32");
    const y32 = layer32.forward(x32);
    const y64 = layer64.forward(x32.astype("float64"));
    assert.equal(y32.dtype, "float32");
    for (let i = 0; i < y64.size; i++) {
      assert.ok(
        Math.abs(y32.data[i] - y64.data[i]) <= 1e-5 * Math.max(1, Math.abs(y64.data[i])),
        `element ${i}: ${y32.data[i]} vs ${y64.data[i]}`,
      );
    }
    const dx32 = layer32.backward(randn(rng, y32.shape, "float32"));
    assert.equal(dx32.dtype, "float32");
  });

  test("config() rebuilds the same layer, padding as given", () => {
    for (const o of [
      opts,
      {
        inChannels: 1,
        outChannels: 4,
        kernelSize: 5,
        padding: "same" as const,
        bias: false,
        init: "glorot_uniform" as const,
      },
    ]) {
      const layer = new Conv2D(o);
      const cfg = layer.config();
      assert.equal(cfg.type, "Conv2D");
      assert.deepEqual(JSON.parse(JSON.stringify(cfg)), cfg, "plain JSON");
      const again = new Conv2D(cfg as unknown as Conv2DOptions); // the extra `type` key is ignored
      assert.deepEqual(again.config(), cfg);
      assert.deepEqual(again.weight.value.data, layer.weight.value.data, "same default rng → same weights");
    }
    assert.equal(
      new Conv2D({ inChannels: 1, outChannels: 1, kernelSize: 3, padding: "same" }).config().padding,
      "same",
    );
    assert.deepEqual(new Conv2D(opts).config(), {
      type: "Conv2D",
      inChannels: 3,
      outChannels: 2,
      kernelSize: [3, 2],
      stride: [2, 1],
      padding: [1, 0],
      dilation: [1, 2],
      bias: true,
      init: "he_normal",
    });
  });

  test("he_normal by default: weight std ≈ √(2 / (inChannels·kh·kw)), bias zero", () => {
    const layer = new Conv2D({ inChannels: 8, outChannels: 64, kernelSize: 3 });
    const w = layer.weight.value.data;
    let ss = 0;
    for (let i = 0; i < w.length; i++) ss += w[i] * w[i];
    const std = Math.sqrt(ss / w.length);
    assert.ok(Math.abs(std / Math.sqrt(2 / 72) - 1) < 0.05, `std ${std}`);
    assert.deepEqual(layer.weight.value.shape, [64, 8, 3, 3]);
    assert.ok(layer.bias!.value.data.every((v) => v === 0));
  });
});

describe("Conv2D 'same' padding matches TF/Keras", () => {
  test("output size ⌈H / stride⌉ and TF's padding split for odd/even kernels, strides 1–2", () => {
    for (let H = 1; H <= 12; H++) {
      for (let k = 1; k <= 6; k++) {
        for (const s of [1, 2]) {
          for (const d of [1, 2]) {
            const tf = tfSame(H, k, s, d);
            assert.deepEqual(samePadding(H, k, s, d), [tf.before, tf.after], `H ${H} k ${k} s ${s} d ${d}`);
            const layer = new Conv2D({
              inChannels: 2,
              outChannels: 3,
              kernelSize: [k, 1],
              stride: [s, 1],
              dilation: [d, 1],
              padding: "same",
            });
            assert.deepEqual(layer.outputShape([2, H, 5]), [3, tf.out, 5]);
            assert.deepEqual(layer.paddingFor(H, 5).slice(0, 2), [tf.before, tf.after]);
          }
        }
      }
    }
    // A few spelled out: the extra row goes to the bottom.
    assert.deepEqual(samePadding(6, 3, 2, 1), [0, 1]);
    assert.deepEqual(samePadding(5, 3, 2, 1), [1, 1]);
    assert.deepEqual(samePadding(4, 4, 1, 1), [1, 2]);
    assert.deepEqual(samePadding(7, 2, 2, 1), [0, 1]);
    assert.deepEqual(samePadding(6, 2, 2, 1), [0, 0]);
  });

  test("asymmetric 'same' output equals the reference with explicit [top, bottom, left, right]", () => {
    const rng = new RandomState(13);
    for (const [H, W, k, s] of [
      [6, 7, 4, 1],
      [6, 7, 3, 2],
      [8, 5, 2, 2],
      [5, 5, 5, 2],
    ]) {
      const layer = makeLayer({ inChannels: 2, outChannels: 2, kernelSize: k, stride: s, padding: "same" }, k * 10 + s);
      const x = randn(rng, [1, 2, H, W]);
      const y = layer.forward(x);
      const tfH = tfSame(H, k, s);
      const tfW = tfSame(W, k, s);
      assert.deepEqual(y.shape, [1, 2, tfH.out, tfW.out]);
      const ref = conv2dForwardRef(x, layer.weight.value, layer.bias!.value, {
        stride: [s, s],
        padding: [tfH.before, tfH.after, tfW.before, tfW.after],
      });
      assertClose(y, ref, 1e-12, 1e-12, `same H${H} W${W} k${k} s${s}`);
    }
  });
});

describe("Conv2D errors", () => {
  const base: Conv2DOptions = { inChannels: 1, outChannels: 1, kernelSize: 3 };
  test("bad options are rejected at construction, naming the option and value", () => {
    const bad: [Record<string, unknown>, RegExp][] = [
      [{ inChannels: 0 }, /^Conv2D: inChannels must be a positive integer, got 0$/],
      [{ outChannels: 2.5 }, /^Conv2D: outChannels must be a positive integer, got 2.5$/],
      [{ kernelSize: 0 }, /^Conv2D: kernelSize must be a positive integer, got 0$/],
      [{ kernelSize: [3] }, /^Conv2D: kernelSize must be a number or \[h, w\], got \[3\]$/],
      [{ kernelSize: "3" }, /^Conv2D: kernelSize must be a number or \[h, w\], got "3"$/],
      [{ stride: 0 }, /^Conv2D: stride must be a positive integer, got 0$/],
      [{ stride: -2 }, /^Conv2D: stride must be a positive integer, got -2$/],
      [{ stride: [1, 0] }, /^Conv2D: stride\[1\] must be a positive integer, got 0$/],
      [{ stride: 1.5 }, /^Conv2D: stride must be a positive integer, got 1.5$/],
      [{ padding: -1 }, /^Conv2D: padding must be a non-negative integer, got -1$/],
      [{ padding: [1, 0.5] }, /^Conv2D: padding\[1\] must be a non-negative integer, got 0.5$/],
      [
        { padding: "full" },
        /^Conv2D: padding must be a non-negative integer, \[ph, pw\], "same" or "valid", got "full"$/,
      ],
      [{ dilation: 0 }, /^Conv2D: dilation must be a positive integer, got 0$/],
      [{ bias: "yes" }, /^Conv2D: bias must be true or false, got "yes"$/],
      [{ init: "xavier" }, /^Conv2D: init must be one of .*, got "xavier"$/],
      [{ dtype: "int8" }, /^Conv2D: dtype must be "float32" or "float64", got "int8"$/],
    ];
    for (const [patch, re] of bad) {
      assert.throws(
        () => new Conv2D({ ...base, ...patch }),
        (e: unknown) => e instanceof RangeError && re.test(e.message),
        JSON.stringify(patch),
      );
    }
  });

  test("outputShape rejects wrong channels and a kernel larger than the padded input", () => {
    const layer = new Conv2D({ inChannels: 3, outChannels: 4, kernelSize: 3 });
    assert.throws(
      () => layer.outputShape([1, 8, 8]),
      (e: unknown) =>
        e instanceof ShapeError && e.message === "Conv2D: expected input samples of shape (3, H, W), got (1, 8, 8)",
    );
    assert.throws(() => layer.outputShape([3, 8]), ShapeError);

    const dilated = new Conv2D({ inChannels: 1, outChannels: 1, kernelSize: 5, dilation: 2, padding: 1 });
    dilated.index = 2;
    assert.throws(
      () => dilated.outputShape([1, 2, 2]),
      (e: unknown) =>
        e instanceof ShapeError &&
        e.message ===
          "layer 2 (Conv2D): kernel 5×5 (dilated 9×9) is larger than the padded input 4×4 (input 2×2, padding 1)",
    );
    assert.deepEqual(dilated.outputShape([1, 7, 9]), [1, 1, 3]);
    const valid = new Conv2D({ inChannels: 1, outChannels: 1, kernelSize: [2, 6] });
    assert.throws(
      () => valid.outputShape([1, 5, 5]),
      /Conv2D: kernel 2×6 is larger than the padded input 5×5 \(input 5×5, padding "valid"\)/,
    );
    assert.deepEqual(
      new Conv2D({ inChannels: 1, outChannels: 1, kernelSize: 7, padding: "same", stride: 2 }).outputShape([1, 1, 3]),
      [1, 1, 2],
    );
  });

  test("forward checks rank, channels and size", () => {
    const layer = new Conv2D({ inChannels: 3, outChannels: 4, kernelSize: 3 });
    assert.throws(
      () => layer.forward(new NDArray(new Float32Array(3 * 25), [3, 5, 5])),
      (e: unknown) =>
        e instanceof ShapeError && /Conv2D: expected input of shape \(N, 3, H, W\), got \(3, 5, 5\)/.test(e.message),
    );
    assert.throws(
      () => layer.forward(new NDArray(new Float32Array(2 * 25), [1, 2, 5, 5])),
      /expected input of shape \(N, 3, H, W\), got \(1, 2, 5, 5\)/,
    );
    assert.throws(
      () => layer.forward(new NDArray(new Float32Array(3 * 4), [1, 3, 2, 2])),
      /kernel 3×3 is larger than the padded input 2×2/,
    );
  });
});

describe("im2col / col2im kernels", () => {
  test("col2im is the adjoint of im2col and accumulates", () => {
    const rng = new RandomState(14);
    const g = convGeometry(2, 3, 7, 6, [3, 2], [2, 1], [1, 2, 0, 1], [2, 2]);
    const x = randn(rng, [g.N, g.C, g.H, g.W]);
    const c = randn(rng, [colSize(g)]);
    const col = new Float64Array(colSize(g)).fill(NaN); // im2col must overwrite every entry
    im2col(g, x.data, 0, col);
    assert.ok(col.every((v) => !Number.isNaN(v)));
    const dx = new Float64Array(x.size);
    col2im(g, c.data, dx, 0);
    // ⟨im2col(x), c⟩ = ⟨x, col2im(c)⟩
    let lhs = 0;
    let rhs = 0;
    for (let i = 0; i < col.length; i++) lhs += col[i] * c.data[i];
    for (let i = 0; i < dx.length; i++) rhs += x.data[i] * dx[i];
    assert.ok(Math.abs(lhs - rhs) <= 1e-12 * Math.max(1, Math.abs(lhs)), `${lhs} vs ${rhs}`);
    const once = dx.slice();
    col2im(g, c.data, dx, 0);
    for (let i = 0; i < dx.length; i++)
      assert.ok(Math.abs(dx[i] - 2 * once[i]) <= 1e-14 * Math.max(1, Math.abs(once[i])), `element ${i}`);
  });
});
