import {
  closeSync,
  constants,
  existsSync,
  fdatasync,
  fdatasyncSync,
  fstatSync,
  ftruncateSync,
  openSync,
  readSync,
  rmSync,
  writeSync,
} from "node:fs";
import { join } from "node:path";
import { crc32 } from "node:zlib";
import { dataPath, syncDir } from "./meta-file.js";

/**
 * The commit log (`stream-db.wal` in the data dir) lets one fdatasync cover a group's
 * small appends to many versions. Each group, the bytes written to every data file are
 * also appended here as records, and this file alone is synced before the acks; the
 * data files are synced later, all at once, at a checkpoint, after which the log is
 * emptied. At start-up, before anything else reads the data dir, every whole record is
 * written again at its offset in its data file (replay is idempotent: data files are
 * append-only, so the same bytes go to the same place), and the log is emptied.
 *
 * A record, little-endian:
 *
 *   0       4        6        8                16       20        24      24+k
 *   | magic | keyLen | unused | offset (u64)   | length | crc32   | key   | bytes |
 *                                                         of everything after the crc
 */

export const LOG_NAME = "stream-db.wal";
const MAGIC = 0x314c4157; // "WAL1"
const HEADER = 24;
/** Past this size the log is checkpointed: data files synced, log emptied. */
export const CHECKPOINT_BYTES = 64 << 20;

export interface LogRecord {
  key: string;
  offset: number;
  bytes: Uint8Array[];
}

export class CommitLog {
  private size = 0;
  /** The size at the last successful sync: what a failed group is cut back to. */
  private synced = 0;

  private constructor(private readonly fd: number) {}

  /**
   * Replays what a crash left (see above). With `keep` the log is then open, empty, for
   * this run's appends; without, a leftover log is removed once replayed.
   */
  static open(dataDir: string, keep: boolean): { log: CommitLog | null; replayed: number } {
    const path = join(dataDir, LOG_NAME);
    if (!keep && !existsSync(path)) return { log: null, replayed: 0 };
    const fd = openSync(path, constants.O_RDWR | constants.O_CREAT, 0o644);
    let replayed: number;
    try {
      replayed = replay(dataDir, fd);
      if (fstatSync(fd).size > 0) {
        ftruncateSync(fd, 0);
        fdatasyncSync(fd);
      }
    } catch (err) {
      closeSync(fd);
      throw err;
    }
    if (keep) {
      syncDir(dataDir);
      return { log: new CommitLog(fd), replayed };
    }
    closeSync(fd);
    rmSync(path);
    syncDir(dataDir);
    return { log: null, replayed };
  }

  get bytes(): number {
    return this.size;
  }

  /**
   * Appends a group's records; on failure the log is cut back, so no record of a group
   * that was not acknowledged stays to be replayed over later appends.
   */
  append(records: LogRecord[]): void {
    const buf = encode(records);
    try {
      let done = 0;
      while (done < buf.length) done += writeSync(this.fd, buf, done, buf.length - done, this.size + done);
    } catch (err) {
      this.cutBack();
      throw err;
    }
    this.size += buf.length;
  }

  /** `failure`: a test's injected error, returned as if fdatasync had failed. */
  sync(failure?: Error): Promise<void> {
    return new Promise((resolve, reject) =>
      fdatasync(this.fd, (syncErr) => {
        const err = syncErr ?? failure;
        if (err) {
          this.cutBack();
          return reject(err);
        }
        this.synced = this.size;
        resolve();
      }),
    );
  }

  /** Empties the log; the caller has synced every data file it covered. */
  reset(): void {
    ftruncateSync(this.fd, 0);
    // Appends start at 0 from here even if the sync below fails (the records it may leave
    // on disk rewrite bytes the data files already hold).
    this.size = 0;
    this.synced = 0;
    fdatasyncSync(this.fd);
  }

  close(): void {
    closeSync(this.fd);
  }

  /** Forgets the last group's records: groups run one at a time, so only they are unsynced. */
  private cutBack(): void {
    try {
      ftruncateSync(this.fd, this.synced);
    } catch {
      // Nothing better to do; replay of an unacknowledged record only re-adds whole lines.
    }
    this.size = this.synced;
  }
}

function encode(records: LogRecord[]): Buffer {
  let total = 0;
  const keys = records.map((r) => Buffer.from(r.key, "utf8"));
  for (let i = 0; i < records.length; i++) {
    total += HEADER + keys[i].length;
    for (const b of records[i].bytes) total += b.length;
  }
  const buf = Buffer.allocUnsafe(total);
  let at = 0;
  for (let i = 0; i < records.length; i++) {
    const start = at;
    const key = keys[i];
    let length = 0;
    for (const b of records[i].bytes) length += b.length;
    buf.writeUInt32LE(MAGIC, at);
    buf.writeUInt16LE(key.length, at + 4);
    buf.writeUInt16LE(0, at + 6);
    buf.writeBigUInt64LE(BigInt(records[i].offset), at + 8);
    buf.writeUInt32LE(length, at + 16);
    at += HEADER;
    key.copy(buf, at);
    at += key.length;
    for (const b of records[i].bytes) {
      buf.set(b, at);
      at += b.length;
    }
    buf.writeUInt32LE(crc32(buf.subarray(start + HEADER, at)), start + 20);
  }
  return buf;
}

/** Writes every whole record back into its data file; returns how many. */
function replay(dataDir: string, logFd: number): number {
  const size = fstatSync(logFd).size;
  if (size === 0) return 0;
  const log = Buffer.allocUnsafe(size);
  let read = 0;
  while (read < size) {
    const n = readSync(logFd, log, read, size - read, read);
    if (n === 0) break;
    read += n;
  }
  const fds = new Map<string, number>();
  let count = 0;
  try {
    let at = 0;
    while (at + HEADER <= read && log.readUInt32LE(at) === MAGIC) {
      const keyLen = log.readUInt16LE(at + 4);
      const offset = Number(log.readBigUInt64LE(at + 8));
      const length = log.readUInt32LE(at + 16);
      const end = at + HEADER + keyLen + length;
      // A torn last record (the crash came mid-append) was never acknowledged.
      if (end > read || crc32(log.subarray(at + HEADER, end)) !== log.readUInt32LE(at + 20)) break;
      const key = log.toString("utf8", at + HEADER, at + HEADER + keyLen);
      let fd = fds.get(key);
      if (fd === undefined) {
        fd = openSync(dataPath(dataDir, key), constants.O_RDWR | constants.O_CREAT, 0o644);
        fds.set(key, fd);
      }
      const bytes = log.subarray(at + HEADER + keyLen, end);
      let done = 0;
      while (done < bytes.length) done += writeSync(fd, bytes, done, bytes.length - done, offset + done);
      count++;
      at = end;
    }
    for (const fd of fds.values()) fdatasyncSync(fd);
  } finally {
    for (const fd of fds.values()) closeSync(fd);
  }
  return count;
}
