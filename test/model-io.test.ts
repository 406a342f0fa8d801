// Saving and loading models: bit-identical predictions, optimizer and Dropout state for exact resumes,
// the in-memory variants, atomic writes, and a clear error for every kind of damaged model folder.
import { test } from "node:test";
import assert from "node:assert/strict";
import { cpSync, existsSync, mkdirSync, readdirSync, readFileSync, writeFileSync } from "node:fs";
import { dirname, join, resolve } from "node:path";
import * as zlib from "node:zlib";
import { NDArray } from "../src/nd/ndarray.ts";
import { RandomState } from "../src/nd/random.ts";
import { Adam, SGD, type Optimizer } from "../src/nn/optim.ts";
import { SoftmaxCrossEntropy } from "../src/nn/losses.ts";
import { Sequential } from "../src/nn/sequential.ts";
import { Conv2D } from "../src/nn/conv.ts";
import { BatchNorm2D } from "../src/nn/batchnorm.ts";
import { Dropout } from "../src/nn/dropout.ts";
import { ReLU } from "../src/nn/activations.ts";
import { MaxPool2D } from "../src/nn/pool.ts";
import { Flatten } from "../src/nn/flatten.ts";
import { Dense } from "../src/nn/dense.ts";
import { MODEL_NAMES, buildModel } from "../src/nn/models.ts";
import { writeFilesAtomic } from "../src/node/atomic.ts";
import {
  ModelFormatError,
  crc32,
  deserializeModel,
  loadModel,
  readableJson,
  saveModel,
  serializeModel,
  type ModelManifest,
} from "../src/node/model-io.ts";
import { tempDirForFile } from "./helpers.ts";

const tmp = tempDirForFile("handprop-model-io-");
let dirCount = 0;
const freshDir = (): string => join(tmp, `m${dirCount++}`);

function images(n: number, seed: number): NDArray {
  const rng = new RandomState(seed);
  return new NDArray(Float32Array.from(rng.standardNormal([n * 784]).data), [n, 1, 28, 28]);
}
const labels = (n: number): Int32Array => Int32Array.from({ length: n }, (_, i) => (i * 7) % 10);

/** A model using every kind of state: conv, batch norm running stats (non-trainable), dropout. */
function stateful(seed = 3): Sequential {
  return new Sequential(
    [
      new Conv2D({ inChannels: 1, outChannels: 4, kernelSize: 3, padding: "same" }),
      new BatchNorm2D({ numFeatures: 4 }),
      new ReLU(),
      new MaxPool2D({ kernelSize: 2 }),
      new Flatten(),
      new Dropout({ rate: 0.3 }),
      new Dense({ inFeatures: 4 * 14 * 14, outFeatures: 10 }),
    ],
    { inputShape: [1, 28, 28], seed, name: "stateful" },
  );
}

function trainSteps(model: Sequential, optimizer: Optimizer, steps: number, seed: number): void {
  const loss = new SoftmaxCrossEntropy();
  const params = model.layers.flatMap((l) => l.params());
  const x = images(8, seed);
  const y = labels(8);
  for (let s = 0; s < steps; s++) {
    model.zeroGrad();
    loss.forward(model.forward(x, { training: true }), y);
    model.backward(loss.backward());
    optimizer.step(params);
  }
}

function sameBits(a: NDArray, b: NDArray, what: string): void {
  assert.deepEqual(a.shape, b.shape, what);
  assert.equal(a.dtype, b.dtype, what);
  assert.ok(
    Buffer.from(a.data.buffer, a.data.byteOffset, a.data.byteLength).equals(
      Buffer.from(b.data.buffer, b.data.byteOffset, b.data.byteLength),
    ),
    `${what}: not bit-identical`,
  );
}

test("save → load gives bit-identical predictions for every zoo model and a stateful model", () => {
  const x = images(16, 1);
  for (const name of MODEL_NAMES) {
    const model = buildModel(name, { seed: 5 });
    trainSteps(model, new Adam({ lr: 0.01 }), 2, 2);
    const dir = freshDir();
    saveModel(model, dir);
    assert.deepEqual(
      readdirSync(dir).sort(),
      ["model.json", "weights.bin"],
      "no temporary files left, no optimizer.bin without an optimizer",
    );
    const { model: loaded } = loadModel(dir);
    assert.equal(loaded.name, name);
    assert.deepEqual(loaded.inputShape, [1, 28, 28]);
    sameBits(loaded.predict(x), model.predict(x), name);
    assert.deepEqual(loaded.config(), model.config());
  }
  const model = stateful();
  trainSteps(model, new SGD({ lr: 0.05, momentum: 0.9 }), 3, 4); // moves the batch-norm running statistics
  const dir = freshDir();
  const manifest = saveModel(model, dir);
  assert.deepEqual(
    manifest.weights.tensors.map((t) => [t.name, t.trainable]),
    [
      ["0.weight", true],
      ["0.bias", true],
      ["1.gamma", true],
      ["1.beta", true],
      ["1.runningMean", false],
      ["1.runningVar", false],
      ["6.weight", true],
      ["6.bias", true],
    ],
  );
  const { model: loaded } = loadModel(dir);
  sameBits(loaded.predict(x), model.predict(x), "stateful");
  const [bnLoaded, bnSaved] = [loaded.layers[1], model.layers[1]];
  assert.ok(bnLoaded instanceof BatchNorm2D && bnSaved instanceof BatchNorm2D);
  sameBits(bnLoaded.runningVar.value, bnSaved.runningVar.value, "running variance");
});

test("weights.bin is every parameter, float32 little-endian, in order; model.json carries format, version and CRC-32", () => {
  const model = buildModel("cnn-small", { seed: 1 });
  const dir = freshDir();
  saveModel(model, dir, { training: { epochsDone: 3, note: "hello" } });
  const bytes = readFileSync(join(dir, "weights.bin"));
  const params = model.params();
  const expected = Buffer.concat(params.map((p) => Buffer.from(Float32Array.from(p.value.data).buffer)));
  assert.ok(bytes.equals(expected));
  const m = JSON.parse(readFileSync(join(dir, "model.json"), "utf8")) as ModelManifest;
  assert.equal(m.format, "handprop-model");
  assert.equal(m.version, 1);
  assert.equal(
    m.handpropVersion,
    (JSON.parse(readFileSync(new URL("../package.json", import.meta.url), "utf8")) as { version: string }).version,
  );
  assert.equal(m.weights.byteLength, bytes.length);
  assert.deepEqual(m.training, { epochsDone: 3, note: "hello" });
  assert.deepEqual(m.model, model.config());
  assert.equal(m.weights.crc32, crc32(bytes).toString(16).padStart(8, "0"));
  if ("crc32" in zlib)
    assert.equal(
      crc32(bytes),
      (zlib as unknown as { crc32(b: Uint8Array): number }).crc32(bytes),
      "same CRC-32 as zlib",
    );
  assert.equal(crc32(new TextEncoder().encode("123456789")), 0xcbf43926); // the standard check value
});

test("float64 models round-trip in float64", () => {
  const model = new Sequential([new Flatten(), new Dense({ inFeatures: 784, outFeatures: 10 })], {
    inputShape: [1, 28, 28],
    seed: 2,
    dtype: "float64",
  });
  const dir = freshDir();
  const manifest = saveModel(model, dir);
  assert.equal(manifest.weights.tensors[0].dtype, "float64");
  const { model: loaded } = loadModel(dir);
  assert.equal(loaded.dtype, "float64");
  const x = new NDArray(Float64Array.from(images(4, 9).data), [4, 1, 28, 28]);
  sameBits(loaded.predict(x), model.predict(x), "float64");
});

test("optimizer and Dropout state are saved: training continues exactly as without the round trip", () => {
  for (const makeOpt of [() => new Adam({ lr: 0.01 }), () => new SGD({ lr: 0.05, momentum: 0.9, nesterov: true })]) {
    const a = stateful(7);
    const optA = makeOpt();
    trainSteps(a, optA, 2, 1);
    const dir = freshDir();
    saveModel(a, dir, { optimizer: optA });
    assert.ok(existsSync(join(dir, "optimizer.bin")));
    const loaded = loadModel(dir, { withOptimizer: true });
    assert.ok(loaded.optimizer);
    assert.equal(loaded.optimizer.type, optA.type);
    assert.deepEqual(loaded.optimizer.stateDict(), optA.stateDict());
    // three more steps on each: same weights, same dropout masks drawn
    trainSteps(a, optA, 3, 2);
    trainSteps(loaded.model, loaded.optimizer, 3, 2);
    const wa = serializeModel(a).weights;
    const wb = serializeModel(loaded.model).weights;
    assert.ok(Buffer.from(wa).equals(Buffer.from(wb)), `${optA.type}: weights diverged after resuming`);
    const [dropLoaded, dropSaved] = [loaded.model.layers[5], a.layers[5]];
    assert.ok(dropLoaded instanceof Dropout && dropSaved instanceof Dropout);
    assert.ok(dropSaved.mask !== null);
    assert.deepEqual(dropLoaded.mask, dropSaved.mask);
  }
  // without withOptimizer, optimizer.bin is not read and no optimizer is returned
  const a = stateful();
  const dir = freshDir();
  saveModel(a, dir, { optimizer: new Adam() });
  assert.equal(loadModel(dir).optimizer, undefined);
});

test("in memory: serializeModel / deserializeModel, and model-format.ts imports nothing from node:", () => {
  const model = stateful(11);
  const opt = new Adam({ lr: 0.02 });
  trainSteps(model, opt, 1, 5);
  const s = serializeModel(model, { optimizer: opt, training: { epoch: 1 } });
  assert.equal(typeof s.json, "string");
  assert.ok(s.weights instanceof Uint8Array && s.optimizer instanceof Uint8Array);
  const back = deserializeModel(s.json, s.weights, s.optimizer);
  const x = images(3, 6);
  sameBits(back.model.predict(x), model.predict(x), "in memory");
  assert.deepEqual(back.training, { epoch: 1 });
  assert.deepEqual(back.optimizer?.stateDict(), opt.stateDict());
  // also from the bytes of model.json
  sameBits(
    deserializeModel(new TextEncoder().encode(s.json), s.weights).model.predict(x),
    model.predict(x),
    "json bytes",
  );

  // The web page loads models with these functions: walk model-format.ts's imports (transitively).
  const seen = new Set<string>();
  const visit = (file: string): void => {
    if (seen.has(file)) return;
    seen.add(file);
    const src = readFileSync(file, "utf8");
    for (const m of src.matchAll(/^(?:import|export)\s[^;]*?from\s+"([^"]+)"/gm)) {
      const spec = m[1];
      assert.ok(
        !spec.startsWith("node:") && !["fs", "path", "zlib", "crypto"].includes(spec),
        `${file} imports ${spec}`,
      );
      if (spec.startsWith(".") && spec.endsWith(".ts")) visit(resolve(dirname(file), spec));
    }
  };
  visit(new URL("../src/io/model-format.ts", import.meta.url).pathname);
  assert.ok(seen.size > 5);
});

test("readableJson keeps short values and number arrays on one line", () => {
  const text = readableJson({
    a: [1, 2, 3],
    b: { type: "ReLU" },
    long: Array.from({ length: 50 }, (_, i) => i),
    list: [{ x: "y".repeat(120) }],
  });
  assert.deepEqual(JSON.parse(text), {
    a: [1, 2, 3],
    b: { type: "ReLU" },
    long: Array.from({ length: 50 }, (_, i) => i),
    list: [{ x: "y".repeat(120) }],
  });
  assert.match(text, /\n {2}"long": \[0,1,2,[\d,]*,49\],\n/);
});

// ---------------------------------------------------------------------------------------------
// Damaged model folders: every case is a ModelFormatError naming the file and the field or layer.

function savedDir(): string {
  const model = buildModel("cnn-small", { seed: 1 });
  const optimizer = new Adam();
  trainSteps(model, optimizer, 1, 0); // so the optimizer has state (Adam's m and v) to save
  const dir = freshDir();
  saveModel(model, dir, { optimizer });
  return dir;
}

function damaged(edit: (dir: string) => void): string {
  const dir = savedDir();
  edit(dir);
  return dir;
}

function editManifest(dir: string, f: (m: Manifest) => void): void {
  const path = join(dir, "model.json");
  const m = JSON.parse(readFileSync(path, "utf8")) as Manifest;
  f(m);
  writeFileSync(path, JSON.stringify(m));
}

type Manifest = Record<string, unknown> & ModelManifest;
/** A saved model whose model.json was edited by f. */
function withManifest(f: (m: Manifest) => void): string {
  return damaged((d) => {
    editManifest(d, f);
  });
}

function loadError(dir: string, opts = {}): string {
  try {
    loadModel(dir, opts);
  } catch (e) {
    assert.ok(e instanceof ModelFormatError, `expected a ModelFormatError, got ${String(e)}`);
    return e.message;
  }
  assert.fail("the damaged model loaded");
}

test("truncated, padded or corrupted weights.bin", () => {
  let dir = damaged((d) => {
    const w = readFileSync(join(d, "weights.bin"));
    writeFileSync(join(d, "weights.bin"), w.subarray(0, 1000));
  });
  assert.match(
    loadError(dir),
    /weights\.bin: truncated: .*model\.json says 36392 bytes \(9098 float32 values in 6 arrays\), file has 1000$/,
  );

  dir = damaged((d) => {
    const w = readFileSync(join(d, "weights.bin"));
    writeFileSync(join(d, "weights.bin"), Buffer.concat([w, Buffer.alloc(8)]));
  });
  assert.match(loadError(dir), /weights\.bin: 8 bytes too many: .*model\.json says 36392 bytes/);

  dir = damaged((d) => {
    const w = readFileSync(join(d, "weights.bin"));
    w[5000] ^= 0x10; // one flipped bit
    writeFileSync(join(d, "weights.bin"), w);
  });
  assert.match(
    loadError(dir),
    /weights\.bin: checksum mismatch: CRC-32 is [0-9a-f]{8}, .*model\.json says [0-9a-f]{8} \(the file is corrupt, or belongs to another save\)/,
  );

  dir = damaged((d) => {
    const o = readFileSync(join(d, "optimizer.bin"));
    writeFileSync(join(d, "optimizer.bin"), o.subarray(0, 10));
  });
  assert.doesNotThrow(() => loadModel(dir), "optimizer.bin is only read for resuming");
  assert.match(
    loadError(dir, { withOptimizer: true }),
    /optimizer\.bin: truncated: .*model\.json says 72784 bytes \(12 optimizer state arrays\), file has 10$/,
  );
});

test("missing files and malformed JSON", () => {
  const dir = damaged((d) => {
    writeFileSync(join(d, "model.json"), '{"format": "handprop-model", "version": 1, ');
  });
  assert.match(loadError(dir), /model\.json: malformed JSON: /);
  assert.match(
    loadError(join(tmp, "nowhere")),
    /nowhere\/model\.json: missing \(the model's manifest; is this a model folder\?\)/,
  );
  const lonely = freshDir(); // a model.json whose weights.bin is not there
  mkdirSync(lonely);
  cpSync(join(savedDir(), "model.json"), join(lonely, "model.json"));
  assert.match(loadError(lonely), /weights\.bin: missing \(the weights listed in .*model\.json\)/);
});

type Loose = Record<string, unknown>;

// [what, edit to model.json, expected error]
const manifestCases: [string, (m: Manifest) => void, RegExp][] = [
  [
    "another format",
    (m) => {
      (m as Loose).format = "keras";
    },
    /model\.json: "format" is "keras", expected "handprop-model" \(not a handprop model file\?\)/,
  ],
  [
    "a newer version",
    (m) => {
      m.version = 3;
    },
    /model\.json: format version 3 is newer than this handprop \([\d.]+\) reads \(version 2\): upgrade handprop/,
  ],
  [
    "a version that is not a number",
    (m) => {
      (m as Loose).version = "1";
    },
    /model\.json: "version" must be a positive integer, got "1"/,
  ],
  [
    "a bad checksum field",
    (m) => {
      (m.weights as unknown as Loose).crc32 = 12;
    },
    /model\.json: "weights\.crc32" must be 8 lowercase hex digits/,
  ],
  [
    "a bad shape",
    (m) => {
      (m.weights.tensors[2] as unknown as Loose).shape = [16, "8"];
    },
    /model\.json: "weights\.tensors\[2\]\.shape" must be an array of non-negative integers, got \[16,"8"\]/,
  ],
  [
    "a weights file outside the folder",
    (m) => {
      m.weights.file = "../../etc/passwd";
    },
    /"weights\.file" must be a file name in the model's folder/,
  ],
  [
    "an unknown layer type",
    (m) => {
      m.model.layers[1] = { type: "Swish" };
    },
    /model\.json: "model": layer 1: unknown layer type "Swish" \(known: Conv2D, Dense/,
  ],
  [
    "a bad layer option",
    (m) => {
      m.model.layers[0] = { ...m.model.layers[0], kernelSize: -3 };
    },
    /model\.json: "model": layer 0 \(Conv2D\): Conv2D: kernelSize must be a positive integer, got -3/,
  ],
  [
    "a parameter missing from the table",
    (m) => {
      m.weights.tensors.pop();
    },
    /model\.json: the arrays listed in "weights\.tensors" take 36352 bytes but "byteLength" says 36392/,
  ],
  [
    "an architecture changed under its weights (Dense 784→10 became 784→12)",
    (m) => {
      m.model.layers[7] = { ...m.model.layers[7], outFeatures: 12 };
    },
    /model\.json: "weights\.tensors\[4\]" \(7\.weight\) has shape 784×10, but layer 7 \(Dense\) needs 784×12/,
  ],
  [
    "an offset out of order",
    (m) => {
      m.weights.tensors[1].offset = 4;
    },
    /"weights\.tensors\[1\]\.offset" is 4, expected 288 \(arrays are stored back to back, in order\)/,
  ],
  [
    "a renamed parameter",
    (m) => {
      m.weights.tensors[1].name = "0.gamma";
    },
    /"weights\.tensors\[1\]\.name" is "0\.gamma", but parameter 1 of the architecture is "0\.bias" \(layer 0 \(Conv2D\)\)/,
  ],
];

test("damaged manifests: format, version, fields, unknown layers, parameter tables that do not fit", () => {
  for (const [what, edit, expected] of manifestCases) assert.match(loadError(withManifest(edit)), expected, what);
  const optimizer = withManifest((m) => {
    (m.optimizer!.config as Loose).type = "Lion";
  });
  assert.match(
    loadError(optimizer, { withOptimizer: true }),
    /model\.json: "optimizer\.config": unknown optimizer type "Lion"/,
  );
});

test("atomic writes: an error before the renames leaves the old files untouched and no temporary files", () => {
  const dir = savedDir();
  const before = readFileSync(join(dir, "weights.bin"));
  writeFileSync(join(dir, "blocker"), "a file where a folder should be");
  assert.throws(() => {
    writeFilesAtomic([
      { path: join(dir, "weights.bin"), data: new Uint8Array(10) },
      { path: join(dir, "blocker", "model.json"), data: "{}" },
    ]);
  });
  assert.ok(readFileSync(join(dir, "weights.bin")).equals(before));
  assert.deepEqual(readdirSync(dir).sort(), ["blocker", "model.json", "optimizer.bin", "weights.bin"]);
  // saving over an existing model replaces every file and leaves nothing else behind
  const model = buildModel("mlp", { seed: 3 });
  saveModel(model, dir);
  assert.deepEqual(readdirSync(dir).sort(), ["blocker", "model.json", "optimizer.bin", "weights.bin"]);
  assert.equal(loadModel(dir).model.name, "mlp");
});
