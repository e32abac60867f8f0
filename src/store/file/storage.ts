import { closeSync, mkdirSync } from "node:fs";
import { errors } from "../../core/errors.js";
import type { Log } from "../../core/log.js";
import { versionKey } from "../../core/names.js";
import { releaseBuffers } from "../../core/release.js";
import { CommitLog } from "./commit-log.js";
import { failure, Group, type WriterState } from "./group.js";
import { type CommitFaults, GroupCommit } from "./group-commit.js";
import { MetaKeeper } from "./meta-keeper.js";
import { packReplies } from "./packed-replies.js";
import { unpackBatch } from "./packed-writes.js";
import type {
  FromStorage,
  FsyncMode,
  OpenRequest,
  PropertiesReply,
  PropertiesRequest,
  Reply,
  ToStorage,
  ToStorageWire,
  VersionList,
} from "./protocol.js";
import { ReaderSlots, sealedCommitted } from "./reader-slots.js";
import { Recovery } from "./recovery.js";
import type { Version } from "./version.js";
import { VersionCache } from "./versions.js";
import { Writers } from "./writers.js";

/**
 * The storage worker's work, built from plain arguments (storage-worker.ts wires it to
 * its thread; a test can build it over a temp dir). Messages are handled in arrival
 * order, in groups: everything that arrived while the previous group was syncing is
 * written, then covered by one fdatasync (group commit), then published and answered.
 * The order within a group is fixed:
 *   1. write (pwrite at the version's size)       handle() -> Writers, GroupCommit.writeAt
 *   2. batch mode: append the group's writes to   GroupCommit.sync
 *      the commit log and fdatasync it (a version
 *      written a lot syncs its data file instead)
 *   3. Atomics.store the committed length, notify ReaderSlots.publish
 *   4. post the replies (the HTTP 200s)
 */

export interface StorageOptions {
  dataDir: string;
  fsync: FsyncMode;
  lengths: BigInt64Array;
  /** How long a dirty .meta may lag its data file. */
  metaIntervalMs: number;
  faults: CommitFaults & { storageCrash?: string };
  /** Where replies go (the worker's port). */
  post: (msg: FromStorage) => void;
  log: Log;
}

/** Appends up to this size go to the main thread with their commit notice (most do). */
const APPENDED_BYTES = 256 << 10;

function joined(parts: Uint8Array[], length: number): Uint8Array {
  if (parts.length === 1) return parts[0];
  const out = new Uint8Array(length);
  let at = 0;
  for (const p of parts) {
    out.set(p, at);
    at += p.length;
  }
  return out;
}

/** The body buffers a batch brought: written, logged and answered once its group is done. */
function* appendedBuffers(batch: ToStorage[]): Generator<ArrayBuffer> {
  for (const msg of batch) {
    if ((msg.type === "append" || msg.type === "write") && msg.bytes) yield msg.bytes.buffer as ArrayBuffer;
  }
}

export class Storage {
  private readonly post: (msg: FromStorage) => void;
  private readonly log: Log;
  private readonly slots: ReaderSlots;
  private readonly commits: GroupCommit;
  private readonly metas: MetaKeeper;
  private readonly versions: VersionCache;
  private readonly writers: Writers;
  private readonly recovery: Recovery;
  private queue: ToStorage[] = [];
  private running = false;
  private closed = false;

  constructor(options: StorageOptions) {
    const { dataDir, fsync } = options;
    this.post = options.post;
    this.log = options.log;
    const logLines = options.log;
    mkdirSync(dataDir, { recursive: true });
    // Replayed whatever the mode: the last run may have used batch.
    const { log, replayed } = CommitLog.open(dataDir, fsync === "batch");
    if (replayed > 0) logLines.info(`replayed ${replayed} commit-log records`, { replayed });
    this.slots = new ReaderSlots(options.lengths);
    this.commits = new GroupCommit(dataDir, fsync, log, options.faults, logLines);
    this.metas = new MetaKeeper(
      dataDir,
      fsync !== "never",
      options.metaIntervalMs,
      () => this.versions.loaded.values(),
      logLines,
    );
    this.versions = new VersionCache(dataDir, fsync, this.commits, this.metas, this.slots, logLines);
    this.writers = new Writers(
      this.versions,
      this.commits,
      options.faults.storageCrash,
      (v) => this.writerEnded(v),
      logLines,
    );
    this.recovery = new Recovery(dataDir, fsync, this.versions, this.commits, this.metas, () => this.closed, logLines);
  }

  /** Start-up repair of every version; the server may listen once it returns. */
  recover(): { versions: number; repaired: number; damaged: string[] } {
    return this.recovery.repair(this.recovery.scan());
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
        if (group.early.length > 0) this.post({ type: "replies", replies: group.early.map((a) => a()), idle: false });
        const replies = await this.commit(group);
        // `idle` tells the main thread it may send its next batch (file-store.ts).
        const idle = this.queue.length === 0;
        const changed = this.committedStates(group);
        if (replies.length > 0 || idle || changed) {
          this.post({ type: "replies", replies: packReplies(replies), idle, ...changed });
        }
        releaseBuffers(appendedBuffers(batch));
        if (group.closeId >= 0) this.close(group.closeId);
        else if (this.commits.checkpointDue) await this.commits.checkpoint();
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
        this.guard(group, msg.id, () => this.writers.begin(msg, group));
        return;
      case "append":
        this.guardWriter(group, msg.id, msg.writer, (w) => this.writers.append(msg, w, group));
        return;
      case "finish":
        this.guardWriter(group, msg.id, msg.writer, (w) => this.writers.finish(msg.id, w, msg.seal, group));
        this.writers.end(msg.writer);
        return;
      case "drop":
        this.writers.end(msg.writer);
        return;
      case "write":
        this.guard(group, msg.id, () => this.writers.write(msg, group));
        return;
      case "release":
        this.release(msg.slot);
        return;
      case "close":
        group.closeId = msg.id;
        return;
      case "properties":
        this.guard(group, msg.id, () => this.properties(msg, group));
        return;
      case "versions": {
        const versions: VersionList = [];
        const bindings: (string | number)[] = [];
        for (const v of this.versions.states.values()) {
          if (v.binding) bindings.push(versions.length / 4, v.binding.type, v.binding.schemaVersion);
          versions.push(v.itemId, v.version, v.length, v.sealed ? 1 : 0);
        }
        group.early.push(() => ({ id: msg.id, ok: true, versions, bindings }));
        return;
      }
      case "stats": {
        const reply = {
          id: msg.id,
          ok: true as const,
          slots: this.slots.inUse,
          versions: this.versions.loaded.size,
          fds: this.versions.writeHandles,
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
      if (this.closed) throw errors.shuttingDown();
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
      if (!w) throw errors.internal(`writer ${writer} is unknown`);
      if (w.error) throw w.error;
      try {
        fn(w);
      } catch (err) {
        w.error = err;
        throw err;
      }
    });
  }

  private writerEnded(v: Version | null): void {
    if (v) this.versions.evictIfSealed(v);
    this.versions.capIdle(this.writers.size);
  }

  // --- readers --------------------------------------------------------------------

  /** A reader's slot: the version's state now, or a wait for it to exist. */
  private open(msg: OpenRequest, group: Group): void {
    const { itemId, version, id } = msg;
    const key = versionKey(itemId, version);
    const v = this.versions.load(itemId, version, key, group);
    if (!v && this.versions.newest(itemId) > version) {
      group.early.push(() => ({ id, ok: true, slot: -1, exists: false, sealed: false, superseded: true, length: 0 }));
      return;
    }
    const slot = this.slots.lend(key, itemId, v);
    group.early.push(() => ({
      id,
      ok: true,
      slot,
      exists: v !== undefined && v.committed > 0,
      sealed: v !== undefined && sealedCommitted(v),
      superseded: this.versions.newest(itemId) > version,
      length: v?.committed ?? 0,
    }));
  }

  /**
   * A property read's part of the index: the entries not in the .meta file yet, as of
   * the committed length. A version loaded only for this leaves memory again.
   */
  private properties(msg: PropertiesRequest, group: Group): void {
    const { itemId, version, id, name, latest } = msg;
    const v = this.versions.load(itemId, version, versionKey(itemId, version), group);
    const superseded = this.versions.newest(itemId) > version;
    const reply: PropertiesReply = {
      id,
      ok: true,
      exists: v !== undefined && v.committed > 0,
      superseded,
      sealed: v !== undefined && sealedCommitted(v),
      length: v?.committed ?? 0,
      metaFile: v !== undefined && v.metaCount > 0,
      names: [],
      types: [],
      offsets: [],
      lengths: [],
    };
    if (v) {
      const columns = name === undefined ? v.index.byName : [[name, v.index.byName.get(name)] as const];
      for (const [n, col] of columns) {
        if (!col) continue;
        const wanted = latest ? [col.last()] : col.read(col.n);
        for (const e of wanted) {
          if (!e) continue;
          reply.names.push(n);
          reply.types.push(e.type);
          reply.offsets.push(e.offset);
          reply.lengths.push(e.length);
        }
      }
      this.versions.evictIfSealed(v);
    }
    group.early.push(() => reply);
  }

  private release(slot: number): void {
    const key = this.slots.release(slot);
    if (key === undefined) return;
    const v = this.versions.loaded.get(key);
    if (!v) {
      this.slots.stopWaiting(key);
      return;
    }
    v.slot = -1;
    this.versions.evictIfSealed(v);
    // Open versions stay loaded for their next writer, up to a cap; the sweep is rare.
    this.versions.capIdle(this.writers.size);
  }

  // --- commit ---------------------------------------------------------------------

  /** The versions a group's commit changed, as the main thread hears of them. */
  private committedStates(
    group: Group,
  ): { committed: VersionList; appended: ({ offset: number; bytes: Uint8Array } | null)[] } | undefined {
    if (group.touched.size === 0) return undefined;
    const committed: VersionList = [];
    const appended: ({ offset: number; bytes: Uint8Array } | null)[] = [];
    for (const v of group.touched) {
      if (v.committed !== v.size) continue; // a failed write that could not be rolled back
      const sealed = sealedCommitted(v);
      this.versions.states.set(v.key, {
        itemId: v.itemId,
        version: v.version,
        length: v.committed,
        sealed,
        binding: v.binding,
      });
      committed.push(v.itemId, v.version, v.committed, sealed ? 1 : 0);
      const w = group.written.get(v);
      // Copied into the message: the body buffers go back to their pool after it.
      const whole = w && w.offset + w.length === v.committed && w.length <= APPENDED_BYTES;
      appended.push(whole ? { offset: w.offset, bytes: joined(w.bytes, w.length) } : null);
    }
    return { committed, appended };
  }

  /** Steps 2 and 3 of a group; returns the answers for step 4. */
  private async commit(group: Group): Promise<Reply[]> {
    await this.commits.sync(group);
    const now = new Date().toISOString();
    for (const v of group.touched) {
      if (group.failed.has(v) && !this.commits.rollback(v)) continue;
      v.committed = v.size;
      v.updatedAt = now;
      v.metaDirty = true;
      this.slots.publish(v);
    }
    const replies = group.answers.map((answer) => answer());
    for (const v of group.touched) {
      if (!v.sealed || group.failed.has(v)) continue;
      this.metas.write(v);
      this.versions.evictIfSealed(v);
    }
    return replies;
  }

  // --- shutdown -------------------------------------------------------------------

  private close(id: number): void {
    this.closed = true;
    this.metas.stop();
    for (const v of this.versions.loaded.values()) {
      if (v.fd < 0) continue;
      try {
        this.commits.syncBeforeClose(v);
      } catch (err) {
        this.log.error(`could not sync ${v.key}.data: ${(err as Error).message}`);
      }
      closeSync(v.fd);
      v.fd = -1;
    }
    this.commits.close();
    this.post({ type: "replies", replies: [{ id, ok: true, end: 0 }], idle: true });
  }
}
