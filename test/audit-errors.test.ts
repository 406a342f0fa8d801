// The errors a new user meets first, through the package's entries as an application imports them: each
// names what was wrong and where (the call, the argument, the file), never a TypeError from deep inside.
import { test } from "node:test";
import assert from "node:assert/strict";
import { readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import {
  Adam,
  Dense,
  Flatten,
  NDArray,
  Sequential,
  SoftmaxCrossEntropy,
  buildModel,
  layerFromConfig,
  loadModel,
  loadTfjsModel,
  modelToFile,
  saveModel,
  setThreads,
  toOnnx,
} from "../src/node/index.ts";
import { tempDirForFile } from "./helpers.ts";

const work = tempDirForFile("handprop-audit-");

function compiledModel(): Sequential {
  const model = buildModel("cnn-small", { seed: 0 });
  model.compile({ loss: new SoftmaxCrossEntropy(), optimizer: new Adam() });
  return model;
}

const images = (n: number) => new NDArray(new Float32Array(n * 784), [n, 1, 28, 28]);

test("loadModel given a file instead of a model folder says so, with a hint for ONNX and .handprop files", () => {
  const model = buildModel("cnn-small", { seed: 0 });
  const onnx = join(work, "model.onnx");
  const download = join(work, "model.handprop");
  const text = join(work, "notes.txt");
  writeFileSync(onnx, toOnnx(model));
  writeFileSync(download, modelToFile(model));
  writeFileSync(text, "hello");
  const cases: [string, RegExp][] = [
    [onnx, /exports ONNX but does not import it/],
    [download, /modelFromFile\(bytes\)/],
    [text, /model\.json and weights\.bin/],
  ];
  for (const [path, hint] of cases) {
    assert.throws(
      () => loadModel(path),
      (e: Error) => {
        assert.equal(e.name, "ModelFormatError");
        assert.ok(e.message.startsWith(`${path}: not a folder: a handprop model is a folder`), e.message);
        assert.match(e.message, hint);
        assert.doesNotMatch(e.message, /ENOTDIR|commit journal/);
        return true;
      },
    );
  }
  // a missing path keeps its own error: model.json is missing
  assert.throws(() => loadModel(join(work, "nothing-here")), /nothing-here\/model\.json: missing/);
});

test("loadTfjsModel given a file (not a folder or model.json) says so; a handprop folder: loadModel", () => {
  const onnx = join(work, "for-tfjs.onnx");
  writeFileSync(onnx, toOnnx(buildModel("mlp", { seed: 0 })));
  assert.throws(
    () => loadTfjsModel(onnx),
    (e: Error) => {
      assert.equal(e.name, "TfjsFormatError");
      assert.ok(
        e.message.startsWith(`${onnx}: not a folder: loadTfjsModel reads a folder holding model.json`),
        e.message,
      );
      return true;
    },
  );
  const dir = join(work, "handprop-folder");
  saveModel(buildModel("cnn-small", { seed: 0 }), dir);
  assert.throws(
    () => loadTfjsModel(dir),
    /model\.json: no "weightsManifest" array \(a handprop model folder: read it with loadModel\)/,
  );
});

test("fit, fitAsync, predict, evaluate and evaluateMetrics refuse an x that is not an NDArray, naming it", async () => {
  const model = compiledModel();
  const labels = new Int32Array([0, 1, 2, 3]);
  const flat = new Float32Array(4 * 784) as unknown as NDArray;
  const nested = [
    [0, 1],
    [2, 3],
  ] as unknown as NDArray;
  const wrap = /wrap the values: new NDArray\(values, \[N, C, H, W\]\) or array\(nested\)/;
  const calls: [string, () => unknown, RegExp][] = [
    ["fit", () => model.fit(flat, labels), /^fit: x must be an NDArray .*got a Float32Array of 12544 bytes/],
    [
      "predict",
      () => model.predict(nested),
      /^cnn-small\.predict: x must be an NDArray .*got a plain array of length 2/,
    ],
    ["evaluate", () => model.evaluate(flat, labels), /^evaluate: x must be an NDArray/],
    ["evaluateMetrics", () => model.evaluateMetrics(flat, labels), /^evaluateMetrics: x must be an NDArray/],
    [
      "validationData",
      () => model.fit(images(4), labels, { validationData: [flat, labels] }),
      /^fit \(validationData\)/,
    ],
  ];
  for (const [what, call, message] of calls) {
    assert.throws(call, (e: Error) => e instanceof TypeError && message.test(e.message) && wrap.test(e.message), what);
  }
  await assert.rejects(
    model.fitAsync(flat, labels),
    (e: Error) => e instanceof TypeError && /^fit: x must be/.test(e.message),
  );
  // the batch-source form still takes an iterable of {x, y}
  const history = await model.fitAsync([{ x: images(4), y: labels }], { epochs: 1 });
  assert.equal(history.epochs.length, 1);
});

test("fit and evaluate refuse labels of the wrong kind, and name a label outside the classes", () => {
  const model = compiledModel();
  const x = images(4);
  const wrongKinds: [string, unknown][] = [
    ["undefined", undefined],
    ["a string", "0123"],
    ["a number", 7],
    ["a DataView", new DataView(new ArrayBuffer(4))],
  ];
  for (const [what, y] of wrongKinds) {
    assert.throws(
      () => model.fit(x, y as Int32Array),
      (e: Error) => e instanceof TypeError && /fit: y must be class labels \(an Int32Array or an array/.test(e.message),
      what,
    );
  }
  // fit shuffles: a bad label is named by its index in y (checked before the first batch), not its batch slot
  const cases: [ArrayLike<number> | NDArray, RegExp][] = [
    [new Int32Array([0, 1, 2, 10]), /fit: y\[3\] is 10, outside \[0, 10\) for the model's 10 classes$/],
    [[0, 1, -1, 3], /fit: y\[2\] is -1, outside \[0, 10\)/],
    [new Float32Array([0, 1.5, 2, 3]), /fit: y\[1\] is 1\.5, not an integer class index$/],
    [new NDArray(new Float32Array([0, 1, 2, NaN]), [4]), /fit: y\[3\] is NaN, not an integer class index$/],
  ];
  for (const [y, message] of cases) {
    assert.throws(() => model.fit(x, y as Int32Array, { epochs: 1, seed: 3 }), message);
    assert.throws(
      () => model.fit(x, new Int32Array(4), { validationData: [x, y as Int32Array] }),
      /fit \(validationData\): y\[/,
    );
  }
  // a model whose input shape is left open learns its classes at its first forward; y is still checked there
  const open = new Sequential([new Flatten(), new Dense({ inFeatures: 784, outFeatures: 3 })]);
  open.compile({ loss: new SoftmaxCrossEntropy(), optimizer: new Adam() });
  assert.throws(() => open.fit(x, new Int32Array([0, 1, 2, -4])), /fit: y\[3\] is -4, below 0$/);
  assert.throws(() => open.fit(x, new Int32Array([0, 1, 2, 3])), /label of sample \d is 3, outside \[0, 3\)/);
  assert.equal(open.inputShape, null, "checking the labels fixed the model's input shape");
  assert.throws(() => model.evaluate(x, new Int32Array([0, 1, 2, 10])), /label of sample 3 is 10, outside \[0, 10\)/);
  assert.throws(() => model.fit(x, new Int32Array(3)), /fit: x has 4 samples but y has 3/);
});

test("the other first errors name what was wrong: shapes, compile, threads, unknown layer types", () => {
  const model = compiledModel();
  assert.throws(
    () => model.predict(new NDArray(new Float32Array(784), [1, 28, 28])),
    /cnn-small: expected input of shape \(N, 1, 28, 28\), got \(1, 28, 28\)/,
  );
  const uncompiled = buildModel("mlp", { seed: 0 });
  assert.throws(() => uncompiled.fit(images(2), new Int32Array(2)), /no loss or optimizer: call compile/);
  // a bad count throws at the call (documented on setThreads), before any promise exists
  for (const n of [0, -1, 1.5]) assert.throws(() => setThreads(n), /an integer ≥ 1, got/);
  assert.throws(() => setThreads(1e9), /at most 1024 threads, got 1000000000/);
  assert.throws(() => layerFromConfig({ type: "Denze" }), /unknown layer type "Denze" \(known: Conv2D, Dense/);
  const dir = join(work, "unknown-layer");
  saveModel(buildModel("mlp", { seed: 0 }), dir);
  const manifest = JSON.parse(readFileSync(join(dir, "model.json"), "utf8")) as {
    model: { layers: { type: string }[] };
  };
  manifest.model.layers[1].type = "Denze";
  writeFileSync(join(dir, "model.json"), JSON.stringify(manifest));
  assert.throws(() => loadModel(dir), /model\.json: .*unknown layer type "Denze"/);
});
