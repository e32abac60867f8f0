import { closeSync, fdatasyncSync, readdirSync, rmSync } from "node:fs";
import type { Log } from "../../core/log.js";
import { parseVersionKey } from "../../core/names.js";
import { ITEM_CLOSE, ITEM_OPEN } from "../../format/item-file.js";
import type { Binding } from "../types.js";
import type { VersionRef } from "./group.js";
import type { GroupCommit } from "./group-commit.js";
import type { MetaKeeper } from "./meta-keeper.js";
import type { FsyncMode } from "./protocol.js";
import { cutTornTail, isConsistent, quickState } from "./startup-check.js";
import { loadVersion } from "./version-loader.js";
import type { VersionCache } from "./versions.js";

/**
 * Start-up repair, for every version in the data dir, before the server listens (the
 * commit log has been replayed by then): cheap checks first (startup-check.ts), the full
 * repair only where they disagree. A file that cannot be repaired is reported by name,
 * left untouched, and refused later with version_damaged; the rest of the data dir
 * serves. Missing indexes are rebuilt after listening, one per turn of the event loop.
 */
export class Recovery {
  /** Versions whose .meta is rebuilt in the background after start-up. */
  private readonly backlog: VersionRef[] = [];

  constructor(
    private readonly dataDir: string,
    private readonly fsync: FsyncMode,
    private readonly versions: VersionCache,
    private readonly commits: GroupCommit,
    private readonly metas: MetaKeeper,
    /** True once the worker is closing: background rebuilds stop. */
    private readonly closed: () => boolean,
    private readonly log: Log,
  ) {}

  /** Lists the data directory's versions into the cache; removes abandoned .meta rewrites. */
  scan(): VersionRef[] {
    const found: VersionRef[] = [];
    for (const name of readdirSync(this.dataDir)) {
      if (name.endsWith(".meta.tmp")) rmSync(`${this.dataDir}/${name}`, { force: true });
      if (!name.endsWith(".data")) continue;
      const key = name.slice(0, -5);
      const parsed = parseVersionKey(key);
      if (!parsed) continue;
      found.push({ key, ...parsed });
      this.versions.found(key, parsed.itemId, parsed.version);
    }
    return found;
  }

  repair(found: VersionRef[]): { versions: number; repaired: number; damaged: string[] } {
    let repaired = 0;
    for (const { key, itemId, version } of found) {
      try {
        const q = quickState(this.dataDir, key);
        const mustSeal = !q.sealed && version < this.versions.newest(itemId);
        const known = (length: number, sealed: boolean, binding = q.meta?.binding) =>
          this.versions.states.set(key, { itemId, version, length, sealed, binding });
        if (isConsistent(q) && !mustSeal) {
          known(q.size, q.sealed);
          continue;
        }
        repaired++;
        if (q.meta === null && q.size >= ITEM_OPEN.length && !mustSeal) {
          // No usable index: make the file whole now, rebuild the index after listening.
          // (Sealing writes, so it waits for the full scan that proves the file sound.)
          known(q.wholeTail ? q.size : cutTornTail(this.dataDir, key, q.size), q.sealed);
          this.backlog.push({ key, itemId, version });
          continue;
        }
        const v = this.repairNow(key, itemId, version, mustSeal);
        known(v.committed, v.sealed, v.binding);
      } catch (err) {
        this.versions.damaged.set(key, (err as Error).message);
      }
    }
    if (this.backlog.length > 0) setImmediate(() => this.rebuildNextMeta());
    return { versions: found.length, repaired, damaged: [...this.versions.damaged.values()] };
  }

  /** Full repair: index from .meta plus a scan of what it does not cover. */
  private repairNow(
    key: string,
    itemId: string,
    version: number,
    mustSeal: boolean,
  ): { committed: number; sealed: boolean; binding: Binding | undefined } {
    const v = loadVersion(this.dataDir, itemId, version, key);
    if (mustSeal && !v.sealed) {
      this.commits.writeAt(v, Buffer.from(ITEM_CLOSE));
      v.sealed = true;
      if (this.fsync !== "never") fdatasyncSync(v.fd);
      v.committed = v.size;
    }
    this.metas.write(v);
    if (v.fd >= 0) closeSync(v.fd);
    return v;
  }

  /**
   * Rebuilds one missing index per turn of the event loop, so requests interleave. A
   * version someone opens first is rebuilt by that open (load) instead.
   */
  private rebuildNextMeta(): void {
    const next = this.backlog.shift();
    if (!next || this.closed()) return;
    if (!this.versions.loaded.has(next.key) && !this.versions.damaged.has(next.key)) {
      try {
        this.repairNow(next.key, next.itemId, next.version, false);
      } catch (err) {
        this.versions.damaged.set(next.key, (err as Error).message);
        this.log.error(`${(err as Error).message}`);
      }
    }
    if (this.backlog.length > 0) setImmediate(() => this.rebuildNextMeta());
  }
}
