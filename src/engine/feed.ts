import { errors, ReaderGone } from "../core/errors.js";
import type { StoredVersion, VersionState } from "../store/types.js";
import type { ReaderSource, ReaderStream } from "./reader.js";

/**
 * One per version with readers on the main thread: the single watch of the version's
 * committed length (StoredVersion.changed), and the fan-out. When the length grows, the
 * Feed reads the new range from the store once and hands the same Buffer to every live
 * reader.
 */

/** Guard against a missed notify: re-check the slot at least this often. */
const POLL_MS = 1000;
const MAX_READ = 1 << 20;
const SYNC_READ = 64 << 10;
/** Live readers served per event-loop turn: about half a millisecond of socket writes. */
const HAND_OUT_SLICE = 128;

function sameState(a: VersionState, b: VersionState | null): boolean {
  if (b === null || a.kind !== b.kind) return false;
  return (a.kind !== "open" && a.kind !== "sealed") || a.length === (b as { length: number }).length;
}

export class Feed implements ReaderSource {
  private readonly all = new Set<ReaderStream>();
  private readonly live = new Set<ReaderStream>();
  private readonly existWaiters = new Set<{ resolve: (s: VersionState) => void; reject: (e: Error) => void }>();
  private handed: number;
  private final = -1;
  /** `final` is where a shutdown stopped the feed, not the seal. */
  private cut = false;
  /** The state the watch loop last acted on. */
  private last: VersionState | null = null;
  private closed = false;
  private holds = 0;

  constructor(
    /** The feed's own handle, closed with it. */
    private readonly version: StoredVersion,
    /** Called once, when the last reader or waiter is gone. */
    private readonly onIdle: (feed: Feed) => void,
  ) {
    const initial = version.state();
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

  /** Resolves with the version's state once it exists; rejects if it never will. */
  whenExists(signal?: AbortSignal): Promise<VersionState> {
    const now = this.version.state();
    if (now.kind === "open" || now.kind === "sealed") return Promise.resolve(now);
    if (now.kind === "gone") return Promise.reject(errors.versionGone());
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

  /** The feed's bytes can be read (see StoredVersion.ready). */
  ready(): Promise<void> {
    return this.version.ready();
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

  read(buf: Buffer, position: number): Promise<number> {
    return this.version.read(buf, position);
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
    for (const w of this.existWaiters) w.reject(errors.shuttingDown());
    this.existWaiters.clear();
    // The committed length is always a property boundary; `handed` may not be (it moves
    // in chunks of up to 1 MiB), so readers run on to the committed end, then stop.
    const now = this.last;
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
      const now = this.version.state();
      if (!sameState(now, this.last)) {
        this.last = now;
        try {
          await this.apply(now);
        } catch (err) {
          for (const r of this.all) r.destroy(err as Error);
        }
        continue;
      }
      await this.version.changed(POLL_MS);
    }
  }

  private async apply(s: VersionState): Promise<void> {
    if (s.kind === "absent") return;
    if (s.kind === "gone") {
      for (const w of this.existWaiters) w.reject(errors.versionGone());
      this.existWaiters.clear();
      this.closeIfIdle();
      return;
    }
    for (const w of this.existWaiters) w.resolve(s);
    this.existWaiters.clear();
    while (this.handed < s.length && !this.closed) {
      const at = this.handed;
      const n = Math.min(MAX_READ, s.length - at);
      const buf = Buffer.allocUnsafe(n);
      // A few fresh properties the store can hand over at once (the file engine: they are
      // in the page cache) cost less read here than on a trip through the thread pool.
      const bytesRead = (n <= SYNC_READ ? this.version.readNow(buf, at) : null) ?? (await this.version.read(buf, at));
      if (this.closed) return;
      if (bytesRead <= 0) throw new Error(`the data file ended at ${at}, before ${s.length}`);
      const chunk = bytesRead === n ? buf : buf.subarray(0, bytesRead);
      // Advance before handing out: a catching-up reader that sees `handed` move reads the
      // chunk from the file, or is in the live set by the time the hand-out reaches it
      // (Set iteration visits members added meanwhile; deliver() skips what it has).
      this.handed = at + bytesRead;
      await this.handOut(chunk, at);
    }
    if (s.kind === "sealed" && this.handed >= s.length) this.final = s.length;
    this.endLiveAtFinal();
  }

  /**
   * Gives the chunk to every live reader, a slice of them per event-loop turn: between
   * slices the loop takes in new requests, so a writer's next append reaches the storage
   * thread and is made durable while this fan-out goes on, instead of after it.
   */
  private async handOut(chunk: Buffer, at: number): Promise<void> {
    let n = 0;
    for (const r of this.live) {
      r.deliver(chunk, at);
      if (++n % HAND_OUT_SLICE === 0) {
        await new Promise(setImmediate);
        if (this.closed) return;
      }
    }
  }

  closeIfIdle(): void {
    if (this.closed || this.all.size > 0 || this.existWaiters.size > 0 || this.holds > 0) return;
    this.closed = true;
    // Closing the handle wakes the watch loop, which then sees `closed`.
    this.version.close();
    this.onIdle(this);
  }
}
