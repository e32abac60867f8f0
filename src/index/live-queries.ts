import { ITEM_CLOSE } from "../format/item-file.js";
import type { IndexDb, IndexedVersion, VersionBatch } from "./index-db.js";
import { type Match, matches, type Occurrences, type QueryOptions, runQuery } from "./query-run.js";

/**
 * Live queries (README, "Queries"): one LiveQuery per distinct query, however many follow
 * it. It holds the set of versions that match now, and after each index round checks the
 * versions the round touched: a version that starts matching is an `add`, one that stops
 * (or is superseded by a newer version of its item, under versions=latest) a `remove`,
 * and one whose selected properties changed a `change`. Events go to every follower in
 * the order they happen (one listener: the engine fans them out); a follower joining gets
 * the set as it is, then the events after.
 */

export type LiveOp = "add" | "change" | "remove";

export interface LiveEvent {
  op: LiveOp;
  match: Match;
  /** The `next` of the property whose commit caused it. */
  at: number;
}

export type LiveListener = (e: LiveEvent) => void;

export class LiveQuery {
  /** The matching versions, by item: a new version finds its item's older ones at once. */
  private readonly matching = new Map<string, Map<number, Match>>();
  /** Batches are handled one after another, after the first run. */
  private queue: Promise<void>;
  /** Settles once the first run is in. */
  readonly ready: Promise<void>;

  constructor(
    private readonly db: IndexDb,
    private readonly options: Omit<QueryOptions, "after">,
    /** Selected names (null: none; "*": any), for what counts as a change. */
    private readonly select: string[] | "*" | null,
    private readonly occurrences: Occurrences,
    private readonly listener: LiveListener,
  ) {
    this.ready = this.firstRun();
    this.queue = this.ready.catch(() => undefined);
  }

  /** The versions matching now, in (item id, version) order (once ready). */
  current(): Match[] {
    return [...this.matching.values()].flatMap((versions) => [...versions.values()]).sort(byVersion);
  }

  /** After an index round: checks the versions it touched. */
  indexed(batches: VersionBatch[]): void {
    this.queue = this.queue.then(() => this.apply(batches)).catch(() => undefined);
  }

  private async firstRun(): Promise<void> {
    for await (const m of runQuery(this.db, this.options, this.occurrences)) this.keep(m);
  }

  private async apply(batches: VersionBatch[]): Promise<void> {
    for (const b of batches) {
      const at = b.records.length > 0 ? b.records[b.records.length - 1].next : b.indexed;
      const was = this.matching.get(b.itemId)?.get(b.version);
      if (this.options.versions === "latest") this.supersede(b, at);
      const v: IndexedVersion = { itemId: b.itemId, version: b.version, indexed: b.indexed, sealed: b.sealed };
      const newest = this.options.versions === "all" || this.db.newestVersion(b.itemId) <= b.version;
      const now = newest && (await matches(this.db, this.options, v, this.occurrences));
      const m: Match = { ...v, offset: b.sealed ? b.indexed - ITEM_CLOSE.length : b.indexed };
      if (now && !was) this.emit("add", m, at);
      else if (!now && was) this.emit("remove", m, at);
      else if (now && was && this.changed(b)) this.emit("change", m, at);
      else if (now) this.keep(m);
    }
  }

  /** A new version of an item ends the match of its older ones (versions=latest). */
  private supersede(b: VersionBatch, at: number): void {
    for (const m of [...(this.matching.get(b.itemId)?.values() ?? [])]) {
      if (m.version < b.version) this.emit("remove", m, at);
    }
  }

  private keep(m: Match): void {
    let versions = this.matching.get(m.itemId);
    if (!versions) {
      versions = new Map();
      this.matching.set(m.itemId, versions);
    }
    versions.set(m.version, m);
  }

  private forget(m: Match): void {
    const versions = this.matching.get(m.itemId);
    versions?.delete(m.version);
    if (versions?.size === 0) this.matching.delete(m.itemId);
  }

  private changed(b: VersionBatch): boolean {
    if (this.select === null) return false;
    if (this.select === "*") return b.records.length > 0;
    const names = this.select;
    return b.records.some((r) => names.includes(r.name));
  }

  private emit(op: LiveOp, match: Match, at: number): void {
    if (op === "remove") this.forget(match);
    else this.keep(match);
    this.listener({ op, match, at });
  }
}

function byVersion(a: Match, b: Match): number {
  const ia = Buffer.from(a.itemId);
  const ib = Buffer.from(b.itemId);
  return Buffer.compare(ia, ib) || a.version - b.version;
}
