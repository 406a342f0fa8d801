// `handprop predict --model DIR FILE...`: classify digit images (PNG, or PGM P2/P5) with a saved model
// and print the top-3 classes with their probabilities. The model is a folder saved by `handprop train`
// or a `.handprop` file (the pages' download, src/io/browser.ts), Sequential or graph Model alike.
//
// Each file is read and decoded with bounds (./images.ts: a regular file of at most 256 MiB, at most
// 16 megapixels, checked in the header before decoding), turned into MNIST's 28×28 white-on-black
// frame by the preprocessing the playground uses too (src/data/digits.ts: grayscale, polarity,
// levels, fit into 20×20 centred by mass), and normalised with the numbers the model was trained with
// (src/data/normalization.ts; an invalid stored normalization is an error naming model.json's field).
// A file that cannot be classified is one line on stderr naming it and why; the others are still
// classified, and the exit code is 1 if any failed.

import { statSync } from "node:fs";
import { join } from "node:path";
import { loadModel } from "../node/model-io.ts";
import { readRegularFile } from "../node/safe-read.ts";
import { DEFAULT_MAX_BYTES, modelFromFile } from "../io/browser.ts";
import { MNIST_STANDARDIZE, normalizationFromTraining, type Normalization } from "../data/normalization.ts";
import type { Sequential } from "../nn/sequential.ts";
import {
  DIGIT_FRAME,
  MIN_CONTRAST,
  digitInput,
  preprocessDigit,
  softmax,
  topK,
  type GrayImage,
} from "../data/digits.ts";
import { ImageError, readImage } from "./images.ts";
import { printable } from "../io/text.ts";
import { UsageError, defineCommand } from "./args.ts";

// Kept importable from here for existing callers; the definitions live in images.ts and digits.ts.
export { decodePgm, decodePng, readImage, ImageError, MAX_IMAGE_PIXELS, MAX_IMAGE_FILE_BYTES } from "./images.ts";
export { resizeSquare, borderMean, type GrayImage } from "../data/digits.ts";

/** The 28×28 white-on-black frame of a picture and whether it was inverted (src/data/digits.ts steps 2–5). */
export function toMnistPixels(img: GrayImage): { pixels: Float64Array; inverted: boolean } {
  const { pixels, inverted } = preprocessDigit(img);
  return { pixels, inverted };
}

export interface Prediction {
  file: string;
  inverted: boolean;
  top: { digit: number; probability: number }[];
}

/**
 * Classify one decoded picture: preprocess (src/data/digits.ts), normalize, run the model, softmax,
 * top k. A blank picture is an ImageError naming `file`; a model whose output is not one row of
 * finite class scores is an Error naming `modelName`.
 */
export function classifyPicture(
  model: Sequential,
  img: GrayImage,
  normalization: Normalization,
  file: string,
  k: number,
  modelName: string,
): Prediction {
  const { pixels, inverted, ink } = preprocessDigit(img);
  if (!ink)
    throw new ImageError(`${printable(file)}: no digit: the picture is blank (contrast under ${MIN_CONTRAST} of 255)`);
  const logits = model.predict(digitInput(pixels, normalization));
  if (logits.shape.length !== 2 || logits.shape[0] !== 1) {
    throw new Error(
      `${printable(modelName)}: the model maps a (1, 1, ${DIGIT_FRAME}, ${DIGIT_FRAME}) image ` +
        `to shape (${logits.shape.join(", ")}), expected (1, classes)`,
    );
  }
  const probabilities = softmax(logits.data);
  if (!probabilities.every(Number.isFinite))
    throw new Error(`${printable(modelName)}: the model's class scores are not finite numbers`);
  return { file, inverted, top: topK(probabilities, k) };
}

/**
 * The model at `path`: a model folder (model.json + weights.bin), or a `.handprop` file read with a
 * bound (at most DEFAULT_MAX_BYTES, a regular file only). `manifest` names where the training record
 * came from, for errors about it.
 */
export function loadModelForPredict(path: string): { model: Sequential; training: unknown; manifest: string } {
  let folder = true; // a missing path goes to loadModel, whose error names the folder and model.json
  try {
    folder = statSync(path).isDirectory();
  } catch {
    // keep folder = true
  }
  if (folder) {
    const { model, training } = loadModel(path);
    return { model, training, manifest: join(path, "model.json") };
  }
  const name = printable(path);
  const bytes = readRegularFile(path, { maxBytes: DEFAULT_MAX_BYTES, what: "a .handprop model file" });
  const { model, training } = modelFromFile(bytes, name);
  return { model, training, manifest: `${path} (model.json)` };
}

export const predictCommand = defineCommand(
  {
    name: "predict",
    summary: "Classify digit images (PNG, PGM P2/P5) with a saved model: top-3 classes with probabilities",
    usage: "handprop predict --model DIR|FILE.handprop [--json] FILE...",
    positionals: true,
    flags: {
      model: {
        kind: "string",
        help: "model folder (model.json + weights.bin), e.g. runs/mnist-lenet5, or a .handprop file",
        meta: "DIR",
      },
      top: { kind: "uint", help: "classes to show per image", default: 3, meta: "K" },
      json: {
        kind: "boolean",
        help:
          'print {"predictions": [{"file", "inverted", "top": [{"digit", "probability"}]}], ' +
          '"errors": [{"file", "error"}]} as JSON',
      },
    },
  },
  (v, files) => {
    const dir = v.model;
    if (dir === undefined)
      throw new UsageError(
        "handprop predict: --model DIR is required (a folder saved by handprop train, or a .handprop file)",
      );
    if (files.length === 0)
      throw new UsageError("handprop predict: no image files given (handprop predict --model DIR FILE...)");
    const k = v.top;
    if (k < 1) throw new UsageError("handprop predict: --top must be at least 1");
    const { model, training, manifest } = loadModelForPredict(dir);
    const { normalization, stored } = normalizationFromTraining(training, printable(manifest));
    if (!stored) {
      process.stderr.write(
        `note: ${printable(dir)} does not record its input normalization; using MNIST's ` +
          `(p/255 − ${MNIST_STANDARDIZE.mean})/${MNIST_STANDARDIZE.std}\n`,
      );
    }
    const results: Prediction[] = [];
    const errors: { file: string; error: string }[] = [];
    for (const file of files) {
      let r: Prediction;
      try {
        r = classifyPicture(model, readImage(file), normalization, file, k, dir);
      } catch (e) {
        const message = e instanceof Error ? e.message : String(e);
        // Errors of our decoders name the file already; anything else gets the name in front.
        const line = e instanceof ImageError ? message : `${printable(file)}: ${printable(message)}`;
        errors.push({ file, error: line });
        process.stderr.write(`handprop predict: ${line}\n`);
        continue;
      }
      results.push(r);
      if (!v.json) {
        const top = r.top.map((t) => `${t.digit} (${(100 * t.probability).toFixed(2)}%)`).join("  ");
        process.stdout.write(`${printable(file)}: ${top}${r.inverted ? "  [inverted: light background]" : ""}\n`);
      }
    }
    if (v.json) process.stdout.write(JSON.stringify({ predictions: results, errors }) + "\n");
    return errors.length > 0 ? 1 : 0;
  },
);
