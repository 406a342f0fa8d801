// Saving and loading models as a folder (the format is in model-format.ts):
//
//   dir/model.json      manifest: architecture, parameter table, checksums, training metadata
//   dir/weights.bin     the parameters, little-endian
//   dir/optimizer.bin   the optimizer's state (only when saved with one: training checkpoints)
//
// saveModel writes every file to a temporary name in dir, then renames them into place data files
// first and model.json LAST: a crash leaves either the previous model.json or the new one with all
// the files it names present. (Overwriting a model in place, a crash between the renames can pair
// the old model.json with the new weights.bin; the checksum in model.json then makes loading fail
// with a checksum error instead of returning a mismatched model.)

import { readFileSync } from "node:fs";
import { join } from "node:path";
import type { Sequential } from "../nn/sequential.ts";
import { writeFilesAtomic } from "./atomic.ts";
import { MANIFEST_FILE, ModelFormatError, deserializeModel, parseManifest, serializeModel, type LoadedModel, type ModelManifest, type SaveMeta } from "../io/model-format.ts";

export * from "../io/model-format.ts";

/** Save a model (and optionally its optimizer and training metadata) to dir, atomically. Returns the manifest. */
export function saveModel(model: Sequential, dir: string, meta: SaveMeta = {}): ModelManifest {
  const s = serializeModel(model, meta);
  const manifest = JSON.parse(s.json) as ModelManifest;
  const files: { path: string; data: Uint8Array | string }[] = [{ path: join(dir, manifest.weights.file), data: s.weights }];
  if (s.optimizer && manifest.optimizer) files.push({ path: join(dir, manifest.optimizer.file), data: s.optimizer });
  files.push({ path: join(dir, MANIFEST_FILE), data: s.json });
  writeFilesAtomic(files);
  return manifest;
}

function readOrFail(path: string, what: string): Uint8Array {
  try {
    return readFileSync(path);
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    throw new ModelFormatError(code === "ENOENT" ? `${path}: missing (${what})` : `${path}: cannot read (${what}): ${(e as Error).message}`);
  }
}

export interface LoadOptions {
  /** Also read optimizer.bin (when the manifest has an optimizer) and rebuild the optimizer. */
  withOptimizer?: boolean;
}

/** Read just a model folder's manifest (validated). */
export function readManifest(dir: string): ModelManifest {
  const path = join(dir, MANIFEST_FILE);
  return parseManifest(readOrFail(path, "the model's manifest; is this a model folder?"), path);
}

/**
 * Load a model folder saved by saveModel. Predictions are bit-identical to the saved model's. Every
 * problem (missing or malformed model.json, unknown format version or layer, a weights file that is
 * truncated, too long or fails its checksum, a parameter table that does not fit the architecture)
 * throws a ModelFormatError naming the file and the field or layer.
 */
export function loadModel(dir: string, opts: LoadOptions = {}): LoadedModel {
  const manifestPath = join(dir, MANIFEST_FILE);
  const json = readOrFail(manifestPath, "the model's manifest; is this a model folder?");
  const manifest = parseManifest(json, manifestPath);
  const weightsPath = join(dir, manifest.weights.file);
  const weights = readOrFail(weightsPath, `the weights listed in ${manifestPath}`);
  const optimizerPath = manifest.optimizer ? join(dir, manifest.optimizer.file) : undefined;
  const optimizer = opts.withOptimizer && optimizerPath ? readOrFail(optimizerPath, `the optimizer state listed in ${manifestPath}`) : undefined;
  return deserializeModel(json, weights, optimizer, { manifest: manifestPath, weights: weightsPath, ...(optimizerPath ? { optimizer: optimizerPath } : {}) });
}
