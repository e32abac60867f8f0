import {
  closeSync,
  fdatasync,
  fdatasyncSync,
  ftruncateSync,
  mkdirSync,
  openSync,
  readdirSync,
  rmSync,
  writeSync,
} from "node:fs";
import { parentPort, workerData } from "node:worker_threads";
import { EngineError, toWire } from "../../core/errors.js";
import { parseVersionKey, versionKey } from "../../core/names.js";
import { releaseBuffers } from "../../core/release.js";
import { dataPath, syncDir } from "../../format/meta-file.js";
import { PropertyIndex } from "../../format/property-index.js";
import type { SliceProps } from "../../parse/property-parser.js";
import { CHECKPOINT_BYTES, CommitLog, type LogRecord } from "./commit-log.js";
import { MetaKeeper } from "./meta-keeper.js";
import { packReplies } from "./packed-replies.js";
import { unpackBatch } from "./packed-writes.js";
import type {
  AppendRequest,
  BeginRequest,
  FromStorage,
  OpenRequest,
  Reply,
  StorageWorkerData,
  ToStorage,
  ToStorageWire,
  WriteRequest,
} from "./protocol.js";
import { ABSENT, encodeSlot, GONE } from "./shared-layout.js";
import { SlotTable } from "./slot-table.js";
import { cutTornTail, isConsistent, quickState } from "./startup-check.js";
import { ITEM_CLOSE, ITEM_OPEN, Version } from "./version.js";
import { loadVersion } from "./version-loader.js";

/**
 * The storage worker: the only thread that writes to the data dir. Messages are handled
 * in arrival order, in groups: everything that arrived while the previous group was
 * syncing is written, then covered by one fdatasync (group commit), then published and
 * answered. The order within a group is fixed:
 *   1. write (pwrite at the version's size)       handle()
 *   2. batch mode: append the group's writes to   syncGroup()
 *      the commit log and fdatasync it (a version
 *      written a lot syncs its data file instead)
 *   3. Atomics.store the committed length, notify
 *   4. post the replies (the HTTP 200s)
 */

const { dataDir, fsync, lengths, metaIntervalMs } = workerData as StorageWorkerData;
const port = parentPort;
if (!port) throw new Error("storage-worker must run as a worker thread");

/** Test hook (README, "Fault injection"): an append to this item kills the thread. */
const crashItem = process.env.STREAM_DB_FAULT_STORAGE_CRASH;
/**
 * Test hook (README, "Fault injection"): the first group that writes to this item holds
 * its commit-log sync for 200 ms, then fails it as an fdatasync error would.
 */
let syncFailItem = process.env.STREAM_DB_FAULT_SYNC_FAIL;
/** Test hook (README, "Fault injection"): checkpoint the commit log past this many bytes. */
const checkpointBytes = Number(process.env.STREAM_DB_TEST_CHECKPOINT_BYTES) || CHECKPOINT_BYTES;

/** Unreferenced open versions kept loaded (fd and index) for the next writer. */
const MAX_IDLE_VERSIONS = 1024;

type Deferred = () => Reply;

function post(msg: FromStorage): void {
  port!.postMessage(msg);
}
type VersionRef = { key: string; itemId: string; version: number };

/** One write request, from its begin to its finish or drop. */
interface WriterState extends VersionRef {
  /** Its version, once loaded or created. */
  target: Version | null;
  /** The refusal or failure that ends it: every later message gets the same answer. */
  error: unknown;
}

/**
 * A version's writes in one group above this size sync its data file directly instead
 * of going through the commit log: large appends would only be written twice.
 */
const DIRECT_SYNC_BYTES = 256 << 10;
const ITEM_OPEN_BYTES = Buffer.from(ITEM_OPEN);

class Group {
  readonly touched = new Set<Version>();
  /** What this group wrote to each version, for the commit log (batch mode). */
  readonly written = new Map<Version, LogRecord & { length: number }>();
  /** Versions whose writes this group's commit-log sync covered. */
  readonly viaLog = new Set<Version>();
  /** The write requests that wrote in this group. */
  readonly writers = new Set<WriterState>();
  readonly failed = new Map<Version, Error>();
  /** Answers that promise nothing about durability (opens, refusals): sent before the sync. */
  readonly early: Deferred[] = [];
  /** Answers that acknowledge writes: sent after the sync that covers them. */
  readonly answers: Deferred[] = [];
  createdFile = false;
  closeId = -1;
}

/** The body buffers a batch brought: written, logged and answered once its group is done. */
function* appendedBuffers(batch: ToStorage[]): Generator<ArrayBuffer> {
  for (const msg of batch) {
    if ((msg.type === "append" || msg.type === "write") && msg.bytes) yield msg.bytes.buffer as ArrayBuffer;
  }
}

function fdatasyncAsync(fd: number): Promise<void> {
  return new Promise((resolve, reject) => fdatasync(fd, (err) => (err ? reject(err) : resolve())));
}

function failure(id: number, err: unknown): Reply {
  const e =
    err instanceof EngineError
      ? err
      : new EngineError("write_failed", `the append failed: ${(err as Error).message ?? String(err)}`);
  return { id, ok: false, error: toWire(e) };
}

class Storage {
  private readonly latest = new Map<string, number>();
  private readonly existing = new Set<string>();
  private readonly versions = new Map<string, Version>();
  private readonly slots = new SlotTable();
  private readonly writers = new Map<number, WriterState>();
  /** Slots lent to versions that do not exist yet, by item: readers waiting for them. */
  private readonly waiting = new Map<string, Map<string, number>>();
  /** Versions whose data file could not be repaired, with the reason. */
  private readonly damaged = new Map<string, string>();
  private readonly metas = new MetaKeeper(dataDir, fsync !== "never", metaIntervalMs, () => this.versions.values());
  private queue: ToStorage[] = [];
  private running = false;
  private closed = false;

  /** The commit log (batch mode), and the versions it covers that are not synced yet. */
  private readonly log: CommitLog | null;
  private readonly logged = new Set<Version>();
  /** Set after a data-file sync failed: the commit log is never emptied in this run. */
  private keepLog = false;

  constructor() {
    mkdirSync(dataDir, { recursive: true });
    // Replayed whatever the mode: the last run may have used batch.
    const { log, replayed } = CommitLog.open(dataDir, fsync === "batch");
    this.log = log;
    if (replayed > 0) console.error(`stream-db: replayed ${replayed} commit-log records`);
    const found: VersionRef[] = [];
    for (const name of readdirSync(dataDir)) {
      if (name.endsWith(".meta.tmp")) rmSync(`${dataDir}/${name}`, { force: true });
      if (!name.endsWith(".data")) continue;
      const key = name.slice(0, -5);
      const parsed = parseVersionKey(key);
      if (!parsed) continue;
      found.push({ key, ...parsed });
      this.existing.add(key);
      if ((this.latest.get(parsed.itemId) ?? 0) < parsed.version) this.latest.set(parsed.itemId, parsed.version);
    }
    this.found = found;
  }

  private found: VersionRef[];
  /** Versions whose .meta is rebuilt in the background after start-up. */
  private readonly metaBacklog: VersionRef[] = [];

  /**
   * Start-up repair, for every version in the data dir, before the server listens: cheap
   * checks first (startup-check.ts), the full repair only where they disagree. A file
   * that cannot be repaired is reported by name, left untouched, and refused later with
   * version_damaged; the rest of the data dir serves.
   */
  recover(): { versions: number; repaired: number; damaged: string[] } {
    let repaired = 0;
    for (const { key, itemId, version } of this.found) {
      try {
        const q = quickState(dataDir, key);
        const mustSeal = !q.sealed && version < (this.latest.get(itemId) ?? 0);
        if (isConsistent(q) && !mustSeal) continue;
        repaired++;
        if (q.meta === null && q.size >= ITEM_OPEN.length && !mustSeal) {
          // No usable index: make the file whole now, rebuild the index after listening.
          // (Sealing writes, so it waits for the full scan that proves the file sound.)
          if (!q.wholeTail) cutTornTail(dataDir, key, q.size);
          this.metaBacklog.push({ key, itemId, version });
          continue;
        }
        this.repairNow(key, itemId, version, mustSeal);
      } catch (err) {
        this.damaged.set(key, (err as Error).message);
      }
    }
    const versions = this.found.length;
    this.found = [];
    if (this.metaBacklog.length > 0) setImmediate(() => this.rebuildNextMeta());
    return { versions, repaired, damaged: [...this.damaged.values()] };
  }

  /** Full repair: index from .meta plus a scan of what it does not cover. */
  private repairNow(key: string, itemId: string, version: number, mustSeal: boolean): void {
    const v = loadVersion(dataDir, itemId, version, key);
    if (mustSeal && !v.sealed) {
      this.writeAt(v, Buffer.from(ITEM_CLOSE));
      v.sealed = true;
      if (fsync !== "never") fdatasyncSync(v.fd);
      v.committed = v.size;
    }
    this.metas.write(v);
    if (v.fd >= 0) closeSync(v.fd);
  }

  /**
   * Rebuilds one missing index per turn of the event loop, so requests interleave. A
   * version someone opens first is rebuilt by that open (load) instead.
   */
  private rebuildNextMeta(): void {
    const next = this.metaBacklog.shift();
    if (!next || this.closed) return;
    if (!this.versions.has(next.key) && !this.damaged.has(next.key)) {
      try {
        this.repairNow(next.key, next.itemId, next.version, false);
      } catch (err) {
        this.damaged.set(next.key, (err as Error).message);
        console.error(`stream-db: ${(err as Error).message}`);
      }
    }
    if (this.metaBacklog.length > 0) setImmediate(() => this.rebuildNextMeta());
  }

  receive(batch: ToStorageWire[]): void {
    unpackBatch(batch, this.queue);
    if (!this.running) void this.drain();
  }

  private async drain(): Promise<void> {
    this.running = true;
    try {
      while (this.queue.length > 0) {
        const batch = this.queue;
        this.queue = [];
        const group = new Group();
        for (const msg of batch) this.handle(msg, group);
        if (group.early.length > 0) post({ type: "replies", replies: group.early.map((a) => a()), idle: false });
        const replies = await this.commit(group);
        // `idle` tells the main thread it may send its next batch (storage.ts).
        const idle = this.queue.length === 0;
        if (replies.length > 0 || idle) post({ type: "replies", replies: packReplies(replies), idle });
        releaseBuffers(appendedBuffers(batch));
        if (group.closeId >= 0) this.close(group.closeId);
        else if (this.log && this.log.bytes > checkpointBytes) await this.checkpoint();
      }
    } finally {
      this.running = false;
    }
  }

  private handle(msg: ToStorage, group: Group): void {
    switch (msg.type) {
      case "open":
        this.guard(group, msg.id, () => this.open(msg, group));
        return;
      case "begin":
        this.guard(group, msg.id, () => this.begin(msg, group));
        return;
      case "append":
        this.guardWriter(group, msg.id, msg.writer, (w) => this.append(msg, w, group));
        return;
      case "finish":
        this.guardWriter(group, msg.id, msg.writer, (w) => this.finish(msg.id, w, msg.seal, group));
        this.endWriter(msg.writer);
        return;
      case "drop":
        this.endWriter(msg.writer);
        return;
      case "write":
        this.guard(group, msg.id, () => this.write(msg, group));
        return;
      case "release":
        this.release(msg.slot);
        return;
      case "close":
        group.closeId = msg.id;
        return;
      case "stats": {
        let fds = 0;
        for (const v of this.versions.values()) if (v.fd >= 0) fds++;
        const reply = {
          id: msg.id,
          ok: true as const,
          slots: this.slots.inUse,
          versions: this.versions.size,
          fds,
          writers: this.writers.size,
        };
        group.early.push(() => reply);
        return;
      }
      default: {
        const never: never = msg;
        throw new Error(`unknown message ${JSON.stringify(never)}`);
      }
    }
  }

  private guard(group: Group, id: number, fn: () => void): void {
    try {
      if (this.closed) throw new EngineError("shutting_down", "the server is shutting down");
      fn();
    } catch (err) {
      const reply = failure(id, err);
      group.early.push(() => reply);
    }
  }

  /**
   * Runs a writer's message, or refuses it with the writer's first error: after a
   * refusal or a failed append, nothing more of that request is written.
   */
  private guardWriter(group: Group, id: number, writer: number, fn: (w: WriterState) => void): void {
    const w = this.writers.get(writer);
    this.guard(group, id, () => {
      if (!w) throw new EngineError("internal_error", `writer ${writer} is unknown`);
      if (w.error) throw w.error;
      try {
        fn(w);
      } catch (err) {
        w.error = err;
        throw err;
      }
    });
  }

  private endWriter(writer: number): void {
    const w = this.writers.get(writer);
    if (!w) return;
    this.writers.delete(writer);
    if (w.target) {
      w.target.writers--;
      this.evictIfSealed(w.target);
    }
    this.capIdle();
  }

  /** Keeps at most MAX_IDLE_VERSIONS loaded that no reader or writer holds. */
  private capIdle(): void {
    if (this.versions.size > this.slots.inUse + this.writers.size + MAX_IDLE_VERSIONS) this.evictIdle();
  }

  // --- versions -------------------------------------------------------------------

  /** The loaded version for `key`, loading (and repairing) it from disk if needed. */
  private load(itemId: string, version: number, key: string, group: Group): Version | undefined {
    let v = this.versions.get(key);
    if (v) return v;
    if (!this.existing.has(key)) return undefined;
    const damage = this.damaged.get(key);
    if (damage) throw new EngineError("version_damaged", damage);
    v = loadVersion(dataDir, itemId, version, key);
    this.versions.set(key, v);
    v.slot = this.slots.slotOf(key);
    // Only the newest version of an item may be open: a crash between creating a newer
    // version and sealing this one is finished here.
    if (!v.sealed && version < (this.latest.get(itemId) ?? 0)) this.writeSeal(v, group, true);
    return v;
  }

  private create(itemId: string, version: number, key: string, group: Group): Version {
    // The version this one supersedes, loaded first: a load that fails must fail before
    // anything of the new version exists. A damaged one stays as it is, unsealed.
    const previous = this.latest.get(itemId);
    let older: Version | undefined;
    if (previous !== undefined) {
      try {
        older = this.load(itemId, previous, versionKey(itemId, previous), group);
      } catch (err) {
        if (!(err instanceof EngineError && err.code === "version_damaged")) throw err;
      }
    }
    const fd = openSync(dataPath(dataDir, key), "wx+");
    try {
      writeSync(fd, ITEM_OPEN, 0);
      if (fsync === "always") fdatasyncSync(fd);
    } catch (err) {
      closeSync(fd);
      rmSync(dataPath(dataDir, key), { force: true });
      throw err;
    }
    const now = new Date().toISOString();
    const v = new Version(itemId, version, key, now, ITEM_OPEN.length, false, new PropertyIndex());
    v.fd = fd;
    v.committed = 0;
    v.metaDirty = true;
    this.versions.set(key, v);
    this.existing.add(key);
    group.touched.add(v);
    if (this.log) group.written.set(v, { key, offset: 0, bytes: [ITEM_OPEN_BYTES], length: ITEM_OPEN_BYTES.length });
    group.createdFile = true;

    this.latest.set(itemId, version);
    if (older && !older.sealed) {
      try {
        this.writeSeal(older, group, true);
      } catch (err) {
        // It takes no more writes either way; start-up repair writes its </item>.
        older.superseded = true;
        console.error(`stream-db: could not seal ${older.key}: ${(err as Error).message}`);
      }
    }
    const waiters = this.waiting.get(itemId);
    if (waiters) {
      for (const [waitingKey, slot] of waiters) {
        const waitingVersion = parseVersionKey(waitingKey)?.version ?? 0;
        if (waitingVersion > version) continue;
        if (waitingKey === key) {
          v.slot = slot;
        } else {
          Atomics.store(lengths, slot, GONE);
          Atomics.notify(lengths, slot);
        }
        waiters.delete(waitingKey);
      }
      if (waiters.size === 0) this.waiting.delete(itemId);
    }
    return v;
  }

  /** A reader's slot: the version's state now, or a wait for it to exist. */
  private open(msg: OpenRequest, group: Group): void {
    const { itemId, version, id } = msg;
    const key = versionKey(itemId, version);
    const newest = this.latest.get(itemId) ?? 0;
    const v = this.load(itemId, version, key, group);
    if (!v && newest > version) {
      group.early.push(() => ({ id, ok: true, slot: -1, exists: false, sealed: false, superseded: true, length: 0 }));
      return;
    }
    const [slot, isNew] = this.slots.acquire(key);
    if (v) {
      v.slot = slot;
      if (isNew && v.committed > 0) Atomics.store(lengths, slot, encodeSlot(v.committed, this.isSealedCommitted(v)));
      else if (isNew) Atomics.store(lengths, slot, ABSENT);
    } else {
      Atomics.store(lengths, slot, ABSENT);
      let waiters = this.waiting.get(itemId);
      if (!waiters) {
        waiters = new Map();
        this.waiting.set(itemId, waiters);
      }
      waiters.set(key, slot);
    }
    const loaded = v;
    group.early.push(() => ({
      id,
      ok: true,
      slot,
      exists: loaded !== undefined && loaded.committed > 0,
      sealed: loaded !== undefined && this.isSealedCommitted(loaded),
      superseded: (this.latest.get(itemId) ?? 0) > version,
      length: loaded?.committed ?? 0,
    }));
  }

  /**
   * A write request starts: refused now if the version takes no writes or its length is
   * not X-Expected-Offset. Otherwise the version is created by the request's first
   * commit, so a request rejected before it commits anything leaves no version behind
   * and seals nothing.
   */
  private begin(msg: BeginRequest, group: Group): void {
    this.startWriter(msg, group);
    group.answers.push(() => ({ id: msg.id, ok: true, end: 0 }));
  }

  /** Registers the writer, refused (and remembered as refused) if it may not write. */
  private startWriter(msg: Omit<BeginRequest, "type" | "id">, group: Group): WriterState {
    const { itemId, version } = msg;
    const key = versionKey(itemId, version);
    const w: WriterState = { key, itemId, version, error: null, target: null };
    this.writers.set(msg.writer, w);
    try {
      const newest = this.latest.get(itemId) ?? 0;
      const v = this.load(itemId, version, key, group);
      if (newest > version) {
        throw new EngineError(
          "version_superseded",
          `version ${newest} of item ${itemId} exists; ${version} takes no writes`,
          v ? { offset: v.size } : {},
        );
      }
      if (v?.sealed)
        throw new EngineError("version_sealed", `version ${version} of item ${itemId} is sealed`, { offset: v.size });
      const current = v ? v.size : 0;
      if (msg.expectedOffset !== undefined && msg.expectedOffset !== current) {
        throw new EngineError(
          "offset_mismatch",
          `X-Expected-Offset is ${msg.expectedOffset} but the version's length is ${current}`,
          { offset: current },
        );
      }
      if (v) this.hold(w, v);
    } catch (err) {
      w.error = err;
      throw err;
    }
    return w;
  }

  /** A whole small request in one message: begin, its one append, finish. */
  private write(msg: WriteRequest, group: Group): void {
    try {
      const w = this.startWriter(msg, group);
      const v = this.versionFor(w, group);
      const start = v.size;
      const appended = msg.bytes && msg.props ? this.appendTo(w, msg.bytes, msg.props, group) : null;
      let end: number;
      try {
        end = this.finishWith(w, msg.seal, group);
      } catch (err) {
        // One message, one answer: the seal failed, so the append it carried is taken back.
        if (msg.bytes && appended) this.takeBack(v, start, msg.bytes, group);
        throw err;
      }
      group.answers.push(() => {
        const err = group.failed.get(v);
        if (err) return failure(msg.id, err);
        return { id: msg.id, ok: true, end: appended ? appended() : end };
      });
    } finally {
      this.endWriter(msg.writer);
    }
  }

  /** The writer keeps its version loaded until it ends. */
  private hold(w: WriterState, v: Version): void {
    w.target = v;
    v.writers++;
  }

  private isSealedCommitted(v: Version): boolean {
    return v.sealed && v.committed === v.size;
  }

  private release(slot: number): void {
    const key = this.slots.release(slot);
    if (key === undefined) return;
    const v = this.versions.get(key);
    if (v) {
      v.slot = -1;
      this.evictIfSealed(v);
      // Open versions stay loaded for their next writer, up to a cap; the sweep is rare.
      this.capIdle();
      return;
    }
    const parsed = parseVersionKey(key);
    const waiters = parsed && this.waiting.get(parsed.itemId);
    if (waiters) {
      waiters.delete(key);
      if (waiters.size === 0) this.waiting.delete((parsed as { itemId: string }).itemId);
    }
  }

  /** A sealed version leaves memory once nobody holds it and its last write is synced. */
  private evictIfSealed(v: Version): void {
    if (v.slot >= 0 || v.writers > 0 || !v.sealed || v.committed !== v.size) return;
    this.unload(v);
  }

  private unload(v: Version): void {
    this.metas.flush(v);
    try {
      this.syncBeforeClose(v);
    } catch (err) {
      // Stays loaded (its handle open); the kept log covers it at the next start.
      console.error(`stream-db: could not sync ${v.key}.data: ${(err as Error).message}`);
      return;
    }
    if (v.fd >= 0) closeSync(v.fd);
    v.fd = -1;
    this.versions.delete(v.key);
  }

  /** Sealed versions leave memory once nobody holds them; open ones past the cap do. */
  private evictIdle(): void {
    let idleOpen = 0;
    for (const v of this.versions.values()) if (v.slot < 0 && v.writers === 0 && !v.sealed) idleOpen++;
    for (const v of this.versions.values()) {
      if (v.slot >= 0 || v.writers > 0 || v.committed !== v.size) continue;
      if (!v.sealed && idleOpen <= MAX_IDLE_VERSIONS) continue;
      if (!v.sealed) idleOpen--;
      this.unload(v);
    }
  }

  // --- writes ---------------------------------------------------------------------

  /** The version a writer writes to, created here by its first commit. */
  private versionFor(w: WriterState, group: Group): Version {
    if (w.target) return w.target;
    let v = this.load(w.itemId, w.version, w.key, group);
    if (!v) {
      const newest = this.latest.get(w.itemId) ?? 0;
      if (newest > w.version) {
        throw new EngineError(
          "version_superseded",
          `version ${newest} of item ${w.itemId} exists; ${w.version} takes no writes`,
        );
      }
      v = this.create(w.itemId, w.version, w.key, group);
    }
    this.hold(w, v);
    return v;
  }

  private writable(v: Version): void {
    if (v.superseded) {
      throw new EngineError(
        "version_superseded",
        `a newer version of item ${v.itemId} exists; ${v.version} takes no writes`,
        { offset: v.size },
      );
    }
    if (v.sealed)
      throw new EngineError("version_sealed", `version ${v.version} of item ${v.itemId} is sealed`, { offset: v.size });
  }

  /** pwrite at the version's end; a failed write is cut back so no partial line stays. */
  private writeAt(v: Version, bytes: Uint8Array, group?: Group): void {
    try {
      let done = 0;
      while (done < bytes.length) done += writeSync(v.fd, bytes, done, bytes.length - done, v.size + done);
      if (fsync === "always") fdatasyncSync(v.fd);
    } catch (err) {
      try {
        ftruncateSync(v.fd, v.size);
      } catch {
        // The write already failed; the repair at next start-up cuts the torn line.
      }
      throw new EngineError("write_failed", `the append failed: ${(err as Error).message}`);
    }
    // What the commit log will need; outside batch mode there is no log to feed.
    if (group && this.log) {
      const w = group.written.get(v);
      if (w) {
        w.bytes.push(bytes);
        w.length += bytes.length;
      } else group.written.set(v, { key: v.key, offset: v.size, bytes: [bytes], length: bytes.length });
    }
    v.size += bytes.length;
  }

  private append(msg: AppendRequest, w: WriterState, group: Group): void {
    const v = this.versionFor(w, group);
    const indexed = this.appendTo(w, msg.bytes, msg.props, group);
    group.answers.push(() => {
      const err = group.failed.get(v);
      return err ? failure(msg.id, err) : { id: msg.id, ok: true, end: indexed() };
    });
  }

  /**
   * Writes the lines; the returned function, called once the group's sync succeeded,
   * indexes them and gives the version's length after them.
   */
  private appendTo(w: WriterState, bytes: Uint8Array, props: SliceProps, group: Group): () => number {
    const v = this.versionFor(w, group);
    if (crashItem !== undefined && v.itemId === crashItem) process.exit(70);
    this.writable(v);
    const start = v.size;
    this.writeAt(v, bytes, group);
    group.touched.add(v);
    group.writers.add(w);
    return () => {
      let offset = start;
      const { names, nameIds, types, lengths: sizes, count } = props;
      for (let i = 0; i < count; i++) {
        v.index.add(names[nameIds[i]], types[i], offset, sizes[i] - 1);
        offset += sizes[i];
      }
      return offset;
    };
  }

  private writeSeal(v: Version, group: Group, superseded: boolean): void {
    this.writeAt(v, Buffer.from(ITEM_CLOSE), group);
    v.sealed = true;
    v.superseded ||= superseded;
    group.touched.add(v);
  }

  /** Creates the version if nothing did (an empty body creates it), then seals it if asked. */
  private finish(id: number, w: WriterState, seal: boolean, group: Group): void {
    const v = this.versionFor(w, group);
    const end = this.finishWith(w, seal, group);
    group.answers.push(() => {
      const err = group.failed.get(v);
      return err ? failure(id, err) : { id, ok: true, end };
    });
  }

  /** Undoes this group's last write to `v` (it has not been synced or published). */
  private takeBack(v: Version, start: number, bytes: Uint8Array, group: Group): void {
    try {
      ftruncateSync(v.fd, start);
    } catch (err) {
      console.error(`stream-db: could not cut ${v.key}.data back: ${(err as Error).message}`);
    }
    v.size = start;
    const record = group.written.get(v);
    if (record && record.bytes[record.bytes.length - 1] === bytes) {
      record.bytes.pop();
      record.length -= bytes.length;
      if (record.bytes.length === 0) group.written.delete(v);
    }
  }

  /** Creates the version if nothing did, seals it if asked; returns its length before any seal. */
  private finishWith(w: WriterState, seal: boolean, group: Group): number {
    const v = this.versionFor(w, group);
    const end = v.size;
    group.writers.add(w);
    if (seal) {
      if (v.superseded) this.writable(v);
      if (!v.sealed) this.writeSeal(v, group, false);
    }
    return end;
  }

  // --- commit ---------------------------------------------------------------------

  /** Steps 2 and 3 of a group; returns the answers for step 4. */
  private async commit(group: Group): Promise<Reply[]> {
    if (fsync === "batch" && group.touched.size > 0) await this.syncGroup(group);
    if (group.createdFile && fsync !== "never") {
      try {
        syncDir(dataDir);
      } catch (err) {
        // A new file whose bytes are in the synced commit log needs no directory entry to
        // survive: replay creates it. Failing it now would cut bytes the log still holds.
        for (const v of group.touched) {
          if (v.committed === 0 && !group.viaLog.has(v)) group.failed.set(v, err as Error);
        }
        if (group.viaLog.size > 0) console.error(`stream-db: directory sync failed: ${(err as Error).message}`);
      }
    }
    // A failed sync ends every request that wrote in this group: none of its later
    // messages may be written after the bytes it lost.
    for (const w of group.writers) {
      const err = w.target && group.failed.get(w.target);
      if (err) w.error ??= err;
    }
    const now = new Date().toISOString();
    for (const v of group.touched) {
      if (group.failed.has(v)) {
        this.rollback(v);
        if (!this.keepCreatedHeader(v)) continue;
      }
      v.committed = v.size;
      v.updatedAt = now;
      v.metaDirty = true;
      if (v.slot >= 0) {
        Atomics.store(lengths, v.slot, encodeSlot(v.committed, v.sealed));
        Atomics.notify(lengths, v.slot);
      }
    }
    const replies = group.answers.map((answer) => answer());
    for (const v of group.touched) {
      if (!v.sealed || group.failed.has(v)) continue;
      this.metas.write(v);
      this.evictIfSealed(v);
    }
    return replies;
  }

  /**
   * Batch mode: one fdatasync of the commit log covers the group's small writes to any
   * number of versions; a version written a lot syncs its own data file instead.
   */
  private async syncGroup(group: Group): Promise<void> {
    const records: LogRecord[] = [];
    const viaLog: Version[] = [];
    const syncs: Promise<void>[] = [];
    for (const v of group.touched) {
      const w = group.written.get(v);
      if (this.log && w && w.length <= DIRECT_SYNC_BYTES) {
        records.push(w);
        viaLog.push(v);
      } else {
        syncs.push(fdatasyncAsync(v.fd).catch((err: Error) => void group.failed.set(v, err)));
      }
    }
    if (this.log && records.length > 0) {
      const log = this.log;
      const injected = this.injectedSyncFailure(viaLog);
      const logged = new Promise<void>((resolve) => {
        log.append(records);
        resolve();
      }).then(() => (injected ? injected.then((err) => log.sync(err)) : log.sync()));
      syncs.push(
        logged.then(
          () => {
            for (const v of viaLog) {
              this.logged.add(v);
              group.viaLog.add(v);
            }
          },
          (err: Error) => {
            for (const v of viaLog) group.failed.set(v, err);
          },
        ),
      );
    }
    await Promise.all(syncs);
  }

  private injectedSyncFailure(versions: Version[]): Promise<Error> | null {
    if (syncFailItem === undefined || !versions.some((v) => v.itemId === syncFailItem)) return null;
    syncFailItem = undefined;
    return new Promise((resolve) =>
      setTimeout(() => resolve(Object.assign(new Error("EIO: injected i/o error, fdatasync"), { code: "EIO" })), 200),
    );
  }

  /** Syncs every data file the commit log covers, then empties the log. */
  private async checkpoint(): Promise<void> {
    if (!this.log || this.keepLog) return;
    const versions = [...this.logged];
    try {
      await Promise.all(versions.map((v) => fdatasyncAsync(v.fd)));
      this.log.reset();
      this.logged.clear();
    } catch (err) {
      this.keepLog = true;
      console.error(
        `stream-db: commit-log checkpoint failed (${(err as Error).message}); the log is kept for the next start to replay`,
      );
    }
  }

  /**
   * Before a logged version's handle closes, its data file must hold what the log has.
   * If that sync fails, the log must keep its records: after a failed fsync a retry can
   * report success for pages that were lost, so the log is never emptied again.
   */
  private syncBeforeClose(v: Version): void {
    if (!this.logged.has(v)) return;
    try {
      fdatasyncSync(v.fd);
    } catch (err) {
      this.keepLog = true;
      throw err;
    }
    this.logged.delete(v);
  }

  /**
   * After a failed sync: cut the file back to what was committed (a version created in
   * this group keeps its header, or its next append would land at byte 0). A version that
   * failed to seal because a newer one superseded it still takes no writes.
   */
  private rollback(v: Version): void {
    const keep = Math.max(v.committed, ITEM_OPEN.length);
    try {
      ftruncateSync(v.fd, keep);
    } catch {
      // Start-up repair cuts whatever stays past the last whole line.
    }
    v.size = keep;
    if (v.sealed && !v.superseded) v.sealed = false;
  }

  /**
   * A version created in a group whose sync failed keeps its `<item>` header and exists,
   * empty (as after a failed append on a full disk): readers waiting for it get the
   * header rather than waiting for a write that may never come. The header is synced on
   * its own here, since the log records that held it were cut back.
   */
  private keepCreatedHeader(v: Version): boolean {
    if (v.committed !== 0 || v.size !== ITEM_OPEN.length) return false;
    try {
      if (fsync !== "never") {
        fdatasyncSync(v.fd);
        syncDir(dataDir);
      }
      return true;
    } catch (err) {
      console.error(`stream-db: could not keep ${v.key}.data: ${(err as Error).message}`);
      return false;
    }
  }

  // --- metadata and shutdown ------------------------------------------------------

  private close(id: number): void {
    this.closed = true;
    this.metas.stop();
    for (const v of this.versions.values()) {
      if (v.fd < 0) continue;
      try {
        this.syncBeforeClose(v);
      } catch (err) {
        console.error(`stream-db: could not sync ${v.key}.data: ${(err as Error).message}`);
      }
      closeSync(v.fd);
      v.fd = -1;
    }
    // A clean stop leaves the log empty; if a sync failed, the next start replays it.
    if (this.log && this.logged.size === 0 && !this.keepLog) this.log.reset();
    this.log?.close();
    post({ type: "replies", replies: [{ id, ok: true, end: 0 }], idle: true });
  }
}

const storage = new Storage();
const started = performance.now();
const recovered = storage.recover();
port.postMessage({ type: "ready", ...recovered, ms: Math.round(performance.now() - started) } satisfies FromStorage);
port.on("message", (batch: ToStorageWire[]) => storage.receive(batch));
