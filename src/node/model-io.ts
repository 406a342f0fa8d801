// Saving and loading models as a folder (the format is in model-format.ts):
//
//   dir/model.json      manifest: architecture, parameter table, checksums, training metadata
//   dir/weights.bin     the parameters, little-endian
//   dir/optimizer.bin   the optimizer's state (only when saved with one: training checkpoints)
//
// saveModel writes the whole folder as ONE atomic step (atomic.ts's commit journal): the new files
// go to temporary names, a journal naming them is renamed into place (the commit), then they are
// renamed to their final names. A process killed at any moment leaves either the previous model or
// the new one loadable (loadModel resolves names through a pending journal); the next save completes
// or removes what an interrupted one left behind (.tmp-* files, the journal).
//
// Loading reads only regular files (a FIFO, /dev/zero or a directory is refused by name), and sizes
// are checked against the manifest (fstat) before anything is allocated; at most the declared number
// of bytes is read.

import { join } from "node:path";
import type { Sequential } from "../nn/sequential.ts";
import { committedPath, finishPendingCommit, readCommitJournal, writeFilesCommitted } from "./atomic.ts";
import { FileReadError, isNonFolder, readRegularFile } from "./safe-read.ts";
import {
  MANIFEST_FILE,
  ModelFormatError,
  OPTIMIZER_FILE,
  WEIGHTS_FILE,
  deserializeModel,
  parseManifest,
  serializeModel,
  type LoadedModel,
  type ModelManifest,
  type SaveMeta,
} from "../io/model-format.ts";

export * from "../io/model-format.ts";

/** Largest model.json read (ours are a few KB plus 5 KB per Dropout generator). */
export const MAX_MANIFEST_BYTES = 16 * 1024 * 1024;

/** Save a model (and optionally its optimizer and training metadata) to dir, atomically. Returns the manifest. */
export function saveModel(model: Sequential, dir: string, meta: SaveMeta = {}): ModelManifest {
  const s = serializeModel(model, meta);
  const manifest = JSON.parse(s.json) as ModelManifest;
  const files: { name: string; data: Uint8Array | string }[] = [{ name: manifest.weights.file, data: s.weights }];
  if (s.optimizer && manifest.optimizer) files.push({ name: manifest.optimizer.file, data: s.optimizer });
  files.push({ name: MANIFEST_FILE, data: s.json });
  writeFilesCommitted(dir, files);
  return manifest;
}

/** Complete or remove what an interrupted save left in dir (the journal, .tmp-* files). */
export function cleanModelFolder(dir: string): void {
  finishPendingCommit(dir, [MANIFEST_FILE, WEIGHTS_FILE, OPTIMIZER_FILE]);
}

function readOrFail(
  path: string,
  what: string,
  limits: { maxBytes?: number; checkSize?: (size: number) => void },
): Uint8Array {
  try {
    return readRegularFile(path, { ...limits, what });
  } catch (e) {
    if (e instanceof FileReadError) throw new ModelFormatError(e.message, { cause: e });
    throw e;
  }
}

/** fstat's size against the manifest's byteLength, before the bytes are allocated or read. */
function sizeChecker(file: string, byteLength: number, manifestFile: string, what: string): (size: number) => void {
  return (size) => {
    if (size < byteLength)
      throw new ModelFormatError(
        `${file}: truncated: ${manifestFile} says ${byteLength} bytes (${what}), file has ${size}`,
      );
    if (size > byteLength)
      throw new ModelFormatError(
        `${file}: ${size - byteLength} bytes too many: ${manifestFile} says ${byteLength} bytes (${what}), file has ${size}`,
      );
  };
}

export interface LoadOptions {
  /** Also read optimizer.bin (when the manifest has an optimizer) and rebuild the optimizer. */
  withOptimizer?: boolean;
}

/** Read just a model folder's manifest (validated). */
export function readManifest(dir: string): ModelManifest {
  const path = join(dir, MANIFEST_FILE);
  const current = committedPath(dir, MANIFEST_FILE, journalOf(dir));
  return parseManifest(
    readOrFail(current, "the model's manifest; is this a model folder?", { maxBytes: MAX_MANIFEST_BYTES }),
    path,
  );
}

function journalOf(dir: string): ReturnType<typeof readCommitJournal> {
  refuseNonFolder(dir);
  try {
    return readCommitJournal(dir);
  } catch (e) {
    throw new ModelFormatError((e as Error).message, { cause: e });
  }
}

/**
 * A model is a folder: a file given in its place (an ONNX export, a `.handprop` download) is refused by
 * name here, before a path under it is tried. A path that does not exist falls through to model.json's own
 * "missing" error.
 */
function refuseNonFolder(dir: string): void {
  if (!isNonFolder(dir)) return;
  const hint = dir.endsWith(".handprop")
    ? "; a .handprop file is read with modelFromFile(bytes) (or handprop predict --model FILE)"
    : dir.endsWith(".onnx")
      ? "; handprop exports ONNX but does not import it"
      : "";
  throw new ModelFormatError(
    `${dir}: not a folder: a handprop model is a folder holding model.json and weights.bin, as saveModel writes${hint}`,
  );
}

/**
 * Load a model folder saved by saveModel. Predictions are bit-identical to the saved model's. Every
 * problem (missing or malformed model.json, unknown format version or layer, a weights file that is
 * truncated, too long or fails its checksum, a parameter table that does not fit the architecture)
 * throws a ModelFormatError naming the file and the field or layer.
 */
export function loadModel(dir: string, opts: LoadOptions = {}): LoadedModel {
  try {
    return loadOnce(dir, opts);
  } catch (e) {
    // A save that finished its renames between our reads moved a temporary away: read again.
    if (
      e instanceof ModelFormatError &&
      e.cause instanceof FileReadError &&
      e.cause.code === "ENOENT" &&
      journalOf(dir) === null
    ) {
      return loadOnce(dir, opts);
    }
    throw e;
  }
}

function loadOnce(dir: string, opts: LoadOptions): LoadedModel {
  const journal = journalOf(dir);
  const manifestPath = join(dir, MANIFEST_FILE);
  const json = readOrFail(committedPath(dir, MANIFEST_FILE, journal), "the model's manifest; is this a model folder?", {
    maxBytes: MAX_MANIFEST_BYTES,
  });
  const manifest = parseManifest(json, manifestPath);
  const weightsPath = join(dir, manifest.weights.file);
  const tensors = manifest.weights.tensors;
  const values = `${tensors.reduce((s, t) => s + t.length, 0)} ${tensors[0]?.dtype ?? "float32"} values in ${tensors.length} arrays`;
  const weights = readOrFail(
    committedPath(dir, manifest.weights.file, journal),
    `the weights listed in ${manifestPath}`,
    {
      checkSize: sizeChecker(weightsPath, manifest.weights.byteLength, manifestPath, values),
    },
  );
  const optimizerPath = manifest.optimizer ? join(dir, manifest.optimizer.file) : undefined;
  const opt = manifest.optimizer;
  const optimizer =
    opts.withOptimizer && opt && optimizerPath
      ? readOrFail(committedPath(dir, opt.file, journal), `the optimizer state listed in ${manifestPath}`, {
          checkSize: sizeChecker(
            optimizerPath,
            opt.byteLength,
            manifestPath,
            `${opt.slots.length} optimizer state arrays`,
          ),
        })
      : undefined;
  return deserializeModel(json, weights, optimizer, {
    manifest: manifestPath,
    weights: weightsPath,
    ...(optimizerPath ? { optimizer: optimizerPath } : {}),
  });
}
