import { test } from "node:test";
import assert from "node:assert/strict";
import { NDArray, type DType } from "../src/nd/ndarray.ts";
import { mul, sub } from "../src/nd/ops.ts";
import { RandomState } from "../src/nd/random.ts";
import { makeParam, type Param } from "../src/nn/layer.ts";
import {
  Adam,
  AdamW,
  RMSProp,
  SGD,
  optimizerFromConfig,
  type Optimizer,
  type OptimizerState,
} from "../src/nn/optim.ts";
import { CosineLR, ExponentialLR, StepLR, scheduleFromConfig } from "../src/nn/schedules.ts";

// The test problem: L(w) = ½ Σ a_i w_i², so ∂L/∂w_i = a_i w_i.
function quadratic(w0: readonly number[], dtype: DType = "float64"): Param {
  const p = makeParam("w", [w0.length], dtype);
  p.value.data.set(w0);
  return p;
}
function setGrad(p: Param, a: readonly number[]): void {
  for (let i = 0; i < a.length; i++) p.grad.data[i] = a[i] * p.value.data[i];
}
function run(opt: Optimizer, p: Param, a: readonly number[], steps: number): number[][] {
  const trace: number[][] = [];
  for (let s = 0; s < steps; s++) {
    setGrad(p, a);
    opt.step([p]);
    trace.push(Array.from(p.value.data));
  }
  return trace;
}
function close(actual: readonly number[], expected: readonly number[], tol: number, what: string): void {
  assert.equal(actual.length, expected.length);
  for (let i = 0; i < expected.length; i++) {
    assert.ok(
      Math.abs(actual[i] - expected[i]) <= tol * Math.max(1, Math.abs(expected[i])),
      `${what}[${i}]: got ${actual[i]}, expected ${expected[i]}`,
    );
  }
}

test("SGD without momentum is the article's w = w − grad·lr, bit for bit", () => {
  const rng = new RandomState(5);
  const lr = 0.7;
  const p = quadratic(Array.from({ length: 6 }, () => 4 * rng.standardNormal()));
  let w = p.value.copy();
  const opt = new SGD({ lr });
  let g = p.grad;
  for (let s = 0; s < 50; s++) {
    g = new NDArray(
      Float64Array.from({ length: 6 }, () => rng.standardNormal()),
      [6],
    );
    p.grad.data.set(g.data);
    opt.step([p]);
    w = sub(w, mul(g, lr)); // the article's update, with NumPy-like ops
    assert.deepEqual(Array.from(p.value.data), Array.from(w.data), `step ${s}`);
  }
  assert.deepEqual(Array.from(p.grad.data), Array.from(g.data), "grads are left alone");
});

test("SGD momentum, Nesterov, dampening and weight decay follow PyTorch's formulas", () => {
  // w0 = 1, a = 2, η = 0.1, μ = 0.9:
  //   g1 = 2     v1 = g1 = 2              w1 = 1 − 0.2 = 0.8
  //   g2 = 1.6   v2 = 0.9·2 + 1.6 = 3.4    w2 = 0.8 − 0.34 = 0.46
  //   g3 = 0.92  v3 = 0.9·3.4 + 0.92 = 3.98 w3 = 0.46 − 0.398 = 0.062
  close(run(new SGD({ lr: 0.1, momentum: 0.9 }), quadratic([1]), [2], 3).flat(), [0.8, 0.46, 0.062], 1e-15, "momentum");
  // Nesterov: u = g + μ·v
  //   g1 = 2     v1 = 2      u1 = 2 + 1.8 = 3.8          w1 = 1 − 0.38 = 0.62
  //   g2 = 1.24  v2 = 3.04   u2 = 1.24 + 2.736 = 3.976   w2 = 0.62 − 0.3976 = 0.2224
  close(
    run(new SGD({ lr: 0.1, momentum: 0.9, nesterov: true }), quadratic([1]), [2], 2).flat(),
    [0.62, 0.2224],
    1e-15,
    "nesterov",
  );
  // Dampening 0.5 (first step still v = g), weight decay 0.1 (g = a·w + 0.1·w):
  //   g1 = 2.1·1 = 2.1        v1 = 2.1                       w1 = 1 − 0.21 = 0.79
  //   g2 = 2.1·0.79 = 1.659   v2 = 0.9·2.1 + 0.5·1.659 = 2.7195   w2 = 0.79 − 0.27195 = 0.51805
  close(
    run(new SGD({ lr: 0.1, momentum: 0.9, dampening: 0.5, weightDecay: 0.1 }), quadratic([1]), [2], 2).flat(),
    [0.79, 0.51805],
    1e-15,
    "dampening+wd",
  );
  // Weight decay without momentum: w = w − (g + λw)·η.
  close(run(new SGD({ lr: 0.1, weightDecay: 0.5 }), quadratic([2]), [1], 1).flat(), [2 - (2 + 1) * 0.1], 0, "wd");
});

/** PyTorch's Adam/AdamW for one scalar weight, written out step by step. */
function adamReference(
  w0: number,
  a: number,
  steps: number,
  o: { lr: number; b1: number; b2: number; eps: number; l2: number; decoupled: number },
): number[] {
  let w = w0;
  let m = 0;
  let v = 0;
  const out: number[] = [];
  for (let t = 1; t <= steps; t++) {
    let g = a * w;
    w = w * (1 - o.lr * o.decoupled);
    g = g + o.l2 * w;
    m = o.b1 * m + (1 - o.b1) * g;
    v = o.b2 * v + (1 - o.b2) * g * g;
    const mHat = m / (1 - o.b1 ** t);
    const vHat = v / (1 - o.b2 ** t);
    w = w - (o.lr * mHat) / (Math.sqrt(vHat) + o.eps);
    out.push(w);
  }
  return out;
}

test("Adam: the first step is lr·g/(|g| + ε) ≈ lr·sign(g); later steps follow the bias-corrected moments", () => {
  const p = quadratic([1, -2, 0.5]);
  const a = [2, 0.5, -3];
  const opt = new Adam({ lr: 0.1 });
  run(opt, p, a, 1);
  // g = [2, −1, −1.5]
  close(
    Array.from(p.value.data),
    [1 - (0.1 * 2) / (2 + 1e-8), -2 + (0.1 * 1) / (1 + 1e-8), 0.5 + (0.1 * 1.5) / (1.5 + 1e-8)],
    1e-15,
    "Adam step 1",
  );
  close(Array.from(p.value.data), [0.9, -1.9, 0.6], 1e-8, "≈ lr·sign(g)");
  run(opt, p, a, 4);
  for (let i = 0; i < 3; i++) {
    const ref = adamReference([1, -2, 0.5][i], a[i], 5, {
      lr: 0.1,
      b1: 0.9,
      b2: 0.999,
      eps: 1e-8,
      l2: 0,
      decoupled: 0,
    });
    close([p.value.data[i]], [ref[4]], 1e-14, `Adam step 5, w${i}`);
  }
  // L2 weight decay (coupled): the penalty enters the moments.
  const q = quadratic([1.5]);
  const l2 = run(new Adam({ lr: 0.05, beta1: 0.8, beta2: 0.99, weightDecay: 0.3 }), q, [1], 4).flat();
  close(
    l2,
    adamReference(1.5, 1, 4, { lr: 0.05, b1: 0.8, b2: 0.99, eps: 1e-8, l2: 0.3, decoupled: 0 }),
    1e-14,
    "Adam L2",
  );
});

test("AdamW decays the weight first (w·(1 − η·λ)), outside the moments", () => {
  const p = quadratic([1]);
  run(new AdamW({ lr: 0.1, weightDecay: 0.2 }), p, [2], 1);
  // w = 1·(1 − 0.02) = 0.98, then − 0.1·2/(2 + 1e-8)
  close(Array.from(p.value.data), [0.98 - (0.1 * 2) / (2 + 1e-8)], 1e-15, "AdamW step 1");
  const q = quadratic([-0.7]);
  close(
    run(new AdamW({ lr: 0.01, weightDecay: 0.5 }), q, [3], 6).flat(),
    adamReference(-0.7, 3, 6, { lr: 0.01, b1: 0.9, b2: 0.999, eps: 1e-8, l2: 0, decoupled: 0.5 }),
    1e-14,
    "AdamW",
  );
  assert.equal(new AdamW().weightDecay, 0.01);
  assert.equal(new Adam().weightDecay, 0);
});

test("RMSProp with and without momentum", () => {
  // First step: s = (1 − α)g², so w moves by η·g/(√(1 − α)·|g| + ε) ≈ η·sign(g)/√(1 − α) = 0.01·10.
  const p = quadratic([1, -1]);
  run(new RMSProp(), p, [2, 2], 1);
  close(
    Array.from(p.value.data),
    [1 - (0.01 * 2) / (Math.sqrt(0.01 * 4) + 1e-8), -1 + (0.01 * 2) / (Math.sqrt(0.01 * 4) + 1e-8)],
    1e-15,
    "RMSProp step 1",
  );
  close(Array.from(p.value.data), [0.9, -0.9], 1e-8, "≈ 0.1·sign(g)");

  const ref = (momentum: number, wd: number): number[] => {
    let w = 1.2;
    let s = 0;
    let b = 0;
    const out: number[] = [];
    for (let t = 0; t < 4; t++) {
      const g = 1.5 * w + wd * w;
      s = 0.9 * s + 0.1 * g * g;
      const step = g / (Math.sqrt(s) + 1e-8);
      b = momentum * b + step;
      w = w - 0.05 * (momentum > 0 ? b : step);
      out.push(w);
    }
    return out;
  };
  close(run(new RMSProp({ lr: 0.05, alpha: 0.9 }), quadratic([1.2]), [1.5], 4).flat(), ref(0, 0), 1e-14, "RMSProp");
  close(
    run(new RMSProp({ lr: 0.05, alpha: 0.9, momentum: 0.5, weightDecay: 0.1 }), quadratic([1.2]), [1.5], 4).flat(),
    ref(0.5, 0.1),
    1e-14,
    "RMSProp momentum+wd",
  );
});

test("step skips params with trainable=false and keeps slots per param index", () => {
  const w = quadratic([1, 2]);
  const stats = quadratic([5, 5]);
  stats.trainable = false;
  setGrad(stats, [1, 1]);
  const opt = new Adam({ lr: 0.1 });
  for (let s = 0; s < 3; s++) {
    setGrad(w, [1, 1]);
    opt.step([stats, w]);
  }
  assert.deepEqual(Array.from(stats.value.data), [5, 5]);
  const state = opt.stateDict();
  assert.deepEqual(state.slots.m[0], []);
  assert.equal(state.slots.m[1].length, 2);
  assert.equal(state.step, 3);
  assert.throws(() => {
    opt.step([stats, quadratic([1, 2, 3])]);
  }, /state 'm' of param 1 has 2 values but param 1 \(w\) has 3/);
});

test("stateDict → JSON → loadStateDict continues bit-identically (float32 and float64)", () => {
  const makers: (() => Optimizer)[] = [
    () => new SGD({ lr: 0.05, momentum: 0.9, nesterov: true, weightDecay: 1e-3 }),
    () => new Adam({ lr: 0.01, weightDecay: 1e-3 }),
    () => new AdamW({ lr: 0.01 }),
    () => new RMSProp({ lr: 0.003, momentum: 0.7 }),
  ];
  const rng = new RandomState(9);
  const w0 = Array.from({ length: 7 }, () => rng.standardNormal());
  const a = Array.from({ length: 7 }, () => 0.1 + rng.nextDouble());
  for (const dtype of ["float32", "float64"] as const) {
    for (const make of makers) {
      const opt = make();
      const p = quadratic(w0, dtype);
      run(opt, p, a, 3);
      opt.lr = opt.lr * 0.5; // as a schedule would
      const saved = JSON.stringify(opt.stateDict());
      const weights = p.value.copy();
      const cont = run(opt, p, a, 4);

      const resumed = optimizerFromConfig(opt.config());
      resumed.loadStateDict(JSON.parse(saved) as OptimizerState);
      const q = quadratic(Array.from(weights.data), dtype);
      assert.deepEqual(Array.from(q.value.data), Array.from(weights.data));
      const again = run(resumed, q, a, 4);
      assert.deepEqual(again, cont, `${opt.type} ${dtype}`);
      assert.deepEqual(resumed.stateDict(), opt.stateDict());
    }
  }
});

test("option validation gives clear messages", () => {
  assert.throws(() => new SGD({ lr: 0 }), /SGD: lr must be > 0, got 0/);
  assert.throws(() => new SGD({ lr: Infinity }), /SGD: lr must be a finite number/);
  assert.throws(() => new SGD({ lr: 0.1, momentum: 1 }), /SGD: momentum must be in \[0, 1\), got 1/);
  assert.throws(() => new SGD({ lr: 0.1, nesterov: true }), /nesterov needs momentum > 0 and dampening = 0/);
  assert.throws(() => new SGD({ lr: 0.1, weightDecay: -1 }), /weightDecay must be >= 0/);
  assert.throws(() => new SGD({ lr: 0.1, momentum: 0.9, dampening: 2 }), /dampening must be in \[0, 1\]/);
  assert.throws(() => new Adam({ beta1: 1 }), /Adam: beta1 must be in \[0, 1\), got 1/);
  assert.throws(() => new AdamW({ beta2: -0.1 }), /AdamW: beta2 must be in \[0, 1\)/);
  assert.throws(() => new Adam({ eps: -1 }), /eps must be >= 0/);
  assert.throws(() => new RMSProp({ alpha: 1.5 }), /RMSProp: alpha must be in \[0, 1\)/);
  assert.throws(() => new Adam({ lr: NaN }), /Adam: lr must be a finite number, got NaN/);
  const opt = new Adam();
  assert.throws(() => (opt.lr = -1), /lr must be >= 0/);
  opt.lr = 0; // a cosine schedule may end at 0
  assert.throws(() => {
    opt.loadStateDict({ type: "SGD", step: 0, lr: 0.1, slots: {} });
  }, /Adam.loadStateDict: state was saved by SGD/);
  assert.throws(() => {
    opt.loadStateDict({ type: "Adam", step: 0, lr: 0.1, slots: { momentum: [] } });
  }, /unknown state slot 'momentum'/);
  assert.throws(() => optimizerFromConfig({ type: "Adagrad" }), /unknown optimizer type "Adagrad"/);
});

test("config round-trips through optimizerFromConfig", () => {
  for (const opt of [
    new SGD({ lr: 0.1, momentum: 0.5 }),
    new Adam({ lr: 0.002, beta1: 0.8 }),
    new AdamW({ weightDecay: 0.05 }),
    new RMSProp({ momentum: 0.1 }),
  ]) {
    const back = optimizerFromConfig(JSON.parse(JSON.stringify(opt)) as ReturnType<Optimizer["config"]>);
    assert.deepEqual(back.config(), opt.config());
    assert.equal(back.type, opt.type);
  }
});

test("schedules: values at chosen epochs", () => {
  const step = new StepLR({ stepSize: 3, gamma: 0.5 });
  assert.deepEqual(
    [0, 2, 3, 5, 6, 9].map((e) => step.lrAt(e, 0.1)),
    [0.1, 0.1, 0.05, 0.05, 0.025, 0.0125],
  );
  assert.equal(new StepLR({ stepSize: 10 }).lrAt(25, 1), 0.1 ** 2);

  const exp = new ExponentialLR({ gamma: 0.9 });
  assert.equal(exp.lrAt(0, 0.1), 0.1);
  assert.ok(Math.abs(exp.lrAt(3, 0.1) - 0.0729) < 1e-17);

  const cos = new CosineLR({ tMax: 10, minLr: 0.01 });
  assert.equal(cos.lrAt(0, 0.1), 0.1);
  assert.ok(Math.abs(cos.lrAt(5, 0.1) - 0.055) < 1e-16);
  assert.ok(Math.abs(cos.lrAt(2, 0.1) - (0.01 + (0.09 * (1 + Math.cos(Math.PI / 5))) / 2)) < 1e-17);
  assert.equal(cos.lrAt(10, 0.1), 0.01);
  assert.equal(cos.lrAt(15, 0.1), 0.01);
  assert.equal(new CosineLR({ tMax: 4 }).lrAt(4, 0.3), 0);

  for (const s of [step, exp, cos])
    assert.deepEqual(
      scheduleFromConfig(JSON.parse(JSON.stringify(s.config())) as ReturnType<typeof s.config>).config(),
      s.config(),
    );
  assert.throws(() => new StepLR({ stepSize: 0 }), /StepLR: stepSize must be a positive integer, got 0/);
  assert.throws(() => new ExponentialLR({ gamma: 1.5 }), /gamma must be in \(0, 1\]/);
  assert.throws(() => new CosineLR({ tMax: 5, minLr: -1 }), /minLr must be a finite number >= 0/);
  assert.throws(() => step.lrAt(-1, 0.1), /epoch must be a non-negative integer, got -1/);
  assert.throws(() => cos.lrAt(1.5, 0.1), /epoch must be a non-negative integer/);
  assert.throws(() => scheduleFromConfig({ type: "OneCycle" }), /unknown schedule type/);
});
