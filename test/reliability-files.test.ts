// Regression tests for issue 11's file defects, in process: each test is named after its defect
// number. Atomic checkpoints (2: a simulated crash at every step of a save, and one real SIGKILL),
// non-finite weights (3), bounded loading (5), bounded IDX gunzip (6), mixed dtypes (9), empty data
// (10), and error messages (14).
import { test } from "node:test";
import assert from "node:assert/strict";
import { spawn, spawnSync } from "node:child_process";
import { existsSync, mkdirSync, readdirSync, readFileSync, rmSync, symlinkSync, writeFileSync } from "node:fs";
import { hostname } from "node:os";
import { join } from "node:path";
import { gzipSync } from "node:zlib";
import { NDArray } from "../src/nd/ndarray.ts";
import { SGD } from "../src/nn/optim.ts";
import { SoftmaxCrossEntropy } from "../src/nn/losses.ts";
import { Sequential } from "../src/nn/sequential.ts";
import { Dense } from "../src/nn/dense.ts";
import { Flatten } from "../src/nn/flatten.ts";
import { Dropout } from "../src/nn/dropout.ts";
import { Softmax } from "../src/nn/activations.ts";
import { buildModel } from "../src/nn/models.ts";
import { COMMIT_JOURNAL, setCommitHookForTests } from "../src/node/atomic.ts";
import {
  ModelFormatError,
  cleanModelFolder,
  crc32,
  deserializeModel,
  loadModel,
  saveModel,
  serializeModel,
  type ModelManifest,
} from "../src/node/model-io.ts";
import { IdxError, encodeIdx } from "../src/io/idx.ts";
import { readIdx } from "../src/node/idx.ts";
import { lockFolder, LockError, LOCK_FILE } from "../src/node/lock.ts";
import { tempDirForFile } from "./helpers.ts";

const tmp = tempDirForFile("handprop-reliability-");
let count = 0;
const fresh = (): string => join(tmp, `d${count++}`);

const small = (seed: number): Sequential =>
  new Sequential([new Flatten(), new Dense({ inFeatures: 784, outFeatures: 10 })], { inputShape: [1, 28, 28], seed });
const crcOf = (b: Uint8Array): string => crc32(b).toString(16).padStart(8, "0");
const weightsOf = (m: Sequential): Buffer => Buffer.from(serializeModel(m).weights);

class Crash extends Error {}

test("defect 2: a save killed at any step leaves the previous checkpoint or the new one, never a mix; leftovers are cleaned next time", () => {
  const optimizerA = new SGD({ lr: 0.1, momentum: 0.9 });
  const a = small(1);
  const b = small(2);
  // Give both an optimizer state so that optimizer.bin is part of the commit too.
  const x = new NDArray(new Float32Array(2 * 784).fill(0.5), [2, 1, 28, 28]);
  a.trainBatch(x, new Int32Array([1, 2]), new SoftmaxCrossEntropy(), optimizerA);
  const optimizerB = new SGD({ lr: 0.1, momentum: 0.9 });
  b.trainBatch(x, new Int32Array([3, 4]), new SoftmaxCrossEntropy(), optimizerB);
  const steps = [
    "written weights.bin",
    "written optimizer.bin",
    "written model.json",
    "committed",
    "renamed weights.bin",
    "renamed optimizer.bin",
    "renamed model.json",
    "done",
  ];
  for (const [i, step] of steps.entries()) {
    const dir = fresh();
    saveModel(a, dir, { optimizer: optimizerA, training: { generation: "a" } });
    setCommitHookForTests((s) => {
      if (s === step) throw new Crash(s);
    });
    try {
      assert.throws(() => saveModel(b, dir, { optimizer: optimizerB, training: { generation: "b" } }), Crash);
    } finally {
      setCommitHookForTests(null);
    }
    // Exactly the old model before the commit, exactly the new one from it on, weights and optimizer alike.
    const loaded = loadModel(dir, { withOptimizer: true });
    const expected = i < steps.indexOf("committed") ? "a" : "b";
    assert.equal(loaded.training?.generation, expected, `crash at "${step}"`);
    assert.ok(weightsOf(loaded.model).equals(weightsOf(expected === "a" ? a : b)), `crash at "${step}": weights`);
    assert.deepEqual(
      loaded.optimizer?.stateDict(),
      (expected === "a" ? optimizerA : optimizerB).stateDict(),
      `crash at "${step}": optimizer`,
    );
    // The next save (or cleanModelFolder) completes or removes what was left.
    cleanModelFolder(dir);
    assert.deepEqual(
      readdirSync(dir).sort(),
      ["model.json", "optimizer.bin", "weights.bin"],
      `crash at "${step}": leftovers`,
    );
    assert.equal(loadModel(dir).training?.generation, expected);
    saveModel(a, dir, { optimizer: optimizerA, training: { generation: "c" } });
    assert.deepEqual(readdirSync(dir).sort(), ["model.json", "optimizer.bin", "weights.bin"]);
  }
});

test("defect 2: a process SIGKILLed while saving in a loop leaves a loadable model", async () => {
  const dir = fresh();
  const atomicUrl = new URL("../src/node/model-io.ts", import.meta.url).href;
  const modelsUrl = new URL("../src/nn/models.ts", import.meta.url).href;
  // Saves LeNet-5 over and over with alternating seeds; the parent kills it mid-stream.
  const script = `
    const { saveModel } = await import(${JSON.stringify(atomicUrl)});
    const { buildModel } = await import(${JSON.stringify(modelsUrl)});
    const models = [buildModel("lenet5", { seed: 1 }), buildModel("lenet5", { seed: 2 })];
    saveModel(models[0], process.env.DIR, { training: { seed: 1 } });
    process.stdout.write("ready\\n");
    for (let i = 1; ; i++) saveModel(models[i % 2], process.env.DIR, { training: { seed: 1 + (i % 2) } });`;
  for (let round = 0; round < 2; round++) {
    const child = spawn(process.execPath, ["--import", "tsx", "--input-type=module", "-e", script], {
      env: { ...process.env, DIR: dir },
    });
    await new Promise<void>((resolve) => {
      child.stdout.once("data", () => {
        resolve();
      });
    });
    await new Promise((r) => setTimeout(r, 50 + 97 * round));
    child.kill("SIGKILL");
    await new Promise((r) => child.once("close", r));
    const loaded = loadModel(dir);
    const seed = loaded.training?.seed as number;
    assert.ok(
      weightsOf(loaded.model).equals(weightsOf(buildModel("lenet5", { seed }))),
      `round ${round}: the weights are those of seed ${seed}`,
    );
  }
});

test("defect 3: loading refuses non-finite weights naming the tensor; saving refuses them too", () => {
  const model = small(3);
  const s = serializeModel(model);
  const w = Buffer.from(s.weights);
  w.writeFloatLE(Infinity, 4 * 7850 - 4); // the last bias
  const m = JSON.parse(s.json) as ModelManifest;
  m.weights.crc32 = crcOf(w);
  assert.throws(
    () => deserializeModel(JSON.stringify(m), w, undefined, { manifest: "m/model.json", weights: "m/weights.bin" }),
    (e: unknown) =>
      e instanceof ModelFormatError &&
      /^m\/weights\.bin: tensor 1\.bias .*layer 1 \(Dense\).* holds Infinity at index 9: the weights are not finite/.test(
        e.message,
      ),
  );
  model.layers[1].params()[0].value.data[5] = NaN;
  assert.throws(
    () => serializeModel(model),
    /1\.weight \(layer 1 \(Dense\)\) holds NaN at index 5: refusing to save non-finite weights/,
  );
});

test("defect 5: a model.json declaring a huge layer over a small weights.bin fails before allocating", () => {
  const dir = fresh();
  saveModel(small(4), dir);
  const m = JSON.parse(readFileSync(join(dir, "model.json"), "utf8")) as ModelManifest;
  m.model.layers[1] = { ...m.model.layers[1], outFeatures: 300000 };
  writeFileSync(join(dir, "model.json"), JSON.stringify(m));
  const t0 = performance.now();
  const heap0 = process.memoryUsage().rss;
  assert.throws(
    () => loadModel(dir),
    (e: unknown) =>
      e instanceof ModelFormatError &&
      /"model\.layers" declare at least 235200000 parameter values \(layer 1, .*\), but "weights\.tensors" and .*weights\.bin hold 7850: refusing to build the model/.test(
        e.message,
      ),
  );
  assert.ok(performance.now() - t0 < 1000, "fails fast");
  assert.ok(process.memoryUsage().rss - heap0 < 100e6, "without allocating the layer");
});

test("defect 5: a weights.bin that is a symlink to /dev/zero, a FIFO or a folder is refused by name; sizes are checked before reading", () => {
  const base = fresh();
  saveModel(small(5), base);
  const zero = fresh();
  saveModel(small(5), zero);
  rmSync(join(zero, "weights.bin"));
  symlinkSync("/dev/zero", join(zero, "weights.bin"));
  assert.throws(
    () => loadModel(zero),
    /weights\.bin: a character device, not a regular file \(the weights listed in .*model\.json\): refusing to read it/,
  );
  const fifo = fresh();
  saveModel(small(5), fifo);
  rmSync(join(fifo, "weights.bin"));
  const mk = spawnSync("mkfifo", [join(fifo, "weights.bin")]);
  if (mk.status === 0) assert.throws(() => loadModel(fifo), /weights\.bin: a FIFO \(named pipe\), not a regular file/);
  const folder = fresh();
  saveModel(small(5), folder);
  rmSync(join(folder, "model.json"));
  mkdirSync(join(folder, "model.json"));
  assert.throws(() => loadModel(folder), /model\.json: a directory, not a regular file/);
  // a weights.bin much larger than declared: refused from its size, not read
  const big = fresh();
  saveModel(small(5), big);
  writeFileSync(join(big, "weights.bin"), Buffer.alloc(50e6));
  assert.throws(() => loadModel(big), /weights\.bin: 49968600 bytes too many: .*model\.json says 31400 bytes/);
});

test("defect 6: IDX gunzip is bounded by the size the header declares", () => {
  const dir = fresh();
  mkdirSync(dir);
  // A header declaring 10×28×28 bytes followed by 64 MB of zeros: a gzip bomb of ~64 KB.
  const header = encodeIdx([10, 28, 28], new Uint8Array(7840));
  const bomb = gzipSync(Buffer.concat([header, Buffer.alloc(64 * 1024 * 1024)]));
  writeFileSync(join(dir, "bomb-idx3-ubyte.gz"), bomb);
  const rss0 = process.memoryUsage().rss;
  assert.throws(
    () => readIdx(join(dir, "bomb-idx3-ubyte.gz")),
    (e: unknown) =>
      e instanceof IdxError &&
      /^bomb-idx3-ubyte\.gz: decompresses to more than the 7856 bytes its header declares: refusing to decompress further/.test(
        e.message,
      ),
  );
  assert.ok(process.memoryUsage().rss - rss0 < 50e6, "the bomb was not inflated");
  // a valid file still reads, and a raw IDX that is a FIFO or device is refused
  writeFileSync(join(dir, "ok-idx3-ubyte.gz"), gzipSync(header));
  assert.deepEqual(readIdx(join(dir, "ok-idx3-ubyte.gz")).shape, [10, 28, 28]);
  symlinkSync("/dev/zero", join(dir, "zero-idx1-ubyte"));
  assert.throws(
    () => readIdx(join(dir, "zero-idx1-ubyte")),
    /zero-idx1-ubyte: .*a character device, not a regular file/,
  );
});

test("defect 9: a Sequential mixing float32 and float64 layers is refused at construction, naming the layers", () => {
  assert.throws(
    () =>
      new Sequential([
        new Flatten(),
        new Dense({ inFeatures: 4, outFeatures: 3 }),
        new Dense({ inFeatures: 3, outFeatures: 2, dtype: "float64" }),
      ]),
    /layers mix dtypes \(float32: layer 1 \(Dense\); float64: layer 2 \(Dense\)\)/,
  );
  // {dtype} converts them all, so that stays allowed
  const m = new Sequential(
    [new Dense({ inFeatures: 4, outFeatures: 3 }), new Dense({ inFeatures: 3, outFeatures: 2, dtype: "float64" })],
    { dtype: "float64" },
  );
  assert.equal(m.dtype, "float64");
  // a layer converted after construction cannot be saved
  m.layers[0].setDtype("float32");
  assert.throws(
    () => serializeModel(m),
    /the model mixes dtypes \(float32: layer 0 \(Dense\); float64: layer 1 \(Dense\)\)/,
  );
});

test("defect 10: fit and evaluate on no data are clear errors, not NaN", () => {
  const m = small(6);
  const x = new NDArray(new Float32Array(0), [0, 1, 28, 28]);
  const loss = new SoftmaxCrossEntropy();
  assert.throws(
    () => m.fit(x, new Int32Array(0), { loss, optimizer: new SGD({ lr: 0.1 }) }),
    /fit: no samples \(x has shape \(0, 1, 28, 28\)\)/,
  );
  assert.throws(() => m.evaluate(x, new Int32Array(0), { loss }), /evaluate: no samples/);
});

test("defect 3: a step that makes the weights non-finite stops training, naming the layer", () => {
  const m = small(7);
  const x = new NDArray(
    Float32Array.from({ length: 2 * 784 }, (_, i) => (i % 7) - 3),
    [2, 1, 28, 28],
  );
  assert.throws(
    () => m.trainBatch(x, new Int32Array([1, 2]), new SoftmaxCrossEntropy(), new SGD({ lr: 1e39 }), "epoch 1, batch 1"),
    /layer 1 \(Dense\) weight\[\d+\] became -?Infinity after the optimizer step at epoch 1, batch 1: lower the learning rate/,
  );
});

test("defect 14: deep nesting, control characters and RNG-state keys give file-naming errors with field paths", () => {
  const deep = "[".repeat(200000) + "]".repeat(200000);
  assert.throws(
    () => deserializeModel(deep, new Uint8Array(0), undefined, { manifest: "x/model.json" }),
    /^ModelFormatError: x\/model\.json: JSON nested more than 64 levels deep/,
  );
  const withDropout = new Sequential(
    [new Flatten(), new Dropout({ rate: 0.5 }), new Dense({ inFeatures: 784, outFeatures: 10 })],
    { inputShape: [1, 28, 28], seed: 1 },
  );
  const s = serializeModel(withDropout);
  const m = JSON.parse(s.json) as ModelManifest;
  m.rngStates!["1"].key[17] = -5;
  assert.throws(
    () => deserializeModel(JSON.stringify(m), s.weights),
    /model\.json: "rngStates\.1\.key\[17\]" must be an integer in \[0, 2\^32\), got -5/,
  );
  const bad = JSON.parse(s.json) as ModelManifest;
  bad.model.layers[0] = { type: "Evil\u001b[2J\u0000" };
  assert.throws(
    () => deserializeModel(JSON.stringify(bad), s.weights),
    (e: unknown) =>
      // eslint-disable-next-line no-control-regex
      e instanceof Error && !/[\u0000-\u0008\u000b-\u001f]/.test(e.message) && e.message.includes("Evil\\e[2J\\0"),
  );
});

test("defect 14: a layer that does not fit its input names the batch axis N, never NaN", () => {
  const s = serializeModel(buildModel("lenet5", { seed: 1 }));
  const m = JSON.parse(s.json) as ModelManifest;
  m.model.inputShape = [1, 32, 32]; // the first Dense now gets 16·6·6 = 576 features instead of 400
  assert.throws(
    () => deserializeModel(JSON.stringify(m), s.weights),
    (e: unknown) =>
      e instanceof ModelFormatError &&
      /expected input of shape \(N, 400\), got \(N, 576\)/.test(e.message) &&
      !e.message.includes("NaN"),
  );
  const soft = new Sequential([new Flatten(), new Dense({ inFeatures: 4, outFeatures: 2 }), new Softmax({ axis: 3 })]);
  assert.throws(
    () => soft.build([4]),
    (e: unknown) => e instanceof Error && e.message.includes("(N, 2)") && !e.message.includes("NaN"),
  );
});

test("defect 7: a lock on a folder: refused while held, a stale one (dead pid) taken over with a note, released at the end", () => {
  const dir = fresh();
  const lock = lockFolder(dir, "test");
  assert.throws(
    () => lockFolder(dir, "test"),
    (e: unknown) =>
      e instanceof LockError &&
      new RegExp(`is in use by pid ${process.pid} on .*started .*: wait for it to finish or choose another --out`).test(
        e.message,
      ),
  );
  lock.release();
  assert.ok(!existsSync(join(dir, LOCK_FILE)));
  // a lock left by a process that no longer exists
  const dead = spawnSync(process.execPath, ["-e", "process.stdout.write(String(process.pid))"], { encoding: "utf8" });
  mkdirSync(dir, { recursive: true });
  writeFileSync(
    join(dir, LOCK_FILE),
    JSON.stringify({
      pid: Number(dead.stdout),
      host: hostname(),
      startedAt: "2026-01-01T00:00:00.000Z",
      command: "handprop train",
    }),
  );
  const notes: string[] = [];
  const taken = lockFolder(dir, "test", (n) => notes.push(n));
  assert.match(
    notes.join("\n"),
    new RegExp(
      `taking over a stale lock \\(pid ${dead.stdout} on .*, handprop train, started 2026-01-01T00:00:00\\.000Z, no longer running\\)`,
    ),
  );
  taken.release();
  // another host's lock is never taken over
  writeFileSync(
    join(dir, LOCK_FILE),
    JSON.stringify({
      pid: 1,
      host: "elsewhere.invalid",
      startedAt: "2026-01-01T00:00:00.000Z",
      command: "handprop train",
    }),
  );
  assert.throws(
    () => lockFolder(dir, "test"),
    /is locked by pid 1 on elsewhere\.invalid.*; if that run is over, remove .*\.handprop\.lock and try again/,
  );
  assert.ok(!readdirSync(dir).some((f) => f.includes(COMMIT_JOURNAL)));
});
