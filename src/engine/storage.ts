import { Worker } from "node:worker_threads";
import { EngineError, fromWire } from "./errors.js";
import { transferables } from "./property-parser.js";
import type {
  DoneReply,
  FromStorage,
  OpenReply,
  ReadyMessage,
  Reply,
  StatsReply,
  StorageWorkerData,
  ToStorage,
} from "./protocol.js";

type Request = ToStorage extends infer M ? (M extends { id: number } ? Omit<M, "id"> : never) : never;

/**
 * The main thread's handle on the storage worker: turns messages into promises. Every
 * pending promise is settled exactly once: by its reply, or by the worker's death.
 */
export class StorageClient {
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
  /** Settles once start-up repair is done (or the worker died trying). */
  readonly ready = new Promise<ReadyMessage>((resolve, reject) => {
    this.onReady = { resolve, reject };
  });

  private constructor(private readonly worker: Worker) {
    worker.on("message", (msg: FromStorage) => this.onMessage(msg));
    worker.on("error", (err) => this.die(err));
    worker.on("exit", (code) => this.die(new Error(`storage worker exited with code ${code}`)));
  }

  static start(data: StorageWorkerData): StorageClient {
    const worker = new Worker(new URL("./storage-worker.js", import.meta.url), {
      workerData: data,
      resourceLimits: { maxYoungGenerationSizeMb: 8 },
    });
    return new StorageClient(worker);
  }

  open(req: Omit<Extract<ToStorage, { type: "open" }>, "id" | "type">): Promise<OpenReply> {
    return this.request({ type: "open", ...req }) as Promise<OpenReply>;
  }

  /** Names a new writer: begin, append, finish/drop of one request (see BeginRequest). */
  newWriterId(): number {
    return this.nextWriter++;
  }

  begin(req: Omit<Extract<ToStorage, { type: "begin" }>, "id" | "type">): Promise<DoneReply> {
    return this.request({ type: "begin", ...req }) as Promise<DoneReply>;
  }

  append(req: Omit<Extract<ToStorage, { type: "append" }>, "id" | "type">): Promise<DoneReply> {
    const transfer = [req.bytes.buffer as ArrayBuffer, ...transferables(req.props)];
    return this.request({ type: "append", ...req }, transfer) as Promise<DoneReply>;
  }

  finish(writer: number, seal: boolean): Promise<DoneReply> {
    return this.request({ type: "finish", writer, seal }) as Promise<DoneReply>;
  }

  drop(writer: number): void {
    if (!this.dead) this.post({ type: "drop", writer });
  }

  stats(): Promise<StatsReply> {
    return this.request({ type: "stats" }) as Promise<StatsReply>;
  }

  release(slot: number): void {
    if (!this.dead && slot >= 0) this.post({ type: "release", slot });
  }

  async close(): Promise<void> {
    this.closing = true;
    if (!this.dead) await this.request({ type: "close" }).catch(() => undefined);
    await this.worker.terminate();
  }

  private request(msg: Request, transfer: ArrayBuffer[] = []): Promise<Reply> {
    if (this.dead) {
      return Promise.reject(new EngineError("internal_error", `storage is unavailable: ${this.dead.message}`));
    }
    const id = this.nextId++;
    return new Promise((resolve, reject) => {
      this.pending.set(id, { resolve, reject });
      this.post({ ...msg, id } as ToStorage, transfer);
    });
  }

  /**
   * Messages posted in one turn of the event loop travel together: one postMessage and
   * one wake-up of the storage worker for all the requests that turn served. (A
   * microtask would flush after each socket's callback, which is one message per
   * request under load; setImmediate runs once the turn's I/O callbacks are done.)
   */
  private post(msg: ToStorage, transfer: ArrayBuffer[] = []): void {
    this.outbox.push(msg);
    for (const t of transfer) this.outboxTransfer.push(t);
    if (this.outbox.length === 1) setImmediate(() => this.flush());
  }

  private flush(): void {
    const batch = this.outbox;
    const transfer = this.outboxTransfer;
    this.outbox = [];
    this.outboxTransfer = [];
    if (!this.dead) this.worker.postMessage(batch, transfer);
  }

  private onMessage(msg: FromStorage): void {
    if (msg.type === "ready") {
      this.onReady.resolve(msg);
      return;
    }
    if (msg.type === "log") {
      console.error(`stream-db storage: ${msg.message}`);
      return;
    }
    for (const reply of msg.replies) {
      const p = this.pending.get(reply.id);
      if (!p) continue;
      this.pending.delete(reply.id);
      if (reply.ok) p.resolve(reply);
      else p.reject(fromWire(reply.error));
    }
  }

  private die(err: Error): void {
    if (this.dead) return;
    this.dead = err;
    this.onReady.reject(err);
    if (!this.closing) this.onDied(err);
    for (const p of this.pending.values()) {
      p.reject(new EngineError("internal_error", `storage failed: ${err.message}`));
    }
    this.pending.clear();
  }
}
