import type { Log } from "../core/log.js";
import { LineSplitter, type PropertyRecord } from "../format/records.js";
import type { Store, StoredVersion, VersionState } from "../store/types.js";
import type { IndexDb, VersionBatch } from "./index-db.js";

/**
 * Keeps the index up with what the store commits, through the seam alone: told of each
 * version whose committed length changed (Store.onCommit, before the answers of the
 * writes that changed it), it reads the new bytes back, cuts them into records and writes
 * them to the index, a round of versions at a time, one index transaction each. Queries
 * wait for the rounds begun before them (caughtUp), so a query sees every write that was
 * answered before it was asked. At start-up it indexes what the index lacks.
 */

/** A version's bytes are read in pieces of at most this much. */
const READ_BYTES = 1 << 20;
/**
 * New bytes taken into one round, over all its versions: what the round's records and
 * its index transaction hold in memory. A version with more goes on in the next round.
 */
const ROUND_BYTES = 1 << 20;
/** Read handles kept open for versions written to recently. */
const HANDLES = 256;

interface Target {
  itemId: string;
  version: number;
  length: number;
  sealed: boolean;
  /** The bytes from `from` to `length`, as the store handed them over, or null: read them. */
  chunks: Uint8Array[] | null;
  from: number;
}

/** The shortest time between two rounds. */
const ROUND_MS = 5;

/** Appended bytes held for the next round, in all; past it they are read back instead. */
const HELD_BYTES = 4 << 20;

export type IndexedListener = (batches: VersionBatch[]) => void;

export class Indexer {
  private readonly pending = new Map<string, Target>();
  private readonly handles = new Map<string, StoredVersion>();
  private running: Promise<void> | null = null;
  private readonly listeners = new Set<IndexedListener>();
  private closed = false;
  /**
   * Waiters of caughtUp, each with the lengths it needs indexed: what was noted when it
   * asked. A round may index only part of a version (ROUND_BYTES), so a waiter is settled
   * by the index's progress, not by the round having run.
   */
  private waiters: { needs: Target[]; resolve: () => void }[] = [];
  /** The targets of the round running now (taken out of `pending`). */
  private inRound: Target[] = [];
  /** Versions whose indexing failed: a waiter does not wait for them. */
  private readonly failed = new Set<string>();
  /** Bytes of appended chunks held in pending targets. */
  private held = 0;
  /** The start-up listing of what the index lacks: queries wait for it. */
  private listing: Promise<void> = Promise.resolve();
  private lastRound = 0;

  constructor(
    private readonly db: IndexDb,
    private store: Store,
    private readonly log: Log,
    /** The longest line a version can hold (its largest property, escaped): more is damage. */
    private readonly maxLineBytes: number,
  ) {}

  /** A new store (after the old one died): handles on the old one are useless. */
  useStore(store: Store): void {
    for (const h of this.handles.values()) h.close();
    this.handles.clear();
    this.store = store;
  }

  onIndexed(listener: IndexedListener): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  /** From the store: a version's committed state changed (and, maybe, what it appended). */
  noteCommit(
    itemId: string,
    version: number,
    state: VersionState,
    appended?: { offset: number; bytes: Uint8Array },
  ): void {
    if (state.kind !== "open" && state.kind !== "sealed") return;
    const key = `${itemId}\u0000${version}`;
    const sealed = state.kind === "sealed";
    const t = this.pending.get(key);
    const kept =
      appended &&
      appended.offset + appended.bytes.length === state.length &&
      this.held + appended.bytes.length <= HELD_BYTES
        ? appended
        : null;
    if (t) {
      if (t.chunks && kept && kept.offset === t.length) {
        t.chunks.push(kept.bytes);
        this.held += kept.bytes.length;
      } else this.dropChunks(t);
      t.length = state.length;
      t.sealed = sealed;
    } else {
      const chunks = kept ? [kept.bytes] : null;
      if (kept) this.held += kept.bytes.length;
      this.pending.set(key, { itemId, version, length: state.length, sealed, chunks, from: kept?.offset ?? 0 });
    }
    this.kick();
  }

  private dropChunks(t: Target): void {
    if (!t.chunks) return;
    for (const c of t.chunks) this.held -= c.length;
    t.chunks = null;
  }

  /** Start-up: every version the store has that the index holds less of. */
  catchUp(): Promise<void> {
    const listing = this.listBehind();
    // Queries wait for the listing too: until it is in, nothing says what is missing.
    this.listing = listing.catch(() => undefined);
    return listing;
  }

  private async listBehind(): Promise<void> {
    const t0 = performance.now();
    const all = await this.store.versions();
    let behind = 0;
    for (const v of all) {
      if (v.state.kind !== "open" && v.state.kind !== "sealed") continue;
      const p = this.db.progress(v.itemId, v.version);
      if (p && p.indexed >= v.state.length) continue;
      behind++;
      this.noteCommit(v.itemId, v.version, v.state);
    }
    if (behind === 0) return;
    this.log.info(`indexing ${behind} of ${all.length} versions`, { event: "index_catch_up", versions: behind });
    await this.drained();
    this.log.info(`indexed ${behind} versions in ${Math.round(performance.now() - t0)} ms`, {
      event: "index_caught_up",
      versions: behind,
    });
  }

  /** Resolves once everything noted before this call is in the index and visible. */
  async caughtUp(): Promise<void> {
    await this.listing;
    await this.drained();
  }

  private drained(): Promise<void> {
    if (this.pending.size === 0 && !this.running) return Promise.resolve();
    const needs = [...this.pending.values(), ...this.inRound].map((t) => ({ ...t, chunks: null }));
    return new Promise((resolve) => this.waiters.push({ needs, resolve }));
  }

  /** Settles the waiters whose needs the index now holds. */
  private settle(all: boolean): void {
    this.waiters = this.waiters.filter((w) => {
      const met =
        all ||
        w.needs.every(
          (t) =>
            this.failed.has(`${t.itemId}\u0000${t.version}`) ||
            (this.db.progress(t.itemId, t.version)?.indexed ?? -1) >= t.length,
        );
      if (met) w.resolve();
      return !met;
    });
  }

  async close(): Promise<void> {
    this.closed = true;
    await this.running;
    for (const h of this.handles.values()) h.close();
    this.handles.clear();
  }

  private kick(): void {
    if (this.running || this.closed) return;
    this.running = this.loop().finally(() => {
      this.running = null;
      // Nothing is left to index: whoever still waits has all there will be.
      if (this.pending.size > 0 && !this.closed) this.kick();
      else this.settle(true);
    });
  }

  private async loop(): Promise<void> {
    while (this.pending.size > 0 && !this.closed) {
      // Rounds at most every ROUND_MS: each is an index transaction, and starting one costs
      // more than the few properties a busy writer commits in between.
      const wait = this.lastRound + ROUND_MS - performance.now();
      if (wait > 0) await new Promise((resolve) => setTimeout(resolve, wait));
      this.lastRound = performance.now();
      const round = [...this.pending.values()];
      this.pending.clear();
      this.inRound = round;
      // Versions to read back are opened together: each open is a trip to the store.
      const toOpen = round.filter((t) => !t.chunks).slice(0, HANDLES / 2);
      await Promise.all(toOpen.map((t) => this.handle(t).catch(() => undefined)));
      const batches: VersionBatch[] = [];
      let budget = ROUND_BYTES;
      for (const [i, t] of round.entries()) {
        if (budget <= 0) {
          // The rest waits for the next round, unless a newer commit noted them again.
          for (const rest of round.slice(i)) this.requeue(rest);
          break;
        }
        try {
          const b = await this.batchOf(t, budget);
          if (!b) continue;
          batches.push(b);
          this.failed.delete(`${t.itemId}\u0000${t.version}`);
          budget -= b.bytes;
          if (b.indexed < t.length) this.requeue(t);
        } catch (err) {
          this.failed.add(`${t.itemId}\u0000${t.version}`);
          this.log.error(`could not index ${t.itemId}/${t.version}: ${(err as Error).message}`);
        }
      }
      let applied = batches.length > 0;
      try {
        if (applied) await this.db.apply(batches);
      } catch (err) {
        // A full disk, say. The index stays where it was for these versions: their next
        // commit, or the next start-up, indexes them from there. Nobody waits for them now.
        applied = false;
        for (const b of batches) this.failed.add(`${b.itemId}\u0000${b.version}`);
        this.log.error(`could not write the index: ${(err as Error).message}`, { event: "index_write_failed" });
      }
      this.inRound = [];
      this.settle(false);
      if (applied) for (const l of this.listeners) l(batches);
    }
  }

  private requeue(t: Target): void {
    const key = `${t.itemId}\u0000${t.version}`;
    this.dropChunks(t);
    if (!this.pending.has(key)) this.pending.set(key, t);
  }

  /**
   * The records of `t` the index does not hold yet, about `budget` bytes of them at most
   * (always at least one whole line): `indexed` says how far they reach.
   */
  private async batchOf(t: Target, budget: number): Promise<(VersionBatch & { bytes: number }) | null> {
    const progress = this.db.progress(t.itemId, t.version);
    const from = progress?.indexed ?? 0;
    const chunks = t.chunks;
    this.dropChunks(t);
    if (from >= t.length && (progress?.sealed ?? false) === t.sealed) return null;
    const records: PropertyRecord[] = [];
    let indexed = from;
    if (chunks && t.from === from) {
      // What the store handed over with its notices: nothing to read back.
      const splitter = new LineSplitter();
      let at = from;
      for (const c of chunks) {
        const buf = Buffer.from(c.buffer, c.byteOffset, c.length);
        for (const r of splitter.push(buf, at)) records.push(r);
        at += c.length;
      }
      indexed = at - splitter.carried;
    } else if (from < t.length) {
      const handle = await this.handle(t);
      const splitter = new LineSplitter();
      for (let at = from; at < t.length && (at - from < budget || indexed === from); ) {
        const n = Math.min(READ_BYTES, t.length - at);
        const buf = Buffer.allocUnsafe(n);
        const got = handle.readNow(buf, at) ?? (await handle.read(buf, at));
        if (got <= 0) throw new Error(`the data ends at ${at}, before ${t.length}`);
        for (const r of splitter.push(got === n ? buf : buf.subarray(0, got), at)) records.push(r);
        at += got;
        if (splitter.carried > this.maxLineBytes) {
          throw new Error(`no line ends within ${this.maxLineBytes} bytes of byte ${at - splitter.carried}`);
        }
        // Up to the end of the last whole line (`<item>` and `</item>` are lines too).
        indexed = at - splitter.carried;
      }
    }
    const sealed = t.sealed && indexed >= t.length;
    if (sealed) this.dropHandle(t);
    return { itemId: t.itemId, version: t.version, records, indexed, sealed, bytes: indexed - from };
  }

  private async handle(t: Target): Promise<StoredVersion> {
    const key = `${t.itemId}\u0000${t.version}`;
    let h = this.handles.get(key);
    if (h) {
      this.handles.delete(key);
      this.handles.set(key, h); // most recent last
      return h;
    }
    const opened = await this.store.open(t.itemId, t.version);
    if (!opened) throw new Error("the store has no such version");
    h = opened;
    await h.ready();
    this.handles.set(key, h);
    if (this.handles.size > HANDLES) {
      const [oldest, handle] = this.handles.entries().next().value as [string, StoredVersion];
      handle.close();
      this.handles.delete(oldest);
    }
    return h;
  }

  private dropHandle(t: Target): void {
    const key = `${t.itemId}\u0000${t.version}`;
    this.handles.get(key)?.close();
    this.handles.delete(key);
  }
}
