// A minimal Protocol Buffers encoder (and a matching reader, used by the tests to inspect what was
// written): just enough wire format to write ONNX files without a protobuf dependency.
//
// Wire format (https://protobuf.dev/programming-guides/encoding/): a message is a sequence of fields,
// each `key value` with key = (field_number << 3) | wire_type, itself a varint. Wire types used here:
//   0 VARINT            int32/int64/enum/bool: base-128, 7 bits per byte, least significant group
//                       first, high bit set on every byte but the last. Negative int64/int32 values are
//                       written as their 64-bit two's complement (10 bytes).
//   2 LENGTH_DELIMITED  string/bytes/sub-message/packed repeated: varint byte length, then the bytes.
//   5 I32               float (fixed32): 4 bytes little-endian.
// Repeated scalars are written unpacked (one key per element), which is what proto2 files such as
// onnx.proto use by default; every protobuf parser accepts both forms.

export const WIRE_VARINT = 0;
export const WIRE_I64 = 1;
export const WIRE_LEN = 2;
export const WIRE_I32 = 5;

/** Builds one message's bytes. Sub-messages are built with their own writer and embedded with `message`. */
export class ProtoWriter {
  private chunks: Uint8Array[] = [];
  private pending: number[] = []; // small writes (keys, varints) gathered before becoming a chunk
  private length = 0;

  private flushPending(): void {
    if (this.pending.length > 0) {
      this.chunks.push(Uint8Array.from(this.pending));
      this.pending = [];
    }
  }

  private byte(b: number): void {
    this.pending.push(b);
    this.length++;
  }

  private bytes(b: Uint8Array): void {
    this.flushPending();
    this.chunks.push(b);
    this.length += b.length;
  }

  /** A varint of a non-negative or negative safe integer (negative: 64-bit two's complement). */
  private varint(value: number | bigint): void {
    let v = BigInt(value);
    if (v < 0n) v += 1n << 64n;
    if (v < 0n || v >= 1n << 64n) throw new RangeError(`protobuf: varint out of the 64-bit range: ${String(value)}`);
    while (v >= 0x80n) {
      this.byte(Number(v & 0x7fn) | 0x80);
      v >>= 7n;
    }
    this.byte(Number(v));
  }

  private key(field: number, wire: number): void {
    if (!Number.isInteger(field) || field < 1 || field >= 2 ** 29)
      throw new RangeError(`protobuf: bad field number ${field}`);
    this.varint((field << 3) | wire);
  }

  /** int32/int64/enum field (wire type 0). */
  int(field: number, value: number | bigint): this {
    if (typeof value === "number" && !Number.isSafeInteger(value))
      throw new RangeError(`protobuf: field ${field}: ${value} is not a safe integer`);
    this.key(field, WIRE_VARINT);
    this.varint(value);
    return this;
  }

  /** float field (wire type 5, little-endian IEEE 754 single). */
  float(field: number, value: number): this {
    this.key(field, WIRE_I32);
    const b = new Uint8Array(4);
    new DataView(b.buffer).setFloat32(0, value, true);
    for (const x of b) this.byte(x);
    return this;
  }

  /** bytes field (wire type 2). */
  bytesField(field: number, value: Uint8Array): this {
    this.key(field, WIRE_LEN);
    this.varint(value.length);
    this.bytes(value);
    return this;
  }

  /** string field: UTF-8 bytes (wire type 2). */
  string(field: number, value: string): this {
    return this.bytesField(field, new TextEncoder().encode(value));
  }

  /** Embedded message field (wire type 2). */
  message(field: number, sub: ProtoWriter): this {
    return this.bytesField(field, sub.finish());
  }

  /** The message's bytes. */
  finish(): Uint8Array {
    this.flushPending();
    const out = new Uint8Array(this.length);
    let off = 0;
    for (const c of this.chunks) {
      out.set(c, off);
      off += c.length;
    }
    return out;
  }
}

/** One decoded field: varints as bigint, length-delimited values as bytes, fixed32/64 as raw bytes. */
export interface ProtoField {
  field: number;
  wire: number;
  value: bigint | Uint8Array;
}

/** Decode one message level into its fields (sub-messages stay bytes: decode them again). */
export function readFields(buf: Uint8Array): ProtoField[] {
  const out: ProtoField[] = [];
  let pos = 0;
  const varint = (): bigint => {
    let result = 0n;
    let shift = 0n;
    for (;;) {
      if (pos >= buf.length) throw new RangeError(`protobuf: truncated varint at byte ${pos}`);
      const b = buf[pos++];
      result |= BigInt(b & 0x7f) << shift;
      if ((b & 0x80) === 0) return result;
      shift += 7n;
      if (shift > 63n) throw new RangeError(`protobuf: varint longer than 10 bytes at byte ${pos}`);
    }
  };
  const take = (n: number): Uint8Array => {
    if (pos + n > buf.length)
      throw new RangeError(`protobuf: field runs past the end (byte ${pos} + ${n} > ${buf.length})`);
    const v = buf.subarray(pos, pos + n);
    pos += n;
    return v;
  };
  while (pos < buf.length) {
    const start = pos;
    const key = varint();
    const field = Number(key >> 3n);
    const wire = Number(key & 7n);
    if (wire === WIRE_VARINT) out.push({ field, wire, value: varint() });
    else if (wire === WIRE_LEN) out.push({ field, wire, value: take(Number(varint())) });
    else if (wire === WIRE_I32) out.push({ field, wire, value: take(4) });
    else if (wire === WIRE_I64) out.push({ field, wire, value: take(8) });
    else throw new RangeError(`protobuf: unsupported wire type ${wire} at byte ${start}`);
  }
  return out;
}
