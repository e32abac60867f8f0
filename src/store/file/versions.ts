import { closeSync, fdatasyncSync, openSync, rmSync, writeSync } from "node:fs";
import { DbError, errors } from "../../core/errors.js";
import type { Log } from "../../core/log.js";
import { versionKey } from "../../core/names.js";
import { ITEM_CLOSE, ITEM_OPEN } from "../../format/item-file.js";
import { dataPath } from "../../format/meta-file.js";
import { PropertyIndex } from "../../format/property-index.js";
import type { Binding } from "../types.js";
import type { Group } from "./group.js";
import type { GroupCommit } from "./group-commit.js";
import type { MetaKeeper } from "./meta-keeper.js";
import type { FsyncMode } from "./protocol.js";
import type { ReaderSlots } from "./reader-slots.js";
import { Version } from "./version.js";
import { loadVersion } from "./version-loader.js";

/**
 * The versions of the data directory as the storage worker knows them: which exist,
 * the newest of each item, which are damaged, and the ones loaded in memory (handle and
 * index), loaded on demand and evicted when nobody holds them.
 */

/** Unreferenced open versions kept loaded (fd and index) for the next writer. */
const MAX_IDLE_VERSIONS = 1024;
const ITEM_OPEN_BYTES = Buffer.from(ITEM_OPEN);

export class VersionCache {
  readonly loaded = new Map<string, Version>();
  /** Keys of every version with a data file. */
  readonly existing = new Set<string>();
  /** The newest version of each item. */
  readonly latest = new Map<string, number>();
  /** Versions whose data file could not be repaired, with the reason. */
  readonly damaged = new Map<string, string>();
  /**
   * The committed length and seal of every version with a data file, as start-up repair
   * left it and each commit since: what an index catches up to.
   */
  readonly states = new Map<
    string,
    { itemId: string; version: number; length: number; sealed: boolean; binding: Binding | undefined }
  >();

  constructor(
    private readonly dataDir: string,
    private readonly fsync: FsyncMode,
    private readonly commits: GroupCommit,
    private readonly metas: MetaKeeper,
    private readonly slots: ReaderSlots,
    private readonly log: Log,
  ) {}

  /** A version found on disk at start-up. */
  found(key: string, itemId: string, version: number): void {
    this.existing.add(key);
    if (this.newest(itemId) < version) this.latest.set(itemId, version);
  }

  newest(itemId: string): number {
    return this.latest.get(itemId) ?? 0;
  }

  /** The loaded version for `key`, loading (and repairing) it from disk if needed. */
  load(itemId: string, version: number, key: string, group: Group): Version | undefined {
    let v = this.loaded.get(key);
    if (v) return v;
    if (!this.existing.has(key)) return undefined;
    const damage = this.damaged.get(key);
    if (damage) throw errors.versionDamaged(damage);
    v = loadVersion(this.dataDir, itemId, version, key);
    this.loaded.set(key, v);
    v.slot = this.slots.slotOf(key);
    // Only the newest version of an item may be open: a crash between creating a newer
    // version and sealing this one is finished here.
    if (!v.sealed && version < this.newest(itemId)) this.writeSeal(v, group, true);
    return v;
  }

  /**
   * Creates the version; one bound to a schema has its .meta written (and synced) now,
   * before any answer, as the binding is the one fact its data file does not hold.
   */
  create(itemId: string, version: number, key: string, group: Group, binding: Binding | undefined): Version {
    // The version this one supersedes, loaded first: a load that fails must fail before
    // anything of the new version exists. A damaged one stays as it is, unsealed.
    const previous = this.latest.get(itemId);
    let older: Version | undefined;
    if (previous !== undefined) {
      try {
        older = this.load(itemId, previous, versionKey(itemId, previous), group);
      } catch (err) {
        if (!(err instanceof DbError && err.code === "version_damaged")) throw err;
      }
    }
    const path = dataPath(this.dataDir, key);
    const fd = openSync(path, "wx+");
    try {
      writeSync(fd, ITEM_OPEN, 0);
      if (this.fsync === "always") fdatasyncSync(fd);
    } catch (err) {
      closeSync(fd);
      rmSync(path, { force: true });
      throw err;
    }
    const now = new Date().toISOString();
    const v = new Version(itemId, version, key, now, ITEM_OPEN.length, false, new PropertyIndex());
    v.fd = fd;
    v.committed = 0;
    v.metaDirty = true;
    if (binding) {
      v.binding = binding;
      this.metas.write(v);
    }
    this.loaded.set(key, v);
    this.existing.add(key);
    group.touched.add(v);
    this.commits.logCreated(v, ITEM_OPEN_BYTES, group);

    this.latest.set(itemId, version);
    if (older && !older.sealed) {
      try {
        this.writeSeal(older, group, true);
      } catch (err) {
        // It takes no more writes either way; start-up repair writes its </item>.
        older.superseded = true;
        this.log.error(`could not seal ${older.key}: ${(err as Error).message}`);
      }
    }
    this.slots.created(itemId, v);
    return v;
  }

  writeSeal(v: Version, group: Group, superseded: boolean): void {
    this.commits.writeAt(v, Buffer.from(ITEM_CLOSE), group);
    v.sealed = true;
    v.superseded ||= superseded;
    group.touched.add(v);
  }

  /** A sealed version leaves memory once nobody holds it and its last write is synced. */
  evictIfSealed(v: Version): void {
    if (v.slot >= 0 || v.writers > 0 || !v.sealed || v.committed !== v.size) return;
    this.unload(v);
  }

  /** Keeps at most MAX_IDLE_VERSIONS loaded that no reader or writer holds. */
  capIdle(writers: number): void {
    if (this.loaded.size > this.slots.inUse + writers + MAX_IDLE_VERSIONS) this.evictIdle();
  }

  /** Sealed versions leave memory once nobody holds them; open ones past the cap do. */
  private evictIdle(): void {
    let idleOpen = 0;
    for (const v of this.loaded.values()) if (v.slot < 0 && v.writers === 0 && !v.sealed) idleOpen++;
    for (const v of this.loaded.values()) {
      if (v.slot >= 0 || v.writers > 0 || v.committed !== v.size) continue;
      if (!v.sealed && idleOpen <= MAX_IDLE_VERSIONS) continue;
      if (!v.sealed) idleOpen--;
      this.unload(v);
    }
  }

  private unload(v: Version): void {
    this.metas.flush(v);
    try {
      this.commits.syncBeforeClose(v);
    } catch (err) {
      // Stays loaded (its handle open); the kept log covers it at the next start.
      this.log.error(`could not sync ${v.key}.data: ${(err as Error).message}`);
      return;
    }
    if (v.fd >= 0) closeSync(v.fd);
    v.fd = -1;
    this.loaded.delete(v.key);
  }

  get writeHandles(): number {
    let fds = 0;
    for (const v of this.loaded.values()) if (v.fd >= 0) fds++;
    return fds;
  }
}
