// Augmentation: exact identity, shifts and rotations with scripted draws, bilinear half-pixel shifts,
// outputs within the input's range (property), determinism, resume inside the Trainer, and errors.
import { test } from "node:test";
import assert from "node:assert/strict";
import fc from "fast-check";
import { NDArray } from "../src/nd/ndarray.ts";
import { RandomState } from "../src/nd/random.ts";
import { Augmenter, augmentBatch, augmentConfig } from "../src/data/augment.ts";
import { Conv2D } from "../src/nn/conv.ts";
import { Dense } from "../src/nn/dense.ts";
import { Flatten } from "../src/nn/flatten.ts";
import { ReLU } from "../src/nn/activations.ts";
import { SoftmaxCrossEntropy } from "../src/nn/losses.ts";
import { Adam } from "../src/nn/optim.ts";
import { Sequential } from "../src/nn/sequential.ts";
import { Trainer } from "../src/nn/trainer.ts";
import { deserializeModel, serializeModel } from "../src/io/model-format.ts";
import { setBackend, getBackend, setThreads, wasmAvailable } from "../src/kernels/backend.ts";
import { poolEveryCall } from "../src/kernels/wasm.ts";
import { threadSupport } from "../src/kernels/threads.ts";

/** A RandomState stand-in whose nextDouble returns the given values in turn. */
function scripted(values: number[]): RandomState {
  let i = 0;
  return { nextDouble: () => values[i++ % values.length] } as unknown as RandomState;
}

function ramp(N: number, C: number, H: number, W: number): NDArray {
  return new NDArray(
    Float32Array.from({ length: N * C * H * W }, (_, i) => (i % 97) / 7),
    [N, C, H, W],
  );
}

const at = (a: NDArray, n: number, c: number, y: number, x: number) => {
  const [, C, H, W] = a.shape;
  return a.data[((n * C + c) * H + y) * W + x];
};

test("no transform (or zero ranges) gives the input exactly; x itself is untouched", () => {
  const x = ramp(3, 2, 5, 6);
  const before = x.data.slice();
  assert.deepEqual(augmentBatch(x, new RandomState(1)).data, x.data);
  assert.deepEqual(augmentBatch(x, new RandomState(1), { shift: 0, rotation: 0, scale: 0 }).data, x.data);
  assert.deepEqual(x.data, before);
});

test("an integer shift moves the image and fills what comes in from outside; all channels alike", () => {
  const x = ramp(1, 2, 4, 5);
  // draws θ, s, φ at mid-range (none), t_y = −2 + 4·0.75 = 1, t_x = −2 + 4·0.25 = −1
  const out = augmentBatch(x, scripted([0.5, 0.5, 0.5, 0.75, 0.25]), { shift: 2, fill: -9 });
  for (let c = 0; c < 2; c++) {
    for (let y = 0; y < 4; y++) {
      for (let xx = 0; xx < 5; xx++) {
        const sy = y - 1; // output (x, y) reads input (x − t_x, y − t_y)
        const sx = xx + 1;
        const expected = sy >= 0 && sy < 4 && sx < 5 ? at(x, 0, c, sy, sx) : -9;
        assert.equal(at(out, 0, c, y, xx), expected, `c ${c} y ${y} x ${xx}`);
      }
    }
  }
});

test("a half-pixel shift averages neighbours (bilinear)", () => {
  const x = ramp(1, 1, 3, 4);
  const out = augmentBatch(x, scripted([0.5, 0.5, 0.5, 0.5, 0.625]), { shift: 2, fill: 0 }); // t_x = 0.5
  for (let y = 0; y < 3; y++) {
    assert.equal(at(out, 0, 0, y, 0), Math.fround(0.5 * at(x, 0, 0, y, 0)));
    for (let xx = 1; xx < 4; xx++) {
      assert.equal(at(out, 0, 0, y, xx), Math.fround(0.5 * at(x, 0, 0, y, xx - 1) + 0.5 * at(x, 0, 0, y, xx)));
    }
  }
});

test("a 90° rotation about the centre: output (x, y) reads input (y, W − 1 − x)", () => {
  const x = ramp(1, 1, 5, 5);
  const out = augmentBatch(x, scripted([1, 0.5, 0.5, 0.5, 0.5]), { rotation: 90 });
  for (let y = 0; y < 5; y++) {
    for (let xx = 0; xx < 5; xx++) {
      assert.ok(Math.abs(at(out, 0, 0, y, xx) - at(x, 0, 0, 4 - xx, y)) < 1e-5, `y ${y} x ${xx}`);
    }
  }
});

test("property: every output lies between the smallest and largest of the input and the fill", () => {
  fc.assert(
    fc.property(
      fc.record({
        shift: fc.double({ min: 0, max: 4, noNaN: true }),
        rotation: fc.double({ min: 0, max: 45, noNaN: true }),
        scale: fc.double({ min: 0, max: 0.5, noNaN: true }),
        shear: fc.double({ min: 0, max: 30, noNaN: true }),
        fill: fc.double({ min: -2, max: 2, noNaN: true }),
        alpha: fc.double({ min: 0, max: 10, noNaN: true }),
        seed: fc.nat(1000),
      }),
      (o) => {
        const x = ramp(2, 1, 9, 8);
        const opts = { ...o, elastic: o.alpha > 5 ? { alpha: o.alpha, sigma: 2 } : null };
        const out = augmentBatch(x, new RandomState(o.seed), opts);
        const lo = Math.min(o.fill, ...x.data) - 1e-5;
        const hi = Math.max(o.fill, ...x.data) + 1e-5;
        return out.data.every((v) => v >= lo && v <= hi);
      },
    ),
    { numRuns: 40, seed: 7 },
  );
});

test("same seed, same output bit for bit (elastic too); the Augmenter's state resumes the sequence", () => {
  const x = ramp(4, 1, 28, 28);
  const elastic = { alpha: 34, sigma: 4 };
  const opts = { shift: 2, rotation: 10, scale: 0.1, shear: 5, fill: -0.4242, elastic, seed: 5 };
  const a = new Augmenter(opts);
  const b = new Augmenter(opts);
  const first = a.apply(x).data.slice();
  assert.deepEqual(b.apply(x).data, first);
  const state = a.getState();
  const second = a.apply(x).data.slice();
  assert.notDeepEqual(second, first);
  const c = new Augmenter(opts);
  c.setState(state);
  assert.deepEqual(c.apply(x).data, second);
  assert.deepEqual(augmentConfig(JSON.parse(JSON.stringify(a)) as never), a.config);
});

test("in the Trainer: augmentation is deterministic and an interrupted run resumes to the same weights", () => {
  const rng = new RandomState(3);
  const x = new NDArray(
    Float32Array.from({ length: 40 * 64 }, () => rng.random()),
    [40, 1, 8, 8],
  );
  const y = Array.from({ length: 40 }, (_, i) => i % 3);
  const model = () => {
    const layers = [new Conv2D({ inChannels: 1, outChannels: 2, kernelSize: 3 }), new ReLU(), new Flatten()];
    const head = new Dense({ inFeatures: 72, outFeatures: 3 });
    return new Sequential([...layers, head], { inputShape: [1, 8, 8], seed: 1 });
  };
  const augment = () => new Augmenter({ shift: 1.5, rotation: 15, elastic: { alpha: 3, sigma: 1.5 }, seed: 2 });
  const opts = () => ({ batchSize: 8, seed: 4, loss: new SoftmaxCrossEntropy(), augment: augment() });
  const whole = model();
  new Trainer(whole, { x, y }, { ...opts(), optimizer: new Adam({ lr: 0.01 }) }).fit(2);
  const again = model();
  new Trainer(again, { x, y }, { ...opts(), optimizer: new Adam({ lr: 0.01 }) }).fit(2);
  assert.deepEqual(
    again.params().map((p) => p.value.data),
    whole.params().map((p) => p.value.data),
  );

  const part = model();
  const opt = new Adam({ lr: 0.01 });
  const t1 = new Trainer(part, { x, y }, { ...opts(), optimizer: opt });
  for (let i = 0; i < 7; i++) t1.step();
  const state = JSON.parse(JSON.stringify(t1.state())) as ReturnType<Trainer["state"]>;
  const saved = serializeModel(part, { optimizer: opt });
  const loaded = deserializeModel(saved.json, saved.weights, saved.optimizer);
  const t2 = new Trainer(loaded.model, { x, y }, { ...opts(), optimizer: loaded.optimizer! });
  t2.restore(state);
  t2.fit(2);
  assert.deepEqual(
    loaded.model.params().map((p) => p.value.data),
    whole.params().map((p) => p.value.data),
  );
});

test("bad input and options are named", () => {
  const flat = new NDArray(new Float32Array(4), [4]);
  assert.throws(() => augmentBatch(flat, new RandomState(0)), /\(N, C, H, W\), got \(4,\)/);
  assert.throws(() => augmentConfig({ rotation: 200 }), /rotation must be a finite number in \[0, 180\), got 200/);
  assert.throws(() => augmentConfig({ scale: 1 }), /scale must be a finite number in \[0, 0\.999\], got 1/);
  assert.throws(() => augmentConfig({ elastic: { alpha: 1, sigma: 0 } }), /elastic.sigma must be a finite number/);
  assert.throws(() => augmentConfig({ shift: Number.NaN }), /shift must be a finite number ≥ 0, got NaN/);
  const x = ramp(1, 1, 2, 2);
  assert.throws(() => augmentBatch(x, new RandomState(0), {}, x), /out must be a separate array/);
});

const threadsSkip = wasmAvailable() && threadSupport() === null ? false : "threads unavailable here";

test("with augmentation, training gives the same bytes on 1 and 2 kernel threads", { skip: threadsSkip }, async () => {
  const backend = getBackend();
  setBackend("wasm");
  poolEveryCall(true);
  try {
    const rng = new RandomState(8);
    const x = new NDArray(
      Float32Array.from({ length: 24 * 144 }, () => rng.random()),
      [24, 1, 12, 12],
    );
    const y = Array.from({ length: 24 }, (_, i) => i % 4);
    const run = () => {
      const conv = new Conv2D({ inChannels: 1, outChannels: 6, kernelSize: 5, padding: "same" });
      const head = new Dense({ inFeatures: 6 * 144, outFeatures: 4 });
      const model = new Sequential([conv, new ReLU(), new Flatten(), head], { inputShape: [1, 12, 12], seed: 2 });
      model.compile({ loss: new SoftmaxCrossEntropy(), optimizer: new Adam({ lr: 0.01 }) });
      const augment = new Augmenter({ shift: 2, rotation: 20, elastic: { alpha: 4, sigma: 2 }, seed: 6 });
      model.fit(x, y, { epochs: 2, batchSize: 8, seed: 1, augment });
      return model.params().map((p) => Array.from(p.value.data));
    };
    await setThreads(1);
    const one = run();
    await setThreads(2);
    assert.deepEqual(run(), one);
  } finally {
    poolEveryCall(false);
    await setThreads(1);
    setBackend(backend);
  }
});
