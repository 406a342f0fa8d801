// Saving and loading models without a file system (browser-safe: no node: imports): IndexedDB, a
// downloadable one-file container, and URLs. Everything goes through serializeModel / deserializeModel,
// so a model loaded here passes exactly the checks of one loaded from a folder (manifest fields, layer
// configs, sizes, CRC-32 of the weights and optimizer files).
//
// The one-file container (".handprop"): a 24-byte header, then the three files back to back.
//   offset  size  field
//        0     8  magic: the ASCII bytes "HANDPROP"
//        8     4  container version, uint32 little-endian: 1
//       12     4  J = byte length of model.json (UTF-8), uint32 LE
//       16     4  W = byte length of weights.bin, uint32 LE
//       20     4  O = byte length of optimizer.bin, uint32 LE (0: none)
//       24     J  model.json;  then W bytes of weights.bin;  then O bytes of optimizer.bin
// The file must be exactly 24 + J + W + O bytes long. The contents are checked by deserializeModel
// (model.json carries the size and CRC-32 of the two binary files).

import type { Sequential } from "../nn/sequential.ts";
import {
  ModelFormatError,
  deserializeModel,
  parseManifest,
  serializeModel,
  type LoadedModel,
  type SaveMeta,
  type SerializedModel,
} from "./model-format.ts";

export const CONTAINER_MAGIC = "HANDPROP";
export const CONTAINER_VERSION = 1;
const HEADER_BYTES = 24;
/** Default bound on anything read: a container, a URL's body (256 MiB). */
export const DEFAULT_MAX_BYTES = 256 * 1024 * 1024;

/** One file holding serializeModel's output (see the header above). */
export function encodeModelFile(serialized: SerializedModel): Uint8Array<ArrayBuffer> {
  const json = new TextEncoder().encode(serialized.json);
  const weights = serialized.weights;
  const optimizer = serialized.optimizer ?? new Uint8Array(0);
  const out = new Uint8Array(HEADER_BYTES + json.length + weights.length + optimizer.length);
  for (let i = 0; i < 8; i++) out[i] = CONTAINER_MAGIC.charCodeAt(i);
  const view = new DataView(out.buffer);
  view.setUint32(8, CONTAINER_VERSION, true);
  view.setUint32(12, json.length, true);
  view.setUint32(16, weights.length, true);
  view.setUint32(20, optimizer.length, true);
  out.set(json, HEADER_BYTES);
  out.set(weights, HEADER_BYTES + json.length);
  out.set(optimizer, HEADER_BYTES + json.length + weights.length);
  return out;
}

/** The model (and optionally its optimizer and training metadata) as one container file's bytes. */
export function modelToFile(model: Sequential, meta: SaveMeta = {}): Uint8Array<ArrayBuffer> {
  return encodeModelFile(serializeModel(model, meta));
}

/** True when bytes start with the container's magic. */
export function isModelFile(bytes: Uint8Array): boolean {
  if (bytes.length < 8) return false;
  for (let i = 0; i < 8; i++) if (bytes[i] !== CONTAINER_MAGIC.charCodeAt(i)) return false;
  return true;
}

/** Split a container into its files, checking the header against the size; `name` goes into errors. */
export function decodeModelFile(bytes: Uint8Array, name = "model file", maxBytes = DEFAULT_MAX_BYTES): SerializedModel {
  if (bytes.length > maxBytes) {
    throw new ModelFormatError(`${name}: ${bytes.length} bytes exceeds the limit of ${maxBytes}`);
  }
  if (bytes.length < HEADER_BYTES) {
    throw new ModelFormatError(`${name}: truncated: ${bytes.length} bytes, less than the ${HEADER_BYTES}-byte header`);
  }
  if (!isModelFile(bytes)) {
    const got = Array.from(bytes.subarray(0, 8), (b) => b.toString(16).padStart(2, "0")).join(" ");
    throw new ModelFormatError(`${name}: not a handprop model file: bytes 0–7 are ${got}, not "${CONTAINER_MAGIC}"`);
  }
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const version = view.getUint32(8, true);
  if (version !== CONTAINER_VERSION) {
    const expected = `expected ${CONTAINER_VERSION}`;
    throw new ModelFormatError(`${name}: container version ${version} at byte offset 8 is not supported (${expected})`);
  }
  const J = view.getUint32(12, true);
  const W = view.getUint32(16, true);
  const O = view.getUint32(20, true);
  const expected = HEADER_BYTES + J + W + O;
  if (expected !== bytes.length) {
    const what = expected > bytes.length ? "truncated" : "trailing bytes";
    throw new ModelFormatError(
      `${name}: ${what}: the header (offsets 12–23) gives model.json ${J} + weights ${W} + optimizer ${O} bytes ` +
        `after the ${HEADER_BYTES}-byte header = ${expected} bytes, the file has ${bytes.length}`,
    );
  }
  let json: string;
  try {
    json = new TextDecoder("utf-8", { fatal: true }).decode(bytes.subarray(HEADER_BYTES, HEADER_BYTES + J));
  } catch {
    const range = `bytes ${HEADER_BYTES}–${HEADER_BYTES + J - 1}`;
    throw new ModelFormatError(`${name}: model.json (${range}) is not valid UTF-8`);
  }
  const weights = bytes.slice(HEADER_BYTES + J, HEADER_BYTES + J + W);
  const out: SerializedModel = { json, weights };
  if (O > 0) out.optimizer = bytes.slice(HEADER_BYTES + J + W, expected);
  return out;
}

/** Load a model from a container's bytes, with every check of loadModel. */
export function modelFromFile(bytes: Uint8Array, name = "model file", maxBytes = DEFAULT_MAX_BYTES): LoadedModel {
  const s = decodeModelFile(bytes, name, maxBytes);
  const names = { manifest: `${name} (model.json)`, weights: `${name} (weights)`, optimizer: `${name} (optimizer)` };
  return deserializeModel(s.json, s.weights, s.optimizer, names);
}

/** Offer the model as a download (a browser with `document`): one container file. Returns its bytes. */
export function downloadModel(
  model: Sequential,
  filename = "model.handprop",
  meta: SaveMeta = {},
): Uint8Array<ArrayBuffer> {
  if (typeof document === "undefined" || typeof URL.createObjectURL !== "function") {
    throw new Error("downloadModel: needs a browser page (document and URL.createObjectURL); in Node use saveModel");
  }
  const bytes = modelToFile(model, meta);
  const url = URL.createObjectURL(new Blob([bytes], { type: "application/octet-stream" }));
  const a = document.createElement("a");
  a.href = url;
  a.download = filename;
  a.style.display = "none";
  document.body.appendChild(a);
  a.click();
  a.remove();
  setTimeout(() => {
    URL.revokeObjectURL(url);
  }, 0);
  return bytes;
}

// ---------------------------------------------------------------------------------------------
// IndexedDB: one object store, one record per key: { container: ArrayBuffer, savedAt: ISO string }.
// A save is one put in one read-write transaction, so a reader sees the old model or the new one.

export interface IndexedDBOptions {
  /** Database name (default "handprop"). */
  dbName?: string;
  /** Object store (default "models"). */
  storeName?: string;
  /**
   * The IDBFactory (default globalThis.indexedDB; tests pass a fake). Typed structurally, so that a
   * consumer compiling without the DOM library (a Node project) can still use these declarations.
   */
  indexedDB?: IndexedDBFactory;
}

/** The part of the DOM's IDBFactory used here. */
export interface IndexedDBFactory {
  open(name: string, version?: number): unknown;
}

interface StoredModel {
  container: ArrayBuffer;
  savedAt: string;
}

function requestResult<T>(request: IDBRequest<T>, what: string): Promise<T> {
  return new Promise((resolve, reject) => {
    request.onsuccess = () => {
      resolve(request.result);
    };
    request.onerror = () => {
      reject(new Error(`${what}: ${request.error?.message ?? "IndexedDB request failed"}`));
    };
  });
}

function openDatabase(opts: IndexedDBOptions, what: string): Promise<{ db: IDBDatabase; store: string }> {
  const factory = (opts.indexedDB ?? (globalThis as { indexedDB?: IndexedDBFactory }).indexedDB) as
    IDBFactory | undefined;
  if (!factory) throw new Error(`${what}: IndexedDB is not available here (pass {indexedDB} or use saveModel in Node)`);
  const store = opts.storeName ?? "models";
  const request = factory.open(opts.dbName ?? "handprop", 1);
  request.onupgradeneeded = () => {
    if (!request.result.objectStoreNames.contains(store)) request.result.createObjectStore(store);
  };
  return requestResult(request, what).then((db) => {
    if (!db.objectStoreNames.contains(store)) {
      db.close();
      throw new Error(`${what}: database "${opts.dbName ?? "handprop"}" has no object store "${store}"`);
    }
    return { db, store };
  });
}

function transactionDone(tx: IDBTransaction, what: string): Promise<void> {
  return new Promise((resolve, reject) => {
    tx.oncomplete = () => {
      resolve();
    };
    tx.onerror = () => {
      reject(new Error(`${what}: ${tx.error?.message ?? "transaction failed"}`));
    };
    tx.onabort = () => {
      reject(new Error(`${what}: transaction aborted${tx.error ? `: ${tx.error.message}` : ""}`));
    };
  });
}

/** Save the model (and optionally optimizer and training metadata) under `key`, replacing any model there. */
export async function saveModelToIndexedDB(
  model: Sequential,
  key: string,
  opts: IndexedDBOptions & { meta?: SaveMeta } = {},
): Promise<void> {
  const what = `saveModelToIndexedDB("${key}")`;
  const bytes = modelToFile(model, opts.meta ?? {});
  const { db, store } = await openDatabase(opts, what);
  try {
    const tx = db.transaction(store, "readwrite");
    const done = transactionDone(tx, what);
    const record: StoredModel = { container: bytes.buffer, savedAt: new Date().toISOString() };
    tx.objectStore(store).put(record, key);
    await done;
  } finally {
    db.close();
  }
}

/** Load the model saved under `key`, with every check of loadModel; a missing key is an error naming it. */
export async function loadModelFromIndexedDB(
  key: string,
  opts: IndexedDBOptions & { maxBytes?: number } = {},
): Promise<LoadedModel> {
  const what = `loadModelFromIndexedDB("${key}")`;
  const { db, store } = await openDatabase(opts, what);
  let value: unknown;
  try {
    const request = db.transaction(store, "readonly").objectStore(store).get(key) as IDBRequest<unknown>;
    value = await requestResult(request, what);
  } finally {
    db.close();
  }
  const database = `IndexedDB "${opts.dbName ?? "handprop"}"/"${store}"`;
  if (value === undefined) throw new ModelFormatError(`${what}: no model saved under "${key}" in ${database}`);
  const where = `${database}/"${key}"`;
  const container = typeof value === "object" && value !== null ? (value as Partial<StoredModel>).container : undefined;
  if (!(container instanceof ArrayBuffer)) {
    throw new ModelFormatError(`${where}: not a handprop model record (no container bytes)`);
  }
  return modelFromFile(new Uint8Array(container), where, opts.maxBytes ?? DEFAULT_MAX_BYTES);
}

// ---------------------------------------------------------------------------------------------
// URLs

export interface LoadFromUrlOptions {
  /** Refuse any response body larger than this (default 256 MiB). */
  maxBytes?: number;
  /** The fetch function (default globalThis.fetch). */
  fetch?: (url: string, init?: { signal?: AbortSignal }) => Promise<Response>;
  signal?: AbortSignal;
}

/** A response body read to at most `max` bytes (by Content-Length first, then by counting). */
async function boundedBody(response: Response, url: string, max: number): Promise<Uint8Array> {
  const declared = response.headers.get("content-length");
  if (declared !== null && Number(declared) > max) {
    await response.body?.cancel();
    throw new ModelFormatError(`${url}: Content-Length ${declared} exceeds the limit of ${max} bytes`);
  }
  if (!response.body) return new Uint8Array(await response.arrayBuffer());
  const reader = response.body.getReader();
  const chunks: Uint8Array[] = [];
  let total = 0;
  while (true) {
    const { done, value } = await reader.read();
    if (done) break;
    total += value.length;
    if (total > max) {
      await reader.cancel();
      throw new ModelFormatError(`${url}: the response exceeds the limit of ${max} bytes`);
    }
    chunks.push(value);
  }
  const out = new Uint8Array(total);
  let offset = 0;
  for (const c of chunks) {
    out.set(c, offset);
    offset += c.length;
  }
  return out;
}

/**
 * Load a model from a URL: a container file (".handprop"), or a model folder's model.json, whose
 * weights.bin (and optimizer.bin) are then fetched beside it, each bounded by the size model.json gives.
 */
export async function loadModelFromUrl(url: string, opts: LoadFromUrlOptions = {}): Promise<LoadedModel> {
  const fetchFn = opts.fetch ?? globalThis.fetch.bind(globalThis);
  const max = opts.maxBytes ?? DEFAULT_MAX_BYTES;
  const get = async (u: string, limit: number): Promise<Uint8Array> => {
    const response = await fetchFn(u, opts.signal ? { signal: opts.signal } : {});
    if (!response.ok) {
      await response.body?.cancel();
      throw new ModelFormatError(`${u}: HTTP ${response.status} ${response.statusText}`.trim());
    }
    return boundedBody(response, u, limit);
  };
  const first = await get(url, max);
  if (isModelFile(first)) return modelFromFile(first, url, max);
  const manifest = parseManifest(first, url);
  // The file names were checked by parseManifest (no slashes); encode them so "?" or "#" stay names.
  const beside = (file: string) => new URL(encodeURIComponent(file), new URL(url, globalThis.location?.href)).href;
  const weightsUrl = beside(manifest.weights.file);
  const weights = await get(weightsUrl, Math.min(max, manifest.weights.byteLength));
  let optimizerUrl: string | undefined;
  let optimizer: Uint8Array | undefined;
  if (manifest.optimizer) {
    optimizerUrl = beside(manifest.optimizer.file);
    optimizer = await get(optimizerUrl, Math.min(max, manifest.optimizer.byteLength));
  }
  return deserializeModel(first, weights, optimizer, { manifest: url, weights: weightsUrl, optimizer: optimizerUrl });
}
