import {
  accessSync,
  closeSync,
  constants,
  existsSync,
  ftruncateSync,
  mkdirSync,
  openSync,
  readFileSync,
  statSync,
  writeSync,
} from "node:fs";
import { createRequire } from "node:module";
import { dirname, join } from "node:path";
import { StartupError } from "../../core/errors.js";

/**
 * One owner per data directory. A server takes an exclusive lock on `stream-db.lock`
 * before anything reads or repairs the directory (commit-log replay, start-up repair,
 * .meta rebuilds), and holds it until it stops.
 *
 * The lock is the kernel's: an open-file-description lock (fcntl F_OFD_SETLK, through
 * fs-native-extensions' prebuilt N-API addon), which the kernel drops when the process
 * ends however it ends, kill -9 included. So a lock left behind is never "stale": there
 * is nothing to take over and no timeout to guess, and two owners cannot happen, not
 * even two servers in one process (each opens its own description).
 *
 * The file is never deleted: a server that opened it while another was removing it
 * would lock an unlinked inode while a third locked the new one.
 */

export const LOCK_FILE = "stream-db.lock";

const { tryLock, unlock } = createRequire(import.meta.url)("fs-native-extensions") as {
  tryLock(fd: number): boolean;
  unlock(fd: number): void;
};

export interface DataDirLock {
  /** Idempotent. */
  release(): void;
}

/** Creates the directory if missing, then locks it, or throws a one-line StartupError. */
export function lockDataDir(dataDir: string): DataDirLock {
  ensureDirectory(dataDir);
  const path = join(dataDir, LOCK_FILE);
  let fd: number;
  try {
    fd = openSync(path, constants.O_RDWR | constants.O_CREAT, 0o644);
  } catch (err) {
    throw new StartupError(`data directory ${dataDir} is not writable (${describe(err)})`);
  }
  if (!tryLock(fd)) {
    closeSync(fd);
    const holder = readHolder(path);
    throw new StartupError(
      `data directory ${dataDir} is in use by another stream-db server${holder ? ` (${holder})` : ""}; stop it or choose another --data-dir`,
    );
  }
  // Who holds it, for the next server's message; the lock itself is what counts.
  const note = `pid ${process.pid} since ${new Date().toISOString()}\n`;
  try {
    ftruncateSync(fd, 0);
    writeSync(fd, note, 0);
  } catch (err) {
    unlock(fd);
    closeSync(fd);
    throw new StartupError(`data directory ${dataDir} is not writable (${describe(err)})`);
  }
  try {
    // The lock file may be there from an earlier run: it proves nothing about writing now.
    accessSync(dataDir, constants.W_OK);
  } catch (err) {
    unlock(fd);
    closeSync(fd);
    throw new StartupError(`data directory ${dataDir} is not writable (${describe(err)})`);
  }
  let held = true;
  return {
    release: () => {
      if (!held) return;
      held = false;
      unlock(fd);
      closeSync(fd);
    },
  };
}

function ensureDirectory(dataDir: string): void {
  try {
    if (!statSync(dataDir).isDirectory()) throw new StartupError(`data directory ${dataDir} is not a directory`);
    return;
  } catch (err) {
    if (err instanceof StartupError) throw err;
    if ((err as NodeJS.ErrnoException).code !== "ENOENT") {
      throw new StartupError(`data directory ${dataDir} cannot be used (${describe(err)})`);
    }
  }
  try {
    makeDirectories(dataDir);
  } catch (err) {
    throw new StartupError(`data directory ${dataDir} cannot be created (${describe(err)})`);
  }
}

/**
 * mkdir -p, one level at a time: node's recursive mkdirSync spins forever where a
 * directory exists but refuses children with ENOENT (under /proc, say).
 */
function makeDirectories(path: string): void {
  try {
    mkdirSync(path);
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code === "EEXIST" && statSync(path).isDirectory()) return;
    const parent = dirname(path);
    if (code !== "ENOENT" || parent === path || existsSync(parent)) throw err;
    makeDirectories(parent);
    mkdirSync(path);
  }
}

function readHolder(path: string): string {
  try {
    return readFileSync(path, "utf8").trim().slice(0, 200);
  } catch {
    return "";
  }
}

function describe(err: unknown): string {
  const e = err as NodeJS.ErrnoException;
  const reasons: Record<string, string> = {
    EACCES: "permission denied",
    EPERM: "permission denied",
    EROFS: "read-only file system",
    ENOTDIR: "a part of the path is not a directory",
    ENOSPC: "no space left on the device",
    EEXIST: "a file of that name exists",
    ENOENT: "no such file or directory",
  };
  return (e.code && reasons[e.code]) ?? e.message ?? String(err);
}
