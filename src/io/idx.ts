// The IDX file format (LeCun's, used by MNIST): a 4-byte magic number, big-endian dimensions, then
// the data, big-endian, row-major.
//
//   offset 0      0x00 0x00         two zero bytes
//   offset 2      type code         0x08 ubyte, 0x09 byte, 0x0B short, 0x0C int, 0x0D float, 0x0E double
//   offset 3      rank r            number of dimensions
//   offset 4      r × uint32 BE     dimensions d_0 … d_{r−1}
//   offset 4+4r   Π d_i values      each `size` bytes, big-endian
//
// This module is the in-memory codec (browser-safe); src/node/idx.ts reads and writes files.
// Files are read raw or gzipped (detected by gzip's 1f 8b magic, or a name ending in .gz). The header
// is checked against the file's size in both directions: a truncated file, or one with bytes the
// header does not account for, is an error naming the file, what was expected and the byte offset,
// never a silently partial dataset. Offsets in errors about a gzipped file count decompressed bytes.

export type IdxType = "ubyte" | "byte" | "short" | "int" | "float" | "double";
export type IdxData = Uint8Array | Int8Array | Int16Array | Int32Array | Float32Array | Float64Array;

export interface IdxArray {
  type: IdxType;
  /** Dimensions, outermost first (e.g. [60000, 28, 28]). */
  shape: number[];
  /** The values, row-major, in native byte order. */
  data: IdxData;
}

interface TypeInfo {
  code: number;
  type: IdxType;
  size: number;
  /** The DataView method that writes one value (big-endian: its third argument false). */
  setter: "setUint8" | "setInt8" | "setInt16" | "setInt32" | "setFloat32" | "setFloat64";
}

const TYPES: readonly TypeInfo[] = [
  { code: 0x08, type: "ubyte", size: 1, setter: "setUint8" },
  { code: 0x09, type: "byte", size: 1, setter: "setInt8" },
  { code: 0x0b, type: "short", size: 2, setter: "setInt16" },
  { code: 0x0c, type: "int", size: 4, setter: "setInt32" },
  { code: 0x0d, type: "float", size: 4, setter: "setFloat32" },
  { code: 0x0e, type: "double", size: 8, setter: "setFloat64" },
];

/** A malformed IDX file: names the file and the byte offset where it went wrong. */
export class IdxError extends Error {
  override name = "IdxError";
  constructor(
    readonly file: string,
    readonly offset: number,
    message: string,
  ) {
    super(`${file}: ${message}`);
  }
}

const hex = (b: number): string => b.toString(16).padStart(2, "0");
const plural = (n: number, what: string): string => `${n} ${what}${n === 1 ? "" : "s"}`;

/** Whether bytes start with gzip's magic number 1f 8b. */
export function isGzip(bytes: Uint8Array): boolean {
  return bytes.length >= 2 && bytes[0] === 0x1f && bytes[1] === 0x8b;
}

/**
 * Decode an IDX file held in memory (already decompressed). `name` is used in error messages.
 * Throws IdxError on a bad magic number, an unknown type code, a truncated header or data, or
 * trailing bytes.
 */
export function decodeIdx(bytes: Uint8Array, name = "IDX data"): IdxArray {
  const fileSize = bytes.length;
  if (fileSize < 4) {
    throw new IdxError(
      name,
      fileSize,
      `truncated header: the magic number needs 4 bytes from offset 0, file has ${plural(fileSize, "byte")}`,
    );
  }
  if (bytes[0] !== 0 || bytes[1] !== 0) {
    const got = Array.from(bytes.subarray(0, 4), hex).join(" ");
    throw new IdxError(
      name,
      0,
      `not an IDX file: the magic number at offset 0 must start with 00 00, got ${got}${isGzip(bytes) ? " (gzip data)" : ""}`,
    );
  }
  const info = TYPES.find((t) => t.code === bytes[2]);
  if (!info) {
    throw new IdxError(
      name,
      2,
      `unknown type code 0x${hex(bytes[2])} at offset 2 (expected one of ${TYPES.map((t) => `0x${hex(t.code)} ${t.type}`).join(", ")})`,
    );
  }
  const rank = bytes[3];
  if (rank === 0) throw new IdxError(name, 3, "rank 0 at offset 3: an IDX file needs at least one dimension");
  const headerSize = 4 + 4 * rank;
  if (fileSize < headerSize) {
    throw new IdxError(
      name,
      fileSize,
      `truncated header: rank ${rank} needs ${headerSize} header bytes (${rank} big-endian uint32 dimensions from offset 4), file has ${plural(fileSize, "byte")}`,
    );
  }
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const shape: number[] = [];
  let count = 1;
  for (let i = 0; i < rank; i++) {
    const d = view.getUint32(4 + 4 * i, false);
    shape.push(d);
    count *= d;
  }
  const dataBytes = count * info.size;
  const described = `header says ${shape.join("×")} ${info.type} = ${dataBytes} data bytes from offset ${headerSize}`;
  if (!Number.isSafeInteger(dataBytes)) throw new IdxError(name, 4, `${described}, which is not a plausible size`);
  const available = fileSize - headerSize;
  if (available < dataBytes) {
    throw new IdxError(
      name,
      fileSize,
      `truncated: ${described}, file has ${plural(fileSize, "byte")} (${dataBytes - available} short; it ends at offset ${fileSize})`,
    );
  }
  if (available > dataBytes) {
    throw new IdxError(
      name,
      headerSize + dataBytes,
      `${available - dataBytes} unexpected trailing bytes: ${described}, but the file continues past offset ${headerSize + dataBytes} to ${fileSize}`,
    );
  }
  return { type: info.type, shape, data: readValues(view, headerSize, count, info) };
}

function readValues(view: DataView, offset: number, count: number, info: TypeInfo): IdxData {
  const src = new Uint8Array(view.buffer, view.byteOffset + offset, count * info.size);
  switch (info.type) {
    case "ubyte":
      return src.slice();
    case "byte":
      return new Int8Array(src.slice().buffer);
    case "short":
      return readBigEndian(new Int16Array(count), offset, (at) => view.getInt16(at, false));
    case "int":
      return readBigEndian(new Int32Array(count), offset, (at) => view.getInt32(at, false));
    case "float":
      return readBigEndian(new Float32Array(count), offset, (at) => view.getFloat32(at, false));
    case "double":
      return readBigEndian(new Float64Array(count), offset, (at) => view.getFloat64(at, false));
  }
}

/** Fill `out` with the big-endian values stored one after another from byte `offset`, each read by `get`. */
function readBigEndian<Values extends Int16Array | Int32Array | Float32Array | Float64Array>(
  out: Values,
  offset: number,
  get: (byteOffset: number) => number,
): Values {
  for (let i = 0; i < out.length; i++) out[i] = get(offset + out.BYTES_PER_ELEMENT * i);
  return out;
}

/** The IDX type a typed array is written as. */
function typeOf(data: IdxData): TypeInfo {
  const type: IdxType =
    data instanceof Uint8Array
      ? "ubyte"
      : data instanceof Int8Array
        ? "byte"
        : data instanceof Int16Array
          ? "short"
          : data instanceof Int32Array
            ? "int"
            : data instanceof Float32Array
              ? "float"
              : "double";
  return TYPES.find((t) => t.type === type)!;
}

/** Encode values as an IDX file (the type follows the typed array: Uint8Array → ubyte, …). */
export function encodeIdx(shape: readonly number[], data: IdxData): Uint8Array {
  if (shape.length < 1 || shape.length > 255)
    throw new RangeError(`encodeIdx: rank must be 1..255, got ${shape.length}`);
  let count = 1;
  for (const d of shape) {
    if (!Number.isInteger(d) || d < 0 || d > 0xffffffff)
      throw new RangeError(`encodeIdx: dimensions must be integers in [0, 2^32), got ${shape.join("×")}`);
    count *= d;
  }
  if (count !== data.length)
    throw new RangeError(`encodeIdx: shape ${shape.join("×")} needs ${count} values, got ${data.length}`);
  const info = typeOf(data);
  const headerSize = 4 + 4 * shape.length;
  const out = new Uint8Array(headerSize + count * info.size);
  const view = new DataView(out.buffer);
  out[2] = info.code;
  out[3] = shape.length;
  for (let i = 0; i < shape.length; i++) view.setUint32(4 + 4 * i, shape[i], false);
  if (data instanceof Uint8Array || data instanceof Int8Array) {
    out.set(new Uint8Array(data.buffer, data.byteOffset, data.length), headerSize); // one byte each: no byte order
    return out;
  }
  const setBigEndian = info.setter;
  for (let i = 0; i < count; i++) view[setBigEndian](headerSize + i * info.size, data[i], false);
  return out;
}
