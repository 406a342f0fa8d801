// ONNX files on disk (the encoder is in src/io/onnx.ts).

import type { Sequential } from "../nn/sequential.ts";
import { writeFileAtomic } from "./atomic.ts";
import { toOnnx, type OnnxExportOptions } from "../io/onnx.ts";

/** toOnnx, written atomically to `file` (e.g. model.onnx). */
export function saveOnnxModel(model: Sequential, file: string, opts: OnnxExportOptions = {}): void {
  writeFileAtomic(file, toOnnx(model, opts));
}
