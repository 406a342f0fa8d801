// The Trainer: fit unchanged bit for bit, stepping, exact resume, fitAsync (yielding, abort, async sources),
// gradient clipping, per-layer L2, label smoothing and class weights (gradient-checked in float64).
import { test } from "node:test";
import assert from "node:assert/strict";
import { NDArray } from "../src/nd/ndarray.ts";
import { RandomState } from "../src/nd/random.ts";
import { Conv2D } from "../src/nn/conv.ts";
import { Dense } from "../src/nn/dense.ts";
import { Flatten } from "../src/nn/flatten.ts";
import { MaxPool2D } from "../src/nn/pool.ts";
import { ReLU, Tanh } from "../src/nn/activations.ts";
import { Dropout } from "../src/nn/dropout.ts";
import { SoftmaxCrossEntropy, lossFromConfig } from "../src/nn/losses.ts";
import { gradcheckLoss } from "../src/nn/gradcheck.ts";
import { Adam, SGD } from "../src/nn/optim.ts";
import { CosineLR } from "../src/nn/schedules.ts";
import { Sequential } from "../src/nn/sequential.ts";
import { Trainer, clipGradientsByNorm, clipGradientsByValue, type Batch } from "../src/nn/trainer.ts";
import { L2Regularizer } from "../src/nn/regularizers.ts";
import { makeParam } from "../src/nn/layer.ts";
import { crc32, deserializeModel, serializeModel } from "../src/io/model-format.ts";

function bars(n: number, seed: number): { x: NDArray; y: Int32Array } {
  const rng = new RandomState(seed);
  const x = new NDArray(new Float32Array(n * 64), [n, 1, 8, 8]);
  const y = new Int32Array(n);
  for (let i = 0; i < n; i++) {
    const cls = rng.randint(0, 2);
    const pos = rng.randint(1, 7);
    y[i] = cls;
    for (let p = 0; p < 64; p++) x.data[i * 64 + p] = 0.1 * rng.standardNormal();
    for (let k = 0; k < 8; k++) x.data[i * 64 + (cls === 0 ? pos * 8 + k : k * 8 + pos)] += 1;
  }
  return { x, y };
}

function cnn(seed = 3): Sequential {
  const layers = [
    new Conv2D({ inChannels: 1, outChannels: 4, kernelSize: 3, padding: "same" }),
    new ReLU(),
    new MaxPool2D({ kernelSize: 2 }),
    new Flatten(),
    new Dropout({ rate: 0.2 }),
    new Dense({ inFeatures: 64, outFeatures: 2 }),
  ];
  return new Sequential(layers, { inputShape: [1, 8, 8], seed });
}

function weightBytes(m: Sequential): Uint8Array {
  const parts = m.params().map(({ value: { data: d } }) => new Uint8Array(d.buffer, d.byteOffset, d.byteLength));
  const out = new Uint8Array(parts.reduce((s, p) => s + p.length, 0));
  let o = 0;
  for (const p of parts) {
    out.set(p, o);
    o += p.length;
  }
  return out;
}

const data = bars(100, 4);
const fitOpts = () => ({
  batchSize: 16,
  seed: 9,
  schedule: new CosineLR({ tMax: 4 }),
  validationData: [data.x, data.y] as [NDArray, Int32Array],
});

test("fit gives the same weights and history as before the Trainer (fingerprint taken from the old loop)", () => {
  const m = cnn().compile({ loss: new SoftmaxCrossEntropy(), optimizer: new Adam({ lr: 0.01 }) });
  const h = m.fit(data.x, data.y, { epochs: 4, initialEpoch: 1, ...fitOpts() });
  assert.equal(crc32(weightBytes(m)).toString(16), "68911fdf");
  assert.deepEqual(
    h.epochs.map((e) => e.loss),
    [0.6500354442765842, 0.504621437094476, 0.48281369569187843],
  );
  assert.deepEqual(
    h.epochs.map((e) => e.valLoss),
    [0.5219962349513516, 0.45889297377912674, 0.44018135643160045],
  );
});

test("Trainer.step one batch at a time gives fit's weights; runEpoch closes the epoch", () => {
  const a = cnn().compile({ loss: new SoftmaxCrossEntropy(), optimizer: new Adam({ lr: 0.01 }) });
  a.fit(data.x, data.y, { epochs: 2, ...fitOpts() });
  const b = cnn().compile({ loss: new SoftmaxCrossEntropy(), optimizer: new Adam({ lr: 0.01 }) });
  const t = new Trainer(b, data, fitOpts());
  assert.equal(t.batchesPerEpoch, 7);
  for (let i = 0; i < 3; i++) t.step();
  assert.equal(t.batch, 3);
  assert.ok(t.inEpoch);
  const logs = t.runEpoch();
  assert.equal(logs.epoch, 0);
  assert.equal(t.epoch, 1);
  for (let i = 0; i < 7; i++) t.step();
  assert.equal(t.history.epochs.length, 2);
  assert.deepEqual(weightBytes(b), weightBytes(a));
});

test("state/restore mid-epoch with a saved model and optimizer continues bit for bit", () => {
  const whole = cnn().compile({ loss: new SoftmaxCrossEntropy(), optimizer: new Adam({ lr: 0.01 }) });
  whole.fit(data.x, data.y, { epochs: 3, ...fitOpts() });

  const first = cnn();
  const opt = new Adam({ lr: 0.01 });
  const t1 = new Trainer(first, data, { ...fitOpts(), loss: new SoftmaxCrossEntropy(), optimizer: opt });
  t1.runEpoch();
  for (let i = 0; i < 4; i++) t1.step();
  const state = JSON.parse(JSON.stringify(t1.state())) as ReturnType<Trainer["state"]>;
  const saved = serializeModel(first, { optimizer: opt });

  const loaded = deserializeModel(saved.json, saved.weights, saved.optimizer);
  const opts2 = { ...fitOpts(), loss: new SoftmaxCrossEntropy(), optimizer: loaded.optimizer! };
  const t2 = new Trainer(loaded.model, data, opts2);
  t2.restore(state);
  assert.equal(t2.epoch, 1);
  assert.equal(t2.batch, 4);
  t2.fit(3);
  assert.deepEqual(weightBytes(loaded.model), weightBytes(whole));
  assert.throws(() => {
    t2.restore({ ...state, batch: 7 });
  }, /batch must be an integer in \[0, 6\]/);
  const broken = { ...state, shuffle: { ...state.shuffle, pos: 700 } };
  const before = t2.state();
  assert.throws(() => {
    t2.restore(broken);
  }, /pos/);
  assert.throws(() => {
    t2.restore({ ...state, sums: { ...state.sums, seen: -1 } });
  }, /sums\.seen must be a finite number ≥ 0/);
  assert.deepEqual(t2.state(), before);
});

test("a callback returning false stops after that batch and closes the epoch, as fit always did", () => {
  const m = cnn().compile({ loss: new SoftmaxCrossEntropy(), optimizer: new SGD({ lr: 0.1 }) });
  let batches = 0;
  let ends = 0;
  const h = m.fit(data.x, data.y, {
    epochs: 3,
    batchSize: 16,
    callbacks: {
      onBatchEnd: () => ++batches < 3,
      onTrainEnd: () => {
        ends++;
      },
    },
  });
  assert.equal(batches, 3);
  assert.equal(h.epochs.length, 1);
  assert.equal(ends, 1);
});

test("fit refuses a callback that returns a promise (fitAsync awaits it)", async () => {
  const m = cnn().compile({ loss: new SoftmaxCrossEntropy(), optimizer: new SGD({ lr: 0.1 }) });
  const callbacks = { onEpochEnd: () => Promise.resolve(true) };
  assert.throws(() => m.fit(data.x, data.y, { epochs: 1, batchSize: 50, callbacks }), /use fitAsync/);
  let awaited = false;
  const later = (resolve: () => void) => {
    awaited = true;
    resolve();
  };
  const slow = { onEpochEnd: () => new Promise<void>((resolve) => setTimeout(later, 5, resolve)) };
  await m.fitAsync(data.x, data.y, { epochs: 1, batchSize: 50, callbacks: slow });
  assert.ok(awaited);
});

test("fitAsync: same weights as fit, and the event loop runs between batches", async () => {
  const a = cnn().compile({ loss: new SoftmaxCrossEntropy(), optimizer: new Adam({ lr: 0.01 }) });
  a.fit(data.x, data.y, { epochs: 2, ...fitOpts() });
  const b = cnn().compile({ loss: new SoftmaxCrossEntropy(), optimizer: new Adam({ lr: 0.01 }) });
  let ticks = 0;
  const timer = setInterval(() => ticks++, 0);
  try {
    await b.fitAsync(data.x, data.y, { epochs: 2, ...fitOpts(), yieldEveryMs: 0 });
  } finally {
    clearInterval(timer);
  }
  assert.deepEqual(weightBytes(b), weightBytes(a));
  assert.ok(ticks >= 5, `timer ran ${ticks} times during training`);
});

test("fitAsync aborts after the batch in progress with an AbortError; the run then resumes exactly", async () => {
  const whole = cnn().compile({ loss: new SoftmaxCrossEntropy(), optimizer: new Adam({ lr: 0.01 }) });
  whole.fit(data.x, data.y, { epochs: 2, ...fitOpts() });

  const m = cnn();
  const t = new Trainer(m, data, { ...fitOpts(), loss: new SoftmaxCrossEntropy(), optimizer: new Adam({ lr: 0.01 }) });
  const controller = new AbortController();
  let batches = 0;
  t.callbacks.push({
    onBatchEnd: () => {
      if (++batches === 9) controller.abort();
    },
  });
  const isAbort = (e: unknown) => e instanceof DOMException && e.name === "AbortError";
  await assert.rejects(t.fitAsync(2, { signal: controller.signal }), isAbort);
  assert.equal(batches, 9);
  assert.equal(t.epoch, 1);
  assert.equal(t.batch, 2);
  t.callbacks.pop();
  await t.fitAsync(2);
  assert.deepEqual(weightBytes(m), weightBytes(whole));
});

test("fitAsync takes an async source of batches; a function gives each epoch a fresh one", async () => {
  const batchesOf = (n: number): Batch[] => {
    const out: Batch[] = [];
    for (let s = 0; s < 100; s += n) {
      const k = Math.min(n, 100 - s);
      out.push({ x: new NDArray(data.x.data.slice(s * 64, (s + k) * 64), [k, 1, 8, 8]), y: data.y.slice(s, s + k) });
    }
    return out;
  };
  const a = cnn().compile({ loss: new SoftmaxCrossEntropy(), optimizer: new Adam({ lr: 0.01 }) });
  a.fit(data.x, data.y, { epochs: 2, batchSize: 16, shuffle: false });
  const b = cnn().compile({ loss: new SoftmaxCrossEntropy(), optimizer: new Adam({ lr: 0.01 }) });
  async function* source(): AsyncGenerator<Batch> {
    for (const batch of batchesOf(16)) {
      await new Promise((r) => setTimeout(r, 0));
      yield batch;
    }
  }
  const h = await b.fitAsync(() => source(), { epochs: 2 });
  assert.equal(h.epochs.length, 2);
  assert.deepEqual(weightBytes(b), weightBytes(a));
  const once = source();
  const c = cnn().compile({ loss: new SoftmaxCrossEntropy(), optimizer: new Adam({ lr: 0.01 }) });
  await assert.rejects(c.fitAsync(once, { epochs: 2 }), /no batches in epoch 2.*fresh one per epoch/);
  const bad = [{ x: data.x, y: data.y.slice(0, 3) }];
  await assert.rejects(c.fitAsync(bad), /epoch 1, batch 1 of the data source.*100 samples but y has 3/);
});

test("clipping by value and by global norm, hand-computed", () => {
  const p = makeParam("w", [3], "float64");
  const q = makeParam("b", [1], "float64");
  p.grad.data.set([3, -4, 0.5]);
  q.grad.data.set([12]);
  clipGradientsByValue([p, q], 1);
  assert.deepEqual(Array.from(p.grad.data), [1, -1, 0.5]);
  assert.deepEqual(Array.from(q.grad.data), [1]);
  p.grad.data.set([3, -4, 0]);
  q.grad.data.set([12]);
  assert.equal(clipGradientsByNorm([p, q], 6.5), 13); // √(9 + 16 + 144) = 13 → scale 0.5
  assert.deepEqual(Array.from(p.grad.data), [1.5, -2, 0]);
  assert.deepEqual(Array.from(q.grad.data), [6]);
  assert.equal(clipGradientsByNorm([p, q], 100), 6.5); // under the threshold: untouched
  assert.deepEqual(Array.from(p.grad.data), [1.5, -2, 0]);
});

test("a clipped step moves the weights by at most lr·clipNorm under SGD", () => {
  const m = cnn().compile({ loss: new SoftmaxCrossEntropy(), optimizer: new SGD({ lr: 1 }) });
  const before = m.params().map((p) => Float64Array.from(p.value.data));
  m.trainBatch(data.x, data.y, m.loss!, m.optimizer!, "a batch", { clipNorm: 1e-3 });
  let sq = 0;
  m.params().forEach((p, i) => {
    p.value.data.forEach((v, j) => (sq += (v - before[i][j]) ** 2));
  });
  assert.ok(Math.abs(Math.sqrt(sq) - 1e-3) < 1e-6, `step norm ${Math.sqrt(sq)}`);
  assert.throws(() => m.fit(data.x, data.y, { clipNorm: -1 }), /clipNorm must be a positive finite number/);
});

test("L2: R = Σ λ_l Σ w², its gradient 2λw checked by finite differences in float64, per layer", () => {
  const hidden = new Dense({ inFeatures: 3, outFeatures: 4 });
  const layers = [hidden, new Tanh(), new Dense({ inFeatures: 4, outFeatures: 3 })];
  const m = new Sequential(layers, { seed: 2, dtype: "float64" });
  const rng = new RandomState(5);
  const x = new NDArray(
    Float64Array.from({ length: 15 }, () => rng.standardNormal()),
    [5, 3],
  );
  const y = [0, 2, 1, 1, 0];
  const loss = new SoftmaxCrossEntropy();
  const reg = new L2Regularizer({ lambda: { 0: 0.3, 2: 0.05 }, includeBias: true });
  const objective = () => loss.forward(m.forward(x, { training: true }), y) + reg.penalty(m);
  m.zeroGrad();
  loss.forward(m.forward(x, { training: true }), y);
  m.backward(loss.backward());
  const r = reg.addTo(m);
  assert.ok(Math.abs(r - reg.penalty(m)) < 1e-15);
  let worst = 0;
  for (const p of m.params()) {
    for (let i = 0; i < p.value.size; i++) {
      const w0 = p.value.data[i];
      const h = 1e-5;
      p.value.data[i] = w0 + h;
      const up = objective();
      p.value.data[i] = w0 - h;
      const down = objective();
      p.value.data[i] = w0;
      const numeric = (up - down) / (2 * h);
      const analytic = p.grad.data[i];
      worst = Math.max(worst, Math.abs(numeric - analytic) / Math.max(1e-8, Math.abs(numeric), Math.abs(analytic)));
    }
  }
  assert.ok(worst < 1e-7, `max relative error ${worst}`);
  // Hand-computed value: weights only, λ = 0.5 on layer 0.
  const w = m.layers[0].params()[0].value.data;
  let sumSquares = 0;
  for (const v of w) sumSquares += v * v;
  const expected = 0.5 * sumSquares;
  assert.equal(new L2Regularizer({ lambda: { 0: 0.5 } }).penalty(m), expected);
  assert.throws(() => new L2Regularizer({ lambda: { 1: 0.1 } }).penalty(m), /layer 1 \(Tanh\) has no weights/);
  assert.throws(() => new L2Regularizer({ lambda: { 7: 0.1 } }).penalty(m), /layer 7 does not exist/);
  assert.throws(() => new L2Regularizer({ lambda: -1 }), /lambda must be a finite number ≥ 0/);
});

test("label smoothing: hand-computed loss, ε = 0 equals the plain loss, float64 gradient checks", () => {
  const z = new NDArray(Float64Array.from([1, 2, 0.5, -1, 0, 3]), [2, 3]);
  const eps = 0.3;
  const ls = new SoftmaxCrossEntropy({ labelSmoothing: eps });
  const lse = (a: number[]) => Math.log(a.reduce((s, v) => s + Math.exp(v), 0));
  // ℓ = lse − (1 − ε) z_c − (ε/K) Σ z
  const l0 = lse([1, 2, 0.5]) - 0.7 * 2 - 0.1 * 3.5;
  const l1 = lse([-1, 0, 3]) - 0.7 * -1 - 0.1 * 2;
  assert.ok(Math.abs(ls.forward(z, [1, 0]) - (l0 + l1) / 2) < 1e-15);
  const onehot = new NDArray(Float64Array.from([0, 1, 0, 1, 0, 0]), [2, 3]);
  assert.ok(Math.abs(ls.forward(z, onehot) - (l0 + l1) / 2) < 1e-15);
  const plain = new SoftmaxCrossEntropy().forward(z, [1, 0]);
  assert.ok(Math.abs(new SoftmaxCrossEntropy({ classWeights: [1, 1, 1] }).forward(z, [1, 0]) - plain) < 1e-15);
  const rng = new RandomState(1);
  const logits = new NDArray(
    Float64Array.from({ length: 20 }, () => rng.standardNormal()),
    [4, 5],
  );
  const soft = new NDArray(
    Float64Array.from({ length: 20 }, () => rng.random()),
    [4, 5],
  );
  for (const target of [[0, 4, 2, 2], soft]) {
    const r = gradcheckLoss(new SoftmaxCrossEntropy({ labelSmoothing: 0.1 }), logits, target);
    assert.ok(r.ok, `max relative error ${r.maxRelError}`);
  }
  assert.deepEqual(lossFromConfig(ls.config()).config(), { type: "SoftmaxCrossEntropy", labelSmoothing: 0.3 });
  assert.deepEqual(new SoftmaxCrossEntropy().config(), { type: "SoftmaxCrossEntropy" });
  assert.throws(() => new SoftmaxCrossEntropy({ labelSmoothing: 1 }), /labelSmoothing must be a number in \[0, 1\)/);
});

test("class weights: the weighted mean, hand-computed; gradient-checked with smoothing; bad weights named", () => {
  const z = new NDArray(Float64Array.from([1, 2, 0.5, -1, 0, 3]), [2, 3]);
  const lse = (a: number[]) => Math.log(a.reduce((s, v) => s + Math.exp(v), 0));
  const l0 = lse([1, 2, 0.5]) - 2; // label 1, weight 3
  const l1 = lse([-1, 0, 3]) + 1; // label 0, weight 0.5
  const cw = new SoftmaxCrossEntropy({ classWeights: [0.5, 3, 1] });
  assert.ok(Math.abs(cw.forward(z, [1, 0]) - (3 * l0 + 0.5 * l1) / 3.5) < 1e-15);
  const g = cw.backward().data;
  const p0 = Math.exp(2 - lse([1, 2, 0.5]));
  assert.ok(Math.abs(g[1] - (3 / 3.5) * (p0 - 1)) < 1e-15);
  assert.equal(new SoftmaxCrossEntropy({ classWeights: [0, 0, 1] }).forward(z, [1, 0]), 0);
  const rng = new RandomState(2);
  const logits = new NDArray(
    Float64Array.from({ length: 20 }, () => rng.standardNormal()),
    [4, 5],
  );
  const soft = new NDArray(
    Float64Array.from({ length: 20 }, () => rng.random()),
    [4, 5],
  );
  for (const target of [[0, 4, 2, 2], soft]) {
    const loss = new SoftmaxCrossEntropy({ labelSmoothing: 0.2, classWeights: [1, 2, 0.5, 3, 0.1] });
    const r = gradcheckLoss(loss, logits, target);
    assert.ok(r.ok, `max relative error ${r.maxRelError}`);
  }
  assert.throws(() => cw.forward(logits, [0, 1, 2, 2]), /classWeights has 3 entries but the logits \(4, 5\) have 5/);
  assert.throws(() => new SoftmaxCrossEntropy({ classWeights: [1, -2] }), /classWeights\[1\] must be a finite number/);
});

test("an aborted fitAsync closes its async source (the generator's finally runs)", async () => {
  const m = cnn().compile({ loss: new SoftmaxCrossEntropy(), optimizer: new SGD({ lr: 0.1 }) });
  const controller = new AbortController();
  let closed = false;
  let served = 0;
  async function* source(): AsyncGenerator<Batch> {
    try {
      for (;;) {
        served++;
        await Promise.resolve();
        yield { x: data.x, y: data.y };
      }
    } finally {
      closed = true;
    }
  }
  const callbacks = {
    onBatchEnd: (b: number) => {
      if (b === 2) controller.abort();
    },
  };
  await assert.rejects(m.fitAsync(source(), { callbacks, signal: controller.signal }), { name: "AbortError" });
  await new Promise((r) => setTimeout(r, 0));
  assert.equal(served, 3);
  assert.ok(closed);
});

test("stop() inside runEpoch leaves the epoch open; the next runEpoch finishes it with fit's weights", () => {
  const a = cnn().compile({ loss: new SoftmaxCrossEntropy(), optimizer: new Adam({ lr: 0.01 }) });
  a.fit(data.x, data.y, { epochs: 1, ...fitOpts() });
  const b = cnn().compile({ loss: new SoftmaxCrossEntropy(), optimizer: new Adam({ lr: 0.01 }) });
  const t = new Trainer(b, data, fitOpts());
  t.callbacks.push({
    onBatchEnd: (batch: number) => {
      if (batch === 2) t.stop();
    },
  });
  const logs = t.runEpoch();
  assert.equal(logs.batch, 2);
  assert.ok(t.inEpoch);
  t.callbacks.pop();
  assert.equal(t.runEpoch().epoch, 0);
  assert.equal(t.history.epochs.length, 1);
  assert.deepEqual(weightBytes(b), weightBytes(a));
});
