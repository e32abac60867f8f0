import { readSync } from "node:fs";
import { type FileHandle, open } from "node:fs/promises";
import { EngineError, ReaderGone } from "../core/errors.js";
import { decodeSlot, type SlotState } from "../store/file/shared-layout.js";
import type { ReaderSource, ReaderStream } from "./reader.js";

/**
 * One per version with readers on the main thread: the single Atomics.waitAsync on the
 * version's slot, and the fan-out. When the committed length grows, the Feed reads the
 * new range from the file once and hands the same Buffer to every live reader.
 */

/** Guard against a missed notify: re-check the slot at least this often. */
const POLL_MS = 1000;
const MAX_READ = 1 << 20;
const SYNC_READ = 64 << 10;

export class Feed implements ReaderSource {
  private readonly all = new Set<ReaderStream>();
  private readonly live = new Set<ReaderStream>();
  private readonly existWaiters = new Set<{ resolve: (s: SlotState) => void; reject: (e: Error) => void }>();
  private handed: number;
  private final = -1;
  /** `final` is where a shutdown stopped the feed, not the seal. */
  private cut = false;
  private fd: FileHandle | null = null;
  private opening: Promise<FileHandle> | null = null;
  private lastWord: bigint | null = null;
  private closed = false;
  private holds = 0;

  constructor(
    private readonly lengths: BigInt64Array,
    readonly slot: number,
    private readonly path: string,
    initial: SlotState,
    /** Called once, when the last reader or waiter is gone. */
    private readonly onIdle: (feed: Feed) => void,
  ) {
    this.handed = initial.kind === "open" || initial.kind === "sealed" ? initial.length : 0;
  }

  /** Starts the watch loop; call once the feed is registered (it may close at once). */
  start(): void {
    void this.watch();
  }

  /**
   * Keeps the feed open while a reader is being set up (waiting for the version, opening
   * the file, writing headers), before it is attached or has given up.
   */
  hold(): void {
    this.holds++;
  }

  unhold(): void {
    this.holds--;
    this.closeIfIdle();
  }

  get isClosed(): boolean {
    return this.closed;
  }

  state(): SlotState {
    return decodeSlot(Atomics.load(this.lengths, this.slot));
  }

  /** Resolves with the slot's state once the version exists; rejects if it never will. */
  whenExists(signal?: AbortSignal): Promise<SlotState> {
    const now = this.state();
    if (now.kind === "open" || now.kind === "sealed") return Promise.resolve(now);
    if (now.kind === "gone") return Promise.reject(notFound());
    if (signal?.aborted) {
      // The reader left while its open was in flight: an abort listener added now would
      // never fire, and the feed would wait for it forever.
      this.closeIfIdle();
      return Promise.reject(new ReaderGone());
    }
    return new Promise((resolve, reject) => {
      const waiter = { resolve, reject };
      this.existWaiters.add(waiter);
      signal?.addEventListener(
        "abort",
        () => {
          this.existWaiters.delete(waiter);
          reject(new ReaderGone());
          this.closeIfIdle();
        },
        { once: true },
      );
    });
  }

  async ensureFile(): Promise<FileHandle> {
    if (this.fd) return this.fd;
    this.opening ??= open(this.path, "r");
    const fd = await this.opening;
    if (this.closed) {
      // The last reader left while the file was opening: nobody will close it later.
      this.opening = null;
      await fd.close().catch(() => undefined);
      throw new ReaderGone();
    }
    this.fd = fd;
    return fd;
  }

  attach(reader: ReaderStream): void {
    this.all.add(reader);
  }

  // --- ReaderSource ---------------------------------------------------------------

  available(): number {
    return this.handed;
  }

  end(): number {
    return this.final;
  }

  interrupted(): boolean {
    return this.cut;
  }

  file(): FileHandle {
    if (!this.fd) throw new Error("feed file is not open");
    return this.fd;
  }

  join(reader: ReaderStream): boolean {
    if (this.closed) return false;
    this.live.add(reader);
    return true;
  }

  leave(reader: ReaderStream): void {
    this.live.delete(reader);
  }

  detach(reader: ReaderStream): void {
    this.live.delete(reader);
    this.all.delete(reader);
    this.closeIfIdle();
  }

  get readerCount(): number {
    return this.all.size;
  }

  /** Cuts every reader and waiter: the storage behind this feed is gone. */
  fail(err: Error): void {
    for (const w of this.existWaiters) w.reject(err);
    this.existWaiters.clear();
    for (const r of this.all) r.destroy(err);
    this.closeIfIdle();
  }

  /** Ends every reader at the last committed property boundary (shutdown). */
  endAll(): void {
    for (const w of this.existWaiters) w.reject(new EngineError("shutting_down", "the server is shutting down"));
    this.existWaiters.clear();
    // The committed length is always a property boundary; `handed` may not be (it moves
    // in chunks of up to 1 MiB), so readers run on to the committed end, then stop.
    const now = this.lastWord === null ? null : decodeSlot(this.lastWord);
    this.cut = now?.kind !== "sealed";
    this.final =
      now && (now.kind === "open" || now.kind === "sealed") ? Math.max(now.length, this.handed) : this.handed;
    this.endLiveAtFinal();
  }

  private endLiveAtFinal(): void {
    if (this.final >= 0 && this.handed >= this.final) for (const r of this.live) r.sealedAt(this.final);
  }

  // --- the watch loop -------------------------------------------------------------

  private async watch(): Promise<void> {
    while (!this.closed) {
      const word = Atomics.load(this.lengths, this.slot);
      if (word !== this.lastWord) {
        this.lastWord = word;
        try {
          await this.apply(decodeSlot(word));
        } catch (err) {
          for (const r of this.all) r.destroy(err as Error);
        }
        continue;
      }
      const wait = Atomics.waitAsync(this.lengths, this.slot, word, POLL_MS);
      if (wait.async) await wait.value;
    }
  }

  private async apply(s: SlotState): Promise<void> {
    if (s.kind === "absent") return;
    if (s.kind === "gone") {
      for (const w of this.existWaiters) w.reject(notFound());
      this.existWaiters.clear();
      this.closeIfIdle();
      return;
    }
    await this.ensureFile();
    for (const w of this.existWaiters) w.resolve(s);
    this.existWaiters.clear();
    while (this.handed < s.length && !this.closed) {
      const at = this.handed;
      const n = Math.min(MAX_READ, s.length - at);
      const buf = Buffer.allocUnsafe(n);
      // A few fresh properties are in the page cache (the storage worker just wrote them):
      // reading them here costs less than a trip through the thread pool and back.
      const bytesRead =
        n <= SYNC_READ ? readSync(this.file().fd, buf, 0, n, at) : (await this.file().read(buf, 0, n, at)).bytesRead;
      if (bytesRead <= 0) throw new Error(`the data file ended at ${at}, before ${s.length}`);
      const chunk = bytesRead === n ? buf : buf.subarray(0, bytesRead);
      // Hand out and advance in one synchronous step: a catching-up reader that sees
      // `handed` move has either had this chunk delivered or will read it from the file.
      this.handed = at + bytesRead;
      for (const r of this.live) r.deliver(chunk, at);
    }
    if (s.kind === "sealed" && this.handed >= s.length) this.final = s.length;
    this.endLiveAtFinal();
  }

  closeIfIdle(): void {
    if (this.closed || this.all.size > 0 || this.existWaiters.size > 0 || this.holds > 0) return;
    this.closed = true;
    // Wake our own waitAsync so the loop sees `closed` now rather than at the next poll.
    Atomics.notify(this.lengths, this.slot);
    const fd = this.fd;
    this.fd = null;
    void fd?.close();
    this.onIdle(this);
  }
}

function notFound(): EngineError {
  return new EngineError(
    "version_not_found",
    "that version does not exist and cannot be created: a newer version exists",
  );
}
