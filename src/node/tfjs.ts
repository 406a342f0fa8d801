// TF.js Layers models on disk: a folder with model.json and its weight files (the format itself is in src/io/tfjs.ts).

import { readFileSync } from "node:fs";
import { isAbsolute, join, normalize, sep } from "node:path";
import type { Sequential } from "../nn/sequential.ts";
import { writeFilesAtomic } from "./atomic.ts";
import { TfjsFormatError, fromTfjsArtifacts, toTfjsArtifacts, type TfjsExportOptions } from "../io/tfjs.ts";

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
  if (typeof p !== "string" || p === "" || isAbsolute(p) || normalize(p).split(sep).includes("..") || p.includes("://")) {
    throw new TfjsFormatError(`${where}: weights path ${JSON.stringify(p)} must be a file name relative to the model's directory`);
  }
  return join(dir, p);
}

/** Load a TF.js Layers model from a directory holding model.json and its weight files (or from model.json's path). */
export function loadTfjsModel(dirOrModelJson: string): Sequential {
  const jsonPath = dirOrModelJson.endsWith(".json") ? dirOrModelJson : join(dirOrModelJson, "model.json");
  const dir = dirOrModelJson.endsWith(".json") ? join(jsonPath, "..") : dirOrModelJson;
  let text: string;
  try {
    text = readFileSync(jsonPath, "utf8");
  } catch (e) {
    throw new TfjsFormatError(`cannot read ${jsonPath}: ${(e as Error).message}`, { cause: e });
  }
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (e) {
    throw new TfjsFormatError(`${jsonPath} is not valid JSON: ${(e as Error).message}`, { cause: e });
  }
  if (!isObject(json) || !Array.isArray(json.weightsManifest)) throw new TfjsFormatError(`${jsonPath}: no "weightsManifest" array`);
  const files: string[] = [];
  json.weightsManifest.forEach((g: unknown, gi) => {
    if (!isObject(g) || !Array.isArray(g.paths)) throw new TfjsFormatError(`${jsonPath}: weightsManifest[${gi}] has no "paths" array`);
    for (const p of g.paths as unknown[]) files.push(weightsPath(dir, p, jsonPath));
  });
  const buffers: ArrayBuffer[] = [];
  for (const f of files) {
    try {
      const b = readFileSync(f);
      buffers.push(b.buffer.slice(b.byteOffset, b.byteOffset + b.byteLength));
    } catch (e) {
      throw new TfjsFormatError(`cannot read weights file ${f} (listed in ${jsonPath}): ${(e as Error).message}`, { cause: e });
    }
  }
  return fromTfjsArtifacts(json, buffers, { source: files.length === 1 ? files[0] : `weights files ${files.join(", ")}` });
}
