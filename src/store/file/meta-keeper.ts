import { closeSync, openSync } from "node:fs";
import type { Log } from "../../core/log.js";
import { ITEM_OPEN, scanDataFile } from "../../format/item-file.js";
import { dataPath, MetaCorrupt } from "../../format/meta-file.js";
import { MetaWriter } from "./meta-writer.js";
import { syncDir } from "./sync-dir.js";
import type { Version } from "./version.js";

/**
 * Keeps every loaded version's .meta file within a bounded lag of its data file, inside
 * the storage worker. A timer runs rounds: each writes the dirty .meta files in slices
 * (MetaWriter), yielding to the worker's messages between slices. Costs are kept near a
 * tenth of the worker's time: a version whose rewrite took T waits 10T before the next,
 * and so does the next round after one that took T. A version whose unwritten index
 * entries grow too many is written anyway, which bounds memory.
 */

/**
 * Index entries waiting for the next .meta write are memory; past this many (or a quarter
 * of what the file already holds, so that rewriting a huge file stays O(n log n) in all),
 * the write is due now whatever the lag rule says.
 */
const PENDING_ENTRIES = 1_000_000;

/** A rebuild from scratch writes the .meta every this many properties, to bound memory. */
export const REBUILD_BATCH = 500_000;

function pendingTooLarge(v: Version): boolean {
  return v.index.count > Math.max(PENDING_ENTRIES, v.metaCount / 4);
}

export class MetaKeeper {
  private job: { version: Version; writer: MetaWriter; started: number } | null = null;
  private inRound = false;
  private nextRound = 0;
  private stopped = false;

  constructor(
    private readonly dataDir: string,
    private readonly durable: boolean,
    private readonly intervalMs: number,
    private readonly loaded: () => Iterable<Version>,
    private readonly log: Log,
  ) {
    setInterval(() => this.round(), intervalMs).unref();
  }

  /** A round's write is over: the version waits in proportion to what it took (the fsync included). */
  private endJob(job: { version: Version; started: number }): void {
    if (this.job !== job) return; // abandoned meanwhile, and written whole by write()
    this.job = null;
    const took = performance.now() - job.started;
    job.version.metaDueAt = performance.now() + Math.max(0, took * 10 - this.intervalMs);
  }

  private failJob(job: { version: Version; started: number }, err: Error): void {
    if (this.job !== job) return;
    job.version.metaDirty = true;
    this.log.error(`could not write ${job.version.key}.meta: ${err.message}`);
    this.endJob(job);
  }

  /** Replaces the version's .meta now, whole (seal, eviction, repair, shutdown). */
  write(v: Version): void {
    if (this.job?.version === v) this.abandonJob();
    v.metaDirty = false;
    try {
      this.run(() => new MetaWriter(this.dataDir, v, this.durable).finish(), v);
      if (this.durable) syncDir(this.dataDir);
    } catch (err) {
      v.metaDirty = true;
      this.log.error(`could not write ${v.key}.meta: ${(err as Error).message}`);
    }
  }

  /** Writes the version's .meta now if it is behind or half-written (before unloading it). */
  flush(v: Version): void {
    if (v.metaDirty || this.job?.version === v) this.write(v);
  }

  /** Drops the slice-by-slice write in progress; its version is dirty again. */
  private abandonJob(): void {
    if (!this.job) return;
    this.job.writer.abort();
    this.job.version.metaDirty = true;
    this.job = null;
  }

  /** Writes every dirty .meta now and stops the timer's rounds (shutdown). */
  stop(): void {
    this.stopped = true;
    this.abandonJob();
    for (const v of this.loaded()) if (v.metaDirty && v.committed > 0) this.write(v);
  }

  /**
   * Runs a .meta write; if the file it merges with is unreadable, rebuilds it instead.
   * Returns true when it had to rebuild (the write itself was abandoned).
   */
  private run(write: () => void, v: Version): boolean {
    try {
      write();
      return false;
    } catch (err) {
      if (!(err instanceof MetaCorrupt)) throw err;
      this.log.error(`${v.key}.meta is unreadable (${err.message}); rebuilding it from the data file`);
      this.rebuild(v);
      return true;
    }
  }

  /** The index from scratch, from the committed part of the data file, in bounded batches. */
  private rebuild(v: Version): void {
    const fd = openSync(dataPath(this.dataDir, v.key), "r");
    const { committed, size } = v;
    try {
      v.index.clear();
      v.metaCount = 0;
      const flush = (end: number) => {
        v.committed = end;
        v.size = end;
        new MetaWriter(this.dataDir, v, false).finish();
      };
      scanDataFile(fd, ITEM_OPEN.length, committed, v.index, { every: REBUILD_BATCH, flush });
      v.committed = committed;
      v.size = committed;
      new MetaWriter(this.dataDir, v, this.durable).finish();
    } finally {
      v.committed = committed;
      v.size = size;
      closeSync(fd);
    }
  }

  private round(): void {
    if (this.inRound || this.stopped) return;
    const started = performance.now();
    // The time budget paces the lag rule, never the memory bound: a version whose
    // pending entries are past the cap is written now, however long the last round took.
    const early = started < this.nextRound;
    const due = [...this.loaded()].filter(
      (v) => v.metaDirty && v.committed > 0 && (pendingTooLarge(v) || (!early && started >= v.metaDueAt)),
    );
    if (due.length === 0) return;
    this.inRound = true;
    const next = (): void => {
      if (this.stopped) return;
      if (!this.job) {
        const v = due.shift();
        if (!v) {
          if (this.durable) syncDir(this.dataDir);
          this.inRound = false;
          this.nextRound = performance.now() + 9 * (performance.now() - started);
          return;
        }
        if (!v.metaDirty) {
          next();
          return;
        }
        v.metaDirty = false;
        let writer: MetaWriter | undefined;
        try {
          // Opening the old file can already show it is unreadable: then it is rebuilt.
          this.run(() => {
            writer = new MetaWriter(this.dataDir, v, this.durable);
          }, v);
        } catch (err) {
          v.metaDirty = true;
          this.log.error(`could not write ${v.key}.meta: ${(err as Error).message}`);
        }
        if (!writer) {
          setImmediate(next);
          return;
        }
        this.job = { version: v, writer, started: performance.now() };
      }
      const job = this.job;
      let written = false;
      try {
        const rebuilt = this.run(() => {
          written = job.writer.step();
        }, job.version);
        if (rebuilt) this.endJob(job);
        if (rebuilt || !written) {
          setImmediate(next);
          return;
        }
      } catch (err) {
        this.failJob(job, err as Error);
        setImmediate(next);
        return;
      }
      // The round goes on once the file is in place, or the job was abandoned meanwhile.
      job.writer
        .finishInBackground()
        .then(
          () => this.endJob(job),
          (err: Error) => this.failJob(job, err),
        )
        .then(next)
        .catch((err: Error) => {
          // Only the round's own bookkeeping can throw here (the directory sync): end it.
          this.log.error(`.meta upkeep round failed: ${err.message}`);
          this.inRound = false;
        });
    };
    next();
  }
}
