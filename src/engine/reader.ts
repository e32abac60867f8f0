import { Readable } from "node:stream";

/**
 * One reader's byte stream. It is in one of two modes:
 * - live: the version's Feed pushes each newly committed range to it (one file read
 *   shared by every live reader of the version);
 * - catching up: it reads the store itself, from its own position up to what the Feed
 *   has handed out, then joins the live set.
 * A reader whose consumer stops reading drops out of the live set as soon as push()
 * says its buffer is full, so it holds at most one extra chunk, and catches up later
 * from the file: a slow reader costs nobody else anything.
 */

const CATCH_UP_CHUNK = 256 << 10;

/** What a reader needs from its source: the live Feed, or a fixed end for snapshots. */
export interface ReaderSource {
  /** Bytes [0, available()) may be read from the file. */
  available(): number;
  /** Final length once sealed (or the snapshot end, or where a shutdown stops it), else -1. */
  end(): number;
  /** The end is not the version's seal nor the snapshot's end, but a shutdown's. */
  interrupted(): boolean;
  /** Reads committed bytes at `position`; the count read. */
  read(buf: Buffer, position: number): Promise<number>;
  /** A live source registers readers that caught up; snapshots return false. */
  join(reader: ReaderStream): boolean;
  /** The reader's buffer is full: stop pushing to it. */
  leave(reader: ReaderStream): void;
  /** The reader is gone for good. */
  detach(reader: ReaderStream): void;
}

export class ReaderStream extends Readable {
  private live = false;
  private catchingUp = false;

  constructor(
    private readonly source: ReaderSource,
    public pos: number,
  ) {
    super({ highWaterMark: 64 << 10 });
  }

  /** From the Feed: bytes `buf` now committed at file offset `at`. */
  deliver(buf: Buffer, at: number): void {
    if (!this.live) return;
    const endAt = at + buf.length;
    if (endAt <= this.pos) return;
    const chunk = at >= this.pos ? buf : buf.subarray(this.pos - at);
    this.pos = endAt;
    if (!this.push(chunk)) {
      this.live = false;
      this.source.leave(this);
    }
  }

  /**
   * Once the stream has ended: whether it stopped short of the version's seal (or the
   * snapshot's end), so that its answer must end as an incomplete transfer.
   */
  get interrupted(): boolean {
    return this.source.interrupted();
  }

  /** From the Feed: the version is sealed (or shut down) and `final` bytes are all handed out. */
  sealedAt(final: number): void {
    if (this.live && this.pos >= final) this.push(null);
  }

  override _read(): void {
    if (!this.live && !this.catchingUp) void this.catchUp();
  }

  private async catchUp(): Promise<void> {
    this.catchingUp = true;
    try {
      for (;;) {
        const target = this.source.available();
        if (this.pos >= target) {
          const end = this.source.end();
          if (end >= 0 && this.pos >= end) {
            this.push(null);
          } else if (this.source.join(this)) {
            this.live = true;
          }
          return;
        }
        const n = Math.min(CATCH_UP_CHUNK, target - this.pos);
        const buf = Buffer.allocUnsafe(n);
        const bytesRead = await this.source.read(buf, this.pos);
        if (this.destroyed) return;
        if (bytesRead <= 0) throw new Error(`the data file ended at ${this.pos}, before ${target}`);
        this.pos += bytesRead;
        if (!this.push(bytesRead === n ? buf : buf.subarray(0, bytesRead))) return;
      }
    } catch (err) {
      this.destroy(err as Error);
    } finally {
      this.catchingUp = false;
    }
  }

  override _destroy(err: Error | null, cb: (err: Error | null) => void): void {
    this.live = false;
    this.source.detach(this);
    cb(err);
  }
}
