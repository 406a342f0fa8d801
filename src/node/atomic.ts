// Atomic file writes: write to a temporary name in the same directory, fsync, then rename over the
// target. rename(2) within one file system replaces the target in one step, so a reader (or a crash)
// sees either the old file or the complete new one, never a half-written one. The directory is
// fsynced after the rename so the new name itself survives a power loss (best effort: some file
// systems do not allow opening a directory).

import { closeSync, fsyncSync, mkdirSync, openSync, renameSync, rmSync, writeSync } from "node:fs";
import { basename, dirname, join } from "node:path";
import { randomBytes } from "node:crypto";

/** A temporary name next to `path`: ".<name>.tmp-<pid>-<random>", hidden and unique per writer. */
export function tempPathFor(path: string): string {
  return join(dirname(path), `.${basename(path)}.tmp-${process.pid}-${randomBytes(4).toString("hex")}`);
}

function fsyncDir(dir: string): void {
  let fd: number | null = null;
  try {
    fd = openSync(dir, "r");
    fsyncSync(fd);
  } catch {
    /* not supported here (e.g. Windows): the rename is still atomic, only its durability is weaker */
  } finally {
    if (fd !== null) closeSync(fd);
  }
}

/** Write data to a temporary file next to `path` and fsync it; returns the temporary path. */
function writeTemp(path: string, data: Uint8Array | string): string {
  const tmp = tempPathFor(path);
  const fd = openSync(tmp, "wx");
  try {
    const bytes = typeof data === "string" ? Buffer.from(data, "utf8") : data;
    let written = 0;
    while (written < bytes.length) written += writeSync(fd, bytes, written, bytes.length - written);
    fsyncSync(fd);
  } catch (e) {
    closeSync(fd);
    rmSync(tmp, { force: true });
    throw e;
  }
  closeSync(fd);
  return tmp;
}

/** Replace `path` with `data` atomically (creating the directory if needed). */
export function writeFileAtomic(path: string, data: Uint8Array | string): void {
  writeFilesAtomic([{ path, data }]);
}

/**
 * Write several files, each atomically, renaming them in the order given once ALL of them are
 * safely on disk. Put the file that refers to the others last (a manifest after its data files):
 * a crash then leaves either the old manifest or the new one with every file it names present.
 * On an error before the renames, every temporary file is removed and no target is touched.
 */
export function writeFilesAtomic(files: readonly { path: string; data: Uint8Array | string }[]): void {
  const temps: { tmp: string; path: string }[] = [];
  try {
    for (const f of files) {
      mkdirSync(dirname(f.path), { recursive: true });
      temps.push({ tmp: writeTemp(f.path, f.data), path: f.path });
    }
  } catch (e) {
    for (const t of temps) rmSync(t.tmp, { force: true });
    throw e;
  }
  for (let i = 0; i < temps.length; i++) {
    try {
      renameSync(temps[i].tmp, temps[i].path);
    } catch (e) {
      for (const t of temps.slice(i)) rmSync(t.tmp, { force: true });
      throw e;
    }
    // Persist this rename before the next one, so the on-disk order is the order given.
    fsyncDir(dirname(temps[i].path));
  }
}
