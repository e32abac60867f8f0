import { open } from "node:fs/promises";
import { decompress } from "./codec.js";
import { readLine, type StoredProperty } from "./item-file.js";
import type { IndexedProperty, PropertySelect } from "./meta-file.js";

/**
 * The typed views' property record (contract section 6), the same for NDJSON lines, SSE
 * `data:` and JSON array elements:
 *   {"offset":7,"next":65,"name":"age","type":"number","value":25}
 * `offset` is where the property's line starts in the data file and `next` the byte
 * after its newline, so every format resumes where any other stopped. A number keeps
 * its canonical digits in the JSON text (the number grammar of item-file.ts is JSON's),
 * never rounded through a double; a datetime and base64 binary are JSON strings.
 *
 * The records are built from the data file's bytes as committed, which the readers get
 * in chunks that may end inside a line: LineSplitter carries the unfinished line.
 */

export interface PropertyRecord extends StoredProperty {
  offset: number;
  next: number;
}

/**
 * The record as JSON text, numbers with their digits as stored. A binary value stored
 * compressed is given as its original bytes' base64, or with `decode` false as stored,
 * with `codec` and `length` (the original's) beside it.
 */
export function recordJson(r: PropertyRecord, decode = true): string {
  const head = `{"offset":${r.offset},"next":${r.next},"name":${JSON.stringify(r.name)},"type":"${r.type}"`;
  if (r.codec === undefined) return `${head},"value":${valueJson(r)}}`;
  if (!decode) return `${head},"codec":"${r.codec}","length":${r.rawLength},"value":"${r.value}"}`;
  return `${head},"value":"${originalBytes(r).toString("base64")}"}`;
}

/** A binary value's original bytes, decompressed if it is stored compressed. */
export function originalBytes(p: StoredProperty): Buffer {
  const stored = Buffer.from(p.value, "base64");
  return p.codec === undefined ? stored : decompress(p.codec, stored);
}

function valueJson(p: StoredProperty): string {
  return p.type === "number" || p.type === "boolean" ? p.value : JSON.stringify(p.value);
}

/** The record of the property line (without its newline) that starts at `offset`. */
export function recordAt(line: string, offset: number, next = offset + Buffer.byteLength(line) + 1): PropertyRecord {
  const p = readLine(line);
  if (!p) throw new Error(`the data file holds no property at byte ${offset}`);
  const r: PropertyRecord = { name: p.name, type: p.type, value: p.value, offset, next };
  if (p.codec !== undefined) {
    r.codec = p.codec;
    r.rawLength = p.rawLength;
  }
  return r;
}

/** What a splitter with no unfinished line holds: one empty array for all of them. */
const NO_PIECES: Buffer[] = [];

/** Chunks of whole lines already cut, by identity: a chunk's buffer is never reused. */
const wholeChunks = new WeakMap<Buffer, { at: number; records: PropertyRecord[]; sealedAt: number | null }>();

/**
 * Cuts the committed bytes of a data file, handed over in chunks at their file offsets,
 * into records. `<item>` and `</item>` are not properties and give none; a line that is
 * not a canonical property (a damaged file) is an error, since committed bytes are
 * always whole canonical lines.
 */
export class LineSplitter {
  /** The unfinished line's pieces, from file offset `carryAt`: joined once, when it ends. */
  private pieces: Buffer[] = NO_PIECES;
  private carryAt = 0;
  private carryBytes = 0;
  private expected: number | null = null;
  /** Where `</item>` begins, once it has been read: the version's length before its seal. */
  sealedAt: number | null = null;

  /**
   * Records of the lines that `chunk`, committed at file offset `at`, completes. The
   * array may be shared with other splitters given the same chunk: do not change it.
   */
  push(chunk: Buffer, at: number): PropertyRecord[] {
    if (this.expected !== null && at !== this.expected) {
      throw new Error(`a chunk at ${at} does not follow the bytes before it (${this.expected})`);
    }
    this.expected = at + chunk.length;
    // Live readers of a version all get the same chunk, of whole lines: cut it once.
    const whole = this.pieces.length === 0 && chunk.length > 0 && chunk[chunk.length - 1] === 0x0a;
    if (whole) {
      const cut = wholeChunks.get(chunk);
      if (cut?.at === at) {
        if (cut.sealedAt !== null) this.sealedAt = cut.sealedAt;
        return cut.records;
      }
    }
    const before = this.sealedAt;
    const records = this.cut(chunk, at);
    if (whole) wholeChunks.set(chunk, { at, records, sealedAt: this.sealedAt === before ? null : this.sealedAt });
    return records;
  }

  private cut(chunk: Buffer, at: number): PropertyRecord[] {
    const records: PropertyRecord[] = [];
    let from = 0;
    let nl = chunk.indexOf(0x0a);
    if (nl < 0) {
      this.hold(chunk, at);
      return records;
    }
    if (this.pieces.length > 0) {
      this.pieces.push(chunk.subarray(0, nl));
      this.take(records, Buffer.concat(this.pieces).toString("utf8"), this.carryAt, at + nl + 1);
      this.pieces = NO_PIECES;
      this.carryBytes = 0;
      from = nl + 1;
      nl = chunk.indexOf(0x0a, from);
    }
    for (; nl >= 0; nl = chunk.indexOf(0x0a, from)) {
      this.take(records, chunk.toString("utf8", from, nl), at + from, at + nl + 1);
      from = nl + 1;
    }
    if (from < chunk.length) this.hold(chunk.subarray(from), at + from);
    return records;
  }

  /** Bytes held of an unfinished line: a reader's memory beyond its stream buffer. */
  get carried(): number {
    return this.carryBytes;
  }

  private hold(piece: Buffer, at: number): void {
    if (this.pieces.length === 0) {
      this.carryAt = at;
      this.pieces = [];
    }
    this.pieces.push(piece);
    this.carryBytes += piece.length;
  }

  private take(records: PropertyRecord[], line: string, offset: number, next: number): void {
    if (line === "<item>") return;
    if (line === "</item>") {
      this.sealedAt = offset;
      return;
    }
    records.push(recordAt(line, offset, next));
  }
}

/**
 * The index entries of a data file's first `length` bytes (of one name, if the select
 * names one), found by reading it: what a property read falls back on when a .meta file
 * cannot be read. Every occurrence: the caller keeps the newest if it wants them.
 */
export async function scanProperties(
  path: string,
  length: number,
  select: Pick<PropertySelect, "name">,
): Promise<IndexedProperty[]> {
  const file = await open(path, "r");
  const found: IndexedProperty[] = [];
  try {
    const splitter = new LineSplitter();
    for (let at = 0; at < length; ) {
      // A fresh buffer each time: the splitter keeps a view of an unfinished line.
      const buf = Buffer.allocUnsafe(1 << 20);
      const { bytesRead } = await file.read(buf, 0, Math.min(buf.length, length - at), at);
      if (bytesRead === 0) break;
      for (const r of splitter.push(buf.subarray(0, bytesRead), at)) {
        if (select.name !== undefined && r.name !== select.name) continue;
        found.push({ name: r.name, type: r.type, offset: r.offset, length: r.next - r.offset - 1 });
      }
      at += bytesRead;
    }
  } finally {
    await file.close();
  }
  return found;
}
