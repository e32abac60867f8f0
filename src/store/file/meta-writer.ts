import { closeSync, fsync, fsyncSync, openSync, renameSync, rmSync, writeSync } from "node:fs";
import { PROPERTY_TYPES } from "../../format/item-file.js";
import { encodeMetaEntry, encodeMetaHead, META_END, MetaReader, metaPath } from "../../format/meta-file.js";
import type { Column } from "../../format/property-index.js";
import type { Version } from "./version.js";

/**
 * Writes a version's .meta file by merging the file already on disk (which holds the
 * first `v.metaCount` properties) with the entries in memory, as a stream of slices of
 * about 64 KiB. Nothing proportional to the version's size is ever held: old entries are
 * copied through as bytes, name by name, and the new ones of the same name appended.
 * The storage worker can commit between slices. On success the entries written are
 * dropped from memory.
 *
 * The snapshot is taken at construction: the committed size and, per name, how many
 * entries there are now; columns may grow meanwhile and the rest waits for the next write.
 * Replaced atomically: temp file, fsync, rename (the caller fsyncs the directory).
 * Rounds of upkeep (MetaKeeper) leave the fsync to the thread pool; everything else
 * (seal, shutdown, eviction, repair) finishes at once.
 */

const SLICE = 64 << 10;
const BATCH = 2048;

export class MetaWriter {
  private readonly fd: number;
  private readonly tmp: string;
  private readonly taken = new Map<string, number>();
  private readonly total: number;
  private readonly old: MetaReader | null;
  private readonly parts: Generator<string | Buffer>;
  private finished = false;

  constructor(
    private readonly dataDir: string,
    private readonly v: Version,
    private readonly durable: boolean,
  ) {
    for (const [name, col] of v.index.byName) this.taken.set(name, col.n);
    this.total = v.metaCount + v.index.count;
    this.old = v.metaCount > 0 ? new MetaReader(metaPath(dataDir, v.key)) : null;
    this.tmp = `${metaPath(dataDir, v.key)}.tmp`;
    try {
      this.fd = openSync(this.tmp, "w");
    } catch (err) {
      this.old?.close();
      throw err;
    }
    this.parts = this.produce();
  }

  /** Writes about one slice; true once every byte is in the temp file (then install it). */
  step(): boolean {
    if (this.finished) return true;
    try {
      let bytes = 0;
      while (bytes < SLICE) {
        const next = this.parts.next();
        if (next.done) return true;
        const part = next.value;
        bytes += typeof part === "string" ? writeSync(this.fd, part) : writeSync(this.fd, part);
      }
      return false;
    } catch (err) {
      this.abort();
      throw err;
    }
  }

  /** Runs to the end now (seal, shutdown, eviction, repair). */
  finish(): void {
    while (!this.step());
    if (this.finished) return;
    try {
      if (this.durable) fsyncSync(this.fd);
      this.install();
    } catch (err) {
      this.abort();
      throw err;
    }
  }

  /**
   * Puts the complete file in place with its fsync on the thread pool, so that the
   * storage worker goes on committing meanwhile: that fsync of a new file (a journal
   * commit) takes the better part of a millisecond here. Resolves false if the writer
   * was aborted while it waited.
   */
  finishInBackground(): Promise<boolean> {
    return new Promise((resolve, reject) => {
      const done = (err: Error | null) => {
        if (this.finished) return resolve(false);
        try {
          if (err) throw err;
          this.install();
          resolve(true);
        } catch (e) {
          this.abort();
          reject(e);
        }
      };
      if (this.durable) fsync(this.fd, done);
      else done(null);
    });
  }

  private install(): void {
    this.close();
    renameSync(this.tmp, metaPath(this.dataDir, this.v.key));
    this.v.index.dropFirst(this.taken);
    this.v.metaCount = this.total;
  }

  abort(): void {
    if (this.finished) return;
    this.close();
    rmSync(this.tmp, { force: true });
  }

  private close(): void {
    this.finished = true;
    closeSync(this.fd);
    this.old?.close();
  }

  private *produce(): Generator<string | Buffer> {
    const v = this.v;
    const head = {
      item_id: v.itemId,
      version: v.version,
      created_at: v.createdAt,
      updated_at: v.updatedAt,
      size: v.committed,
      sealed: v.sealed && v.committed === v.size,
      property_count: this.total,
      ...(v.binding && { type: v.binding.type, schema_version: v.binding.schemaVersion }),
    };
    yield encodeMetaHead(head);
    const fresh = new Map(this.taken);
    let first = true;
    if (this.old) {
      for (let name = this.old.nextName(); name !== null; name = this.old.nextName()) {
        yield `${first ? "" : ","}${JSON.stringify(name)}:[`;
        first = false;
        let any = false;
        for (const bytes of this.old.entries()) {
          any ||= bytes.length > 0;
          yield bytes;
        }
        const n = fresh.get(name);
        if (n !== undefined) {
          fresh.delete(name);
          yield* this.entries(name, n, any);
        }
        yield "]";
      }
    }
    for (const [name, n] of fresh) {
      yield `${first ? "" : ","}${JSON.stringify(name)}:[`;
      first = false;
      yield* this.entries(name, n, false);
      yield "]";
    }
    yield META_END;
  }

  private *entries(name: string, n: number, comma: boolean): Generator<string> {
    const col = this.v.index.byName.get(name) as Column;
    let parts: string[] = [];
    let sep = comma ? "," : "";
    for (const e of col.read(n)) {
      parts.push(encodeMetaEntry(PROPERTY_TYPES[e.type], e.offset, e.length));
      if (parts.length === BATCH) {
        yield sep + parts.join(",");
        sep = ",";
        parts = [];
      }
    }
    if (parts.length > 0) yield sep + parts.join(",");
  }
}
