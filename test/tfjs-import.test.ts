// TF.js import of the layers of issue 13, each against tfjs-layers itself: a model is built and run by
// tfjs-layers, saved to memory, imported into handprop, and both predict random inputs (≤ 1e-5); then
// handprop's export of the import loads back into tfjs-layers with the same predictions, and into handprop
// bit-identically. What handprop cannot compute as TF.js does is refused, naming the layer and the field.
import { test } from "node:test";
import assert from "node:assert/strict";
import * as tf from "@tensorflow/tfjs-core";
import * as tfl from "@tensorflow/tfjs-layers";
import { Model } from "../src/nn/graph.ts";
import { Sequential } from "../src/nn/sequential.ts";
import { GroupNorm, LayerNorm } from "../src/nn/norm.ts";
import { RandomState } from "../src/nd/random.ts";
import { Conv2DTranspose } from "../src/nn/transpose.ts";
import { UpSampling2D, ZeroPadding2D } from "../src/nn/upsample.ts";
import { Permute, Reshape } from "../src/nn/reshape.ts";
import { Flatten } from "../src/nn/flatten.ts";
import { Dense } from "../src/nn/dense.ts";
import { Conv2D } from "../src/nn/conv.ts";
import { TfjsFormatError, fromTfjsArtifacts, toTfjsArtifacts, type TfjsModelJson } from "../src/io/tfjs.ts";
import { SeparableConv2D } from "../src/nn/depthwise.ts";
import { GELU } from "../src/nn/activations.ts";
import fc from "fast-check";
import { applyJsonEdits, assertTypedError, fuzz, jsonEdit, outcome } from "./fuzz-mutate.ts";
import { permuteFromTf, permuteToTf, transposeAxisFromTf } from "../src/io/tfjs/layout.ts";
import { randomInput, randomizeParams } from "./helpers.ts";
import { expectSameInTf, maxAbsDiff, randomizeTf, tfOrder, tfPredict, tfSave, toTfLayout } from "./tfjs-helpers.ts";

type Sym = tfl.SymbolicTensor;

/**
 * Import a TF.js model, compare with tfjs-layers on random inputs; export the import, load it in tfjs-layers
 * and compare again; import the export and compare bit for bit. Returns the imported model.
 */
async function checkBothWays(
  t: { diagnostic: (m: string) => void },
  m: tfl.LayersModel,
  seed: number,
  what: string,
): Promise<Sequential> {
  randomizeTf(m, seed);
  const artifacts = await tfSave(m);
  const model = fromTfjsArtifacts(artifacts, artifacts.weightData as ArrayBuffer);
  const inShape = model.inputShape!;
  const x = randomInput([3, ...inShape], seed + 1);
  const ours = tfOrder(model.predict(x));
  const d = maxAbsDiff(ours, tfPredict(m, x));
  t.diagnostic(`${what}: max |handprop − TF.js| = ${d.toExponential(2)}`);
  assert.ok(d <= 1e-5, `${what}: max |handprop − TF.js| = ${d}`);
  const again = toTfjsArtifacts(model);
  await expectSameInTf(t, again, model, x, `${what}: exported back, `);
  assert.deepEqual(
    fromTfjsArtifacts(again.modelJson, again.weightData).predict(x).data,
    model.predict(x).data,
    `${what}: round trip`,
  );
  m.dispose();
  return model;
}

test("a functional separable block (SeparableConv2D, residual Add, depthwise, swish, global max pool)", async (t) => {
  const input = tfl.input({ shape: [9, 8, 3], name: "img" });
  const sep1 = tfl.layers
    .separableConv2d({
      filters: 6,
      kernelSize: 3,
      depthMultiplier: 2,
      padding: "same",
      activation: "relu",
      name: "sep1",
    })
    .apply(input) as Sym;
  const sep2 = tfl.layers
    .separableConv2d({ filters: 6, kernelSize: [3, 2], dilationRate: 2, padding: "same", useBias: false, name: "sep2" })
    .apply(sep1) as Sym;
  const res = tfl.layers.add({ name: "res" }).apply([sep1, sep2]) as Sym;
  const dw = tfl.layers
    .depthwiseConv2d({ kernelSize: 3, strides: 2, depthMultiplier: 2, activation: "swish", name: "dw" })
    .apply(tfl.layers.batchNormalization({ name: "bn" }).apply(res)) as Sym;
  const valid = tfl.layers.separableConv2d({ filters: 4, kernelSize: 2, strides: 2, name: "sep3" }).apply(dw) as Sym;
  const pooled = tfl.layers.globalMaxPooling2d({ name: "gmp" }).apply(valid) as Sym;
  const out = tfl.layers.dense({ units: 4, activation: "softmax", name: "probs" }).apply(pooled) as Sym;
  const model = await checkBothWays(t, tfl.model({ inputs: input, outputs: out }), 41, "separable block");
  assert.ok(model instanceof Model);
  assert.deepEqual(
    model.nodes.map((n) => `${n.name}:${n.layer.type}`),
    [
      "sep1_0:SeparableConv2D",
      "sep1:ReLU",
      "sep2:SeparableConv2D",
      "res:Add",
      "bn:BatchNorm2D",
      "dw_0:DepthwiseConv2D",
      "dw:SiLU",
      "sep3:SeparableConv2D",
      "gmp:GlobalMaxPool2D",
      "probs_0:Dense",
      "probs:Softmax",
    ],
  );
});

test("a decoder: Conv2DTranspose valid/same, kernel < stride, nearest UpSampling2D, skip Concatenate", async (t) => {
  const input = tfl.input({ shape: [8, 6, 2], name: "img" });
  const enc = tfl.layers
    .conv2d({ filters: 4, kernelSize: 3, strides: 2, padding: "same", activation: "relu", name: "enc" })
    .apply(input) as Sym; // 4×3
  const up1 = tfl.layers
    .conv2dTranspose({ filters: 3, kernelSize: 4, strides: 2, padding: "same", activation: "gelu", name: "up1" })
    .apply(enc) as Sym; // 8×6, crop 1 each side
  const up2 = tfl.layers.upSampling2d({ size: [2, 2], name: "up2" }).apply(enc) as Sym; // 8×6
  const cat = tfl.layers.concatenate({ name: "cat" }).apply([input, up1, up2]) as Sym;
  const t3 = tfl.layers
    .conv2dTranspose({ filters: 3, kernelSize: 1, strides: 2, padding: "same", name: "t3" })
    .apply(cat) as Sym; // kernel < stride: 16×12, a zero (bias) row and column after each
  const t4 = tfl.layers
    .conv2dTranspose({ filters: 2, kernelSize: [2, 3], strides: [3, 2], padding: "valid", name: "t4" })
    .apply(t3) as Sym; // rows kernel < stride (48), columns (12 − 1)·2 + 3 = 25
  const t5 = tfl.layers
    .conv2dTranspose({ filters: 2, kernelSize: [5, 3], strides: [3, 1], padding: "same", name: "t5" })
    .apply(tfl.layers.upSampling2d({ size: [1, 2], name: "up3" }).apply(t4)) as Sym;
  const out = tfl.layers.globalAveragePooling2d({ name: "gap" }).apply(t5) as Sym;
  const model = await checkBothWays(t, tfl.model({ inputs: input, outputs: out }), 51, "decoder");
  assert.ok(model instanceof Model);
  const t4Layer = model.nodes.find((n) => n.name === "t4")!.layer;
  assert.ok(t4Layer instanceof Conv2DTranspose);
  assert.deepEqual(t4Layer.padding, [0, 0]);
  assert.deepEqual(t4Layer.outputPadding, [1, 0]);
});

test("LayerNormalization over any axis set (C, H, W, H·W·C, out of order, features) and GELU", async (t) => {
  const m = tfl.sequential({
    layers: [
      tfl.layers.layerNormalization({ inputShape: [5, 4, 3], axis: -1, epsilon: 1e-5 }), // the channels: Permutes
      tfl.layers.activation({ activation: "gelu" }),
      tfl.layers.layerNormalization({ axis: [1, 2, 3] }), // γ permuted to (C, H, W)
      tfl.layers.layerNormalization({ axis: [1, 2] }),
      tfl.layers.layerNormalization({ axis: 2, center: false }),
      tfl.layers.layerNormalization({ axis: [3, 1], scale: false }), // γ, β [C, H], stored in (H, C) order
      tfl.layers.layerNormalization({ axis: 1 }),
      tfl.layers.conv2d({ filters: 3, kernelSize: 2, activation: "elu" }),
      tfl.layers.flatten(),
      tfl.layers.layerNormalization({}), // over a flattened image: γ, β permuted like a Dense's rows
      tfl.layers.dense({ units: 6, activation: "swish" }),
      tfl.layers.elu({}),
      tfl.layers.dense({ units: 3, activation: "gelu" }),
    ],
  });
  const model = await checkBothWays(t, m, 61, "layer norm + gelu");
  const norms = model.layers.filter((l) => l instanceof LayerNorm);
  assert.deepEqual(
    norms.map((l) => l.axes),
    [1, 3, 2, 1, 2, 1, 1],
  );
  assert.deepEqual(
    model.layers.slice(0, 3).map((l) => l.type),
    ["Permute", "LayerNorm", "Permute"],
  );
});

test("Reshape, Permute, standalone ZeroPadding2D, ELU and Softmax import (layout converted)", async (t) => {
  const m = tfl.sequential({
    layers: [
      tfl.layers.zeroPadding2d({
        inputShape: [6, 5, 2],
        padding: [
          [1, 0],
          [2, 1],
        ],
      }), // asymmetric: a ZeroPadding2D layer
      tfl.layers.conv2d({ filters: 3, kernelSize: 3 }), // 5×6
      tfl.layers.zeroPadding2d({ padding: 1 }),
      tfl.layers.maxPooling2d({ poolSize: 2 }), // zeros take part in the max: not foldable; 3×4
      tfl.layers.permute({ dims: [2, 1, 3] }), // 4×3×3
      tfl.layers.softmax({ axis: -1 }),
      tfl.layers.reshape({ targetShape: [6, 6] }), // rank 2
      tfl.layers.permute({ dims: [2, 1] }),
      tfl.layers.layerNormalization({ axis: 1 }), // not trailing: Permutes around it
      tfl.layers.reshape({ targetShape: [3, 2, 6] }), // back to an image
      tfl.layers.conv2d({ filters: 2, kernelSize: 1, activation: "tanh" }),
      tfl.layers.flatten(),
      tfl.layers.reshape({ targetShape: [3, 2, 2] }), // the flattened image itself
      tfl.layers.reshape({ targetShape: [12] }), // a flattening
      tfl.layers.reshape({ targetShape: [4, 3] }), // flattened features in Keras's order
      tfl.layers.layerNormalization({}),
      tfl.layers.flatten(),
      tfl.layers.dense({ units: 5 }),
      tfl.layers.elu({}),
      tfl.layers.dense({ units: 4 }),
      tfl.layers.reshape({ targetShape: [2, -1] }), // tfjs-layers leaves -1 unknown: only at the end
      tfl.layers.softmax({ axis: -1 }),
    ],
  });
  const model = await checkBothWays(t, m, 71, "reshape/permute");
  assert.ok(model.layers[0] instanceof ZeroPadding2D && model.layers[2] instanceof ZeroPadding2D);
  assert.ok(model.layers.some((l) => l instanceof Permute) && model.layers.some((l) => l instanceof Reshape));
});

test("a ConvNeXt-style block: Dense on an image is a 1×1 Conv2D, LayerNormalization over the channels", async (t) => {
  const m = tfl.sequential({
    layers: [
      tfl.layers.depthwiseConv2d({ inputShape: [5, 4, 3], kernelSize: 3, padding: "same" }),
      tfl.layers.layerNormalization({ epsilon: 1e-6 }),
      tfl.layers.dense({ units: 6, activation: "gelu" }),
      tfl.layers.dense({ units: 3 }),
      tfl.layers.flatten(),
      tfl.layers.dense({ units: 2, activation: "softmax" }),
    ],
  });
  const model = await checkBothWays(t, m, 91, "ConvNeXt-style block");
  assert.deepEqual(
    model.layers.map((l) => l.type),
    ["DepthwiseConv2D", "Permute", "LayerNorm", "Permute", "Conv2D", "GELU", "Conv2D", "Flatten", "Dense", "Softmax"],
  );
});

test("a symmetric ZeroPadding2D still folds into a valid Conv2D; elsewhere it is a layer", async (t) => {
  const m = tfl.sequential({
    layers: [
      tfl.layers.zeroPadding2d({ inputShape: [5, 5, 1], padding: [1, 2] }),
      tfl.layers.conv2d({ filters: 2, kernelSize: 3 }),
      tfl.layers.zeroPadding2d({ padding: 1 }),
      tfl.layers.conv2d({ filters: 2, kernelSize: 3, padding: "same" }), // not "valid": a layer
      tfl.layers.zeroPadding2d({ padding: [0, 1] }),
    ],
  });
  const model = await checkBothWays(t, m, 81, "zero padding");
  assert.deepEqual(
    model.layers.map((l) => l.type),
    ["Conv2D", "ZeroPadding2D", "Conv2D", "ZeroPadding2D"],
  );
  const folded = model.layers[0];
  assert.ok(folded instanceof Conv2D);
  assert.deepEqual(folded.padding, [1, 2]);
});

test("layout helpers: Permute dims on Keras's view and TF's transposed-convolution cropping", () => {
  // an image (C, H, W) is Keras's (H, W, C): Keras's Permute [2, 1, 3] (swap H and W) is handprop's [1, 3, 2]
  assert.deepEqual(permuteFromTf([2, 1, 3]), [1, 3, 2]);
  assert.deepEqual(permuteFromTf([3, 1, 2]), [3, 1, 2]); // Keras (C, H, W) is handprop's (W, C, H)
  for (const d of [[1, 2, 3], [1, 3, 2], [2, 1, 3], [2, 3, 1], [3, 1, 2], [3, 2, 1], [2, 1], [1, 2, 3, 4].reverse()])
    assert.deepEqual(permuteToTf(permuteFromTf(d)), d);
  // "same", k − s odd: TF crops one more row at the bottom; handprop cannot
  assert.deepEqual(transposeAxisFromTf(4, 3, 2, "same", null), {
    padding: 0,
    outputPadding: -1,
    out: 8,
    bottom: 1,
    ok: false,
  });
  assert.equal(transposeAxisFromTf(4, 4, 2, "same", null).padding, 1);
  assert.equal(transposeAxisFromTf(4, 1, 3, "valid", null).outputPadding, 2);
  // Keras's output_padding: (H − 1)·s + k − 2·⌊k/2⌋ + op rows, cropped as TF's forward convolution pads
  assert.deepEqual(transposeAxisFromTf(4, 3, 2, "same", 0), {
    padding: 1,
    outputPadding: 0,
    out: 7,
    bottom: 1,
    ok: true,
  });
  assert.deepEqual(transposeAxisFromTf(4, 3, 2, "valid", 1), {
    padding: 0,
    outputPadding: 1,
    out: 10,
    bottom: -1,
    ok: true,
  });
});

/** tfjs-layers builds the model; its saved artifacts, perhaps edited, must fail to import with `pattern`. */
async function refused(m: tfl.LayersModel, pattern: RegExp, edit?: (j: TfjsModelJson) => void): Promise<void> {
  const a = await tfSave(m);
  const json = { ...a, modelTopology: structuredClone(a.modelTopology) } as unknown as TfjsModelJson;
  edit?.(json);
  assert.throws(() => fromTfjsArtifacts(json, a.weightData as ArrayBuffer), pattern);
  m.dispose();
}

test("what handprop would compute differently from TF.js is refused, naming the layer and the field", async () => {
  type TfLayer = NonNullable<NonNullable<Parameters<typeof tfl.sequential>[0]>["layers"]>[number];
  const one = (layer: TfLayer) => tfl.sequential({ layers: [layer] });
  await refused(
    one(tfl.layers.upSampling2d({ inputShape: [3, 3, 1], interpolation: "bilinear", name: "up" })),
    /layer 0 "up" \(UpSampling2D\): field "interpolation" is "bilinear": tfjs-layers samples source row i\/s/,
  );
  await refused(
    one(
      tfl.layers.conv2dTranspose({
        inputShape: [4, 4, 1],
        filters: 1,
        kernelSize: 3,
        strides: 2,
        padding: "same",
        name: "tc",
      }),
    ),
    /"tc" \(Conv2DTranspose\): field "padding" \("same"\) with kernel 3 and stride 2 keeps 8 rows cropping 0 before/,
  );
  const layers = (j: TfjsModelJson) => j.modelTopology.config.layers;
  await refused(
    one(tfl.layers.conv2dTranspose({ inputShape: [4, 4, 1], filters: 1, kernelSize: 3, name: "tc" })),
    /\(Conv2DTranspose\): field "dilation_rate" is \[2, 2\]: tfjs-layers' Conv2DTranspose ignores it/,
    (j) => (layers(j)[0].config.dilation_rate = [2, 2]),
  );
  await refused(
    one(tfl.layers.depthwiseConv2d({ inputShape: [6, 6, 1], kernelSize: 2, dilationRate: 2, name: "dw" })),
    /layer 0 "dw" \(DepthwiseConv2D\): field "dilation_rate" is \[2, 2\]: tfjs-layers ignores it here/,
  );
  await refused(
    one(tfl.layers.layerNormalization({ inputShape: [4], name: "ln" })),
    /layer 0 "ln" \(LayerNormalization\): field "rms_scaling"/,
    (j) => (layers(j)[0].config.rms_scaling = true),
  );
  await refused(
    one(tfl.layers.layerNormalization({ inputShape: [3, 3, 2], axis: [1, 2], name: "ln" })),
    /\(LayerNormalization\): field "axis" is \[0,1\]; expected distinct sample axes 1…3/,
    (j) => (layers(j)[0].config.axis = [0, 1]),
  );
  await refused(
    one(tfl.layers.reshape({ inputShape: [3, 2, 1], targetShape: [2, 3], name: "rs" })),
    /layer 0 "rs" \(Reshape\): field "target_shape" \[4,null\] does not hold the 6 values of a \[3, 2, 1\] tensor/,
    (j) => (layers(j)[0].config.target_shape = [4, null]),
  );
  await refused(
    one(tfl.layers.permute({ inputShape: [3, 2, 1], dims: [2, 1, 3], name: "pm" })),
    /layer 0 "pm" \(Permute\): field "dims" is \[2,2,1\]; expected a permutation of 1…3/,
    (j) => (layers(j)[0].config.dims = [2, 2, 1]),
  );
  await refused(
    one(tfl.layers.activation({ inputShape: [3], activation: "selu", name: "act" })),
    /layer 0 "act" \(Activation\): field "activation" is "selu"; supported: .*gelu, gelu_new, swish, silu, elu/,
  );
  await refused(
    one(tfl.layers.globalMaxPooling2d({ inputShape: [3, 3, 2], name: "g" })),
    /layer 0 "g" \(GlobalMaxPooling2D\): field "keepdims" must be true or false, got "yes"/,
    (j) => (layers(j)[0].config.keepdims = "yes"),
  );
});

test("TF.js's bilinear UpSampling2D really differs from handprop's (why it is refused)", () => {
  const x = randomInput([1, 1, 3, 3], 3);
  const up = new Sequential([new UpSampling2D({ interpolation: "bilinear" })], { inputShape: [1, 3, 3] });
  const ours = up.predict(x).data;
  const theirs = tf.tidy(
    () =>
      tf.image.resizeBilinear(tf.tensor4d(Float32Array.from(x.data), [1, 3, 3, 1]), [6, 6]).dataSync() as Float32Array,
  );
  assert.ok(maxAbsDiff(ours, theirs) > 1e-2, "the two alignments agree: the refusal could be lifted");
});

test("handprop Reshape and Permute export to TF.js (Keras's layout) and predict the same", async (t) => {
  const model = randomizeParams(
    new Sequential(
      [
        new Conv2D({ outChannels: 3, kernelSize: 2 }), // (3, 4, 5)
        new Permute({ dims: [1, 3, 2] }), // (3, 5, 4)
        new Reshape({ targetShape: [5, 12] }),
        new Permute({ dims: [2, 1] }),
        new LayerNorm({ axes: 1 }), // over 5, a rank-2 sample's last axis
        new Reshape({ targetShape: [6, 2, 5] }), // an image again
        new Conv2D({ outChannels: 2, kernelSize: 1 }),
        new Reshape({ targetShape: [-1] }), // a flattening: the Dense's rows permuted
        new Reshape({ targetShape: [2, 2, 5] }), // back to the image it came from
        new Flatten(),
        new Reshape({ targetShape: [4, 5] }), // features in handprop's order
        new Flatten(),
        new Dense({ outFeatures: 3 }),
      ],
      { inputShape: [2, 5, 6], seed: 9, name: "reshapes" },
    ),
    10,
  );
  const { modelJson, weightData } = toTfjsArtifacts(model);
  const x = randomInput([2, 2, 5, 6], 11);
  await expectSameInTf(t, { modelJson, weightData }, model, x);
  assert.deepEqual(fromTfjsArtifacts(modelJson, weightData).predict(x).data, model.predict(x).data);
});

test("fuzz: the new layers' model.json, edited, imports or fails with a TfjsFormatError", async (t) => {
  const model = new Sequential(
    [
      new SeparableConv2D({ outChannels: 3, kernelSize: 3, depthMultiplier: 2, padding: "same" }),
      new Conv2DTranspose({ outChannels: 2, kernelSize: 4, stride: 2, padding: 1 }),
      new UpSampling2D({ size: [1, 2] }),
      new LayerNorm({ axes: 2 }),
      new GELU(),
      new Permute({ dims: [1, 3, 2] }),
      new Reshape({ targetShape: [4, -1] }),
      new Flatten(),
      new Dense({ outFeatures: 2 }),
    ],
    { inputShape: [2, 2, 2], seed: 3 },
  );
  const { modelJson, weightData } = toTfjsArtifacts(model);
  const runs = await fuzz(fc.array(jsonEdit, { minLength: 1, maxLength: 3 }), (edits) => {
    const r = outcome(() => fromTfjsArtifacts(applyJsonEdits(modelJson, edits), weightData));
    if (r.ok) assert.ok(r.value.params().every((p) => p.value.data.every(Number.isFinite)));
    else assertTypedError(r.error, TfjsFormatError, /model\.json|weight data/);
  });
  t.diagnostic(`${runs} inputs`);
});

test("Keras 3 GroupNormalization (tfjs-layers has none) imports as GroupNorm, checked against its formula", () => {
  const [H, W, C, G, eps] = [3, 4, 6, 3, 1e-3];
  const rng = new RandomState(5);
  const gamma = Float32Array.from({ length: C }, () => rng.uniform(0.5, 1.5));
  const beta = Float32Array.from({ length: C }, () => rng.uniform(-0.5, 0.5));
  const layer = { class_name: "GroupNormalization", config: { name: "gn", groups: G, axis: -1, epsilon: eps } };
  const json = {
    format: "layers-model",
    modelTopology: {
      class_name: "Sequential",
      config: {
        name: "keras3",
        layers: [{ class_name: "InputLayer", config: { name: "in", batch_shape: [null, H, W, C] } }, layer],
      },
    },
    weightsManifest: [
      {
        paths: ["w.bin"],
        weights: ["gamma", "beta"].map((w) => ({ name: `gn/${w}`, shape: [C], dtype: "float32" })),
      },
    ],
  };
  const weights = new Float32Array([...gamma, ...beta]);
  const model = fromTfjsArtifacts(json, weights);
  assert.ok(model.layers[0] instanceof GroupNorm);
  const x = randomInput([2, C, H, W], 6);
  const ours = tfOrder(model.predict(x));
  const xs = tfOrder(x); // NHWC: group g holds channels g·C/G … (g + 1)·C/G − 1 at every position
  const Cg = C / G;
  let worst = 0;
  for (let n = 0; n < 2; n++)
    for (let g = 0; g < G; g++) {
      const at: number[] = [];
      for (let p = 0; p < H * W; p++) for (let c = g * Cg; c < (g + 1) * Cg; c++) at.push((n * H * W + p) * C + c);
      const mean = at.reduce((s, i) => s + xs[i], 0) / at.length;
      const variance = at.reduce((s, i) => s + (xs[i] - mean) ** 2, 0) / at.length;
      for (const i of at) {
        const expected = ((xs[i] - mean) / Math.sqrt(variance + eps)) * gamma[i % C] + beta[i % C];
        worst = Math.max(worst, Math.abs(ours[i] - expected));
      }
    }
  assert.ok(worst <= 1e-5, `max |handprop − formula| = ${worst}`);
  layer.config.axis = 1;
  assert.throws(
    () => fromTfjsArtifacts(json, weights),
    /layer 1 "gn" \(GroupNormalization\): field "axis" is 1; only the channel \(last\) axis 3/,
  );
});

test("GlobalAveragePooling2D with keepdims (Keras; not in tfjs-layers) is the pooling, then (C, 1, 1)", async () => {
  const m = tfl.sequential({ layers: [tfl.layers.globalAveragePooling2d({ inputShape: [3, 4, 5] })] });
  const a = await tfSave(m);
  const json = structuredClone(a) as unknown as TfjsModelJson;
  json.modelTopology.config.layers[0].config.keepdims = true;
  const model = fromTfjsArtifacts(json, a.weightData as ArrayBuffer);
  const x = randomInput([2, 5, 3, 4], 7);
  const y = model.predict(x);
  assert.deepEqual(y.shape, [2, 5, 1, 1]);
  assert.ok(maxAbsDiff(tfOrder(y), tfPredict(m, x)) <= 1e-6);
  m.dispose();
});

test("Keras's Conv2D groups (not in tfjs-layers) imports as a grouped Conv2D, as TF's conv2d per group", async (t) => {
  const [C, O, G, kh, kw] = [4, 6, 2, 3, 2];
  const m = tfl.sequential({
    layers: [tfl.layers.conv2d({ inputShape: [5, 6, C / G], filters: O, kernelSize: [kh, kw], name: "gc" })],
  });
  randomizeTf(m, 8);
  const a = await tfSave(m); // its kernel [kh, kw, C/G, O] is a grouped kernel once the input has C channels
  const json = structuredClone(a) as unknown as TfjsModelJson;
  const config = json.modelTopology.config.layers[0].config;
  config.groups = G;
  config.batch_input_shape = [null, 5, 6, C];
  const model = fromTfjsArtifacts(json, a.weightData as ArrayBuffer);
  const conv = model.layers[0];
  assert.ok(conv instanceof Conv2D && conv.groups === G);
  const x = randomInput([2, C, 5, 6], 9);
  const [kernel, bias] = m.getWeights();
  const expected = tf.tidy(() => {
    const xs = toTfLayout(x) as tf.Tensor4D;
    const parts = Array.from({ length: G }, (_, g) =>
      tf.conv2d(
        tf.slice(xs, [0, 0, 0, (g * C) / G], [-1, -1, -1, C / G]),
        tf.slice(kernel, [0, 0, 0, (g * O) / G], [-1, -1, -1, O / G]) as tf.Tensor4D,
        1,
        "valid",
      ),
    );
    return tf.add(tf.concat(parts, 3), bias).dataSync() as Float32Array;
  });
  const d = maxAbsDiff(tfOrder(model.predict(x)), expected);
  t.diagnostic(`max |handprop − TF conv2d per group| = ${d.toExponential(2)}`);
  assert.ok(d <= 1e-5, `max |handprop − TF| = ${d}`);
  m.dispose();
});
