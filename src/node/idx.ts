// IDX files on disk (the format and its checks are in src/io/idx.ts): read raw or gzipped, write atomically.

import { readFileSync } from "node:fs";
import { basename } from "node:path";
import { gunzipSync, gzipSync } from "node:zlib";
import { writeFileAtomic } from "./atomic.ts";
import { IdxError, decodeIdx, encodeIdx, isGzip, type IdxArray, type IdxData } from "../io/idx.ts";

/**
 * Read an IDX file, raw or gzipped (gzip's 1f 8b magic, or a name ending in .gz). Errors name the
 * file (its base name, or the whole path with `fullPath`); a corrupt gzip stream is reported as such.
 */
export function readIdx(path: string, opts: { fullPath?: boolean } = {}): IdxArray {
  const name = opts.fullPath ? path : basename(path);
  let bytes: Uint8Array;
  try {
    bytes = readFileSync(path);
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    throw new IdxError(name, 0, code === "ENOENT" ? `no such file (${path})` : `cannot read ${path}: ${(e as Error).message}`);
  }
  if (isGzip(bytes) || path.endsWith(".gz")) {
    try {
      bytes = gunzipSync(bytes);
    } catch (e) {
      throw new IdxError(name, 0, `corrupt or truncated gzip data (${bytes.length} compressed bytes): ${(e as Error).message}`);
    }
    return decodeIdx(bytes, `${name} (after gunzip)`);
  }
  return decodeIdx(bytes, name);
}

/** Write an IDX file; gzipped when the path ends in .gz (or `gzip: true`). For tests and tools. */
export function writeIdx(path: string, shape: readonly number[], data: IdxData, opts: { gzip?: boolean } = {}): void {
  const bytes = encodeIdx(shape, data);
  writeFileAtomic(path, (opts.gzip ?? path.endsWith(".gz")) ? gzipSync(bytes) : bytes);
}
