import { errors } from "../core/errors.js";
import type { Faults } from "../core/faults.js";
import { type Log, SILENT } from "../core/log.js";
import { parseItemId, parseVersion, versionKey } from "../core/names.js";
import { ITEM_OPEN } from "../format/item-file.js";
import type { PropertySelect } from "../format/meta-file.js";
import type { PropertyRecord } from "../format/records.js";
import type { IndexDb } from "../index/index-db.js";
import { Indexer } from "../index/indexer.js";
import { type LiveOp, LiveQuery } from "../index/live-queries.js";
import { type Expr, parseQuery } from "../index/query-language.js";
import { decodeCursor, encodeCursor, type Match, runQuery } from "../index/query-run.js";
import { INLINE_BYTES, ParserPool } from "../parse/parser-pool.js";
import type { CompressOptions } from "../parse/property-parser.js";
import type { SchemaRegistry } from "../schema/registry.js";
import type { Backend, Binding, RecoveryReport, Store, StoredVersion } from "../store/types.js";
import { propertyBoundary } from "./boundaries.js";
import { Feed } from "./feed.js";
import { type PropertyRead, readProperties } from "./property-reads.js";
import { type ReaderSource, ReaderStream } from "./reader.js";
import { SchemaBindings } from "./schema-bindings.js";
import { type WriteResult, Writer, type WriteTarget, writeWhole } from "./writer.js";

/**
 * The engine's one interface to the front end: open a writer, open a reader, close.
 * Everything about threads, files and shared memory stays behind it.
 */

export { DbError, type ErrorCode, type ErrorDetails, errors, ReaderGone, StartupError } from "../core/errors.js";
export { parseItemId, parseVersion } from "../core/names.js";
export type { PropertyRecord } from "../format/records.js";
export type { Match } from "../index/query-run.js";
export type { Binding } from "../store/types.js";
export type { PropertyRead } from "./property-reads.js";
export { WriteFailure, type WriteResult, type Writer } from "./writer.js";
export { encodeCursor };

export interface EngineOptions {
  /** Where the bytes are stored: the one thing start-up chooses. */
  backend: Backend;
  /** Parser pool size; undefined lets piscina choose from the CPU count. */
  parserThreads?: number;
  maxPropertyBytes: number;
  /** Large binary values stored compressed; undefined: never. */
  compress?: CompressOptions;
  /** Test hooks (README, "Fault injection"). */
  faults?: Faults;
  log?: Log;
  /** The secondary index, opened by start-up; without it, queries are refused. */
  index?: IndexDb;
  /** The schema registry, opened by start-up. */
  schemas?: SchemaRegistry;
}

export interface QueryRequest {
  where: string;
  /** Names whose newest records each item carries; "*" for all; null for none. */
  select: string[] | "*" | null;
  versions: "latest" | "all";
  match: "latest" | "any";
  cursor?: string;
}

export interface QueryEvent {
  op: LiveOp;
  item: QueryItem;
  at: number;
  /** Room for the protocol to keep the event's encoding: one per event, for every follower. */
  text?: string;
}

export interface QueryFollower {
  /** The versions matching when the follow began, with their selected records. */
  initial: QueryItem[];
  close(): void;
}

export interface QueryItem extends Match {
  /** [name, record JSON] of the selected properties, or null without ?select. */
  properties: [string, string][] | null;
  /** The schema the version is pinned to, if any. */
  schema?: Binding;
}

export interface WriteOptions {
  expectedOffset?: number;
  /** Seal the version once this request's properties are committed. */
  seal?: boolean;
  /** The body's Content-Length, if it has one. */
  contentLength?: number;
  /** ?type=: the schema type a version this write creates is bound to. */
  type?: string;
}

/** A body up to this size may be handed over whole (Engine.writeWhole) instead of streamed. */
export const SMALL_BODY_BYTES = INLINE_BYTES;

export interface ReadOptions {
  offset: number;
  /**
   * The last byte wanted, inclusive (Range: bytes=A-B): a bounded read sends what is
   * committed now from `offset` up to that byte, and ends. It never follows.
   */
  last?: number;
  /** The last `suffix` bytes committed now (Range: bytes=-N); `offset` is ignored. */
  suffix?: number;
  /**
   * The read comes from a Range header: a fixed read that would start at its end is not
   * satisfiable (RFC 9110), where ?offset there simply reads nothing.
   */
  range?: boolean;
  /**
   * A typed read (records, not bytes): `offset` must be a property boundary, and 0 starts
   * after `<item>\n`. The session's `start` is where it begins.
   */
  typed?: boolean;
  /** false: send what is committed now and end. */
  follow: boolean;
  /** false: fail with version_not_found instead of waiting for the version to exist. */
  wait: boolean;
  /**
   * A typed read that begins with the newest record of each name, as of a boundary it
   * then reads on from (the session's `start`); `offset` is not used.
   */
  snapshot?: boolean;
  /** Aborts the wait for a version that does not exist yet. */
  signal?: AbortSignal;
}

export interface EngineStats {
  feeds: number;
  readers: number;
  writers: number;
  slots: number;
  versions: number;
  writeHandles: number;
  /** Write requests the store is tracking (begun, not yet finished or dropped). */
  storageWriters: number;
  /** Body bytes the write requests hold now: unparsed, being parsed, or waiting to commit. */
  writeQueueBytes: number;
}

export interface ReadSession {
  /** First byte the stream sends. */
  start: number;
  /** The version's state when the response began. */
  sealed: boolean;
  length: number;
  /** Where the stream will end, when that is known now (sealed, or follow=false). */
  end: number | null;
  /** A snapshot read's records: the newest of each name before `start`, in file order. */
  snapshot?: PropertyRecord[];
  /** Call exactly once: returns the byte stream (HEAD requests just close()). */
  stream(): ReaderStream;
  close(): void;
}

export class Engine {
  /** One per version with live readers, by version key. */
  private readonly feeds = new Map<string, Feed>();
  private closing = false;

  private readonly log: Log;

  private readonly indexer: Indexer | null;
  private liveHooked = false;

  private constructor(
    private readonly options: Readonly<EngineOptions>,
    private store: Store,
    private readonly pool: ParserPool,
  ) {
    this.log = options.log ?? SILENT;
    // A line is its property's value escaped (at most 6 bytes a character) and its tags.
    const maxLine = options.maxPropertyBytes * 6 + 64 * 1024;
    this.indexer = options.index ? new Indexer(options.index, store, this.log, maxLine) : null;
    this.bindings = new SchemaBindings(options.schemas);
  }

  private readonly bindings: SchemaBindings;

  private restarts = 0;
  private readonly writers = new Set<Writer>();
  /** Requests in writeWhole's short path: they have no Writer to count. */
  private readonly smallWrites = { count: 0, bytes: 0 };
  private restarting: Promise<void> | null = null;
  /** Ends the wait before a restart at once (close). */
  private skipRestartDelay: (() => void) | null = null;

  /** Opens the backend's store (after its recovery); on failure the backend is closed. */
  static async open(options: EngineOptions): Promise<Engine> {
    const store = await options.backend.open().catch((err: Error) => {
      options.backend.close();
      throw err;
    });
    const engine = new Engine(options, store, new ParserPool(options.parserThreads, options.faults?.parserCrash));
    await engine.loadBindings().catch(async (err: Error) => {
      await engine.close();
      throw err;
    });
    engine.watchStore();
    engine.followCommits();
    return engine;
  }

  /** Which versions are bound to a schema: none can be while no type is registered. */
  private async loadBindings(): Promise<void> {
    if ((this.options.schemas?.list().length ?? 0) === 0) return;
    this.bindings.load(await this.store.versions());
  }

  /** The schema a version is pinned to, if any (README, "Schemas"). */
  bindingOf(itemId: string, version: number): Binding | undefined {
    return this.bindings.of(itemId, version);
  }

  /**
   * The bindings and the index follow the store's commits; what the index lacks is
   * indexed in the background.
   */
  private followCommits(): void {
    const indexer = this.indexer;
    const bindings = this.bindings;
    this.store.onCommit((itemId, version, state, appended) => {
      bindings.committed(itemId, version, state);
      indexer?.noteCommit(itemId, version, state, appended);
    });
    if (!indexer) return;
    if (!this.liveHooked) {
      this.liveHooked = true;
      indexer.onIndexed((batches) => {
        for (const hub of this.live.values()) hub.query.indexed(batches);
      });
    }
    indexer.useStore(this.store);
    indexer.catchUp().catch((err: Error) => this.log.error(`index catch-up failed: ${err.message}`));
  }

  /** The schema registry (README, "Schemas"). */
  get schemas(): SchemaRegistry {
    if (!this.options.schemas) throw errors.internal("this engine was opened without a schema registry");
    return this.options.schemas;
  }

  /** Live queries by what they ask, with their followers. */
  private readonly live = new Map<string, { query: LiveQuery; followers: Set<(e: QueryEvent) => void> }>();

  /**
   * A live query (README, "Queries"): the versions matching now, then every change to
   * that set as properties commit, to `listener`, until close(). Followers of the same
   * query share one LiveQuery, and each event is made once for all of them.
   */
  async followQuery(q: QueryRequest, listener: (e: QueryEvent) => void): Promise<QueryFollower> {
    const { index, indexer, where } = await this.queryable(q);
    await indexer.caughtUp();
    const id = JSON.stringify([q.where, q.select, q.versions, q.match]);
    let hub = this.live.get(id);
    if (!hub) {
      const followers = new Set<(e: QueryEvent) => void>();
      const select = q.select;
      const query = new LiveQuery(
        index,
        { where, versions: q.versions, match: q.match },
        select,
        this.occurrences,
        (e) => {
          const event: QueryEvent = {
            op: e.op,
            item: this.queryItem(index, e.match, select),
            at: e.at,
          };
          for (const f of followers) f(event);
        },
      );
      hub = { query, followers };
      this.live.set(id, hub);
    }
    const mine = hub;
    try {
      await mine.query.ready;
    } catch (err) {
      if (this.live.get(id) === mine) this.live.delete(id);
      throw err;
    }
    // In one step: the set as it is, and every event after it.
    mine.followers.add(listener);
    const initial = mine.query.current().map((m) => this.queryItem(index, m, q.select));
    return {
      initial,
      close: () => {
        mine.followers.delete(listener);
        if (mine.followers.size === 0 && this.live.get(id) === mine) this.live.delete(id);
      },
    };
  }

  /** The index a query runs on, and its parsed `where`; refusals before any waiting. */
  private async queryable(q: QueryRequest): Promise<{ index: IndexDb; indexer: Indexer; where: Expr }> {
    await this.assertOpen();
    const { index } = this.options;
    if (!index || !this.indexer) throw errors.indexDisabled();
    return { index, indexer: this.indexer, where: parseQuery(q.where) };
  }

  private readonly occurrences = async (itemId: string, version: number, name: string) =>
    (await readProperties(this.store, itemId, version, { name, latest: false })).records;

  /**
   * A query (README, "Queries"): the matching versions in (item id, version) order, each
   * with its selected records, as of every write answered before the call.
   */
  async *query(q: QueryRequest): AsyncGenerator<QueryItem> {
    const { index, indexer, where } = await this.queryable(q);
    const after = q.cursor === undefined ? undefined : decodeCursor(q.cursor);
    await indexer.caughtUp();
    for await (const m of runQuery(index, { where, versions: q.versions, match: q.match, after }, this.occurrences)) {
      yield this.queryItem(index, m, q.select);
    }
  }

  private queryItem(index: IndexDb, m: Match, select: QueryRequest["select"]): QueryItem {
    const item: QueryItem = { ...m, properties: selected(index, m, select) };
    const schema = this.bindings.of(m.itemId, m.version);
    if (schema) item.schema = schema;
    return item;
  }

  /**
   * If the store dies (the file engine's storage worker: a bug, a fault), requests in
   * flight on it fail with 500, its readers are cut (they reconnect), and the backend
   * opens a new one: it recovers like any start-up, and new requests go to it.
   */
  private watchStore(): void {
    const current = this.store;
    current.died.then((err) => {
      if (this.closing || this.store !== current) return;
      this.log.error(`the store failed (${err.message}); opening a new one`, { event: "storage_restart" });
      for (const feed of this.feeds.values()) feed.fail(errors.internal("storage restarted"));
      this.feeds.clear();
      this.restarting = this.reopenAfter(Math.min(10_000, 100 * 2 ** this.restarts++));
      this.restarting.catch((e: Error) => this.log.error(`storage restart failed: ${e.message}`));
    });
  }

  /**
   * Opens a new store after `delayMs`, unless a shutdown comes first (close() cuts the
   * wait short): no new store may start then, least of all after close() let the backend
   * go (the file engine's data-directory lock).
   */
  private async reopenAfter(delayMs: number): Promise<void> {
    await new Promise<void>((resolve) => {
      const timer = setTimeout(resolve, delayMs);
      this.skipRestartDelay = () => {
        clearTimeout(timer);
        resolve();
      };
    });
    if (this.closing) return;
    const next = await this.options.backend.open();
    if (this.closing) {
      await next.close();
      return;
    }
    this.store = next;
    await this.loadBindings();
    this.restarting = null;
    this.watchStore();
    this.followCommits();
  }

  /** What start-up repair found: versions seen, repaired, damaged, and how long it took. */
  get recovery(): RecoveryReport {
    return this.store.recovery;
  }

  /**
   * Starts one write request. Nothing waits for the store here: a refusal
   * (sealed, superseded, X-Expected-Offset) arrives as the writer's result, and the
   * version is created by the request's first commit.
   */
  async openWriter(itemId: string, version: number, opts: WriteOptions = {}): Promise<Writer> {
    await this.assertOpen();
    const target = this.writeTarget(itemId, version, opts);
    if (!this.bindings.untyped(itemId, opts.type)) {
      target.gate = await this.bindings.gate(this.store, itemId, target.version, opts.type);
    }
    return this.newWriter(target);
  }

  /**
   * One whole write request whose body (at most SMALL_BODY_BYTES) has fully arrived: the
   * same answer as a Writer fed the body, for a fraction of the work. Rejects with a
   * WriteFailure, like a Writer's result.
   */
  writeWhole(itemId: string, version: number, opts: WriteOptions, body: Uint8Array): Promise<WriteResult> {
    // Not an async function: this runs once per small request, and each await is a hop.
    if (this.closing || this.restarting) {
      return this.assertOpen().then(() => this.writeWhole(itemId, version, opts, body));
    }
    let target: WriteTarget;
    try {
      target = this.writeTarget(itemId, version, opts, body.length);
    } catch (err) {
      return Promise.reject(err);
    }
    if (!this.bindings.untyped(itemId, opts.type)) return this.writeWholeTyped(target, opts.type, body);
    return this.writeWholeTo(target, body);
  }

  /** writeWhole for a version with a schema, once the engine knows which (at once, usually). */
  private writeWholeTyped(target: WriteTarget, type: string | undefined, body: Uint8Array): Promise<WriteResult> {
    let gate: ReturnType<SchemaBindings["gate"]>;
    try {
      gate = this.bindings.gate(this.store, target.itemId, target.version, type);
    } catch (err) {
      return Promise.reject(err);
    }
    if (gate instanceof Promise) {
      return gate.then((g) => {
        target.gate = g;
        return this.writeWholeTo(target, body);
      });
    }
    target.gate = gate;
    return this.writeWholeTo(target, body);
  }

  private writeWholeTo(target: WriteTarget, body: Uint8Array): Promise<WriteResult> {
    const counts = this.smallWrites;
    const small =
      body.length <= SMALL_BODY_BYTES
        ? writeWhole(this.writerDeps(), target, body, () => {
            counts.count--;
            counts.bytes -= body.length;
          })
        : null;
    if (!small) {
      const writer = this.newWriter(target);
      writer.push(Buffer.from(body.buffer, body.byteOffset, body.length));
      return writer.finish();
    }
    counts.count++;
    counts.bytes += body.length;
    return small;
  }

  private writeTarget(
    itemId: string,
    version: number,
    opts: WriteOptions,
    contentLength = opts.contentLength,
  ): WriteTarget {
    parseItemId(itemId);
    return {
      itemId,
      version: checkVersion(version),
      expectedOffset: opts.expectedOffset,
      seal: opts.seal ?? false,
      contentLength,
    };
  }

  private writerDeps() {
    const { maxPropertyBytes, compress } = this.options;
    return { pool: this.pool, store: this.store, maxPropertyBytes, compress };
  }

  private newWriter(target: WriteTarget): Writer {
    const writer = new Writer(this.writerDeps(), target);
    this.writers.add(writer);
    const done = () => this.writers.delete(writer);
    writer.result.then(done, done);
    return writer;
  }

  /**
   * Property reads (contract section 6), from the store's index: every name's newest
   * occurrence, or one name's occurrences, read back as records.
   */
  async readProperties(itemId: string, version: number, select: PropertySelect): Promise<PropertyRead> {
    await this.assertOpen();
    parseItemId(itemId);
    return readProperties(this.store, itemId, checkVersion(version), select);
  }

  /** Opens a reader; waits for the version to exist unless `wait` is false. */
  async openReader(itemId: string, version: number, opts: ReadOptions): Promise<ReadSession> {
    await this.assertOpen();
    parseItemId(itemId);
    if (opts.snapshot) {
      // The tail starts exactly where the index was taken: no gap, no record twice.
      const taken = await readProperties(this.store, itemId, checkVersion(version), { latest: true });
      const session = await this.openReader(itemId, version, { ...opts, snapshot: false, offset: taken.at });
      return { ...session, snapshot: taken.records };
    }
    const handle = await this.store.open(itemId, checkVersion(version));
    if (!handle) throw errors.versionNotFound(itemId, version);
    const release = once(() => handle.close());
    try {
      // Shutdown may have begun while the open was in flight: a feed made now would be
      // one that shutdown never ended.
      if (this.closing) throw errors.shuttingDown();
      const { opened } = handle;
      if (opened.kind === "absent" && !opts.wait) throw errors.versionNotFound(itemId, version);
      if (opened.kind === "sealed") {
        return await this.snapshot(handle, opened.length, true, await typedStart(handle, opts, opened.length), release);
      }
      const feed = this.feedFor(versionKey(itemId, version), handle);
      feed.hold();
      try {
        const state = await feed.whenExists(opts.signal);
        if (state.kind !== "open" && state.kind !== "sealed") throw errors.versionNotFound(itemId, version);
        const sealed = state.kind === "sealed";
        const from = await typedStart(handle, opts, state.length);
        // A fixed range reads on its own handle; the feed was only needed to wait.
        if (sealed || !follows(from)) return await this.snapshot(handle, state.length, sealed, from, release);
        await feed.ready();
        return this.liveSession(feed, state.length, from, release);
      } finally {
        feed.unhold();
      }
    } catch (err) {
      release();
      throw err;
    }
  }

  private liveSession(feed: Feed, length: number, opts: ReadOptions, release: () => void): ReadSession {
    let stream: ReaderStream | null = null;
    // Hold the feed while headers are written, so it does not close under us.
    const holder = new ReaderStream(feed, opts.offset);
    feed.attach(holder);
    const done = once(() => {
      if (!stream) holder.destroy();
      release();
    });
    return {
      start: opts.offset,
      sealed: false,
      length,
      end: null,
      stream: () => {
        stream = holder;
        stream.once("close", done);
        return stream;
      },
      close: done,
    };
  }

  /** A read of a fixed range of the `length` bytes committed now: sealed, bounded, or ?follow=false. */
  private async snapshot(
    handle: StoredVersion,
    length: number,
    sealed: boolean,
    opts: ReadOptions,
    release: () => void,
  ): Promise<ReadSession> {
    const { start, limit } = fixedRange(length, opts);
    await handle.ready();
    const source = fixedSource(handle, limit);
    return {
      start,
      sealed,
      length,
      end: limit,
      stream: () => {
        const s = new ReaderStream(source, start);
        s.once("close", release);
        return s;
      },
      close: release,
    };
  }

  /** The version's feed; a new one watches through its own share of the reader's handle. */
  private feedFor(key: string, handle: StoredVersion): Feed {
    let feed = this.feeds.get(key);
    if (!feed || feed.isClosed) {
      feed = new Feed(handle.share(), (f) => {
        if (this.feeds.get(key) === f) this.feeds.delete(key);
      });
      this.feeds.set(key, feed);
      feed.start();
    }
    return feed;
  }

  /**
   * Counters for tests and operators: feeds (one Atomics.waitAsync each), live readers,
   * write requests in flight, and from the store the slots, loaded versions and
   * write handles it holds.
   */
  async stats(): Promise<EngineStats> {
    let readers = 0;
    for (const f of this.feeds.values()) readers += f.readerCount;
    let writeQueueBytes = this.smallWrites.bytes;
    for (const w of this.writers) writeQueueBytes += w.queuedBytes;
    const stored = await this.store.stats();
    return {
      feeds: this.feeds.size,
      readers,
      writers: this.writers.size + this.smallWrites.count,
      writeQueueBytes,
      slots: stored.slots,
      versions: stored.versions,
      writeHandles: stored.writeHandles,
      storageWriters: stored.writers,
    };
  }

  /** Ends live readers at a property boundary, then stops the pool and the store. */
  async close(): Promise<void> {
    if (this.closing) return;
    this.closing = true;
    for (const feed of this.feeds.values()) feed.endAll();
    this.skipRestartDelay?.();
    await this.restarting?.catch(() => undefined);
    await this.pool.close();
    await this.indexer?.close();
    await this.store.close();
    await this.options.index?.close();
    this.options.backend.close();
  }

  private async assertOpen(): Promise<void> {
    if (this.closing) throw errors.shuttingDown();
    if (!this.restarting) return;
    await this.restarting;
    // A shutdown during the restart ends it without a new store.
    if (this.closing) throw errors.shuttingDown();
  }
}

/**
 * The options with a typed read's offset checked and moved past `<item>\n`. The check
 * reads through a handle of its own, closed after it: a live reader reads nothing itself,
 * and ten thousand of them must not hold a file descriptor each.
 */
async function typedStart(handle: StoredVersion, opts: ReadOptions, length: number): Promise<ReadOptions> {
  if (!opts.typed) return opts;
  if (opts.offset === 0 || opts.offset === ITEM_OPEN.length) return { ...opts, offset: ITEM_OPEN.length };
  const probe = handle.share();
  try {
    await probe.ready();
    return { ...opts, offset: await propertyBoundary(probe, opts.offset, length) };
  } finally {
    probe.close();
  }
}

function follows(opts: ReadOptions): boolean {
  return opts.follow && opts.last === undefined && opts.suffix === undefined;
}

/**
 * [start, limit) of a fixed read of `length` committed bytes, or range_not_satisfiable.
 * A bounded range past the end is cut to it (RFC 9110 14.1.2); a Range starting at or
 * past the end, or an empty suffix, has nothing to send. ?offset may start at the end
 * exactly: it sends nothing, as a live reader there would until the next write.
 */
function fixedRange(length: number, opts: ReadOptions): { start: number; limit: number } {
  const strict = opts.range === true || opts.last !== undefined || opts.suffix !== undefined;
  const start = opts.suffix !== undefined ? Math.max(0, length - opts.suffix) : opts.offset;
  const limit = opts.last !== undefined ? Math.min(length, opts.last + 1) : length;
  if (start > length || (strict && start >= limit)) {
    const asked = opts.suffix !== undefined ? `the last ${opts.suffix} bytes` : `offset ${start}`;
    throw errors.rangeNotSatisfiable(asked, length);
  }
  return { start, limit };
}

function fixedSource(handle: StoredVersion, limit: number): ReaderSource {
  return {
    available: () => limit,
    end: () => limit,
    interrupted: () => false,
    read: (buf, position) => handle.read(buf, position),
    join: () => false,
    leave: () => undefined,
    detach: () => undefined,
  };
}

function checkVersion(version: number): number {
  if (!Number.isSafeInteger(version) || version < 1) parseVersion(String(version));
  return version;
}

function once(fn: () => void): () => void {
  let called = false;
  return () => {
    if (called) return;
    called = true;
    fn();
  };
}

/** The selected records of a match, in the order asked (all: in name order). */
function selected(index: IndexDb, m: Match, select: string[] | "*" | null): [string, string][] | null {
  if (select === null) return null;
  if (select === "*") {
    const out: [string, string][] = [];
    for (const s of index.latestValues(m.itemId, m.version)) out.push([s.name, s.record]);
    return out;
  }
  const out: [string, string][] = [];
  for (const name of select) {
    const s = index.latestValue(m.itemId, m.version, name);
    if (s) out.push([name, s.record]);
  }
  return out;
}
