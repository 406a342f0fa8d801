// A lock on a folder that one process writes (a training run's --out), so two runs cannot both
// pass the "already holds a model" check and overwrite each other's checkpoints.
//
// The lock is dir/.handprop.lock, JSON {pid, host, startedAt, command}. It is created complete or not
// at all: written to a temporary file, then link(2)ed to the lock name, which fails with EEXIST when
// the lock is already there (the O_EXCL guarantee, without a window where the file exists empty).
//
// An existing lock is
//   - held: its process runs on this host (kill(pid, 0) succeeds), or it was taken on another host
//     (whose processes we cannot see): refused with a LockError naming the pid, host, start time and
//     the lock file, and saying how to remove it if that process is really gone;
//   - stale: taken on this host by a process that no longer exists (killed with SIGKILL, a power
//     loss): reported on stderr and taken over.
// The lock is removed when the run ends, by any path out of the process (normal end, error, exit).

import {
  closeSync,
  existsSync,
  linkSync,
  mkdirSync,
  openSync,
  readdirSync,
  rmdirSync,
  rmSync,
  writeSync,
} from "node:fs";
import { hostname } from "node:os";
import { join } from "node:path";
import { tempPathFor } from "./atomic.ts";
import { readRegularFile } from "./safe-read.ts";

export const LOCK_FILE = ".handprop.lock";

export interface LockInfo {
  pid: number;
  host: string;
  startedAt: string;
  command: string;
}

/** The folder is locked by another process. */
export class LockError extends Error {
  override name = "LockError";
}

export interface FolderLock {
  path: string;
  info: LockInfo;
  /** Remove the lock (and the folder, when the lock created it and nothing else was put there). */
  release(): void;
}

function isRunning(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    return (e as NodeJS.ErrnoException).code === "EPERM"; // exists, owned by someone else
  }
}

function readLock(path: string): LockInfo | null {
  try {
    const raw = JSON.parse(readRegularFile(path, { maxBytes: 4096 }).toString("utf8")) as Partial<LockInfo>;
    if (
      typeof raw.pid === "number" &&
      Number.isSafeInteger(raw.pid) &&
      raw.pid > 0 &&
      typeof raw.host === "string" &&
      typeof raw.startedAt === "string"
    ) {
      return {
        pid: raw.pid,
        host: raw.host,
        startedAt: raw.startedAt,
        command: typeof raw.command === "string" ? raw.command : "handprop",
      };
    }
    return null;
  } catch {
    return null;
  }
}

function tryLink(path: string, info: LockInfo): boolean {
  const tmp = tempPathFor(path);
  const fd = openSync(tmp, "wx");
  try {
    writeSync(fd, JSON.stringify(info) + "\n");
  } finally {
    closeSync(fd);
  }
  try {
    linkSync(tmp, path);
    return true;
  } catch (e) {
    if ((e as NodeJS.ErrnoException).code === "EEXIST") return false;
    throw e;
  } finally {
    rmSync(tmp, { force: true });
  }
}

/**
 * Lock dir (created if needed) for this process. Throws LockError when another live process holds it;
 * takes over a stale lock, calling `note` with what it found.
 */
export function lockFolder(dir: string, command: string, note: (message: string) => void = () => {}): FolderLock {
  const created = !existsSync(dir);
  mkdirSync(dir, { recursive: true });
  const path = join(dir, LOCK_FILE);
  const info: LockInfo = { pid: process.pid, host: hostname(), startedAt: new Date().toISOString(), command };
  for (let attempt = 0; !tryLink(path, info); attempt++) {
    const held = readLock(path);
    const who = held
      ? `pid ${held.pid} on ${held.host}, ${held.command}, started ${held.startedAt}`
      : "an unreadable lock";
    if (held && held.host !== info.host) {
      throw new LockError(`${dir} is locked by ${who}; if that run is over, remove ${path} and try again`);
    }
    if (held && isRunning(held.pid)) {
      throw new LockError(
        `${dir} is in use by ${who}: wait for it to finish or choose another --out (if that process is not handprop, remove ${path})`,
      );
    }
    if (attempt > 0) throw new LockError(`${dir}: could not take over the stale lock ${path}; remove it and try again`);
    note(`${path}: taking over a stale lock (${who}, no longer running)`);
    rmSync(path, { force: true });
  }
  let released = false;
  const release = (): void => {
    if (released) return;
    released = true;
    process.removeListener("exit", release);
    const current = readLock(path);
    if (current && current.pid === info.pid && current.startedAt === info.startedAt) rmSync(path, { force: true });
    if (created) {
      try {
        if (readdirSync(dir).length === 0) rmdirSync(dir);
      } catch {
        /* not empty or already gone: leave it */
      }
    }
  };
  process.on("exit", release);
  return { path, info, release };
}
