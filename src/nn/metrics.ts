// Classification metrics: confusion matrix, top-k accuracy, per-class precision/recall/F1 with macro and
// support-weighted averages (scikit-learn's definitions, zero_division = 0), and evaluateMetrics, which
// gathers them over a dataset batch by batch in inference mode.
//
//   confusion[t][p] = #{n : truth_n = t, predicted_n = p}
//   precision_k = C[k][k] / Σ_t C[t][k]     recall_k = C[k][k] / Σ_p C[k][p]     F1_k = 2·P·R / (P + R)
//   (a quotient whose denominator is 0 counts as 0)
//   macro = the mean over classes;  weighted = Σ_k support_k · metric_k / Σ_k support_k
//   top-k: sample n is correct when fewer than k classes rank above its true class, ties ranked by index
//   (so top-1 is argmax accuracy, first index on ties).

import { formatShape, type NDArray } from "../nd/ndarray.ts";
import { argmax } from "../nd/rows.ts";
import { ShapeError } from "./layer.ts";
import type { Loss, Target } from "./losses.ts";
import type { Sequential } from "./sequential.ts";
import { BatchBuffer, TargetBuffer, checkTargets, labelsOf } from "./batches.ts";

export interface ClassMetrics {
  precision: number;
  recall: number;
  f1: number;
  /** Samples whose true class this is. */
  support: number;
}

export interface AveragedMetrics {
  precision: number;
  recall: number;
  f1: number;
}

export interface ClassificationReport {
  accuracy: number;
  perClass: ClassMetrics[];
  macro: AveragedMetrics;
  weighted: AveragedMetrics;
}

function logitShape(where: string, logits: NDArray): [number, number] {
  if (logits.ndim !== 2 || logits.shape[1] < 1) {
    throw new ShapeError(`${where}: expected scores of shape (N, K), got ${formatShape(logits.shape)}`);
  }
  return [logits.shape[0], logits.shape[1]];
}

function checkLabels(where: string, labels: ArrayLike<number>, N: number, K: number): void {
  if (labels.length !== N) throw new ShapeError(`${where}: ${N} predictions but ${labels.length} labels`);
  for (let n = 0; n < N; n++) {
    const c = labels[n];
    if (!Number.isInteger(c) || c < 0 || c >= K) {
      throw new RangeError(`${where}: label of sample ${n} is ${c}, not a class index in [0, ${K})`);
    }
  }
}

/** Class labels from targets: integer labels, or one-hot/probability rows (their argmax). */
function targetLabels(where: string, target: Target, N: number, K: number): ArrayLike<number> {
  const labels = labelsOf(target, N, K);
  checkLabels(where, labels, N, K);
  return labels;
}

/** The K × K matrix C[true][predicted] of counts. */
export function confusionMatrix(
  truth: ArrayLike<number>,
  predicted: ArrayLike<number>,
  numClasses: number,
): number[][] {
  if (!Number.isInteger(numClasses) || numClasses < 1) {
    throw new RangeError(`confusionMatrix: numClasses must be a positive integer, got ${numClasses}`);
  }
  checkLabels("confusionMatrix (truth)", truth, truth.length, numClasses);
  checkLabels("confusionMatrix (predicted)", predicted, truth.length, numClasses);
  const c = Array.from({ length: numClasses }, () => new Array<number>(numClasses).fill(0));
  for (let n = 0; n < truth.length; n++) c[truth[n]][predicted[n]]++;
  return c;
}

/** Number of samples whose true class is among the k best-scored (ties ranked by class index). */
export function countTopK(scores: NDArray, labels: ArrayLike<number>, k: number): number {
  const [N, K] = logitShape("topKAccuracy", scores);
  if (!Number.isInteger(k) || k < 1) throw new RangeError(`topKAccuracy: k must be a positive integer, got ${k}`);
  checkLabels("topKAccuracy", labels, N, K);
  const z = scores.data;
  let correct = 0;
  for (let n = 0; n < N; n++) {
    const c = labels[n];
    const zc = z[n * K + c];
    let above = 0;
    for (let j = 0; j < K; j++) {
      const zj = z[n * K + j];
      if (zj > zc || (zj === zc && j < c)) above++;
    }
    if (above < k) correct++;
  }
  return correct;
}

/** Fraction of samples whose true class is among the k best-scored (logits or probabilities). */
export function topKAccuracy(scores: NDArray, target: Target, k: number): number {
  const [N, K] = logitShape("topKAccuracy", scores);
  return N === 0 ? 0 : countTopK(scores, targetLabels("topKAccuracy", target, N, K), k) / N;
}

/** Per-class precision, recall, F1 and support, with macro and weighted averages, from C[true][predicted]. */
export function classificationReport(confusion: readonly (readonly number[])[]): ClassificationReport {
  const K = confusion.length;
  if (K === 0 || confusion.some((row) => row.length !== K)) {
    throw new ShapeError("classificationReport: the confusion matrix must be square and non-empty");
  }
  const ratio = (a: number, b: number) => (b === 0 ? 0 : a / b);
  let total = 0;
  let diagonal = 0;
  const perClass: ClassMetrics[] = [];
  for (let k = 0; k < K; k++) {
    let support = 0;
    let predicted = 0;
    for (let j = 0; j < K; j++) {
      support += confusion[k][j];
      predicted += confusion[j][k];
    }
    const tp = confusion[k][k];
    const precision = ratio(tp, predicted);
    const recall = ratio(tp, support);
    perClass.push({ precision, recall, f1: ratio(2 * precision * recall, precision + recall), support });
    total += support;
    diagonal += tp;
  }
  const average = (weight: (m: ClassMetrics) => number): AveragedMetrics => {
    const sum = perClass.reduce((s, m) => s + weight(m), 0);
    const mean = (f: (m: ClassMetrics) => number) =>
      ratio(
        perClass.reduce((s, m) => s + weight(m) * f(m), 0),
        sum,
      );
    return { precision: mean((m) => m.precision), recall: mean((m) => m.recall), f1: mean((m) => m.f1) };
  };
  return {
    accuracy: ratio(diagonal, total),
    perClass,
    macro: average(() => 1),
    weighted: average((m) => m.support),
  };
}

export interface EvaluateMetricsOptions {
  batchSize?: number;
  /** Also report this loss's mean (default: the model's compiled loss, if any). */
  loss?: Loss;
  /** The k of each top-k accuracy reported (default [1, 5], those ≤ the number of classes). */
  topK?: readonly number[];
}

/**
 * What evaluateMetrics returns: accuracy, top-k accuracy, the confusion matrix, per-class precision/recall/F1 and their
 * macro and weighted averages.
 */
export interface EvaluationMetrics extends ClassificationReport {
  /** Mean loss, when a loss was given or compiled. */
  loss?: number;
  /** topK[k] = top-k accuracy. */
  topK: Record<number, number>;
  /** C[true][predicted]. */
  confusion: number[][];
}

/**
 * Every metric above for a classifier (scores (N, K)) over a dataset, in inference mode, batch by batch.
 * Targets: integer labels or one-hot/probability rows (their argmax is the true class).
 */
export function evaluateMetrics(
  model: Sequential,
  x: NDArray,
  y: Target,
  opts: EvaluateMetricsOptions = {},
): EvaluationMetrics {
  checkTargets(x, y, "evaluateMetrics");
  const bs = opts.batchSize ?? 256;
  if (!Number.isInteger(bs) || bs < 1) {
    throw new RangeError(`evaluateMetrics: batchSize must be a positive integer, got ${bs}`);
  }
  const loss = opts.loss ?? model.loss;
  const N = x.shape[0];
  const xb = new BatchBuffer(x);
  const yb = new TargetBuffer(y);
  let confusion: number[][] | null = null;
  let ks: number[] = [];
  let topCounts: number[] = [];
  let lossSum = 0;
  for (let start = 0; start < N; start += bs) {
    const n = Math.min(bs, N - start);
    const scores = model.forward(xb.range(start, n), { training: false });
    const [, K] = logitShape("evaluateMetrics", scores);
    const t = yb.range(start, n);
    if (confusion === null) {
      confusion = Array.from({ length: K }, () => new Array<number>(K).fill(0));
      ks = (opts.topK ?? [1, 5].filter((k) => k <= K)).slice();
      topCounts = ks.map(() => 0);
    }
    const labels = targetLabels("evaluateMetrics", t, n, K);
    if (loss) lossSum += loss.forward(scores, t) * n;
    const z = scores.data;
    for (let i = 0; i < n; i++) confusion[labels[i]][argmax(z, i * K, K)]++;
    ks.forEach((k, j) => (topCounts[j] += countTopK(scores, labels, k)));
  }
  if (confusion === null) throw new RangeError("evaluateMetrics: the dataset is empty");
  const topK: Record<number, number> = {};
  ks.forEach((k, j) => (topK[k] = topCounts[j] / N));
  const out: EvaluationMetrics = { ...classificationReport(confusion), topK, confusion };
  if (loss) out.loss = lossSum / N;
  return out;
}
