import { closeSync, fsyncSync, openSync, renameSync, writeSync } from "node:fs";
import { PROPERTY_TYPES } from "./canonical.js";
import { metaPath } from "./meta-file.js";
import type { Column } from "./property-index.js";
import type { Version } from "./version.js";

/**
 * Writes one version's .meta file from a snapshot taken when it starts, as JSON streamed
 * in slices of about 64 KiB: a million-property index never becomes one giant string or
 * object graph, and the storage worker can go on committing between slices. Scalars come
 * first (start-up reads only the first KiB). Replaced atomically: temp file, fsync, rename;
 * the caller fsyncs the directory.
 */

const SLICE = 64 << 10;

export class MetaWriter {
  private readonly fd: number;
  private readonly tmp: string;
  private readonly names: [string, Column, number][];
  private nameAt = 0;
  private entryAt = 0;
  private buf = "";
  private started = false;
  private finished = false;

  constructor(
    private readonly dataDir: string,
    private readonly v: Version,
    private readonly durable: boolean,
  ) {
    this.tmp = `${metaPath(dataDir, v.key)}.tmp`;
    // The snapshot: committed state now; columns may grow, we stop at today's lengths.
    this.names = [...v.index.byName].map(([name, col]) => [name, col, col.n]);
    const head = {
      item_id: v.itemId,
      version: v.version,
      created_at: v.createdAt,
      updated_at: v.updatedAt,
      size: v.committed,
      sealed: v.sealed && v.committed === v.size,
      property_count: this.names.reduce((sum, [, , n]) => sum + n, 0),
    };
    this.buf = `${JSON.stringify(head).slice(0, -1)},"properties":{`;
    this.fd = openSync(this.tmp, "w");
  }

  /** Writes about one slice; true once the file is complete and in place. */
  step(): boolean {
    if (this.finished) return true;
    try {
      while (this.buf.length < SLICE && this.nameAt < this.names.length) this.fill();
      if (this.nameAt >= this.names.length) this.buf += "}}";
      this.flush();
      if (this.nameAt < this.names.length) return false;
      if (this.durable) fsyncSync(this.fd);
      closeSync(this.fd);
      this.finished = true;
      renameSync(this.tmp, metaPath(this.dataDir, this.v.key));
      return true;
    } catch (err) {
      this.abort();
      throw err;
    }
  }

  /** Runs to the end now (seal, shutdown, eviction). */
  finish(): void {
    while (!this.step());
  }

  abort(): void {
    if (this.finished) return;
    this.finished = true;
    try {
      closeSync(this.fd);
    } catch {
      // already closed
    }
  }

  private fill(): void {
    const [name, col, n] = this.names[this.nameAt];
    if (this.entryAt === 0) this.buf += `${this.started ? "," : ""}${JSON.stringify(name)}:[`;
    this.started = true;
    const stop = Math.min(n, this.entryAt + 2048);
    const parts: string[] = [];
    for (let i = this.entryAt; i < stop; i++) {
      parts.push(`{"type":"${PROPERTY_TYPES[col.types[i]]}","offset":${col.offsets[i]},"length":${col.lengths[i]}}`);
    }
    this.buf += (this.entryAt > 0 && parts.length > 0 ? "," : "") + parts.join(",");
    this.entryAt = stop;
    if (this.entryAt >= n) {
      this.buf += "]";
      this.nameAt++;
      this.entryAt = 0;
    }
  }

  private flush(): void {
    if (this.buf.length > 0) writeSync(this.fd, this.buf);
    this.buf = "";
  }
}
