// `handprop export`: a model folder saved by handprop (model.json + weights.bin) to the TensorFlow.js
// Layers format (a folder: model.json + weights.bin, NHWC) or to ONNX (one file, NCHW). The input
// normalization a training run stored travels along as metadata (TF.js userDefinedMetadata, ONNX
// metadata_props), since the exported graph, like the handprop model, takes normalized inputs.

import { existsSync, statSync } from "node:fs";
import { join, sep } from "node:path";
import { realPathOf } from "../node/safe-read.ts";
import { MANIFEST_FILE, loadModel } from "../node/model-io.ts";
import { saveTfjsModel } from "../node/tfjs.ts";
import { saveOnnxModel } from "../node/onnx.ts";
import { printable } from "../io/text.ts";
import { UsageError, defineCommand } from "./args.ts";
import { normalizationFromTraining } from "../data/normalization.ts";

/**
 * Refuse an --out that would overwrite the model being exported (the folder itself, a file in it,
 * a symlink to either) or, without --force, anything that already exists.
 */
function checkOut(format: "tfjs" | "onnx", modelDir: string, out: string, force: boolean): void {
  const model = realPathOf(modelDir);
  const target = realPathOf(out);
  if (target === model || target.startsWith(model + sep)) {
    const where = target === model ? "is the model folder itself" : "is inside the model folder";
    throw new UsageError(
      `handprop export: --out must be another folder than --model: ${out} ${where} ${modelDir} (symlinks resolved), and exporting there would overwrite the model`,
    );
  }
  if (!existsSync(out)) return;
  const isDir = statSync(out).isDirectory();
  if (format === "onnx") {
    if (isDir)
      throw new UsageError(
        `handprop export: --out ${out} is a folder; ONNX export writes one file (e.g. ${join(out, "model.onnx")})`,
      );
    if (!force)
      throw new UsageError(
        `handprop export: ${out} already exists; overwrite it with --force, or choose another --out`,
      );
    return;
  }
  if (!isDir)
    throw new UsageError(
      `handprop export: --out ${out} is a file; TF.js export writes a folder (model.json + weights.bin)`,
    );
  const existing = ["model.json", "weights.bin"].filter((f) => existsSync(join(out, f)));
  if (existing.length > 0 && !force) {
    throw new UsageError(
      `handprop export: ${out} already holds ${existing.join(" and ")}; overwrite with --force, or choose another --out`,
    );
  }
}

export const exportCommand = defineCommand(
  {
    name: "export",
    summary: "Export a saved model to the TensorFlow.js Layers format (a folder) or ONNX (a file)",
    usage: "handprop export --format tfjs|onnx --model DIR --out DIR|FILE [--force]",
    flags: {
      format: {
        kind: "string",
        help: "tfjs: model.json + weights.bin in the --out folder; onnx: one file at --out",
        choices: ["tfjs", "onnx"],
      },
      model: {
        kind: "string",
        nonEmpty: true,
        help: "model folder saved by handprop (model.json + weights.bin), e.g. runs/mnist-lenet5",
        meta: "DIR",
      },
      out: {
        kind: "string",
        nonEmpty: true,
        help: "output folder (tfjs) or file (onnx), e.g. out/lenet5-tfjs or out/lenet5.onnx",
        meta: "DIR|FILE",
      },
      force: { kind: "boolean", help: "overwrite an existing export at --out (never the model being exported)" },
    },
  },
  (v) => {
    const { format, model: dir, out } = v;
    if (format === undefined || dir === undefined || out === undefined) {
      const flag = format === undefined ? "format" : dir === undefined ? "model" : "out";
      throw new UsageError(
        `handprop export: --${flag} is required (handprop export --format tfjs|onnx --model DIR --out DIR|FILE)`,
      );
    }
    const { model, training } = loadModel(dir); // first: a missing or damaged model is the first thing to report
    checkOut(format, dir, out, v.force === true);
    const { normalization, stored } = normalizationFromTraining(training, join(dir, MANIFEST_FILE));
    const metadata: Record<string, string> = stored ? { "handprop.normalization": JSON.stringify(normalization) } : {};
    const inputs = stored
      ? `; inputs x = (pixel · ${normalization.scale.toPrecision(6)} − ${normalization.mean}) / ${normalization.std}`
      : "";
    if (format === "tfjs") {
      saveTfjsModel(model, out, { metadata });
      const bytes = statSync(join(out, "weights.bin")).size;
      process.stdout.write(
        `exported ${printable(model.name)} to ${join(out, "model.json")} + weights.bin ` +
          `(${bytes} bytes; TF.js Layers format, NHWC input${inputs})\n`,
      );
    } else {
      saveOnnxModel(model, out, { metadata });
      process.stdout.write(
        `exported ${printable(model.name)} to ${out} ` +
          `(${statSync(out).size} bytes; ONNX opset 13, NCHW input "input", output "output"${inputs})\n`,
      );
    }
    return 0;
  },
);
