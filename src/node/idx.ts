// IDX files on disk (the format and its checks are in src/io/idx.ts): read raw or gzipped, write atomically.
//
// Reading is bounded: only a regular file is read (a FIFO or /dev/zero is refused by name), and a
// gzipped file is decompressed in two bounded steps: first a small prefix, enough for the header,
// then the whole stream with zlib's maxOutputLength set to exactly the size the header declares.
// A gzip bomb (a few MB that inflate to GBs) is refused when it passes that size, naming the file
// and the declared size, instead of being inflated into memory.

import { constants as bufferConstants } from "node:buffer";
import { basename } from "node:path";
import { constants as zlibConstants, gunzipSync, gzipSync } from "node:zlib";
import { writeFileAtomic } from "./atomic.ts";
import { FileReadError, readRegularFile } from "./safe-read.ts";
import { IdxError, decodeIdx, encodeIdx, isGzip, type IdxArray, type IdxData } from "../io/idx.ts";

const TYPE_SIZES: Record<number, number> = { 0x08: 1, 0x09: 1, 0x0b: 2, 0x0c: 4, 0x0d: 4, 0x0e: 8 };
/** Compressed bytes inflated to find the header: deflate expands at most ~1032:1, so ≤ ~4 MB out. */
const HEADER_PREFIX = 4096;
/** Largest raw IDX file read (the largest buffer Node can make, capped at 4 GiB). */
export const MAX_IDX_BYTES = Math.min(bufferConstants.MAX_LENGTH, 2 ** 32);

/**
 * The total size (header + data) an IDX header declares, from its first bytes; null when the bytes
 * are too few or not an IDX header (decodeIdx then gives the precise error).
 */
function declaredSize(head: Uint8Array): number | null {
  if (head.length < 4 || head[0] !== 0 || head[1] !== 0 || !(head[2] in TYPE_SIZES) || head[3] === 0) return null;
  const rank = head[3];
  if (head.length < 4 + 4 * rank) return null;
  const view = new DataView(head.buffer, head.byteOffset, head.byteLength);
  let count = 1;
  for (let i = 0; i < rank; i++) count *= view.getUint32(4 + 4 * i, false);
  return 4 + 4 * rank + count * TYPE_SIZES[head[2]];
}

/** Decompress gzipped IDX bytes, bounded by the size their header declares. */
export function gunzipIdx(gz: Uint8Array, name: string): Uint8Array {
  let head: Uint8Array;
  try {
    head = gunzipSync(gz.subarray(0, HEADER_PREFIX), { finishFlush: zlibConstants.Z_SYNC_FLUSH });
  } catch (e) {
    throw new IdxError(
      name,
      0,
      `corrupt or truncated gzip data (${gz.length} compressed bytes): ${(e as Error).message}`,
    );
  }
  const declared = declaredSize(head);
  // Not an IDX header (or too short to say): inflate at most the prefix's worth; decodeIdx explains.
  const bound = declared ?? head.length;
  if (!Number.isSafeInteger(bound) || bound > MAX_IDX_BYTES) {
    throw new IdxError(
      name,
      4,
      `the header (after gunzip) declares ${bound} bytes, more than the ${MAX_IDX_BYTES} this reader accepts`,
    );
  }
  try {
    return gunzipSync(gz, { maxOutputLength: Math.max(bound, 1) });
  } catch (e) {
    const err = e as NodeJS.ErrnoException;
    if (err.code === "ERR_BUFFER_TOO_LARGE" || err instanceof RangeError) {
      throw new IdxError(
        name,
        bound,
        declared === null
          ? `gzip data that does not start with an IDX header inflates past ${bound} bytes: refusing to decompress further`
          : `decompresses to more than the ${declared} bytes its header declares: refusing to decompress further (a gzip bomb, or trailing data)`,
      );
    }
    throw new IdxError(name, 0, `corrupt or truncated gzip data (${gz.length} compressed bytes): ${err.message}`);
  }
}

/** Decode IDX file bytes, gunzipping them first (bounded) when they are gzip. */
export function decodeIdxFile(bytes: Uint8Array, name: string, gzipByName = false): IdxArray {
  if (isGzip(bytes) || gzipByName) return decodeIdx(gunzipIdx(bytes, name), `${name} (after gunzip)`);
  return decodeIdx(bytes, name);
}

/**
 * Read an IDX file, raw or gzipped (gzip's 1f 8b magic, or a name ending in .gz). Errors name the
 * file (its base name, or the whole path with `fullPath`); a corrupt gzip stream is reported as such.
 */
export function readIdx(path: string, opts: { fullPath?: boolean } = {}): IdxArray {
  const name = opts.fullPath ? path : basename(path);
  let bytes: Uint8Array;
  try {
    bytes = readRegularFile(path, { maxBytes: MAX_IDX_BYTES });
  } catch (e) {
    if (!(e instanceof FileReadError)) throw e;
    throw new IdxError(
      name,
      0,
      e.code === "ENOENT"
        ? `no such file (${path})`
        : e.message.startsWith(path)
          ? e.message.slice(path.length + 2)
          : e.message,
    );
  }
  return decodeIdxFile(bytes, name, path.endsWith(".gz"));
}

/** Write an IDX file; gzipped when the path ends in .gz (or `gzip: true`). For tests and tools. */
export function writeIdx(path: string, shape: readonly number[], data: IdxData, opts: { gzip?: boolean } = {}): void {
  const bytes = encodeIdx(shape, data);
  writeFileAtomic(path, (opts.gzip ?? path.endsWith(".gz")) ? gzipSync(bytes) : bytes);
}
