import { fdatasync, fdatasyncSync, ftruncateSync, writeSync } from "node:fs";
import { errors } from "../../core/errors.js";
import type { Log } from "../../core/log.js";
import { ITEM_OPEN } from "../../format/item-file.js";
import { CHECKPOINT_BYTES, type CommitLog, type LogRecord } from "./commit-log.js";
import type { Group } from "./group.js";
import type { FsyncMode } from "./protocol.js";
import { syncDir } from "./sync-dir.js";
import type { Version } from "./version.js";

/**
 * The write path's durability, steps 1 and 2 of a group (storage.ts has the order):
 * pwrite at a version's end, then, in batch mode, one fdatasync of the commit log for
 * the group's small writes to any number of versions (a version written a lot syncs its
 * own data file instead); a failed sync is rolled back. The data files the log covers are
 * synced later, at a checkpoint, before their handle closes, or at a clean stop.
 */

/**
 * A version's writes in one group above this size sync its data file directly instead
 * of going through the commit log: large appends would only be written twice.
 */
const DIRECT_SYNC_BYTES = 256 << 10;

export interface CommitFaults {
  /** The first group that writes to this item holds its log sync 200 ms, then fails it. */
  syncFail?: string;
  checkpointBytes?: number;
}

export function fdatasyncAsync(fd: number): Promise<void> {
  return new Promise((resolve, reject) => fdatasync(fd, (err) => (err ? reject(err) : resolve())));
}

export class GroupCommit {
  /** The versions the commit log covers that are not synced yet. */
  private readonly logged = new Set<Version>();
  /** Set after a data-file sync failed: the commit log is never emptied in this run. */
  private keepLog = false;
  private syncFail: string | undefined;
  private readonly checkpointBytes: number;

  constructor(
    private readonly dataDir: string,
    private readonly fsync: FsyncMode,
    /** batch mode only */
    private readonly log: CommitLog | null,
    faults: CommitFaults,
    private readonly logger: Log,
  ) {
    this.syncFail = faults.syncFail;
    this.checkpointBytes = faults.checkpointBytes ?? CHECKPOINT_BYTES;
  }

  /** Step 1: pwrite at the version's end; a failed write is cut back so no partial line stays. */
  writeAt(v: Version, bytes: Uint8Array, group?: Group): void {
    try {
      let done = 0;
      while (done < bytes.length) done += writeSync(v.fd, bytes, done, bytes.length - done, v.size + done);
      if (this.fsync === "always") fdatasyncSync(v.fd);
    } catch (err) {
      try {
        ftruncateSync(v.fd, v.size);
      } catch {
        // The write already failed; the repair at next start-up cuts the torn line.
      }
      throw errors.writeFailed(err);
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

  /** A new version's header, for the commit log (its file was just created). */
  logCreated(v: Version, header: Buffer, group: Group): void {
    if (this.log) group.written.set(v, { key: v.key, offset: 0, bytes: [header], length: header.length });
    group.createdFile = true;
  }

  /**
   * Step 2: makes what the group wrote durable. The versions whose sync failed are in
   * `group.failed`, and every request that wrote in the group learns it.
   */
  async sync(group: Group): Promise<void> {
    if (this.fsync === "batch" && group.touched.size > 0) await this.syncLogOrFiles(group);
    if (group.createdFile && this.fsync !== "never") {
      try {
        syncDir(this.dataDir);
      } catch (err) {
        // A new file whose bytes are in the synced commit log needs no directory entry to
        // survive: replay creates it. Failing it now would cut bytes the log still holds.
        for (const v of group.touched) {
          if (v.committed === 0 && !group.viaLog.has(v)) group.failed.set(v, err as Error);
        }
        if (group.viaLog.size > 0) this.logger.error(`directory sync failed: ${(err as Error).message}`);
      }
    }
    // A failed sync ends every request that wrote in this group: none of its later
    // messages may be written after the bytes it lost.
    for (const w of group.writers) {
      const err = w.target && group.failed.get(w.target);
      if (err) w.error ??= err;
    }
  }

  private async syncLogOrFiles(group: Group): Promise<void> {
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
    if (this.syncFail === undefined || !versions.some((v) => v.itemId === this.syncFail)) return null;
    this.syncFail = undefined;
    return new Promise((resolve) =>
      setTimeout(() => resolve(Object.assign(new Error("EIO: injected i/o error, fdatasync"), { code: "EIO" })), 200),
    );
  }

  /**
   * After a failed sync: cut the file back to what was committed (a version created in
   * this group keeps its header, or its next append would land at byte 0). A version that
   * failed to seal because a newer one superseded it still takes no writes. Returns
   * whether the version still exists, as an empty one created by this group.
   */
  rollback(v: Version): boolean {
    const keep = Math.max(v.committed, ITEM_OPEN.length);
    try {
      ftruncateSync(v.fd, keep);
    } catch {
      // Start-up repair cuts whatever stays past the last whole line.
    }
    v.size = keep;
    if (v.sealed && !v.superseded) v.sealed = false;
    return this.keepCreatedHeader(v);
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
      if (this.fsync !== "never") {
        fdatasyncSync(v.fd);
        syncDir(this.dataDir);
      }
      return true;
    } catch (err) {
      this.logger.error(`could not keep ${v.key}.data: ${(err as Error).message}`);
      return false;
    }
  }

  get checkpointDue(): boolean {
    return this.log !== null && this.log.bytes > this.checkpointBytes;
  }

  /** Syncs every data file the commit log covers, then empties the log. */
  async checkpoint(): Promise<void> {
    if (!this.log || this.keepLog) return;
    const versions = [...this.logged];
    try {
      await Promise.all(versions.map((v) => fdatasyncAsync(v.fd)));
      this.log.reset();
      this.logged.clear();
    } catch (err) {
      this.keepLog = true;
      this.logger.error(
        `commit-log checkpoint failed (${(err as Error).message}); the log is kept for the next start to replay`,
      );
    }
  }

  /**
   * Before a logged version's handle closes, its data file must hold what the log has.
   * If that sync fails, the log must keep its records: after a failed fsync a retry can
   * report success for pages that were lost, so the log is never emptied again.
   */
  syncBeforeClose(v: Version): void {
    if (!this.logged.has(v)) return;
    try {
      fdatasyncSync(v.fd);
    } catch (err) {
      this.keepLog = true;
      throw err;
    }
    this.logged.delete(v);
  }

  /** After every handle was synced and closed: a clean stop leaves the log empty. */
  close(): void {
    // If a sync failed, the next start replays it.
    if (this.log && this.logged.size === 0 && !this.keepLog) this.log.reset();
    this.log?.close();
  }
}
