import { Worker } from "node:worker_threads";
import { errors, fromWire } from "../../core/errors.js";
import type { Log } from "../../core/log.js";
import { versionKey } from "../../core/names.js";
import { PROPERTY_TYPES } from "../../format/item-file.js";
import {
  dataPath,
  type IndexedProperty,
  MetaCorrupt,
  metaPath,
  type PropertySelect,
  readMetaIndex,
} from "../../format/meta-file.js";
import { scanProperties } from "../../format/records.js";
import { transferables } from "../../parse/property-parser.js";
import type {
  AppendArgs,
  BeginArgs,
  CommitListener,
  IndexedProperties,
  RecoveryReport,
  Store,
  StoredVersion,
  StoredVersionInfo,
  StoreStats,
  VersionState,
  WriteArgs,
} from "../types.js";
import { FileVersion } from "./file-version.js";
import { eachReply } from "./packed-replies.js";
import { isPackable, packBatch } from "./packed-writes.js";
import type {
  DoneReply,
  FromStorage,
  OpenReply,
  PropertiesReply,
  ReadyMessage,
  Reply,
  StatsReply,
  StorageWorkerData,
  ToStorage,
  VersionList,
  VersionsReply,
} from "./protocol.js";
import { createLengthTable } from "./shared-layout.js";

/** A message that expects a reply; its `id` is assigned when it is sent. */
type Request = Extract<ToStorage, { id: number }>;

/**
 * The file engine's Store, on the main thread: its handle on the storage worker, turning
 * messages into promises. Every pending promise is settled exactly once: by its reply,
 * or by the worker's death.
 */
export class FileStore implements Store {
  private readonly pending = new Map<number, { resolve: (r: Reply) => void; reject: (e: Error) => void }>();
  private nextId = 1;
  private nextWriter = 1;
  private dead: Error | null = null;
  private onReady!: { resolve: (m: ReadyMessage) => void; reject: (e: Error) => void };
  private onDied!: (e: Error) => void;
  /** Resolves if the worker dies (never on a clean close). */
  readonly died = new Promise<Error>((resolve) => {
    this.onDied = resolve;
  });
  private closing = false;
  private outbox: ToStorage[] = [];
  private outboxTransfer: ArrayBuffer[] = [];
  /** A batch is with the worker and it has not said `idle` since. */
  private busy = false;
  /** Settles once start-up repair is done (or the worker died trying). */
  private readonly ready = new Promise<ReadyMessage>((resolve, reject) => {
    this.onReady = { resolve, reject };
  });

  private commitListener: CommitListener | null = null;
  private recovered: RecoveryReport = { versions: 0, repaired: 0, damaged: [], ms: 0 };

  private constructor(
    private readonly worker: Worker,
    private readonly dataDir: string,
    private readonly lengths: BigInt64Array,
    private readonly log: Log,
  ) {
    worker.on("message", (msg: FromStorage) => this.onMessage(msg));
    worker.on("error", (err) => this.die(err));
    worker.on("exit", (code) => this.die(new Error(`storage worker exited with code ${code}`)));
  }

  /** Starts the storage worker; resolves once its start-up repair is done. */
  static async start(options: Omit<StorageWorkerData, "lengths"> & { log: Log }): Promise<FileStore> {
    const { log, ...data } = options;
    const lengths = createLengthTable();
    const worker = new Worker(new URL("./storage-worker.js", import.meta.url), {
      workerData: { ...data, lengths } satisfies StorageWorkerData,
      resourceLimits: { maxYoungGenerationSizeMb: 8 },
    });
    const store = new FileStore(worker, options.dataDir, lengths, log);
    const ready = await store.ready.catch(async (err: Error) => {
      await store.close();
      throw err;
    });
    const { versions, repaired, damaged, ms } = ready;
    store.recovered = { versions, repaired, damaged, ms };
    for (const line of damaged) options.log.error(line, { event: "version_damaged" });
    return store;
  }

  get recovery(): RecoveryReport {
    return this.recovered;
  }

  async open(itemId: string, version: number): Promise<StoredVersion | null> {
    const reply = (await this.request({ type: "open", id: 0, itemId, version })) as OpenReply;
    if (reply.slot < 0) return null;
    const path = dataPath(this.dataDir, versionKey(itemId, version));
    return FileVersion.lend(this.lengths, reply.slot, path, () => this.release(reply.slot));
  }

  /**
   * The worker answers with the entries its .meta file does not hold yet; the file is
   * read here, off the worker's thread. It may have been replaced meanwhile by a newer
   * one, which holds more: each part is taken up to where the file says it ends.
   */
  async properties(itemId: string, version: number, select: PropertySelect): Promise<IndexedProperties> {
    const { name, latest } = select;
    const reply = (await this.request({ type: "properties", id: 0, itemId, version, name, latest })) as PropertiesReply;
    const state: VersionState = !reply.exists
      ? { kind: reply.superseded ? "gone" : "absent" }
      : { kind: reply.sealed ? "sealed" : "open", length: reply.length };
    if (!reply.exists) return { state, entries: [] };
    const key = versionKey(itemId, version);
    let file = reply.metaFile ? await this.metaIndex(key, reply.length, select) : null;
    // The .meta file was rewritten since the reply: its newest of a name may lie past the
    // reply's length (and be dropped below), hiding an older one before it. Read every
    // occurrence then, and take the newest before the length.
    if (file && latest && file.size > reply.length)
      file = await this.metaIndex(key, reply.length, { name, latest: false });
    const covered = file?.size ?? 0;
    const entries = file ? file.entries.filter((e) => e.offset < reply.length) : [];
    for (let i = 0; i < reply.names.length; i++) {
      if (reply.offsets[i] < covered) continue;
      entries.push({
        name: reply.names[i],
        type: PROPERTY_TYPES[reply.types[i]],
        offset: reply.offsets[i],
        length: reply.lengths[i],
      });
    }
    if (latest) return { state, entries: newestOfEach(entries) };
    entries.sort((a, b) => a.offset - b.offset);
    return { state, entries };
  }

  /**
   * The .meta file's entries; if it cannot be read, the same from the data file (slower,
   * and said in the log: the file is rewritten at the version's next write).
   */
  private async metaIndex(
    key: string,
    length: number,
    select: PropertySelect,
  ): Promise<{ size: number; entries: IndexedProperty[] }> {
    try {
      const file = await readMetaIndex(metaPath(this.dataDir, key), select);
      if (file) return file;
      this.log.error(`${key}.meta is missing; reading the properties from ${key}.data`);
    } catch (err) {
      if (!(err instanceof MetaCorrupt)) throw err;
      this.log.error(`${key}.meta is unreadable (${err.message}); reading the properties from ${key}.data`);
    }
    return { size: length, entries: await scanProperties(dataPath(this.dataDir, key), length, select) };
  }

  onCommit(listener: CommitListener): void {
    this.commitListener = listener;
  }

  async versions(): Promise<StoredVersionInfo[]> {
    const { versions: flat, bindings } = (await this.request({ type: "versions", id: 0 })) as VersionsReply;
    const out: StoredVersionInfo[] = [];
    for (let i = 0; i < flat.length; i += 4) out.push(versionInfo(flat, i));
    for (let i = 0; i < bindings.length; i += 3) {
      out[bindings[i] as number].binding = {
        type: bindings[i + 1] as string,
        schemaVersion: bindings[i + 2] as number,
      };
    }
    return out;
  }

  /** Names a new writer: begin, append, finish/drop of one request (see BeginRequest). */
  newWriterId(): number {
    return this.nextWriter++;
  }

  begin(req: BeginArgs): Promise<DoneReply> {
    return this.request({ type: "begin", id: 0, ...req }) as Promise<DoneReply>;
  }

  append(req: AppendArgs): Promise<DoneReply> {
    const transfer = [req.bytes.buffer as ArrayBuffer, ...transferables(req.props)];
    return this.request({ type: "append", id: 0, ...req }, transfer) as Promise<DoneReply>;
  }

  write(req: WriteArgs): Promise<DoneReply> {
    // A small body is copied into its batch's packed message instead (flush).
    const transfer =
      req.bytes && req.props && !isPackable(req.bytes)
        ? [req.bytes.buffer as ArrayBuffer, ...transferables(req.props)]
        : [];
    return this.request({ type: "write", id: 0, ...req }, transfer) as Promise<DoneReply>;
  }

  finish(writer: number, seal: boolean): Promise<DoneReply> {
    return this.request({ type: "finish", id: 0, writer, seal }) as Promise<DoneReply>;
  }

  drop(writer: number): void {
    if (!this.dead) this.post({ type: "drop", writer });
  }

  async stats(): Promise<StoreStats> {
    const s = (await this.request({ type: "stats", id: 0 })) as StatsReply;
    return { slots: s.slots, versions: s.versions, writeHandles: s.fds, writers: s.writers };
  }

  private release(slot: number): void {
    if (!this.dead && slot >= 0) this.post({ type: "release", slot });
  }

  async close(): Promise<void> {
    this.closing = true;
    if (!this.dead) await this.request({ type: "close", id: 0 }).catch(() => undefined);
    await this.worker.terminate();
  }

  private request(msg: Request, transfer: ArrayBuffer[] = []): Promise<Reply> {
    if (this.dead) {
      return Promise.reject(errors.internal(`storage is unavailable: ${this.dead.message}`));
    }
    // The message is the caller's fresh object: numbered in place, not copied again.
    msg.id = this.nextId++;
    return new Promise((resolve, reject) => {
      this.pending.set(msg.id, { resolve, reject });
      this.post(msg, transfer);
    });
  }

  /**
   * Messages travel in batches, and at most one batch is with the worker at a time: what
   * arrives while it writes and syncs the last one waits here and goes as the next, in
   * one postMessage. That is group commit seen from this side: on two cores, every
   * wake-up of another thread costs more than the work it carries, so the number of
   * wake-ups per group is what must stay small, not per request. (Waiting for the end
   * of the event-loop turn, not a microtask, gathers every socket the turn served.)
   */
  private post(msg: ToStorage, transfer: ArrayBuffer[] = []): void {
    this.outbox.push(msg);
    for (const t of transfer) this.outboxTransfer.push(t);
    if (this.outbox.length === 1 && !this.busy) setImmediate(() => this.flush());
  }

  private flush(): void {
    if (this.busy || this.outbox.length === 0 || this.dead) return;
    const batch = this.outbox;
    const transfer = this.outboxTransfer;
    this.outbox = [];
    this.outboxTransfer = [];
    this.busy = true;
    try {
      const { wire, extra } = packBatch(batch);
      for (const b of extra) transfer.push(b);
      this.worker.postMessage(wire, transfer);
    } catch (err) {
      // Nothing of the batch reached the worker: its requests fail, the next batch may go.
      this.busy = false;
      for (const msg of batch) {
        if (!("id" in msg)) continue;
        this.pending.get(msg.id)?.reject(errors.internal(`storage message failed: ${(err as Error).message}`));
        this.pending.delete(msg.id);
      }
    }
  }

  private onMessage(msg: FromStorage): void {
    if (msg.type === "ready") {
      this.onReady.resolve(msg);
      return;
    }
    if (msg.type === "log") {
      this.log[msg.level](msg.message, msg.fields);
      return;
    }
    // Before the replies: whoever follows commits (the index) hears of them first.
    if (msg.committed && this.commitListener) {
      for (let i = 0; i < msg.committed.length; i += 4) {
        const v = versionInfo(msg.committed, i);
        this.commitListener(v.itemId, v.version, v.state, msg.appended?.[i / 4] ?? undefined);
      }
    }
    eachReply(msg.replies, (reply) => {
      const p = this.pending.get(reply.id);
      if (!p) return;
      this.pending.delete(reply.id);
      if (reply.ok) p.resolve(reply);
      else p.reject(fromWire(reply.error));
    });
    if (msg.idle) {
      this.busy = false;
      // After the replies' continuations, so what they send joins the batch.
      if (this.outbox.length > 0) setImmediate(() => this.flush());
    }
  }

  private die(err: Error): void {
    if (this.dead) return;
    this.dead = err;
    this.onReady.reject(err);
    if (!this.closing) this.onDied(err);
    for (const p of this.pending.values()) {
      p.reject(errors.internal(`storage failed: ${err.message}`));
    }
    this.pending.clear();
  }
}

/** The newest entry of each name (a name may have one from the file and one from memory), in file order. */
function newestOfEach(entries: IndexedProperty[]): IndexedProperty[] {
  const newest = new Map<string, IndexedProperty>();
  for (const e of entries) {
    const seen = newest.get(e.name);
    if (!seen || seen.offset < e.offset) newest.set(e.name, e);
  }
  return [...newest.values()].sort((a, b) => a.offset - b.offset);
}

function versionInfo(flat: VersionList, i: number): StoredVersionInfo {
  const length = flat[i + 2] as number;
  return {
    itemId: flat[i] as string,
    version: flat[i + 1] as number,
    state: { kind: flat[i + 3] === 1 ? "sealed" : "open", length },
  };
}
