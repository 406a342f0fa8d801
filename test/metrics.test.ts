// Metrics against hand-computed values: confusion matrix, precision/recall/F1 (per class, macro, weighted),
// top-k accuracy with ties, and evaluateMetrics over a model whose scores are its inputs.
import { test } from "node:test";
import assert from "node:assert/strict";
import { NDArray } from "../src/nd/ndarray.ts";
import { Dense } from "../src/nn/dense.ts";
import { SoftmaxCrossEntropy } from "../src/nn/losses.ts";
import { Sequential } from "../src/nn/sequential.ts";
import { classificationReport, confusionMatrix, topKAccuracy } from "../src/nn/metrics.ts";

const truth = [0, 0, 1, 1, 1, 2, 2, 2, 2, 0, 3];
const predicted = [0, 1, 1, 1, 2, 2, 2, 0, 2, 0, 2];
const close = (a: number, b: number) => {
  assert.ok(Math.abs(a - b) < 1e-12, `${a} ≠ ${b}`);
};

test("confusion matrix: rows are the true class, columns the predicted one", () => {
  assert.deepEqual(confusionMatrix(truth, predicted, 4), [
    [2, 1, 0, 0],
    [0, 2, 1, 0],
    [1, 0, 3, 0],
    [0, 0, 1, 0],
  ]);
  assert.throws(() => confusionMatrix([0, 4], [0, 1], 4), /label of sample 1 is 4, not a class index in \[0, 4\)/);
  assert.throws(() => confusionMatrix([0, 1], [0], 4), /2 predictions but 1 labels/);
});

test("precision, recall, F1 per class and averaged, by hand (a class never predicted scores 0)", () => {
  const r = classificationReport(confusionMatrix(truth, predicted, 4));
  // class 0: tp 2, predicted 3, support 3; class 1: 2, 3, 3; class 2: 3, 5, 4; class 3: 0, 0, 1
  const expected = [
    { precision: 2 / 3, recall: 2 / 3, f1: 2 / 3, support: 3 },
    { precision: 2 / 3, recall: 2 / 3, f1: 2 / 3, support: 3 },
    { precision: 3 / 5, recall: 3 / 4, f1: (2 * 0.6 * 0.75) / 1.35, support: 4 },
    { precision: 0, recall: 0, f1: 0, support: 1 },
  ];
  r.perClass.forEach((m, k) => {
    close(m.precision, expected[k].precision);
    close(m.recall, expected[k].recall);
    close(m.f1, expected[k].f1);
    assert.equal(m.support, expected[k].support);
  });
  close(r.accuracy, 7 / 11);
  close(r.macro.precision, (2 / 3 + 2 / 3 + 0.6) / 4);
  close(r.macro.recall, (2 / 3 + 2 / 3 + 0.75) / 4);
  close(r.macro.f1, (2 / 3 + 2 / 3 + 2 / 3) / 4);
  close(r.weighted.precision, (3 * (2 / 3) * 2 + 4 * 0.6) / 11);
  close(r.weighted.recall, (2 + 2 + 3) / 11);
  close(r.weighted.f1, (3 * (2 / 3) * 2 + 4 * (2 / 3)) / 11);
});

test("top-k accuracy ranks ties by class index, so top-1 is argmax accuracy", () => {
  const scores = new NDArray(Float32Array.from([0.1, 0.5, 0.5, 0.9, 0.0, 0.3, 0.2, 0.1, 0.7]), [3, 3]);
  // row 0: label 2 ties with class 1 (ranked first) → rank 1; row 1: label 2 → rank 1; row 2: label 0 → rank 1
  assert.equal(topKAccuracy(scores, [2, 2, 0], 1), 0);
  assert.equal(topKAccuracy(scores, [2, 2, 0], 2), 1);
  assert.equal(topKAccuracy(scores, [1, 0, 2], 1), 1);
  const onehot = new NDArray(Float32Array.from([0, 0, 1, 0, 0, 1, 1, 0, 0]), [3, 3]);
  assert.equal(topKAccuracy(scores, onehot, 2), 1);
  assert.throws(() => topKAccuracy(scores, [0, 1, 2], 0), /k must be a positive integer/);
});

test("evaluateMetrics: a model whose scores are its inputs, in batches; loss and accuracy agree with evaluate", () => {
  const dense = new Dense({ inFeatures: 4, outFeatures: 4 });
  const model = new Sequential([dense], { inputShape: [4] });
  const w = dense.params()[0].value.data;
  w.fill(0);
  for (let k = 0; k < 4; k++) w[k * 4 + k] = 1;
  dense.params()[1].value.data.fill(0);
  model.compile({ loss: new SoftmaxCrossEntropy(), optimizer: null as never });
  const x = new NDArray(new Float32Array(11 * 4), [11, 4]);
  predicted.forEach((p, n) => {
    x.data[n * 4 + p] = 2;
    x.data[n * 4 + ((p + 1) % 4)] = 1; // second choice: the next class
  });
  const m = model.evaluateMetrics(x, truth, { batchSize: 4, topK: [1, 2] });
  assert.deepEqual(m.confusion, confusionMatrix(truth, predicted, 4));
  close(m.accuracy, 7 / 11);
  close(m.topK[1], 7 / 11);
  // Top-2 adds sample 10 (true 3, scores rank 2 then 3); samples 1, 4 and 7 miss both choices.
  close(m.topK[2], 8 / 11);
  const e = model.evaluate(x, truth, { batchSize: 4 });
  close(m.loss!, e.loss);
  close(m.accuracy, e.accuracy!);
  assert.throws(() => model.evaluateMetrics(x, truth.slice(1)), /11 samples but y has 10/);
});
