// Reading digit pictures for `handprop predict`: PNG (any bit depth, colour type, alpha, interlacing;
// pixels decoded by pngjs) and PGM (P2 ASCII, P5 binary with 1 or 2 bytes per sample).
//
// Any file a user hands us ends in a GrayImage or an ImageError naming the file and what is wrong,
// within a bounded time and memory:
//   - the file must be a regular file of at most MAX_IMAGE_FILE_BYTES; no more than that is read;
//   - the size a header declares (PNG IHDR, PGM width and height) is checked before anything is
//     decoded or allocated: at most MAX_IMAGE_PIXELS pixels, and data present to fill them (a P5 file
//     holds every byte, a P2 file at least two characters per sample, a PNG enough compressed bytes:
//     DEFLATE never expands more than 1032:1). Decoding therefore allocates at most a small multiple
//     of min(MAX_IMAGE_PIXELS, 1032 × the file size) bytes;
//   - decompression is bounded by the size the header implies (pngjs bounds progressive images; an
//     interlaced one is inflated here first with that bound).

import { closeSync, constants, fstatSync, openSync, readSync } from "node:fs";
import { inflateSync } from "node:zlib";
import pngjs from "pngjs";
import { rgbaToGray, type GrayImage } from "../data/digits.ts";
import { printable } from "../io/text.ts";

/** Largest picture predict decodes: 16 megapixels (2^24 pixels, e.g. 4096×4096). */
export const MAX_IMAGE_PIXELS = 2 ** 24;
/** Largest image file predict reads: 256 MiB (a 16-megapixel P2 PGM with 5-digit samples fits). */
export const MAX_IMAGE_FILE_BYTES = 256 * 2 ** 20;
/** Most bytes DEFLATE can produce per compressed byte (258-byte matches coded in 2 bits). */
const DEFLATE_MAX_RATIO = 1032;

/** A file that is not a readable image: the message names the file and what is wrong. */
export class ImageError extends Error {
  override name = "ImageError";
}

const fmt = (n: number): string => n.toLocaleString("en-US");

function checkPixelCount(file: string, width: number, height: number, where: string): void {
  if (width * height > MAX_IMAGE_PIXELS) {
    throw new ImageError(
      `${file}: ${where} declares ${fmt(width)}×${fmt(height)} = ${fmt(width * height)} pixels, ` +
        `above predict's limit of ` +
        `${fmt(MAX_IMAGE_PIXELS)} (16 megapixels, e.g. 4096×4096): scale the picture down first`,
    );
  }
}

// ---------------------------------------------------------------------------------------------
// PGM

const isSpace = (b: number): boolean => b === 0x20 || (b >= 0x09 && b <= 0x0d);
const isDigit = (b: number): boolean => b >= 0x30 && b <= 0x39;
/** Longest decimal number read from a PGM (maxval is ≤ 65535; dimensions beyond 10 digits are refused anyway). */
const MAX_DIGITS = 10;

function describeByte(bytes: Uint8Array, pos: number): string {
  if (pos >= bytes.length) return "the end of the file";
  return `'${printable(String.fromCharCode(bytes[pos]))}'`;
}

/** Parse a PGM file: P2 (ASCII) or P5 (binary, 1 or 2 big-endian bytes per pixel), with # comments. */
export function decodePgm(bytes: Uint8Array, file: string): GrayImage {
  const magic = String.fromCharCode(bytes[0] ?? 0, bytes[1] ?? 0);
  if (magic !== "P2" && magic !== "P5")
    throw new ImageError(`${file}: not a PGM file: expected "P2" or "P5" at offset 0`);
  let pos = 2;
  const skipSpaceAndComments = (): void => {
    while (pos < bytes.length) {
      if (isSpace(bytes[pos])) pos++;
      else if (bytes[pos] === 0x23) while (pos < bytes.length && bytes[pos] !== 0x0a && bytes[pos] !== 0x0d) pos++;
      else break;
    }
  };
  // A decimal number (header field or P2 sample), at most MAX_DIGITS digits; null at the end of the file.
  const number = (what: string): number | null => {
    skipSpaceAndComments();
    if (pos >= bytes.length) return null;
    const start = pos;
    let value = 0;
    while (pos < bytes.length && isDigit(bytes[pos])) {
      if (pos - start === MAX_DIGITS)
        throw new ImageError(`${file}: bad PGM: the ${what} at offset ${start} has more than ${MAX_DIGITS} digits`);
      value = value * 10 + bytes[pos] - 0x30;
      pos++;
    }
    if (pos === start)
      throw new ImageError(
        `${file}: bad PGM header: expected the ${what} (a decimal number) at offset ${start}, ` +
          `got ${describeByte(bytes, pos)}`,
      );
    return value;
  };
  const headerNumber = (what: string): number => {
    const at = pos;
    const v = number(what);
    if (v === null)
      throw new ImageError(
        `${file}: bad PGM header: expected the ${what} (a decimal number) at offset ${at}, got the end of the file`,
      );
    return v;
  };
  const width = headerNumber("width");
  const height = headerNumber("height");
  const maxval = headerNumber("maxval");
  if (width < 1 || height < 1) throw new ImageError(`${file}: bad PGM header: size ${width}×${height} is empty`);
  if (maxval < 1 || maxval > 65535)
    throw new ImageError(`${file}: bad PGM header: maxval must be 1..65535, got ${maxval}`);
  checkPixelCount(file, width, height, "the PGM header");
  const count = width * height;
  const scale = 255 / maxval;
  if (magic === "P5") {
    if (pos >= bytes.length || !isSpace(bytes[pos])) {
      throw new ImageError(`${file}: bad PGM header: expected one whitespace byte after maxval at offset ${pos}`);
    }
    pos++;
    const bpp = maxval < 256 ? 1 : 2;
    const need = count * bpp;
    if (bytes.length - pos < need) {
      throw new ImageError(
        `${file}: truncated: header says ${width}×${height} pixels × ${bpp} byte(s) = ${need} bytes ` +
          `from offset ${pos}, ` +
          `file has ${bytes.length - pos}`,
      );
    }
    const data = new Float64Array(count);
    for (let i = 0; i < count; i++) {
      const v = bpp === 1 ? bytes[pos + i] : (bytes[pos + 2 * i] << 8) | bytes[pos + 2 * i + 1];
      if (v > maxval)
        throw new ImageError(`${file}: pixel ${i} is ${v}, above maxval ${maxval} (offset ${pos + i * bpp})`);
      data[i] = v * scale;
    }
    return { width, height, data };
  }
  // P2: every sample takes a separator and a digit, so a file with fewer than 2·count bytes left is
  // truncated: it is parsed without storing anything to say where it ends, and nothing is allocated.
  const samples = (data: Float64Array | null): void => {
    for (let i = 0; i < count; i++) {
      const v = number(`pixel ${i} of ${count}`);
      if (v === null)
        throw new ImageError(
          `${file}: truncated: header says ${width}×${height} = ${count} pixels, file ends after ${i} (offset ${pos})`,
        );
      if (v > maxval) throw new ImageError(`${file}: pixel ${i} is ${v}, above maxval ${maxval}`);
      if (data) data[i] = v * scale;
    }
  };
  if (bytes.length - pos < 2 * count) {
    samples(null);
    throw new ImageError(
      `${file}: truncated: header says ${width}×${height} = ${count} pixels, ` +
        `file has ${bytes.length - pos} bytes after the header`,
    );
  }
  const data = new Float64Array(count);
  samples(data);
  return { width, height, data };
}

// ---------------------------------------------------------------------------------------------
// PNG

export const PNG_SIGNATURE = [0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a];
const CHANNELS: Record<number, number> = { 0: 1, 2: 3, 3: 1, 4: 2, 6: 4 };
/** Adam7 passes: x start, y start, x step, y step. */
const ADAM7 = [
  [0, 0, 8, 8],
  [4, 0, 8, 8],
  [0, 4, 4, 8],
  [2, 0, 4, 4],
  [0, 2, 2, 4],
  [1, 0, 2, 2],
  [0, 1, 1, 2],
];

/** Bytes of filtered scanlines (a filter byte + packed samples per row) for a w×h image. */
function scanlineBytes(w: number, h: number, bitsPerPixel: number): number {
  return w === 0 || h === 0 ? 0 : h * (Math.ceil((w * bitsPerPixel) / 8) + 1);
}

interface PngLayout {
  width: number;
  height: number;
  interlaced: boolean;
  /** Decompressed size of the image data the header implies. */
  rawBytes: number;
  /** The IDAT chunks' data, concatenated (only for interlaced images, inflated here with a bound). */
  idat: Uint8Array[];
  idatBytes: number;
}

/** Walk the chunks: the IHDR's size and format, every chunk inside the file, the IDAT data present. */
function pngLayout(bytes: Uint8Array, file: string): PngLayout {
  const view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const bad = (what: string): ImageError => new ImageError(`${file}: not a readable PNG: ${what}`);
  if (bytes.length < 33) throw bad(`truncated: ${bytes.length} bytes, a PNG signature and IHDR chunk take 33`);
  const type = (at: number): string => printable(String.fromCharCode(...bytes.subarray(at, at + 4)));
  if (view.getUint32(8) !== 13 || type(12) !== "IHDR")
    throw bad(`the first chunk (offset 8) must be a 13-byte IHDR, got '${type(12)}' of ${view.getUint32(8)} bytes`);
  const width = view.getUint32(16);
  const height = view.getUint32(20);
  const depth = bytes[24];
  const colorType = bytes[25];
  const interlace = bytes[28];
  if (width === 0 || height === 0) throw bad(`IHDR declares an empty ${width}×${height} image`);
  const channels = CHANNELS[colorType] as number | undefined;
  if (channels === undefined) throw bad(`IHDR colour type ${colorType} (offset 25) is not one of 0, 2, 3, 4, 6`);
  if (![1, 2, 4, 8, 16].includes(depth)) throw bad(`IHDR bit depth ${depth} (offset 24) is not one of 1, 2, 4, 8, 16`);
  if (interlace > 1) throw bad(`IHDR interlace method ${interlace} (offset 28) is not 0 or 1`);
  checkPixelCount(file, width, height, "the PNG header (IHDR)");
  const bits = channels * depth;
  const rawBytes =
    interlace === 1
      ? ADAM7.reduce(
          (sum, [x0, y0, dx, dy]) =>
            sum +
            scanlineBytes(Math.ceil(Math.max(0, width - x0) / dx), Math.ceil(Math.max(0, height - y0) / dy), bits),
          0,
        )
      : scanlineBytes(width, height, bits);
  const idat: Uint8Array[] = [];
  let idatBytes = 0;
  let pos = 33;
  for (;;) {
    if (pos === bytes.length) throw bad(`truncated: no IEND chunk (the file ends at offset ${pos})`);
    if (bytes.length - pos < 12)
      throw bad(`truncated: a chunk header at offset ${pos} needs 12 bytes, the file has ${bytes.length - pos}`);
    const length = view.getUint32(pos);
    const name = type(pos + 4);
    if (length > bytes.length - pos - 12) {
      throw bad(
        `truncated: chunk '${name}' at offset ${pos} declares ${fmt(length)} data bytes, ` +
          `the file has ${fmt(bytes.length - pos - 12)} after its header`,
      );
    }
    if (name === "IDAT") {
      idatBytes += length;
      if (interlace === 1) idat.push(bytes.subarray(pos + 8, pos + 8 + length));
    }
    pos += 12 + length;
    if (name === "IEND") break;
  }
  if (rawBytes > DEFLATE_MAX_RATIO * idatBytes + 1024) {
    throw bad(
      `IHDR declares ${fmt(width)}×${fmt(height)} pixels (${fmt(rawBytes)} bytes of image data), ` +
        `but its IDAT chunks hold only ` +
        `${fmt(idatBytes)} compressed bytes, which inflate to at most ${fmt(DEFLATE_MAX_RATIO * idatBytes)}`,
    );
  }
  return { width, height, interlaced: interlace === 1, rawBytes, idat, idatBytes };
}

/** Decode a PNG (any bit depth, colour type, alpha) to grayscale composited over white. */
export function decodePng(bytes: Uint8Array, file: string): GrayImage {
  if (!PNG_SIGNATURE.every((b, i) => bytes[i] === b))
    throw new ImageError(`${file}: not a readable PNG: no PNG signature at offset 0`);
  const layout = pngLayout(bytes, file);
  const buffer = Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  if (layout.interlaced) {
    // pngjs inflates interlaced data without a bound: inflate here first, with the bound the header implies.
    try {
      inflateSync(Buffer.concat(layout.idat, layout.idatBytes), { maxOutputLength: Math.max(1, layout.rawBytes) });
    } catch (e) {
      const why =
        (e as NodeJS.ErrnoException).code === "ERR_BUFFER_TOO_LARGE"
          ? `more than the ${fmt(layout.rawBytes)} bytes IHDR implies`
          : (e as Error).message;
      throw new ImageError(`${file}: not a readable PNG: the image data does not inflate: ${why}`);
    }
  }
  let png: { width: number; height: number; data: Buffer };
  try {
    png = pngjs.PNG.sync.read(buffer);
  } catch (e) {
    throw new ImageError(`${file}: not a readable PNG: ${printable(e instanceof Error ? e.message : String(e))}`);
  }
  if (png.width !== layout.width || png.height !== layout.height || png.data.length !== 4 * png.width * png.height) {
    throw new ImageError(
      `${file}: not a readable PNG: decoded ${png.width}×${png.height}, IHDR says ${layout.width}×${layout.height}`,
    );
  }
  return rgbaToGray(png.data, png.width, png.height);
}

// ---------------------------------------------------------------------------------------------
// Files

/** The bytes of a regular file of at most `limit` bytes (never more is read), or an ImageError naming it. */
export function readBoundedFile(path: string, limit = MAX_IMAGE_FILE_BYTES): Uint8Array {
  const name = printable(path);
  let fd: number;
  try {
    // O_NONBLOCK: opening a FIFO for reading would otherwise wait for a writer, forever; for a regular
    // file it changes nothing. The type is checked on the open descriptor, so nothing can swap it.
    fd = openSync(path, constants.O_RDONLY | constants.O_NONBLOCK);
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    throw new ImageError(
      code === "ENOENT" ? `${name}: no such file` : `${name}: cannot read: ${printable((e as Error).message)}`,
    );
  }
  try {
    const st = fstatSync(fd);
    if (!st.isFile())
      throw new ImageError(
        `${name}: not a regular file (${st.isDirectory() ? "a directory" : "a device, pipe or socket"})`,
      );
    if (st.size > limit)
      throw new ImageError(
        `${name}: ${fmt(st.size)} bytes, above predict's limit of ${fmt(limit)} bytes for an image file`,
      );
    // Read what is there now, one byte more than the limit at most (the file may be growing).
    const buf = new Uint8Array(Math.min(st.size, limit) + 1);
    let length = 0;
    for (;;) {
      let n: number;
      try {
        n = readSync(fd, buf, length, buf.length - length, null);
      } catch (e) {
        throw new ImageError(`${name}: cannot read: ${printable((e as Error).message)}`);
      }
      if (n === 0) break;
      length += n;
      if (length === buf.length) {
        if (length > limit)
          throw new ImageError(`${name}: more than predict's limit of ${fmt(limit)} bytes for an image file`);
        break; // the file grew since fstat: what was there then is what we decode
      }
    }
    return buf.subarray(0, Math.min(length, st.size));
  } finally {
    closeSync(fd);
  }
}

/** Decode PNG or PGM bytes (told apart by their magic bytes, not the extension); `file` names them in errors. */
export function decodeImage(bytes: Uint8Array, file: string): GrayImage {
  if (PNG_SIGNATURE.every((b, i) => bytes[i] === b)) return decodePng(bytes, file);
  if (bytes[0] === 0x50 && (bytes[1] === 0x32 || bytes[1] === 0x35)) return decodePgm(bytes, file);
  const head = Array.from(bytes.subarray(0, 4), (b) => b.toString(16).padStart(2, "0")).join(" ");
  throw new ImageError(
    `${file}: not a PNG or PGM (P2/P5) image (${bytes.length === 0 ? "empty file" : `starts with ${head}`})`,
  );
}

/** Read and decode a PNG or PGM file. */
export function readImage(path: string): GrayImage {
  return decodeImage(readBoundedFile(path), printable(path));
}
