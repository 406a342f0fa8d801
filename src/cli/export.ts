// `handprop export`: a model folder saved by handprop (model.json + weights.bin) to the TensorFlow.js
// Layers format (a folder: model.json + weights.bin, NHWC) or to ONNX (one file, NCHW). The input
// normalization a training run stored travels along as metadata (TF.js userDefinedMetadata, ONNX
// metadata_props), since the exported graph, like the handprop model, takes normalized inputs.

import { statSync } from "node:fs";
import { join, resolve } from "node:path";
import { loadModel } from "../node/model-io.ts";
import { saveTfjsModel } from "../node/tfjs.ts";
import { saveOnnxModel } from "../node/onnx.ts";
import { UsageError } from "./args.ts";
import { modelNormalization } from "./eval.ts";
import type { Command } from "./main.ts";

export const exportCommand: Command = {
  spec: {
    name: "export",
    summary: "Export a saved model to the TensorFlow.js Layers format (a folder) or ONNX (a file)",
    usage: "handprop export --format tfjs|onnx --model DIR --out DIR|FILE",
    flags: {
      format: { kind: "string", help: "tfjs: model.json + weights.bin in the --out folder; onnx: one file at --out", choices: ["tfjs", "onnx"] },
      model: { kind: "string", help: "model folder saved by handprop (model.json + weights.bin), e.g. runs/mnist-lenet5", meta: "DIR" },
      out: { kind: "string", help: "output folder (tfjs) or file (onnx), e.g. out/lenet5-tfjs or out/lenet5.onnx", meta: "DIR|FILE" },
    },
  },
  run(v) {
    for (const flag of ["format", "model", "out"]) {
      if (v[flag] === undefined) throw new UsageError(`handprop export: --${flag} is required (handprop export --format tfjs|onnx --model DIR --out DIR|FILE)`);
    }
    const out = v.out as string;
    // Both formats name their files model.json + weights.bin: exporting into the model's own folder
    // would overwrite the model being exported.
    if (v.format === "tfjs" && resolve(out) === resolve(v.model as string)) {
      throw new UsageError("handprop export: --out must be another folder than --model (both formats write model.json + weights.bin)");
    }
    const { model, training } = loadModel(v.model as string);
    const { normalization, stored } = modelNormalization(training);
    const metadata: Record<string, string> = stored ? { "handprop.normalization": JSON.stringify(normalization) } : {};
    const inputs = stored ? `; inputs x = (pixel · ${normalization.scale.toPrecision(6)} − ${normalization.mean}) / ${normalization.std}` : "";
    if (v.format === "tfjs") {
      saveTfjsModel(model, out, { metadata });
      const bytes = statSync(join(out, "weights.bin")).size;
      process.stdout.write(`exported ${model.name} to ${join(out, "model.json")} + weights.bin (${bytes} bytes; TF.js Layers format, NHWC input${inputs})\n`);
    } else {
      saveOnnxModel(model, out, { metadata });
      process.stdout.write(`exported ${model.name} to ${out} (${statSync(out).size} bytes; ONNX opset 13, NCHW input "input", output "output"${inputs})\n`);
    }
    return 0;
  },
};
