// Bounded reads of files a user hands us. Every reader of a model, checkpoint, IDX or TF.js file goes
// through readRegularFile, so that:
//   - a FIFO, a device (a symlink to /dev/zero), a socket or a directory is refused by name, never
//     read without end or waited on: the file is opened O_NONBLOCK (opening a FIFO does not block)
//     and fstat'ed on that same descriptor before anything is read;
//   - the size is known (fstat) before a byte is allocated, and compared with what the caller
//     expects (an exact length from a manifest, or a maximum), so a tiny file claiming a huge model
//     fails at once and a huge file is never slurped;
//   - at most the expected number of bytes is read, even if the file grows meanwhile.

import { closeSync, constants, existsSync, fstatSync, openSync, readSync, realpathSync, statSync } from "node:fs";
import { basename, dirname, join, resolve } from "node:path";

/** Why a file could not be read; the message names the file. `code` is the errno code when there was one. */
export class FileReadError extends Error {
  override name = "FileReadError";
  constructor(
    message: string,
    readonly code?: string,
  ) {
    super(message);
  }
}

export interface ReadLimits {
  /** The file must hold exactly this many bytes (e.g. a manifest's byteLength). */
  exactBytes?: number;
  /** The file must hold at most this many bytes. */
  maxBytes?: number;
  /** What the file is, for messages ("the weights listed in …/model.json"). */
  what?: string;
  /** Called with the size (from fstat) before anything is allocated: throw to refuse the file. */
  checkSize?: (size: number) => void;
}

function kindOf(st: ReturnType<typeof fstatSync>): string {
  if (st.isDirectory()) return "a directory";
  if (st.isFIFO()) return "a FIFO (named pipe)";
  if (st.isCharacterDevice()) return "a character device";
  if (st.isBlockDevice()) return "a block device";
  if (st.isSocket()) return "a socket";
  return "not a regular file";
}

const NONBLOCK = (constants as { O_NONBLOCK?: number }).O_NONBLOCK ?? 0;

/**
 * The bytes of a regular file, read with the limits above. Throws FileReadError naming the file:
 * missing, not a regular file, larger than maxBytes, or not exactBytes long.
 */
export function readRegularFile(path: string, limits: ReadLimits = {}): Buffer {
  const what = limits.what ? ` (${limits.what})` : "";
  let fd: number;
  try {
    fd = openSync(path, constants.O_RDONLY | NONBLOCK);
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    const message =
      code === "ENOENT" ? `${path}: missing${what}` : `${path}: cannot open${what}: ${(e as Error).message}`;
    throw new FileReadError(message, code);
  }
  try {
    const st = fstatSync(fd);
    if (!st.isFile()) throw new FileReadError(`${path}: ${kindOf(st)}, not a regular file${what}: refusing to read it`);
    const size = st.size;
    limits.checkSize?.(size);
    if (limits.exactBytes !== undefined && size !== limits.exactBytes) {
      throw new FileReadError(
        size < limits.exactBytes
          ? `${path}: truncated: expected ${limits.exactBytes} bytes${what}, the file has ${size}`
          : `${path}: ${size - limits.exactBytes} bytes too many: expected ${limits.exactBytes} bytes${what}, the file has ${size}`,
      );
    }
    if (limits.maxBytes !== undefined && size > limits.maxBytes) {
      throw new FileReadError(`${path}: ${size} bytes is more than the ${limits.maxBytes} bytes allowed${what}`);
    }
    const out = Buffer.allocUnsafe(size);
    let got = 0;
    while (got < size) {
      const n = readSync(fd, out, got, size - got, got);
      if (n === 0) break;
      got += n;
    }
    if (got < size)
      throw new FileReadError(`${path}: the file shrank while being read (${got} of ${size} bytes)${what}`);
    return out;
  } catch (e) {
    if (e instanceof FileReadError || limits.checkSize) throw e;
    throw new FileReadError(`${path}: cannot read${what}: ${(e as Error).message}`, (e as NodeJS.ErrnoException).code);
  } finally {
    closeSync(fd);
  }
}

/** The real path of p, symlinks resolved, also for a path that does not exist yet (through its existing ancestor). */
export function realPathOf(p: string): string {
  const abs = resolve(p);
  if (existsSync(abs)) return realpathSync(abs);
  const parent = dirname(abs);
  return parent === abs ? abs : join(realPathOf(parent), basename(abs));
}

/**
 * Whether path exists and is not a folder (symlinks followed): a file given where a folder of files is read, such
 * as a model folder, which the caller then refuses by name rather than failing on a path under it (ENOTDIR).
 */
export function isNonFolder(path: string): boolean {
  try {
    return !statSync(path).isDirectory();
  } catch {
    return false; // missing or unreadable: the read of the file under it says which
  }
}
