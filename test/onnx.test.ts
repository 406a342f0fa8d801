// ONNX export, verified against the real runtime: onnxruntime-node runs what toOnnx writes and
// predicts what handprop predicts; the protobuf encoder writes the wire format byte for byte.
import { test } from "node:test";
import assert from "node:assert/strict";
import { mkdtempSync, readFileSync, readdirSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import * as ort from "onnxruntime-node";
import { NDArray } from "../src/nd/ndarray.ts";
import { Sequential } from "../src/nn/sequential.ts";
import { buildModel } from "../src/nn/models.ts";
import { Conv2D } from "../src/nn/conv.ts";
import { Dense } from "../src/nn/dense.ts";
import { Flatten } from "../src/nn/flatten.ts";
import { AvgPool2D, GlobalAvgPool2D, MaxPool2D } from "../src/nn/pool.ts";
import { BatchNorm1D, BatchNorm2D } from "../src/nn/batchnorm.ts";
import { Dropout } from "../src/nn/dropout.ts";
import { LeakyReLU, ReLU, Sigmoid, Softmax, Tanh } from "../src/nn/activations.ts";
import { ELU, GELU, SiLU } from "../src/nn/activations.ts";
import { Layer, type LayerConfig } from "../src/nn/layer.ts";
import { Input, Model } from "../src/nn/graph.ts";
import { Add, Concatenate, Multiply } from "../src/nn/merge.ts";
import { DepthwiseConv2D, SeparableConv2D } from "../src/nn/depthwise.ts";
import { Conv2DTranspose } from "../src/nn/transpose.ts";
import { UpSampling2D, ZeroPadding2D } from "../src/nn/upsample.ts";
import { GroupNorm, LayerNorm } from "../src/nn/norm.ts";
import { GlobalMaxPool2D, Permute, Reshape } from "../src/nn/reshape.ts";
import { ONNX_IR_VERSION, ONNX_OPSET, toOnnx } from "../src/io/onnx.ts";
import { saveOnnxModel } from "../src/node/onnx.ts";
import { ProtoWriter, readFields, type ProtoField } from "../src/io/protobuf.ts";
import { saveModel } from "../src/node/model-io.ts";
import { main } from "../src/cli/main.ts";
import { randomInput, randomizeParams as randomize } from "./helpers.ts";

const tmp = mkdtempSync(join(tmpdir(), "handprop-onnx-"));
process.on("exit", () => {
  rmSync(tmp, { recursive: true, force: true });
});

async function ortPredict(
  session: ort.InferenceSession,
  x: NDArray,
): Promise<{ data: Float32Array; dims: readonly number[] }> {
  const out = await session.run({ input: new ort.Tensor("float32", Float32Array.from(x.data), x.shape) });
  return { data: out.output.data as Float32Array, dims: out.output.dims };
}

function maxAbsDiff(a: ArrayLike<number>, b: ArrayLike<number>): number {
  assert.equal(a.length, b.length, "lengths differ");
  let m = 0;
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i] - b[i]));
  return Number.isNaN(m) ? Infinity : m;
}

/** Every exported op: explicit/"same"/strided/dilated Conv, both AveragePool modes, BN 1D/2D, activations, GAP. */
function variantModel(seed: number): Sequential {
  return randomize(
    new Sequential(
      [
        new Conv2D({ inChannels: 2, outChannels: 4, kernelSize: 5, padding: 1 }),
        new BatchNorm2D({ numFeatures: 4, eps: 1e-3 }),
        new Tanh(),
        new AvgPool2D({ kernelSize: 3, stride: 2, padding: 1 }), // count_include_pad = 1
        new Conv2D({ inChannels: 4, outChannels: 6, kernelSize: [3, 2], padding: [1, 0], bias: false }),
        new AvgPool2D({ kernelSize: 3, stride: 1, padding: 1, countIncludePad: false }), // count_include_pad = 0
        new Sigmoid(),
        new Conv2D({ inChannels: 6, outChannels: 6, kernelSize: 4, stride: 2, padding: "same" }), // asymmetric pads
        new LeakyReLU({ alpha: 0.1 }),
        new Softmax({ axis: 2 }),
        new Conv2D({ inChannels: 6, outChannels: 8, kernelSize: 2, stride: [1, 2], dilation: 2, padding: 1 }),
        new BatchNorm2D({ numFeatures: 8, affine: false }),
        new MaxPool2D({ kernelSize: 3, stride: 1, padding: 1 }),
        new GlobalAvgPool2D(),
        new BatchNorm1D({ numFeatures: 8 }),
        new Dropout({ rate: 0.5 }),
        new Dense({ inFeatures: 8, outFeatures: 6 }),
        new ReLU(),
        new Dense({ inFeatures: 6, outFeatures: 4, bias: false }),
        new Softmax(),
        new Dropout({ rate: 0.1 }), // last layer emits no node: an Identity writes "output"
      ],
      { inputShape: [2, 12, 11], seed, name: "variant" },
    ),
    seed + 1,
  );
}

test("LeNet-5 exported to ONNX runs in onnxruntime-node with the same predictions (≤ 1e-4), any batch size", async (t) => {
  const model = randomize(buildModel("lenet5", { seed: 7 }), 8);
  const session = await ort.InferenceSession.create(toOnnx(model));
  assert.deepEqual(session.inputNames, ["input"]);
  assert.deepEqual(session.outputNames, ["output"]);
  for (const [n, seed] of [
    [5, 1],
    [1, 2],
  ]) {
    const x = randomInput([n, 1, 28, 28], seed);
    const got = await ortPredict(session, x);
    assert.deepEqual(got.dims, [n, 10]);
    const d = maxAbsDiff(got.data, model.predict(x).data);
    t.diagnostic(`N=${n}: max |onnxruntime − handprop| = ${d.toExponential(2)}`);
    assert.ok(d <= 1e-4, `max |onnxruntime − handprop| = ${d}`);
  }
  await session.release();
});

test("a variant with every exported op runs in onnxruntime-node with the same predictions", async (t) => {
  const model = variantModel(3);
  const file = join(tmp, "variant.onnx");
  saveOnnxModel(model, file);
  assert.deepEqual(readdirSync(tmp), ["variant.onnx"], "no temp file left behind");
  const session = await ort.InferenceSession.create(file);
  const x = randomInput([3, 2, 12, 11], 4);
  const got = await ortPredict(session, x);
  const d = maxAbsDiff(got.data, model.predict(x).data);
  t.diagnostic(`max |onnxruntime − handprop| = ${d.toExponential(2)}`);
  assert.ok(d <= 1e-4, `max |onnxruntime − handprop| = ${d}`);
  // and an image-shaped output, NCHW in both
  const convOnly = randomize(
    new Sequential(
      [
        new Conv2D({ inChannels: 2, outChannels: 3, kernelSize: 3, stride: 2, padding: "same" }),
        new Softmax({ axis: 1 }),
      ],
      { inputShape: [2, 7, 6], seed: 5 },
    ),
    6,
  );
  const s2 = await ort.InferenceSession.create(toOnnx(convOnly));
  const x2 = randomInput([2, 2, 7, 6], 8);
  const y = await ortPredict(s2, x2);
  assert.deepEqual(y.dims, [2, 3, 4, 3]);
  assert.ok(maxAbsDiff(y.data, convOnly.predict(x2).data) <= 1e-5);
  await session.release();
  await s2.release();
});

// ---------------------------------------------------------------------------------------------------
// The file's structure, read back with the test-side decoder.

const str = (f: ProtoField) => new TextDecoder().decode(f.value as Uint8Array);
const sub = (f: ProtoField) => readFields(f.value as Uint8Array);
const get = (fields: ProtoField[], n: number) => fields.filter((f) => f.field === n);

test("the ModelProto: IR 7, opset 13, producer, input/output with a symbolic batch dim, raw float32 initializers", () => {
  const model = buildModel("lenet5", { seed: 1 });
  const top = readFields(toOnnx(model));
  assert.equal(get(top, 1)[0].value, BigInt(ONNX_IR_VERSION));
  assert.equal(ONNX_IR_VERSION, 7);
  assert.equal(str(get(top, 2)[0]), "handprop");
  const opset = sub(get(top, 8)[0]);
  assert.equal(get(opset, 2)[0].value, BigInt(ONNX_OPSET));
  assert.equal(ONNX_OPSET, 13);

  const graph = sub(get(top, 7)[0]);
  const ops = get(graph, 1).map((n) => str(get(sub(n), 4)[0]));
  assert.deepEqual(ops, [
    "Conv",
    "Relu",
    "MaxPool",
    "Conv",
    "Relu",
    "MaxPool",
    "Flatten",
    "Gemm",
    "Relu",
    "Gemm",
    "Relu",
    "Gemm",
  ]);
  const conv0 = sub(get(graph, 1)[0]);
  const attrs = Object.fromEntries(
    get(conv0, 5).map((a) => [str(get(sub(a), 1)[0]), get(sub(a), 8).map((v) => Number(v.value))]),
  );
  assert.deepEqual(attrs, { kernel_shape: [5, 5], strides: [1, 1], pads: [2, 2, 2, 2], dilations: [1, 1] });

  const input = sub(get(graph, 11)[0]);
  assert.equal(str(get(input, 1)[0]), "input");
  const tensorType = sub(get(sub(get(input, 2)[0]), 1)[0]);
  assert.equal(get(tensorType, 1)[0].value, 1n); // FLOAT
  const dims = get(sub(get(tensorType, 2)[0]), 1).map((d) => sub(d)[0]);
  assert.equal(dims[0].field, 2); // dim_param
  assert.equal(str(dims[0]), "N");
  assert.deepEqual(
    dims.slice(1).map((d) => d.value),
    [1n, 28n, 28n],
  );
  assert.equal(str(get(sub(get(graph, 12)[0]), 1)[0]), "output");

  let floats = 0;
  for (const init of get(graph, 5)) {
    const f = sub(init);
    assert.equal(get(f, 2)[0].value, 1n);
    const size = get(f, 1).reduce((s, d) => s * Number(d.value), 1);
    assert.equal((get(f, 9)[0].value as Uint8Array).length, 4 * size, str(get(f, 8)[0]));
    floats += size;
  }
  assert.equal(floats, 61706);
  const w0 = sub(get(graph, 5)[0]);
  const raw = get(w0, 9)[0].value as Uint8Array;
  assert.equal(new DataView(raw.buffer, raw.byteOffset).getFloat32(0, true), model.layers[0].params()[0].value.data[0]);
});

test("protobuf encoder: varints, negative int64, floats, strings and nested messages, byte for byte", () => {
  const hex = (b: Uint8Array) => Buffer.from(b).toString("hex");
  assert.equal(hex(new ProtoWriter().int(1, 1).finish()), "0801");
  assert.equal(hex(new ProtoWriter().int(1, 150).finish()), "089601"); // the protobuf docs' example
  assert.equal(hex(new ProtoWriter().int(2, 300).finish()), "10ac02");
  assert.equal(hex(new ProtoWriter().int(1, 2 ** 53 - 1).finish()), "08ffffffffffffff0f");
  assert.equal(hex(new ProtoWriter().int(1, -1).finish()), "08ffffffffffffffffff01"); // 64-bit two's complement
  assert.equal(hex(new ProtoWriter().float(2, 1.5).finish()), "150000c03f");
  assert.equal(hex(new ProtoWriter().string(2, "testing").finish()), "120774657374696e67"); // docs' example
  assert.equal(hex(new ProtoWriter().message(3, new ProtoWriter().int(1, 150)).finish()), "1a03089601"); // docs' example
  assert.equal(hex(new ProtoWriter().int(16, 1).finish()), "800101"); // a two-byte key
  const big = new Uint8Array(200).fill(7);
  const fields = readFields(new ProtoWriter().bytesField(9, big).int(1, -5).finish());
  assert.deepEqual(fields[0].value, big);
  assert.equal(BigInt.asIntN(64, fields[1].value as bigint), -5n);
  assert.throws(() => new ProtoWriter().int(1, 0.5), /not a safe integer/);
  assert.throws(() => readFields(Uint8Array.from([0x0a, 0x05, 0x01])), /runs past the end/);
});

async function expectSamePredictions(
  t: { diagnostic(m: string): void },
  model: Sequential,
  xShape: number[],
  seed: number,
): Promise<void> {
  const session = await ort.InferenceSession.create(toOnnx(model));
  try {
    const x = randomInput(xShape, seed);
    const want = model.predict(x);
    const got = await ortPredict(session, x);
    assert.deepEqual(got.dims, want.shape);
    const d = maxAbsDiff(got.data, want.data);
    t.diagnostic(`${model.name}: max |onnxruntime − handprop| = ${d.toExponential(2)}`);
    assert.ok(d <= 1e-4, `${model.name}: max |onnxruntime − handprop| = ${d}`);
  } finally {
    await session.release();
  }
}

test("the layers of issue 13 in a Sequential run in onnxruntime-node with the same predictions", async (t) => {
  const convs = randomize(
    new Sequential(
      [
        new Conv2D({ outChannels: 6, kernelSize: 3, padding: "same", groups: 2 }), // Conv group = 2
        new GroupNorm({ groups: 3 }),
        new GELU(),
        new DepthwiseConv2D({ kernelSize: 3, depthMultiplier: 2, stride: 2, padding: "same", dilation: 1 }),
        new SiLU(),
        new Conv2DTranspose({ outChannels: 4, kernelSize: 3, stride: 2, padding: 1, outputPadding: 1 }),
        new ELU({ alpha: 0.7 }),
        new ZeroPadding2D({
          padding: [
            [1, 0],
            [2, 1],
          ],
        }),
        new SeparableConv2D({ outChannels: 5, kernelSize: 3, dilation: [1, 2] }),
        new UpSampling2D({ size: [2, 3] }),
        new GELU({ approximate: "tanh" }),
        new UpSampling2D({ size: 2, interpolation: "bilinear" }),
        new LayerNorm({ axes: 2 }),
        new Permute({ dims: [2, 3, 1] }),
        new Reshape({ targetShape: [-1, 5] }),
        new LayerNorm({}),
        new Reshape({ targetShape: [5, 4, -1] }), // (no squashing layer after it: differences stay visible)
        new GlobalMaxPool2D(),
      ],
      { inputShape: [4, 9, 8], seed: 3, name: "layers13" },
    ),
    4,
  );
  await expectSamePredictions(t, convs, [2, 4, 9, 8], 5);
});

test("a graph Model (residual Add, Concatenate, Multiply, a nested Sequential) runs in onnxruntime-node", async (t) => {
  const x = Input([3, 8, 8]);
  const a = new ReLU().apply(
    new BatchNorm2D({}).apply(
      new Conv2D({ outChannels: 3, kernelSize: 3, padding: "same" }).apply(x, "conv_a"),
      "bn_a",
    ),
    "relu_a",
  );
  const res = new Add().apply([x, a], "add");
  const side = new Sequential([new Conv2D({ inChannels: 3, outChannels: 2, kernelSize: 1 }), new Sigmoid()], {
    name: "side",
  }).apply(res, "side");
  const gate = new Multiply().apply(
    [new Conv2D({ outChannels: 2, kernelSize: 3, padding: 1 }).apply(res, "conv_g"), side],
    "gate",
  );
  const cat = new Concatenate({ axis: 1 }).apply([res, gate, x], "concat");
  const out = new Dense({ outFeatures: 5 }).apply(
    new Flatten().apply(new GlobalAvgPool2D().apply(cat, "gap"), "flat"),
    "logits",
  );
  const model = randomize(
    new Model({ inputs: x, outputs: new Softmax().apply(out, "probs"), seed: 6, name: "graph" }),
    7,
  );
  await expectSamePredictions(t, model, [3, 3, 8, 8], 8);
  // the ONNX graph keeps the branches: one node per layer here, merges included
  const graph = sub(get(readFields(toOnnx(model)), 7)[0]);
  const ops = get(graph, 1).map((n) => str(get(sub(n), 4)[0]));
  for (const op of ["Sum", "Mul", "Concat", "Sigmoid"]) assert.ok(ops.includes(op), `${op} in ${ops.join(", ")}`);
});

test("the zoo's resnet-mini (graph) and mobilenet-mini (depthwise-separable) run in onnxruntime-node", async (t) => {
  for (const name of ["resnet-mini", "mobilenet-mini"] as const) {
    await expectSamePredictions(t, randomize(buildModel(name, { seed: 2 }), 3), [2, 1, 28, 28], 4);
  }
});

test("toOnnx errors: unknown input shape, a layer without an ONNX equivalent", () => {
  assert.throws(
    () => toOnnx(new Sequential([new ReLU()])),
    /input shape of sequential is unknown: pass \{inputShape\}/,
  );
  class Custom extends Layer {
    readonly type = "Custom";
    forward(x: NDArray): NDArray {
      return x;
    }
    backward(dy: NDArray): NDArray {
      return dy;
    }
    outputShape(s: readonly number[]): number[] {
      return s.slice();
    }
    config(): LayerConfig {
      return { type: this.type };
    }
  }
  assert.throws(
    () => toOnnx(new Sequential([new ReLU(), new Custom()], { inputShape: [3] })),
    /toOnnx: layer 1 \(Custom\) has no ONNX equivalent/,
  );
  const gx = Input([3]);
  const graphModel = new Model({
    inputs: gx,
    outputs: new Add().apply([gx, new Custom().apply(gx, "mystery")], "sum"),
  });
  assert.throws(
    () => toOnnx(graphModel),
    /toOnnx: node 'mystery' \(Custom\) has no ONNX equivalent here \(at ONNX node 'mystery'/,
  );
  assert.throws(
    () => toOnnx(new Sequential([new Dense({ inFeatures: 3, outFeatures: 2 })]), { inputShape: [4] }),
    /layer 0 \(Dense\)/,
  );
  // ONNX names every output explicitly: also works for a 1-D model without a Flatten
  const mlp = new Sequential([new Flatten(), new Dense({ inFeatures: 6, outFeatures: 2 })], {
    inputShape: [6],
    seed: 1,
  });
  assert.ok(toOnnx(mlp).length > 0);
});

/** Run the CLI in-process (spawning tsx costs seconds per call), capturing stdout and stderr. */
async function cli(...args: string[]): Promise<{ code: number; out: string; err: string }> {
  const captured = { out: "", err: "" };
  const [stdout, stderr] = [process.stdout.write.bind(process.stdout), process.stderr.write.bind(process.stderr)];
  process.stdout.write = (chunk: string | Uint8Array) => ((captured.out += String(chunk)), true);
  process.stderr.write = (chunk: string | Uint8Array) => ((captured.err += String(chunk)), true);
  try {
    const code = await main(args);
    return { code, ...captured };
  } finally {
    process.stdout.write = stdout;
    process.stderr.write = stderr;
  }
}

test("handprop export --format onnx: a saved model folder to a file onnxruntime runs, normalization in metadata_props", async () => {
  const model = randomize(buildModel("cnn-small", { seed: 2 }), 3);
  const dir = join(tmp, "saved-cnn");
  const normalization = { scale: 1 / 255, mean: 0.1307, std: 0.3081 };
  saveModel(model, dir, { training: { dataset: { normalization } } });
  const file = join(tmp, "cli", "cnn.onnx");
  const r = await cli("export", "--format", "onnx", "--model", dir, "--out", file);
  assert.equal(r.code, 0, r.err);
  assert.match(
    r.out,
    /exported cnn-small to .*cnn\.onnx \(\d+ bytes; ONNX opset 13.*inputs x = \(pixel · 0\.00392157 − 0\.1307\) \/ 0\.3081\)/,
  );
  const session = await ort.InferenceSession.create(file);
  const x = randomInput([2, 1, 28, 28], 6);
  assert.ok(maxAbsDiff((await ortPredict(session, x)).data, model.predict(x).data) <= 1e-4);
  await session.release();
  const props = get(readFields(readFileSync(file)), 14).map((p) => sub(p));
  assert.deepEqual(
    props.map((p) => [str(get(p, 1)[0]), JSON.parse(str(get(p, 2)[0])) as unknown]),
    [["handprop.normalization", normalization]],
  );

  const usage = await cli("export", "--format", "onnx", "--model", dir);
  assert.equal(usage.code, 2);
  assert.match(usage.err, /--out is required/);
  const bad = await cli("export", "--format", "keras", "--model", dir, "--out", file);
  assert.equal(bad.code, 2);
  assert.match(bad.err, /--format expects one of tfjs, onnx, got 'keras'/);
  const same = await cli("export", "--format", "tfjs", "--model", dir, "--out", dir + "/");
  assert.equal(same.code, 2);
  assert.match(same.err, /--out must be another folder than --model/);
  const missing = await cli("export", "--format", "onnx", "--model", join(tmp, "nope"), "--out", file);
  assert.equal(missing.code, 1);
  assert.match(missing.err, /handprop export: .*nope.*model\.json: missing/);
});
