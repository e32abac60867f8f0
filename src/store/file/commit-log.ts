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
import { dataPath } from "../../format/meta-file.js";
import { syncDir } from "./sync-dir.js";

/**
 * The commit log (`stream-db.wal` in the data dir) lets one fdatasync cover a group's
 * small appends to many versions. Each group, the bytes written to every data file are
 * also appended here as records, and this file alone is synced before the acks; the
 * data files are synced later, all at once, at a checkpoint, after which the log is
 * emptied. At start-up, before anything else reads the data dir, every whole record is
 * written again at its offset in its data file (replay is idempotent: data files are
 * append-only, so the same bytes go to the same place), and the log is emptied.
 *
 * The file is overwritten in place, never grown by the append itself: it is extended
 * with zeros a mebibyte ahead, and emptying it only starts a new generation. An
 * fdatasync after an append that grows the file must also commit the new size through
 * the filesystem's journal; one after an overwrite flushes the data alone, which here
 * takes about half the time and half the CPU. Records of an older generation, left
 * beyond the end, fail their checksum (it is seeded with the generation), so replay
 * stops at them as it stops at zeros or at a torn record.
 *
 *   file:    0        4             8          16
 *            | "WAL2" | generation  | unused   | records ...
 *
 *   record:  0       4        6        8                16       20        24      24+k
 *            | magic | keyLen | unused | offset (u64)   | length | crc32   | key   | bytes |
 *                                                                 of everything after the
 *                                                                 crc, seeded with the
 *                                                                 generation
 *
 * A log of the first format (records from byte 0, checksums unseeded) is replayed too.
 */

export const LOG_NAME = "stream-db.wal";
const FILE_MAGIC = 0x324c4157; // "WAL2"
const FILE_HEADER = 16;
const MAGIC = 0x314c4157; // "WAL1", each record
const HEADER = 24;
/** Past this size the log is checkpointed: data files synced, log emptied. */
export const CHECKPOINT_BYTES = 64 << 20;
/** The file is extended with zeros this far at a time. */
const GROW = 1 << 20;

export interface LogRecord {
  key: string;
  offset: number;
  bytes: Uint8Array[];
}

export class CommitLog {
  private size = FILE_HEADER;
  /** The size at the last successful sync: what a failed group is cut back to. */
  private synced = FILE_HEADER;
  /** The file's length: bytes up to here are written (records, zeros or stale records). */
  private allocated: number;
  private generation = 0;

  /** `previous`: the generation of the log found at start-up (0: none); the next one follows it. */
  private constructor(
    private readonly fd: number,
    previous: number,
  ) {
    this.allocated = fstatSync(fd).size;
    this.generation = previous;
    this.startGeneration();
  }

  /**
   * Replays what a crash left (see above). With `keep` the log is then open, empty, for
   * this run's appends; without, a leftover log is removed once replayed.
   */
  static open(dataDir: string, keep: boolean): { log: CommitLog | null; replayed: number } {
    const path = join(dataDir, LOG_NAME);
    if (!keep && !existsSync(path)) return { log: null, replayed: 0 };
    const fd = openSync(path, constants.O_RDWR | constants.O_CREAT, 0o644);
    let replayed: number;
    let log: CommitLog | null = null;
    try {
      replayed = replay(dataDir, fd);
      // The data files replay created must be in the directory before the log forgets them.
      syncDir(dataDir);
      if (keep) log = new CommitLog(fd, logStart(fd)?.seed ?? 0);
    } catch (err) {
      closeSync(fd);
      throw err;
    }
    if (keep) return { log, replayed };
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
    const buf = encode(records, this.generation);
    const end = this.size + buf.length;
    try {
      writeAll(this.fd, buf, this.size);
      if (end > this.allocated) this.extend(end);
    } catch (err) {
      this.cutBack();
      throw err;
    }
    this.size = end;
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
    this.startGeneration();
  }

  /** A clean stop: the log is empty, and gives its zeros back. */
  close(): void {
    try {
      if (this.size === FILE_HEADER && this.synced === FILE_HEADER) ftruncateSync(this.fd, FILE_HEADER);
    } finally {
      closeSync(this.fd);
    }
  }

  /**
   * A new generation makes every record in the file stale at once. Generations count up
   * (skipping 0, the first format's seed), so none comes back while records of it can
   * still be in the file. The header is written before anything changes here: if that
   * fails, the log carries on in the generation its header names. Once it is written,
   * appends start after it even if the sync fails (the next append dirties the header's
   * page again, and the records it may leave rewrite bytes the data files already hold).
   */
  private startGeneration(): void {
    const next = (this.generation + 1) >>> 0 || 1;
    const header = Buffer.alloc(FILE_HEADER);
    header.writeUInt32LE(FILE_MAGIC, 0);
    header.writeUInt32LE(next, 4);
    writeAll(this.fd, header, 0);
    this.generation = next;
    this.size = FILE_HEADER;
    this.synced = FILE_HEADER;
    this.allocated = Math.max(this.allocated, FILE_HEADER);
    fdatasyncSync(this.fd);
  }

  /**
   * Zeros past `end` to the next mebibyte: the appends after this one overwrite them. On
   * a disk without that much room the log just grows with its appends, as before.
   */
  private extend(end: number): void {
    const target = Math.ceil(end / GROW) * GROW;
    zeros ??= Buffer.alloc(GROW);
    try {
      for (let at = end; at < target; ) at += writeSync(this.fd, zeros, 0, Math.min(GROW, target - at), at);
      this.allocated = target;
    } catch {
      try {
        ftruncateSync(this.fd, end);
      } catch {
        // Zeros past the end are harmless: replay stops at them.
      }
      this.allocated = end;
    }
  }

  /** Forgets the last group's records: groups run one at a time, so only they are unsynced. */
  private cutBack(): void {
    try {
      ftruncateSync(this.fd, this.synced);
      this.allocated = this.synced;
    } catch {
      // Nothing better to do; replay of an unacknowledged record only re-adds whole lines.
    }
    this.size = this.synced;
  }
}

let zeros: Buffer | undefined;

function writeAll(fd: number, buf: Uint8Array, position: number): void {
  let done = 0;
  while (done < buf.length) done += writeSync(fd, buf, done, buf.length - done, position + done);
}

function encode(records: LogRecord[], generation: number): Buffer {
  let total = 0;
  for (const r of records) {
    total += HEADER + Buffer.byteLength(r.key, "utf8");
    for (const b of r.bytes) total += b.length;
  }
  const buf = Buffer.allocUnsafe(total);
  let at = 0;
  for (const r of records) {
    const start = at;
    let length = 0;
    for (const b of r.bytes) length += b.length;
    const keyLength = buf.write(r.key, at + HEADER, "utf8");
    buf.writeUInt32LE(MAGIC, at);
    buf.writeUInt16LE(keyLength, at + 4);
    buf.writeUInt16LE(0, at + 6);
    // The u64 offset in two halves: offsets are safe integers, and BigInt is slow here.
    buf.writeUInt32LE(r.offset % 2 ** 32, at + 8);
    buf.writeUInt32LE(Math.floor(r.offset / 2 ** 32), at + 12);
    buf.writeUInt32LE(length, at + 16);
    at += HEADER + keyLength;
    for (const b of r.bytes) {
      buf.set(b, at);
      at += b.length;
    }
    buf.writeUInt32LE(crc32(buf.subarray(start + HEADER, at), generation), start + 20);
  }
  return buf;
}

/** What a log file holds: its whole records, and where they end (tests, diagnostics). */
export function inspectLog(path: string): { records: number; end: number } {
  const fd = openSync(path, "r");
  try {
    let records = 0;
    let end = 0;
    for (const r of readRecords(fd)) {
      records++;
      end = r.end;
    }
    return { records, end };
  } finally {
    closeSync(fd);
  }
}

/** Writes every whole record back into its data file; returns how many. */
function replay(dataDir: string, logFd: number): number {
  const fds = new Map<string, number>();
  let count = 0;
  try {
    for (const { key, offset, bytes } of readRecords(logFd)) {
      let fd = fds.get(key);
      if (fd === undefined) {
        fd = openSync(dataPath(dataDir, key), constants.O_RDWR | constants.O_CREAT, 0o644);
        fds.set(key, fd);
      }
      writeAll(fd, bytes, offset);
      count++;
    }
    for (const fd of fds.values()) fdatasyncSync(fd);
  } finally {
    for (const fd of fds.values()) closeSync(fd);
  }
  return count;
}

/**
 * The log's whole records of its current generation, in order, up to the first that is
 * not (zeros, a torn record, a stale one). Each record's bytes are only valid until the
 * next is asked for.
 */
function* readRecords(fd: number): Generator<{ key: string; offset: number; bytes: Buffer; end: number }> {
  const start = logStart(fd);
  if (!start) return;
  const size = fstatSync(fd).size;
  const file = new FileWindow(fd);
  let at = start.at;
  for (;;) {
    const h = file.view(at, HEADER);
    if (!h || h.readUInt32LE(0) !== MAGIC) return;
    const keyLen = h.readUInt16LE(4);
    const offset = Number(h.readBigUInt64LE(8));
    const length = h.readUInt32LE(16);
    const crc = h.readUInt32LE(20);
    // A torn last record (the crash came mid-append) was never acknowledged; stale bytes
    // may claim any length at all, so the file's size is checked before anything is read.
    if (at + HEADER + keyLen + length > size) return;
    const body = file.view(at + HEADER, keyLen + length);
    if (!body || crc32(body, start.seed) !== crc) return;
    at += HEADER + keyLen + length;
    yield { key: body.toString("utf8", 0, keyLen), offset, bytes: body.subarray(keyLen), end: at };
  }
}

/** Where a log's records start and the seed of their checksums; null if it has none. */
function logStart(fd: number): { at: number; seed: number } | null {
  const head = Buffer.alloc(FILE_HEADER);
  const n = readSync(fd, head, 0, FILE_HEADER, 0);
  // The first format: records from byte 0, checksums unseeded.
  if (n >= 4 && head.readUInt32LE(0) === MAGIC) return { at: 0, seed: 0 };
  if (n === FILE_HEADER && head.readUInt32LE(0) === FILE_MAGIC) return { at: FILE_HEADER, seed: head.readUInt32LE(4) };
  return null;
}

/** Reads a file forward through one buffer, a few MiB at a time. */
class FileWindow {
  private buf = Buffer.allocUnsafe(0);
  private start = 0;
  private length = 0;

  constructor(private readonly fd: number) {}

  /** Bytes [at, at + n) of the file, or null past its end; valid until the next call. */
  view(at: number, n: number): Buffer | null {
    if (at < this.start || at + n > this.start + this.length) {
      if (this.buf.length < n) this.buf = Buffer.allocUnsafe(Math.max(n, WINDOW));
      this.start = at;
      this.length = 0;
      while (this.length < this.buf.length) {
        const got = readSync(this.fd, this.buf, this.length, this.buf.length - this.length, at + this.length);
        if (got === 0) break;
        this.length += got;
      }
      if (n > this.length) return null;
    }
    return this.buf.subarray(at - this.start, at - this.start + n);
  }
}

const WINDOW = 4 << 20;
