// The weights manifest: specs from model.json or ModelArtifacts, the weight bytes split and size-checked.

import { shapeSize } from "../../nd/ndarray.ts";
import { TfjsFormatError, type TfjsWeightSpec } from "./types.ts";

export const KNOWN_TF_DTYPES = [
  "float32",
  "int32",
  "bool",
  "complex64",
  "string",
  "float16",
  "uint8",
  "int8",
  "int16",
  "int64",
  "float64",
];

export interface LoadedWeight {
  spec: TfjsWeightSpec;
  data: Float32Array;
  used: boolean;
}

export type Json = Record<string, unknown>;

export function isObject(v: unknown): v is Json {
  return typeof v === "object" && v !== null && !Array.isArray(v);
}

export function isShape(v: unknown): v is number[] {
  return Array.isArray(v) && v.every((d) => typeof d === "number" && Number.isInteger(d) && d >= 0);
}

/** Concatenate the bytes of ArrayBuffer | view | ArrayBuffer[] (TF.js uses all three). */
export function toBytes(w: ArrayBuffer | ArrayBufferView | readonly ArrayBuffer[]): Uint8Array {
  if (w instanceof ArrayBuffer) return new Uint8Array(w);
  if (ArrayBuffer.isView(w)) return new Uint8Array(w.buffer, w.byteOffset, w.byteLength);
  if (Array.isArray(w)) {
    const parts = w.map((b) => new Uint8Array(b));
    const out = new Uint8Array(parts.reduce((s, p) => s + p.length, 0));
    let off = 0;
    for (const p of parts) {
      out.set(p, off);
      off += p.length;
    }
    return out;
  }
  throw new TfjsFormatError("weight data must be an ArrayBuffer, a typed array or an array of ArrayBuffers");
}

/** The weight specs of a model.json (weightsManifest) or of TF.js ModelArtifacts (weightSpecs). */
export function weightSpecsOf(json: Json, where: string): TfjsWeightSpec[] {
  let raw: unknown[];
  if (Array.isArray(json.weightsManifest)) {
    raw = [];
    json.weightsManifest.forEach((g: unknown, gi) => {
      if (!isObject(g) || !Array.isArray(g.weights))
        throw new TfjsFormatError(`${where}: weightsManifest[${gi}] must be an object with a "weights" array`);
      raw.push(...(g.weights as unknown[]));
    });
  } else if (Array.isArray(json.weightSpecs)) raw = json.weightSpecs as unknown[];
  else throw new TfjsFormatError(`${where}: no "weightsManifest" array (nor TF.js "weightSpecs")`);
  return raw.map((s, i) => {
    if (!isObject(s) || typeof s.name !== "string")
      throw new TfjsFormatError(`${where}: weight ${i} has no string "name"`);
    if (!isShape(s.shape))
      throw new TfjsFormatError(
        `${where}: weight "${s.name}": "shape" must be an array of non-negative integers, got ${JSON.stringify(s.shape)}`,
      );
    if (s.quantization !== undefined && s.quantization !== null) {
      throw new TfjsFormatError(
        `${where}: weight "${s.name}" is quantized ("quantization" field); only plain float32 weights are supported`,
      );
    }
    const dtype = s.dtype ?? "float32";
    if (dtype !== "float32") {
      const known = typeof dtype === "string" && KNOWN_TF_DTYPES.includes(dtype);
      throw new TfjsFormatError(
        `${where}: weight "${s.name}" has ${known ? "unsupported" : "unknown"} dtype ${JSON.stringify(dtype)} (only "float32" is supported)`,
      );
    }
    return { name: s.name, shape: s.shape, dtype };
  });
}

/** Split the weight bytes by the specs, checking that the sizes add up exactly. */
export function splitWeights(specs: TfjsWeightSpec[], bytes: Uint8Array, source: string): Map<string, LoadedWeight> {
  const needed = specs.reduce((s, w) => s + shapeSize(w.shape) * 4, 0);
  if (bytes.length !== needed) {
    throw new TfjsFormatError(
      `${source}: has ${bytes.length} bytes, but the weights manifest's ${specs.length} float32 weights need ${needed} bytes`,
    );
  }
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const out = new Map<string, LoadedWeight>();
  let off = 0;
  for (const spec of specs) {
    const n = shapeSize(spec.shape);
    const data = new Float32Array(n);
    for (let i = 0; i < n; i++) data[i] = view.getFloat32(off + i * 4, true);
    off += n * 4;
    if (out.has(spec.name))
      throw new TfjsFormatError(`model.json: "weightsManifest": weight "${spec.name}" appears twice`);
    out.set(spec.name, { spec, data, used: false });
  }
  return out;
}
