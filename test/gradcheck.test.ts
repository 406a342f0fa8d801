// The same suite `handprop gradcheck` runs: every layer, loss and a small model, float64, ≤ 1e-6.
import { test } from "node:test";
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { runGradcheckSuite, summarize } from "../src/nn/checks.ts";
import { gradcheck } from "../src/nn/gradcheck.ts";
import { Dense } from "../src/nn/dense.ts";
import { NDArray } from "../src/nd/ndarray.ts";
import { verdict } from "../src/cli/gradcheck.ts";

test("every layer, loss and the small model pass the gradient check at ≤ 1e-6 (two seeds)", () => {
  for (const seed of [0, 1]) {
    const rows = summarize(runGradcheckSuite({ seed }));
    for (const r of rows)
      assert.ok(
        r.ok,
        `seed ${seed}: ${r.name} max rel error ${r.maxRelError.toExponential(2)}, ${r.skippedKinks} kinks skipped`,
      );
    const names = rows.map((r) => r.name);
    for (const n of [
      "Conv2D",
      "MaxPool2D",
      "AvgPool2D",
      "GlobalAvgPool2D",
      "Flatten",
      "Dense",
      "Dropout",
      "BatchNorm2D",
      "BatchNorm1D",
      "ReLU",
      "LeakyReLU",
      "Tanh",
      "Sigmoid",
      "Softmax",
      "SoftmaxCrossEntropy",
      "MSE",
      "BinaryCrossEntropy",
      "Sequential",
    ]) {
      assert.ok(names.includes(n), `suite covers ${n}`);
    }
  }
});

test("gradcheck catches a wrong backward", () => {
  class BrokenDense extends Dense {
    override backward(dy: NDArray): NDArray {
      const dx = super.backward(dy);
      this.weight.grad.data[0] *= 1.001; // a 0.1% error in one weight gradient
      return dx;
    }
  }
  const layer = new BrokenDense({ inFeatures: 3, outFeatures: 2 });
  const r = gradcheck(layer, new NDArray(Float64Array.from([0.5, -1, 2, 1, 0.25, -0.75]), [2, 3]));
  assert.equal(r.ok, false);
  assert.ok(r.maxRelError > 1e-4 && r.maxRelError < 1e-2, String(r.maxRelError));
});

test("gradcheck fails a backward that writes into its dy, however right its gradients", () => {
  // dx = dy·Wᵀ computed right, but dy scaled in place afterwards: the layer above (or, in a graph Model,
  // the other inputs of an Add, which share one gradient array) would read the scaled values
  class DyWriter extends Dense {
    override backward(dy: NDArray): NDArray {
      const dx = super.backward(dy);
      for (let i = 0; i < dy.size; i++) dy.data[i] *= 2;
      return dx;
    }
  }
  const x = new NDArray(Float64Array.from([0.5, -1, 2, 1, 0.25, -0.75]), [2, 3]);
  const r = gradcheck(new DyWriter({ inFeatures: 3, outFeatures: 2 }), x);
  assert.equal(r.dyWritten, true);
  assert.equal(r.ok, false);
  assert.ok(r.maxRelError <= 1e-6, String(r.maxRelError));
  const fine = gradcheck(new Dense({ inFeatures: 3, outFeatures: 2 }), x);
  assert.equal(fine.dyWritten, false);
  assert.equal(fine.ok, true);
});

test("handprop gradcheck's verdict names each failing layer under every reason it failed", () => {
  const row = (name: string, maxRelError: number, ok: boolean, dyWritten: boolean) => ({
    name,
    configs: 2,
    maxRelError,
    skippedKinks: 0,
    ok,
    dyWritten,
  });
  const fine = row("Dense", 1e-9, true, false);
  assert.equal(verdict([fine], 1e-6), "all 1 checks pass (max relative error ≤ 0.000001)");
  assert.equal(
    verdict(
      [fine, row("Wrong", 1e-3, false, false), row("Writer", 1e-9, false, true), row("Both", 1, false, true)],
      1e-6,
    ),
    "FAILED: Wrong, Both exceed 0.000001; Writer, Both: backward wrote into the dy it was given (it belongs to the " +
      "layer above)",
  );
});

test("handprop gradcheck --json prints {ok, checks: [{name, maxRelError, ok}]}", () => {
  const bin = new URL("../bin/handprop.mjs", import.meta.url).pathname;
  const r = spawnSync(process.execPath, [bin, "gradcheck", "--json", "--configs", "2"], { encoding: "utf8" });
  assert.equal(r.status, 0, r.stderr);
  const j = JSON.parse(r.stdout) as { ok: boolean; checks: { name: string; maxRelError: number; ok: boolean }[] };
  assert.equal(j.ok, true);
  assert.ok(j.checks.length >= 18);
  for (const c of j.checks) assert.equal(typeof c.maxRelError, "number");
});

test("the suite covers the layers of derivation.md §4 and a residual graph (gradcheck --json names)", () => {
  const names = summarize(runGradcheckSuite({ seed: 2, configsPerLayer: 2 })).map((r) => r.name.toLowerCase());
  for (const n of [
    "add",
    "concatenate",
    "multiply",
    "depthwiseconv2d",
    "separableconv2d",
    "conv2dtranspose",
    "upsampling2d",
    "zeropadding2d",
    "layernorm",
    "groupnorm",
    "gelu",
    "silu",
    "elu",
    "reshape",
    "permute",
    "globalmaxpool2d",
    "residualgraph",
  ]) {
    assert.ok(names.includes(n), `suite covers ${n}`);
  }
});
