// The handprop model format, in memory: no file system here, so the web page can load a model from
// fetched buffers (model-io.ts adds the files). A saved model is
//
//   model.json      the manifest (below): format name + version, the architecture (Sequential.config()),
//                   every parameter's name/shape/dtype/byte offset, the weights' CRC-32, the state of
//                   layers' random generators (Dropout masks), and optionally the optimizer and training
//                   metadata of a checkpoint
//   weights.bin     every parameter of every layer (trainable, and state such as batch-norm running
//                   statistics), in model.params() order, little-endian (float32, or float64 for a
//                   float64 model), concatenated with no padding
//   optimizer.bin   (checkpoints only) the optimizer's per-parameter state (momentum, Adam moments),
//                   slot by slot, in the same layout; its config and step count are in model.json
//
// Loading checks everything before it builds anything: a malformed manifest, an unknown format or
// version, an unknown layer, a parameter list that does not match the architecture, a weights file of
// the wrong size or checksum all throw a ModelFormatError naming the file and the field or layer, and
// no model is returned. Values round-trip exactly, so a loaded model predicts bit for bit as the saved one.

import { printable } from "./text.ts";
import pkg from "../../package.json" with { type: "json" };
import type { DType } from "../nd/ndarray.ts";
import type { RandomStateInput, RandomStateState } from "../nd/random.ts";
import { withParamBudget, type Layer, type Param } from "../nn/layer.ts";
import { optimizerFromConfig, type Optimizer, type OptimizerConfig } from "../nn/optim.ts";
import { sequentialFromConfig } from "../nn/registry.ts";
import type { Sequential } from "../nn/sequential.ts";

export const MODEL_FORMAT = "handprop-model";
export const MODEL_FORMAT_VERSION = 1;
/** Graph models (Model.config(), type "Model") are written as version 2: a version-1 reader would misread their layer list as a stack. */
export const GRAPH_MODEL_FORMAT_VERSION = 2;
export const HANDPROP_VERSION: string = pkg.version;
export const MANIFEST_FILE = "model.json";
export const WEIGHTS_FILE = "weights.bin";
export const OPTIMIZER_FILE = "optimizer.bin";

/** A JSON value (training metadata must be one). */
export type Json = null | boolean | number | string | Json[] | { [key: string]: Json };

/** One array in a binary file: `length` values of `dtype` starting `offset` bytes in. */
export interface TensorEntry {
  /** "<layer index>.<param name>", as Sequential.params() names it. */
  name: string;
  shape: number[];
  dtype: DType;
  /** False for state such as batch-norm running statistics. */
  trainable: boolean;
  offset: number;
  length: number;
}

export interface SlotEntry {
  /** Optimizer slot name ("momentum", "m", "v", …). */
  slot: string;
  /** Index of the parameter in model.params() order. */
  param: number;
  dtype: DType;
  offset: number;
  length: number;
}

export interface BinaryFileEntry {
  file: string;
  byteLength: number;
  /** CRC-32 (IEEE, as zlib and gzip) of the file's bytes, 8 hex digits. */
  crc32: string;
}

export interface ModelManifest {
  format: typeof MODEL_FORMAT;
  version: number;
  handpropVersion: string;
  savedAt: string;
  model: ReturnType<Sequential["config"]>;
  weights: BinaryFileEntry & { byteOrder: "little-endian"; tensors: TensorEntry[] };
  /** Current state of each layer's own random generator (Dropout), by layer index. */
  rngStates?: Record<string, SerializedRandomState>;
  optimizer?: BinaryFileEntry & { config: OptimizerConfig; step: number; lr: number; slots: SlotEntry[] };
  training?: { [key: string]: Json };
}

export interface SerializedRandomState {
  key: number[];
  pos: number;
  hasGauss: boolean;
  cachedGaussian: number;
}

/** What is saved alongside the weights. */
export interface SaveMeta {
  /** Save this optimizer's config and state (its slots go to optimizer.bin). */
  optimizer?: Optimizer;
  /** JSON-able training metadata: epochs done, history, dataset, seeds, … */
  training?: { [key: string]: Json };
}

/**
 * A model in memory as saveModel writes it: model.json's text, weights.bin's bytes and, for checkpoints,
 * optimizer.bin's.
 */
export interface SerializedModel {
  json: string;
  weights: Uint8Array;
  /** Present when SaveMeta.optimizer was given. */
  optimizer?: Uint8Array;
}

/**
 * What loadModel and deserializeModel return: the model, its manifest, and the optimizer and training metadata saved
 * with it.
 */
export interface LoadedModel {
  model: Sequential;
  manifest: ModelManifest;
  /** Rebuilt with its state when the manifest has one and its bytes were given. */
  optimizer?: Optimizer;
  training?: { [key: string]: Json };
}

/** Names used in error messages (file paths when loading from disk). */
export interface FileNames {
  manifest?: string;
  weights?: string;
  optimizer?: string;
}

/** A saved model that cannot be loaded: names the file and what is wrong. */
export class ModelFormatError extends Error {
  override name = "ModelFormatError";
  constructor(message: string, options?: ErrorOptions) {
    super(printable(message), options);
  }
}

// Text from a file made safe for a terminal (control characters escaped): defined once, in text.ts.
export { printable } from "./text.ts";

/** Deepest nesting of arrays/objects accepted in a manifest; ours nest 5 deep. */
export const MAX_JSON_DEPTH = 64;

/**
 * Whether JSON text nests arrays and objects deeper than `limit`, found by a scan that skips strings
 * and stops at the first level too deep: no recursion, so hostile input cannot overflow the stack.
 */
export function jsonDepthExceeds(text: string, limit = MAX_JSON_DEPTH): boolean {
  let depth = 0;
  let inString = false;
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (inString) {
      if (c === 0x5c)
        i++; // a backslash escapes the next character
      else if (c === 0x22) inString = false;
    } else if (c === 0x22) inString = true;
    else if (c === 0x5b || c === 0x7b) {
      if (++depth > limit) return true;
    } else if (c === 0x5d || c === 0x7d) depth--;
  }
  return false;
}

// ---------------------------------------------------------------------------------------------
// CRC-32 (IEEE 802.3, reflected polynomial 0xEDB88320), the checksum of zlib/gzip/PNG.

const CRC_TABLE = (() => {
  const t = new Uint32Array(256);
  for (let n = 0; n < 256; n++) {
    let c = n;
    for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
    t[n] = c >>> 0;
  }
  return t;
})();

/** The CRC-32 (IEEE, as zlib's and PNG's) of bytes: model.json's checksum of weights.bin. */
export function crc32(bytes: Uint8Array): number {
  let c = 0xffffffff;
  for (let i = 0; i < bytes.length; i++) c = CRC_TABLE[(c ^ bytes[i]) & 0xff] ^ (c >>> 8);
  return (c ^ 0xffffffff) >>> 0;
}

const crcHex = (bytes: Uint8Array): string => crc32(bytes).toString(16).padStart(8, "0");

// ---------------------------------------------------------------------------------------------
// Layers with their own random generator (Dropout): duck-typed so any layer can opt in.

interface RngLayer {
  getRngState(): RandomStateState;
  setRngState(state: RandomStateInput): void;
}

function hasRng(layer: Layer): layer is Layer & RngLayer {
  const l = layer as Partial<RngLayer>;
  return typeof l.getRngState === "function" && typeof l.setRngState === "function";
}

export function serializeRandomState(s: RandomStateState): SerializedRandomState {
  return { key: Array.from(s.key), pos: s.pos, hasGauss: s.hasGauss, cachedGaussian: s.cachedGaussian };
}

// ---------------------------------------------------------------------------------------------
// Writing

const bytesPer = (dtype: DType): number => (dtype === "float32" ? 4 : 8);

/** Concatenate arrays little-endian into one buffer; entries[i].offset says where each went. */
function pack(arrays: { values: ArrayLike<number>; dtype: DType }[]): { bytes: Uint8Array; offsets: number[] } {
  const offsets: number[] = [];
  let total = 0;
  for (const a of arrays) {
    offsets.push(total);
    total += a.values.length * bytesPer(a.dtype);
  }
  const bytes = new Uint8Array(total);
  const view = new DataView(bytes.buffer);
  arrays.forEach((a, i) => {
    let o = offsets[i];
    if (a.dtype === "float32") for (let k = 0; k < a.values.length; k++, o += 4) view.setFloat32(o, a.values[k], true);
    else for (let k = 0; k < a.values.length; k++, o += 8) view.setFloat64(o, a.values[k], true);
  });
  return { bytes, offsets };
}

/** The model's own Param objects, in Sequential.params() order, with their "<layer>.<name>" names. */
function namedParams(model: Sequential): { name: string; param: Param }[] {
  return model.layers.flatMap((l, i) => l.params().map((p) => ({ name: `${i}.${p.name}`, param: p })));
}

/**
 * The model (and optionally an optimizer and training metadata) as model.json text plus the bytes of
 * weights.bin (and optimizer.bin). Nothing is read back from the model afterwards: the buffers are copies.
 */
export function serializeModel(model: Sequential, meta: SaveMeta = {}): SerializedModel {
  const params = namedParams(model);
  // What loading would refuse is refused here, before anything is written.
  const byDtype = new Map<DType, string[]>();
  for (const { name, param } of params) {
    const layer = model.layers[Number(name.split(".")[0])].describe();
    const list = byDtype.get(param.value.dtype) ?? [];
    if (!list.includes(layer)) list.push(layer);
    byDtype.set(param.value.dtype, list);
    const bad = param.value.data.findIndex((v) => !Number.isFinite(v));
    if (bad >= 0)
      throw new ModelFormatError(
        `serializeModel: ${name} (${layer}) holds ${param.value.data[bad]} at index ${bad}: refusing to save non-finite weights`,
      );
  }
  if (byDtype.size > 1) {
    throw new ModelFormatError(
      `serializeModel: the model mixes dtypes (${[...byDtype].map(([d, l]) => `${d}: ${l.join(", ")}`).join("; ")}); call model.setDtype() first`,
    );
  }
  const packed = pack(params.map(({ param }) => ({ values: param.value.data, dtype: param.value.dtype })));
  const tensors: TensorEntry[] = params.map(({ name, param }, i) => ({
    name,
    shape: param.value.shape.slice(),
    dtype: param.value.dtype,
    trainable: param.trainable,
    offset: packed.offsets[i],
    length: param.value.size,
  }));
  const manifest: ModelManifest = {
    format: MODEL_FORMAT,
    version: model.type === "Model" ? GRAPH_MODEL_FORMAT_VERSION : MODEL_FORMAT_VERSION,
    handpropVersion: HANDPROP_VERSION,
    savedAt: new Date().toISOString(),
    model: model.config(),
    weights: {
      file: WEIGHTS_FILE,
      byteLength: packed.bytes.length,
      crc32: crcHex(packed.bytes),
      byteOrder: "little-endian",
      tensors,
    },
  };
  const rng: Record<string, SerializedRandomState> = {};
  model.layers.forEach((l, i) => {
    if (hasRng(l)) rng[String(i)] = serializeRandomState(l.getRngState());
  });
  if (Object.keys(rng).length > 0) manifest.rngStates = rng;

  let optimizerBytes: Uint8Array | undefined;
  if (meta.optimizer) {
    const state = meta.optimizer.stateDict();
    const slots: { slot: string; param: number; values: number[] }[] = [];
    for (const [slot, list] of Object.entries(state.slots)) {
      list.forEach((values, param) => {
        if (values.length > 0) slots.push({ slot, param, values });
      });
    }
    // Slots live in the param's dtype (or float64 right after loadStateDict, holding the same values):
    // store float32 when every value is exactly a float32, so nothing is rounded.
    const arrays = slots.map((s) => {
      const dtype: DType = s.values.every((v) => Math.fround(v) === v) ? "float32" : "float64";
      return { values: s.values, dtype };
    });
    const opt = pack(arrays);
    optimizerBytes = opt.bytes;
    manifest.optimizer = {
      file: OPTIMIZER_FILE,
      byteLength: opt.bytes.length,
      crc32: crcHex(opt.bytes),
      config: meta.optimizer.config(),
      step: state.step,
      lr: state.lr,
      slots: slots.map((s, i) => ({
        slot: s.slot,
        param: s.param,
        dtype: arrays[i].dtype,
        offset: opt.offsets[i],
        length: s.values.length,
      })),
    };
  }
  if (meta.training) manifest.training = meta.training;
  return {
    json: readableJson(manifest) + "\n",
    weights: packed.bytes,
    ...(optimizerBytes ? { optimizer: optimizerBytes } : {}),
  };
}

/**
 * JSON for people as well as programs: anything whose one-line form fits in `width` characters stays
 * on one line (a layer config, a tensor entry), arrays of numbers always do (a generator's 624-word
 * key), and larger objects and arrays get one member per line.
 */
export function readableJson(value: unknown, indent = "", width = 100): string {
  const flat = JSON.stringify(value) as string | undefined;
  if (flat === undefined) return "null";
  if (typeof value !== "object" || value === null) return flat;
  if (flat.length + indent.length <= width) return flat;
  const inner = indent + "  ";
  if (Array.isArray(value)) {
    if (value.every((x) => typeof x !== "object" || x === null)) return flat;
    return `[\n${value.map((x) => inner + readableJson(x, inner, width)).join(",\n")}\n${indent}]`;
  }
  const entries = Object.entries(value as Record<string, unknown>).filter(([, x]) => x !== undefined);
  return `{\n${entries.map(([k, x]) => `${inner}${JSON.stringify(k)}: ${readableJson(x, inner, width)}`).join(",\n")}\n${indent}}`;
}

// ---------------------------------------------------------------------------------------------
// Reading: validate first, build last.

type Obj = Record<string, unknown>;

const isObj = (v: unknown): v is Obj => typeof v === "object" && v !== null && !Array.isArray(v);
const show = (v: unknown): string => {
  const s = JSON.stringify(v) ?? String(v);
  return s.length > 80 ? `${s.slice(0, 77)}...` : s;
};
const shapeText = (s: readonly number[]): string => (s.length === 0 ? "scalar" : s.join("×"));

/** Field checks that throw "<file>: "<path>" must be …, got …". */
export class Fields {
  constructor(readonly file: string) {}
  fail(path: string, what: string, got: unknown): never {
    throw new ModelFormatError(`${this.file}: "${path}" must be ${what}, got ${show(got)}`);
  }
  obj(o: Obj, key: string, path = key): Obj {
    const v = o[key];
    if (!isObj(v)) this.fail(path, "an object", v);
    return v;
  }
  str(o: Obj, key: string, path = key): string {
    const v = o[key];
    if (typeof v !== "string") this.fail(path, "a string", v);
    return v;
  }
  nonNegInt(o: Obj, key: string, path = key): number {
    const v = o[key];
    if (typeof v !== "number" || !Number.isSafeInteger(v) || v < 0) this.fail(path, "a non-negative integer", v);
    return v;
  }
  num(o: Obj, key: string, path = key): number {
    const v = o[key];
    if (typeof v !== "number" || !Number.isFinite(v)) this.fail(path, "a finite number", v);
    return v;
  }
  arr(o: Obj, key: string, path = key): unknown[] {
    const v = o[key];
    if (!Array.isArray(v)) this.fail(path, "an array", v);
    return v;
  }
  dtype(o: Obj, key: string, path = key): DType {
    const v = o[key];
    if (v !== "float32" && v !== "float64") this.fail(path, '"float32" or "float64"', v);
    return v;
  }
  crc(o: Obj, key: string, path = key): string {
    const v = o[key];
    if (typeof v !== "string" || !/^[0-9a-f]{8}$/.test(v)) this.fail(path, "8 lowercase hex digits (a CRC-32)", v);
    return v;
  }
}

/** Parse and check the manifest's own structure (not yet against the architecture or the bytes). */
export function parseManifest(json: string | Uint8Array, file = MANIFEST_FILE): ModelManifest {
  const text = typeof json === "string" ? json : new TextDecoder().decode(json);
  if (jsonDepthExceeds(text))
    throw new ModelFormatError(
      `${file}: JSON nested more than ${MAX_JSON_DEPTH} levels deep (not a handprop model file)`,
    );
  let raw: unknown;
  try {
    raw = JSON.parse(text);
  } catch (e) {
    throw new ModelFormatError(`${file}: malformed JSON: ${(e as Error).message}`);
  }
  const f: Fields = new Fields(file); // annotated: calls to its never-returning fail() then narrow types
  if (!isObj(raw)) f.fail("(top level)", "an object", raw);
  if (raw.format !== MODEL_FORMAT) {
    throw new ModelFormatError(
      `${file}: "format" is ${show(raw.format)}, expected "${MODEL_FORMAT}" (not a handprop model file?)`,
    );
  }
  const version = raw.version;
  if (typeof version !== "number" || !Number.isInteger(version) || version < 1)
    f.fail("version", "a positive integer", version);
  if (version !== MODEL_FORMAT_VERSION && version !== GRAPH_MODEL_FORMAT_VERSION) {
    throw new ModelFormatError(
      version > GRAPH_MODEL_FORMAT_VERSION
        ? `${file}: format version ${version} is newer than this handprop (${HANDPROP_VERSION}) reads (version ${GRAPH_MODEL_FORMAT_VERSION}): upgrade handprop`
        : `${file}: unsupported format version ${version} (this handprop reads version ${MODEL_FORMAT_VERSION})`,
    );
  }
  const model = f.obj(raw, "model");
  f.arr(model, "layers", "model.layers").forEach((l, i) => {
    if (!isObj(l) || typeof l.type !== "string") f.fail(`model.layers[${i}]`, 'a layer config {"type": ...}', l);
  });
  if (model.inputShape !== null && model.inputShape !== undefined) checkShape(f, model.inputShape, "model.inputShape");

  const weights = f.obj(raw, "weights");
  checkBinaryEntry(f, weights, "weights");
  if (weights.byteOrder !== "little-endian") f.fail("weights.byteOrder", '"little-endian"', weights.byteOrder);
  f.arr(weights, "tensors", "weights.tensors").forEach((t, i) => {
    const p = `weights.tensors[${i}]`;
    if (!isObj(t)) f.fail(p, "an object", t);
    f.str(t, "name", `${p}.name`);
    checkShape(f, t.shape, `${p}.shape`);
    f.dtype(t, "dtype", `${p}.dtype`);
    if (typeof t.trainable !== "boolean") f.fail(`${p}.trainable`, "true or false", t.trainable);
    f.nonNegInt(t, "offset", `${p}.offset`);
    f.nonNegInt(t, "length", `${p}.length`);
  });

  if (raw.rngStates !== undefined) {
    const r = f.obj(raw, "rngStates");
    for (const [k, s] of Object.entries(r)) {
      if (!/^\d+$/.test(k)) f.fail(`rngStates`, "keyed by layer index", k);
      checkRandomState(f, s, `rngStates.${k}`);
    }
  }
  if (raw.optimizer !== undefined) {
    const o = f.obj(raw, "optimizer");
    checkBinaryEntry(f, o, "optimizer");
    const cfg = f.obj(o, "config", "optimizer.config");
    f.str(cfg, "type", "optimizer.config.type");
    f.nonNegInt(o, "step", "optimizer.step");
    f.num(o, "lr", "optimizer.lr");
    f.arr(o, "slots", "optimizer.slots").forEach((s, i) => {
      const p = `optimizer.slots[${i}]`;
      if (!isObj(s)) f.fail(p, "an object", s);
      f.str(s, "slot", `${p}.slot`);
      f.nonNegInt(s, "param", `${p}.param`);
      f.dtype(s, "dtype", `${p}.dtype`);
      f.nonNegInt(s, "offset", `${p}.offset`);
      f.nonNegInt(s, "length", `${p}.length`);
    });
  }
  if (raw.training !== undefined) f.obj(raw, "training");
  return raw as unknown as ModelManifest;
}

/** A serialized RandomState (MT19937: 624 32-bit key words, position 0..624), field by field. */
export function checkRandomState(f: Fields, s: unknown, path: string): void {
  if (!isObj(s)) f.fail(path, "a RandomState state {key, pos, hasGauss, cachedGaussian}", s);
  const key = f.arr(s, "key", `${path}.key`);
  if (key.length !== 624) f.fail(`${path}.key`, "an array of 624 key words", `an array of ${key.length}`);
  key.forEach((w, i) => {
    if (typeof w !== "number" || !Number.isInteger(w) || w < 0 || w > 0xffffffff)
      f.fail(`${path}.key[${i}]`, "an integer in [0, 2^32)", w);
  });
  const pos = f.nonNegInt(s, "pos", `${path}.pos`);
  if (pos > 624) f.fail(`${path}.pos`, "an integer in 0..624", pos);
  if (typeof s.hasGauss !== "boolean") f.fail(`${path}.hasGauss`, "true or false", s.hasGauss);
  f.num(s, "cachedGaussian", `${path}.cachedGaussian`);
}

function checkShape(f: Fields, v: unknown, path: string): void {
  if (!Array.isArray(v) || !v.every((d) => typeof d === "number" && Number.isSafeInteger(d) && d >= 0))
    f.fail(path, "an array of non-negative integers", v);
}

function checkBinaryEntry(f: Fields, o: Obj, path: string): void {
  const name = f.str(o, "file", `${path}.file`);
  if (name === "" || /[/\\]/.test(name) || name === "." || name === "..")
    f.fail(`${path}.file`, "a file name in the model's folder", name);
  f.nonNegInt(o, "byteLength", `${path}.byteLength`);
  f.crc(o, "crc32", `${path}.crc32`);
}

/** Check a binary file's size and checksum against its manifest entry. */
function checkBytes(bytes: Uint8Array, entry: BinaryFileEntry, file: string, manifestFile: string, what: string): void {
  if (bytes.length < entry.byteLength) {
    throw new ModelFormatError(
      `${file}: truncated: ${manifestFile} says ${entry.byteLength} bytes (${what}), file has ${bytes.length}`,
    );
  }
  if (bytes.length > entry.byteLength) {
    throw new ModelFormatError(
      `${file}: ${bytes.length - entry.byteLength} bytes too many: ${manifestFile} says ${entry.byteLength} bytes (${what}), file has ${bytes.length}`,
    );
  }
  const actual = crcHex(bytes);
  if (actual !== entry.crc32) {
    throw new ModelFormatError(
      `${file}: checksum mismatch: CRC-32 is ${actual}, ${manifestFile} says ${entry.crc32} (the file is corrupt, or belongs to another save)`,
    );
  }
}

/** Check a binary file's size against its manifest entry (before anything is allocated for it). */
function checkSize(bytes: Uint8Array, entry: BinaryFileEntry, file: string, manifestFile: string, what: string): void {
  if (bytes.length !== entry.byteLength) {
    const diff = bytes.length < entry.byteLength ? "truncated" : `${bytes.length - entry.byteLength} bytes too many`;
    throw new ModelFormatError(
      `${file}: ${diff}: ${manifestFile} says ${entry.byteLength} bytes (${what}), file has ${bytes.length}`,
    );
  }
}

/** A lower bound on the parameter values a layer config allocates (0 for unknown or malformed configs). */
function declaredValues(c: Obj): number {
  const n = (v: unknown): number => (typeof v === "number" && Number.isSafeInteger(v) && v > 0 ? v : 0);
  const pairProduct = (v: unknown): number => (Array.isArray(v) ? n(v[0]) * n(v[1]) : n(v) * n(v));
  switch (c.type) {
    case "Dense":
      return n(c.inFeatures) * n(c.outFeatures);
    case "Conv2D":
      return n(c.inChannels) * n(c.outChannels) * pairProduct(c.kernelSize);
    case "BatchNorm1D":
    case "BatchNorm2D":
      return 2 * n(c.numFeatures); // the running mean and variance, at least
    default:
      return 0;
  }
}

/** The most parameter values an architecture may declare for a weights table of `tableValues` values. */
const declaredLimit = (tableValues: number): number => 2 * tableValues + 1_000_000;

/** Refuse, before building it, an architecture that declares more values than the weights table holds. */
function checkDeclaredSize(layers: unknown[], tableValues: number, manifestFile: string, weightsFile: string): void {
  const perLayer = layers.map((l) => (isObj(l) ? declaredValues(l) : 0));
  const declared = perLayer.reduce((a, b) => a + b, 0);
  // Small mismatches are left to the per-tensor checks after building (they name the shapes); what
  // would cost real memory or time to build is refused here.
  if (declared > declaredLimit(tableValues)) {
    const big = perLayer.indexOf(Math.max(...perLayer));
    throw new ModelFormatError(
      `${manifestFile}: "model.layers" declare at least ${declared} parameter values (layer ${big}, ${show(layers[big])}, alone ${perLayer[big]}), ` +
        `but "weights.tensors" and ${weightsFile} hold ${tableValues}: refusing to build the model`,
    );
  }
}

/** Check that array entries tile a file exactly, in order, with lengths matching their dtypes. */
function checkLayout(
  entries: { offset: number; length: number; dtype: DType }[],
  byteLength: number,
  file: string,
  path: string,
): void {
  let expected = 0;
  entries.forEach((e, i) => {
    if (e.offset !== expected) {
      throw new ModelFormatError(
        `${file}: "${path}[${i}].offset" is ${e.offset}, expected ${expected} (arrays are stored back to back, in order)`,
      );
    }
    expected += e.length * bytesPer(e.dtype);
  });
  if (expected !== byteLength) {
    throw new ModelFormatError(
      `${file}: the arrays listed in "${path}" take ${expected} bytes but "byteLength" says ${byteLength}`,
    );
  }
}

function unpack(bytes: Uint8Array, offset: number, length: number, dtype: DType): Float32Array | Float64Array {
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  if (dtype === "float32") {
    const out = new Float32Array(length);
    for (let k = 0, o = offset; k < length; k++, o += 4) out[k] = view.getFloat32(o, true);
    return out;
  }
  const out = new Float64Array(length);
  for (let k = 0, o = offset; k < length; k++, o += 8) out[k] = view.getFloat64(o, true);
  return out;
}

/**
 * Rebuild a model from model.json text and the bytes of weights.bin (and optimizer.bin, to get the
 * optimizer back). Throws ModelFormatError, naming the file and the field or layer, on any mismatch;
 * nothing is returned half-loaded.
 */
export function deserializeModel(
  json: string | Uint8Array,
  weights: Uint8Array,
  optimizerBytes?: Uint8Array,
  names: FileNames = {},
): LoadedModel {
  const manifestFile = names.manifest ?? MANIFEST_FILE;
  const manifest = parseManifest(json, manifestFile);
  const weightsFile = names.weights ?? manifest.weights.file;
  const tensors = manifest.weights.tensors;

  // Sizes first, before anything is allocated: the table must tile byteLength, the bytes must be
  // byteLength long, and the architecture must not declare more values than the table holds (a
  // 10 KB model.json declaring Dense 784→300000 would otherwise allocate and initialise 940 MB).
  checkLayout(tensors, manifest.weights.byteLength, manifestFile, "weights.tensors");
  checkSize(weights, manifest.weights, weightsFile, manifestFile, "weights");
  if (manifest.optimizer && optimizerBytes) {
    checkLayout(manifest.optimizer.slots, manifest.optimizer.byteLength, manifestFile, "optimizer.slots");
    checkSize(
      optimizerBytes,
      manifest.optimizer,
      names.optimizer ?? manifest.optimizer.file,
      manifestFile,
      "optimizer state",
    );
  }
  const totalValues = tensors.reduce((s, t) => s + t.length, 0);
  checkDeclaredSize(manifest.model.layers, totalValues, manifestFile, weightsFile);

  // The architecture: layer configs → layers (unknown types and bad options name the layer).
  let model: Sequential;
  try {
    // Layers built lazily from the input shape, nested models and every layer type are bounded too: no
    // parameter array is allocated past what the weights could hold (with the slack above).
    model = withParamBudget(declaredLimit(totalValues), `${weightsFile} (${totalValues} values)`, () =>
      sequentialFromConfig({ ...manifest.model, layers: manifest.model.layers }),
    );
  } catch (e) {
    throw new ModelFormatError(`${manifestFile}: "model": ${(e as Error).message}`, { cause: e });
  }

  // The parameter list must be exactly the architecture's.
  const params = namedParams(model);
  const describeLayer = (name: string): string => {
    const i = Number(name.split(".")[0]);
    return model.layers[i]?.describe() ?? `layer ${i}`;
  };
  if (tensors.length !== params.length) {
    throw new ModelFormatError(
      `${manifestFile}: "weights.tensors" lists ${tensors.length} arrays but the architecture has ${params.length} parameters (${params.map((p) => p.name).join(", ")})`,
    );
  }
  tensors.forEach((t, i) => {
    const p = params[i];
    const shape = p.param.value.shape;
    if (t.name !== p.name)
      throw new ModelFormatError(
        `${manifestFile}: "weights.tensors[${i}].name" is "${t.name}", but parameter ${i} of the architecture is "${p.name}" (${describeLayer(p.name)})`,
      );
    if (t.shape.length !== shape.length || t.shape.some((d, k) => d !== shape[k])) {
      throw new ModelFormatError(
        `${manifestFile}: "weights.tensors[${i}]" (${t.name}) has shape ${shapeText(t.shape)}, but ${describeLayer(p.name)} needs ${shapeText(shape)}`,
      );
    }
    const size = shape.reduce((a, b) => a * b, 1);
    if (t.length !== size)
      throw new ModelFormatError(
        `${manifestFile}: "weights.tensors[${i}].length" is ${t.length}, but shape ${shapeText(t.shape)} holds ${size} values`,
      );
    if (t.trainable !== p.param.trainable)
      throw new ModelFormatError(
        `${manifestFile}: "weights.tensors[${i}].trainable" is ${t.trainable}, but ${p.name} of ${describeLayer(p.name)} is ${p.param.trainable ? "trainable" : "state"}`,
      );
  });
  const dtypes = new Set(tensors.map((t) => t.dtype));
  if (dtypes.size > 1)
    throw new ModelFormatError(
      `${manifestFile}: "weights.tensors" mixes dtypes (${[...dtypes].join(", ")}); a model has one dtype`,
    );
  checkBytes(
    weights,
    manifest.weights,
    weightsFile,
    manifestFile,
    `${totalValues} ${tensors[0]?.dtype ?? "float32"} values in ${tensors.length} arrays`,
  );

  // Layer random generators.
  const rngStates: [Layer & RngLayer, SerializedRandomState][] = [];
  for (const [k, s] of Object.entries(manifest.rngStates ?? {})) {
    const layer = model.layers[Number(k)];
    if (!layer || !hasRng(layer))
      throw new ModelFormatError(
        `${manifestFile}: "rngStates.${k}": ${layer ? `${layer.describe()} has no random generator` : `there is no layer ${k}`}`,
      );
    rngStates.push([layer, s]);
  }

  // The optimizer, when asked for: config → optimizer, slots checked against the parameters.
  let optimizer: Optimizer | undefined;
  let slotValues: { slot: string; param: number; values: number[] }[] = [];
  const opt = manifest.optimizer;
  if (opt && optimizerBytes) {
    const optFile = names.optimizer ?? opt.file;
    try {
      optimizer = optimizerFromConfig(opt.config);
    } catch (e) {
      throw new ModelFormatError(`${manifestFile}: "optimizer.config": ${(e as Error).message}`, { cause: e });
    }
    const listed = new Map<string, number>();
    opt.slots.forEach((s, i) => {
      const p = params[s.param] as { name: string; param: Param } | undefined;
      if (!p)
        throw new ModelFormatError(
          `${manifestFile}: "optimizer.slots[${i}].param" is ${s.param}, but the model has ${params.length} parameters`,
        );
      const key = JSON.stringify([s.slot, s.param]);
      const first = listed.get(key);
      if (first !== undefined)
        throw new ModelFormatError(
          `${manifestFile}: "optimizer.slots[${i}]" repeats "optimizer.slots[${first}]" (${s.slot} of ${p.name}): ` +
            `which one holds the state?`,
        );
      listed.set(key, i);
      if (s.length !== p.param.value.size) {
        throw new ModelFormatError(
          `${manifestFile}: "optimizer.slots[${i}]" (${s.slot} of ${p.name}) has ${s.length} values, but ${p.name} has ${p.param.value.size}`,
        );
      }
    });
    checkBytes(optimizerBytes, opt, optFile, manifestFile, `${opt.slots.length} optimizer state arrays`);
    slotValues = opt.slots.map((s, i) => {
      const values = unpack(optimizerBytes, s.offset, s.length, s.dtype);
      const bad = values.findIndex((v) => !Number.isFinite(v));
      if (bad >= 0)
        throw new ModelFormatError(
          `${optFile}: "optimizer.slots[${i}]" (${s.slot} of ${params[s.param].name}) holds ${values[bad]} at index ${bad}: the optimizer state is not finite`,
        );
      return { slot: s.slot, param: s.param, values: Array.from(values) };
    });
  }

  // Every value must be finite: a diverged run's NaN/Inf weights would predict garbage silently.
  const unpacked = tensors.map((t, i) => {
    const values = unpack(weights, t.offset, t.length, t.dtype);
    const bad = values.findIndex((v) => !Number.isFinite(v));
    if (bad >= 0) {
      throw new ModelFormatError(
        `${weightsFile}: tensor ${t.name} ("weights.tensors[${i}]" of ${manifestFile}, ${describeLayer(t.name)}) holds ${values[bad]} at index ${bad}: the weights are not finite (a diverged training run?)`,
      );
    }
    return values;
  });

  // Everything checked: fill the model.
  if (tensors.length > 0 && tensors[0].dtype !== "float32") model.setDtype(tensors[0].dtype);
  for (let i = 0; i < tensors.length; i++) params[i].param.value.data.set(unpacked[i]);
  try {
    for (const [layer, s] of rngStates) layer.setRngState(s);
    if (optimizer && opt) {
      // no prototype: a slot named "__proto__" is then an own key (which loadStateDict refuses by name)
      // instead of reaching Object.prototype, where its values were written for every object to see
      const slots = Object.create(null) as Record<string, number[][]>;
      for (const s of slotValues) {
        const list = (slots[s.slot] ??= []);
        while (list.length < params.length) list.push([]);
        list[s.param] = s.values;
      }
      optimizer.loadStateDict({ type: optimizer.type, step: opt.step, lr: opt.lr, slots });
    }
  } catch (e) {
    throw new ModelFormatError(`${manifestFile}: ${(e as Error).message}`, { cause: e });
  }
  return {
    model,
    manifest,
    ...(optimizer ? { optimizer } : {}),
    ...(manifest.training ? { training: manifest.training } : {}),
  };
}
