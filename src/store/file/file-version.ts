import { readSync } from "node:fs";
import { type FileHandle, open } from "node:fs/promises";
import { ReaderGone } from "../../core/errors.js";
import type { StoredVersion, VersionState } from "../types.js";
import { decodeSlot } from "./shared-layout.js";

/**
 * The file engine's reader handle: a slot of the shared length table that the storage
 * worker lent for the version (watched with Atomics.waitAsync, never written here), and
 * a read-only descriptor of its data file, opened at the first read.
 */

/** One slot lent by the worker, shared by the handles made from one open. */
interface Lease {
  refs: number;
  release: () => void;
}

export class FileVersion implements StoredVersion {
  private word: bigint;
  private file: FileHandle | null = null;
  private opening: Promise<FileHandle> | null = null;
  private closed = false;

  constructor(
    private readonly lengths: BigInt64Array,
    private readonly slot: number,
    private readonly path: string,
    private readonly lease: Lease,
  ) {
    this.word = Atomics.load(lengths, slot);
    this.opened = decodeSlot(this.word);
  }

  static lend(lengths: BigInt64Array, slot: number, path: string, release: () => void): FileVersion {
    return new FileVersion(lengths, slot, path, { refs: 1, release });
  }

  readonly opened: VersionState;

  state(): VersionState {
    this.word = Atomics.load(this.lengths, this.slot);
    return decodeSlot(this.word);
  }

  async changed(timeoutMs: number): Promise<void> {
    const wait = Atomics.waitAsync(this.lengths, this.slot, this.word, timeoutMs);
    if (wait.async) await wait.value;
  }

  async ready(): Promise<void> {
    if (!this.file) await this.openFile();
  }

  async read(buf: Buffer, position: number): Promise<number> {
    const file = this.file ?? (await this.openFile());
    return (await file.read(buf, 0, buf.length, position)).bytesRead;
  }

  readNow(buf: Buffer, position: number): number | null {
    return this.file ? readSync(this.file.fd, buf, 0, buf.length, position) : null;
  }

  share(): StoredVersion {
    this.lease.refs++;
    return new FileVersion(this.lengths, this.slot, this.path, this.lease);
  }

  close(): void {
    if (this.closed) return;
    this.closed = true;
    // Wakes a changed() in flight, so its loop sees the close now rather than at its timeout.
    Atomics.notify(this.lengths, this.slot);
    const file = this.file;
    this.file = null;
    void file?.close();
    if (--this.lease.refs === 0) this.lease.release();
  }

  private async openFile(): Promise<FileHandle> {
    this.opening ??= open(this.path, "r");
    let file: FileHandle;
    try {
      file = await this.opening;
    } catch (err) {
      // Not kept: the next read tries again (a descriptor may be free by then).
      this.opening = null;
      throw err;
    }
    if (this.closed) {
      // Closed while the file was opening: nobody will close it later.
      this.opening = null;
      await file.close().catch(() => undefined);
      throw new ReaderGone();
    }
    this.file = file;
    return file;
  }
}
