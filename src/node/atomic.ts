// Atomic file writes: write to a temporary name in the same directory, fsync, then rename over the
// target. rename(2) within one file system replaces the target in one step, so a reader (or a crash)
// sees either the old file or the complete new one, never a half-written one. The directory is
// fsynced after the rename so the new name itself survives a power loss (best effort: some file
// systems do not allow opening a directory).

import {
  closeSync,
  existsSync,
  fsyncSync,
  mkdirSync,
  openSync,
  readdirSync,
  renameSync,
  rmSync,
  writeSync,
} from "node:fs";
import { basename, dirname, join } from "node:path";
import { randomBytes } from "node:crypto";
import { FileReadError, readRegularFile } from "./safe-read.ts";

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

// ---------------------------------------------------------------------------------------------
// Several files as ONE atomic step: a commit journal.
//
// writeFilesAtomic above renames file by file, so a crash between two renames pairs files of two
// saves. writeFilesCommitted makes the switch a single rename:
//   1. every new file is written to a temporary name in dir and fsynced (old files untouched);
//   2. COMMIT: a journal, dir/.handprop-commit.json, listing {temp → final name} for every file, is
//      itself written atomically (temp + fsync + rename). This rename is the one atomic step;
//   3. each temporary file is renamed to its final name, then the journal is removed.
// A crash before 2 leaves the old files (and temporaries, removed by the next save). After 2, the
// new files ARE the content of dir: readers resolve each name through the journal (committedPath:
// the temporary while it still exists, else the final name, which by then holds the new bytes), and
// the next save or finishPendingCommit completes the renames. So a reader sees the old set or the
// new set of files, never a mix, at every moment a process can die.

export const COMMIT_JOURNAL = ".handprop-commit.json";
const MAX_JOURNAL_BYTES = 64 * 1024;

export interface JournalEntry {
  /** Temporary name in the folder, ".<file>.tmp-<pid>-<hex>". */
  temp: string;
  /** Final name in the folder. */
  file: string;
}

/** Test hook: called at each step of writeFilesCommitted ("written <file>", "committed", "renamed <file>", "done"). */
let commitHook: ((step: string) => void) | null = null;
export function setCommitHookForTests(hook: ((step: string) => void) | null): void {
  commitHook = hook;
}

const isPlainName = (s: unknown): s is string =>
  typeof s === "string" && s !== "" && s !== "." && s !== ".." && !/[/\\\0]/.test(s);
const isTempOf = (temp: string, file: string): boolean =>
  temp.startsWith(`.${file}.tmp-`) && /^\d+-[0-9a-f]{8}$/.test(temp.slice(file.length + 6));

/** The pending commit's entries, or null when dir has no journal. A malformed journal is an error naming it. */
export function readCommitJournal(dir: string): JournalEntry[] | null {
  const path = join(dir, COMMIT_JOURNAL);
  let bytes: Buffer;
  try {
    bytes = readRegularFile(path, { maxBytes: MAX_JOURNAL_BYTES, what: "a pending save's commit journal" });
  } catch (e) {
    if (e instanceof FileReadError && e.code === "ENOENT") return null;
    throw e;
  }
  let raw: unknown;
  try {
    raw = JSON.parse(bytes.toString("utf8"));
  } catch {
    raw = null;
  }
  const files = typeof raw === "object" && raw !== null ? (raw as { files?: unknown }).files : undefined;
  const ok =
    Array.isArray(files) &&
    files.every((f: unknown) => {
      const e = f as Partial<JournalEntry> | null;
      return (
        typeof e === "object" && e !== null && isPlainName(e.file) && isPlainName(e.temp) && isTempOf(e.temp, e.file)
      );
    });
  if (!ok)
    throw new FileReadError(
      `${path}: malformed commit journal (expected {"files": [{"temp", "file"}]} naming files in ${dir})`,
    );
  return files as JournalEntry[];
}

/** Where the current content of dir/file is: its committed-but-not-yet-renamed temporary, or dir/file. */
export function committedPath(
  dir: string,
  file: string,
  journal: JournalEntry[] | null = readCommitJournal(dir),
): string {
  const entry = journal?.find((e) => e.file === file);
  if (entry && existsSync(join(dir, entry.temp))) return join(dir, entry.temp);
  return join(dir, file);
}

/** Complete an interrupted commit (roll forward), then remove temporaries of `names` no journal needs. */
export function finishPendingCommit(dir: string, names: readonly string[] = []): void {
  if (!existsSync(dir)) return;
  const journal = readCommitJournal(dir);
  if (journal) {
    for (const e of journal) if (existsSync(join(dir, e.temp))) renameSync(join(dir, e.temp), join(dir, e.file));
    fsyncDir(dir);
    rmSync(join(dir, COMMIT_JOURNAL), { force: true });
    fsyncDir(dir);
  }
  const prefixes = [...names, COMMIT_JOURNAL].map((n) => `.${n}.tmp-`);
  for (const entry of readdirSync(dir)) {
    if (prefixes.some((p) => entry.startsWith(p))) rmSync(join(dir, entry), { force: true });
  }
}

/**
 * Replace several files of dir as one atomic step (see above). Leftovers of an earlier interrupted
 * save of the same names are completed or removed first. Files are {name, data}, names plain.
 */
export function writeFilesCommitted(dir: string, files: readonly { name: string; data: Uint8Array | string }[]): void {
  for (const f of files)
    if (!isPlainName(f.name)) throw new RangeError(`writeFilesCommitted: ${JSON.stringify(f.name)} is not a file name`);
  mkdirSync(dir, { recursive: true });
  finishPendingCommit(
    dir,
    files.map((f) => f.name),
  );
  const entries: JournalEntry[] = [];
  try {
    for (const f of files) {
      const tmp = writeTemp(join(dir, f.name), f.data);
      entries.push({ temp: basename(tmp), file: f.name });
      commitHook?.(`written ${f.name}`);
    }
  } catch (e) {
    for (const t of entries) rmSync(join(dir, t.temp), { force: true });
    throw e;
  }
  fsyncDir(dir);
  const journalTemp = writeTemp(join(dir, COMMIT_JOURNAL), JSON.stringify({ files: entries }));
  renameSync(journalTemp, join(dir, COMMIT_JOURNAL));
  fsyncDir(dir);
  commitHook?.("committed");
  for (const e of entries) {
    renameSync(join(dir, e.temp), join(dir, e.file));
    commitHook?.(`renamed ${e.file}`);
  }
  fsyncDir(dir);
  rmSync(join(dir, COMMIT_JOURNAL), { force: true });
  fsyncDir(dir);
  commitHook?.("done");
}
