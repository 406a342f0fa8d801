// TF.js Layers models on disk: a folder with model.json and its weight files (the format itself is in src/io/tfjs.ts).

import { isAbsolute, join, normalize, sep } from "node:path";
import type { Sequential } from "../nn/sequential.ts";
import { writeFilesAtomic } from "./atomic.ts";
import { TfjsFormatError, fromTfjsArtifacts, toTfjsArtifacts, type TfjsExportOptions } from "../io/tfjs.ts";
import { MAX_JSON_DEPTH, jsonDepthExceeds } from "../io/model-format.ts";
import { FileReadError, isNonFolder, readRegularFile } from "./safe-read.ts";

const isObject = (v: unknown): v is Record<string, unknown> => typeof v === "object" && v !== null && !Array.isArray(v);

/**
 * Write model.json + weights.bin into dir (created if needed), each atomically (temp file + rename),
 * weights.bin renamed first: model.json never names a weights file of another model or size.
 */
export function saveTfjsModel(model: Sequential, dir: string, opts: TfjsExportOptions = {}): void {
  const { modelJson, weightData } = toTfjsArtifacts(model, opts);
  writeFilesAtomic([
    { path: join(dir, "weights.bin"), data: new Uint8Array(weightData) },
    { path: join(dir, "model.json"), data: JSON.stringify(modelJson) },
  ]);
}

/** A weights path from the manifest, checked to stay inside the model's directory. */
function weightsPath(dir: string, p: unknown, where: string): string {
  if (
    typeof p !== "string" ||
    p === "" ||
    isAbsolute(p) ||
    normalize(p).split(sep).includes("..") ||
    p.includes("://")
  ) {
    throw new TfjsFormatError(
      `${where}: weights path ${JSON.stringify(p)} must be a file name relative to the model's directory`,
    );
  }
  return join(dir, p);
}

/** Largest TF.js model.json read, and largest weight file (TF.js shards weights into 4 MB files). */
const MAX_TFJS_JSON_BYTES = 64 * 1024 * 1024;
const MAX_TFJS_WEIGHT_FILE_BYTES = 2 ** 31;

function readOrFail(path: string, what: string, maxBytes: number): Buffer {
  try {
    return readRegularFile(path, { maxBytes, what });
  } catch (e) {
    if (e instanceof FileReadError && e.code === "ENOENT")
      throw new TfjsFormatError(`cannot read ${path}: no such file (${what})`, { cause: e });
    if (e instanceof FileReadError) throw new TfjsFormatError(e.message, { cause: e });
    throw e;
  }
}

/**
 * Load a TF.js Layers model from a directory holding model.json and its weight files (or from
 * model.json's path). Only regular files are read, each bounded in size; errors name the file.
 */
export function loadTfjsModel(dirOrModelJson: string): Sequential {
  if (!dirOrModelJson.endsWith(".json") && isNonFolder(dirOrModelJson)) {
    throw new TfjsFormatError(
      `${dirOrModelJson}: not a folder: loadTfjsModel reads a folder holding model.json and its weight files, ` +
        "or the path of that model.json",
    );
  }
  const jsonPath = dirOrModelJson.endsWith(".json") ? dirOrModelJson : join(dirOrModelJson, "model.json");
  const dir = dirOrModelJson.endsWith(".json") ? join(jsonPath, "..") : dirOrModelJson;
  const text = readOrFail(jsonPath, "a TF.js model.json", MAX_TFJS_JSON_BYTES).toString("utf8");
  if (jsonDepthExceeds(text))
    throw new TfjsFormatError(
      `${jsonPath}: JSON nested more than ${MAX_JSON_DEPTH} levels deep (not a TF.js model.json)`,
    );
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (e) {
    throw new TfjsFormatError(`${jsonPath} is not valid JSON: ${(e as Error).message}`, { cause: e });
  }
  if (!isObject(json) || !Array.isArray(json.weightsManifest)) {
    // handprop's own model folder also holds a model.json: the likeliest mix-up, so say which loader reads it.
    const own =
      isObject(json) && json.format === "handprop-model" ? " (a handprop model folder: read it with loadModel)" : "";
    throw new TfjsFormatError(`${jsonPath}: no "weightsManifest" array${own}`);
  }
  const files: string[] = [];
  json.weightsManifest.forEach((g: unknown, gi) => {
    if (!isObject(g) || !Array.isArray(g.paths))
      throw new TfjsFormatError(`${jsonPath}: weightsManifest[${gi}] has no "paths" array`);
    for (const p of g.paths as unknown[]) files.push(weightsPath(dir, p, jsonPath));
  });
  const buffers: ArrayBuffer[] = [];
  for (const f of files) {
    const b = readOrFail(f, `a weights file listed in ${jsonPath}`, MAX_TFJS_WEIGHT_FILE_BYTES);
    buffers.push(new Uint8Array(b).buffer); // a copy in its own ArrayBuffer
  }
  try {
    return fromTfjsArtifacts(json, buffers, {
      source: files.length === 1 ? files[0] : `weights files ${files.join(", ")}`,
    });
  } catch (e) {
    // The in-memory reader says "model.json: …"; name the file actually read.
    if (e instanceof TfjsFormatError && e.message.startsWith("model.json"))
      throw new TfjsFormatError(jsonPath + e.message.slice("model.json".length), { cause: e });
    throw e;
  }
}
