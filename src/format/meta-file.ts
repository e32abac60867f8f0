import { closeSync, openSync, readSync } from "node:fs";
import { type FileHandle, open } from "node:fs/promises";
import { join } from "node:path";
import type { PropertyType } from "./item-file.js";

/**
 * The .meta file's format, encoded and decoded in one place: JSON, its scalar fields
 * first (so they can be read without the index after them), then `properties`, each
 * name's entries in file order. It is a cache of facts the data file already holds, so a
 * missing or unreadable one is not an error: the caller rebuilds it. The file engine's
 * meta-writer.ts streams it out with these encoders, merging the old file through
 * MetaReader.
 */

export function metaPath(dataDir: string, key: string): string {
  return join(dataDir, `${key}.meta`);
}

export function dataPath(dataDir: string, key: string): string {
  return join(dataDir, `${key}.data`);
}

/** The scalar fields of a .meta file: everything but `properties`. */
export interface MetaHead {
  item_id: string;
  version: number;
  created_at: string;
  updated_at: string;
  size: number;
  sealed: boolean;
  property_count: number;
  /** The schema the version is pinned to (README, "Schemas"), when it has one. */
  type?: string;
  schema_version?: number;
}

/** The scalars are at most about 400 bytes (an item id is at most 200 characters). */
const HEAD_BYTES = 1024;
const PROPERTIES_KEY = ',"properties":{';

/** Reads the scalar fields from the start of the file; null if missing or malformed. */
export function readMetaHead(dataDir: string, key: string): MetaHead | null {
  let text: string;
  try {
    const fd = openSync(metaPath(dataDir, key), "r");
    try {
      const buf = Buffer.allocUnsafe(HEAD_BYTES);
      text = buf.toString("utf8", 0, readSync(fd, buf, 0, HEAD_BYTES, 0));
    } finally {
      closeSync(fd);
    }
  } catch {
    return null;
  }
  const cut = text.indexOf(PROPERTIES_KEY);
  if (cut < 0) return null;
  let head: MetaHead;
  try {
    head = JSON.parse(`${text.slice(0, cut)}}`);
  } catch {
    return null;
  }
  const ok =
    Number.isSafeInteger(head.size) &&
    head.size >= 0 &&
    Number.isSafeInteger(head.property_count) &&
    head.property_count >= 0 &&
    typeof head.sealed === "boolean" &&
    typeof head.created_at === "string" &&
    (head.type === undefined || (typeof head.type === "string" && Number.isSafeInteger(head.schema_version)));
  return ok ? head : null;
}

/** `{scalars,"properties":{`: what every .meta file begins with. */
export function encodeMetaHead(head: MetaHead): string {
  return `${JSON.stringify(head).slice(0, -1)}${PROPERTIES_KEY}`;
}

/** One occurrence of a name: where its `<property` element starts, its length without the newline. */
export function encodeMetaEntry(type: string, offset: number, length: number): string {
  return `{"type":"${type}","offset":${offset},"length":${length}}`;
}

/** After the last name's entries. */
export const META_END = "}}";

/** A .meta file that does not parse as this module writes it: rebuild it. */
export class MetaCorrupt extends Error {}

const READ_BUFFER = 128 << 10;

/**
 * A forward-only reader of a .meta file's index, as encodeMetaHead and encodeMetaEntry
 * wrote it: `"NAME":[entries]` pairs after the scalars. Entries hold no `]`, and names
 * are JSON strings, so a byte scan suffices. It holds at most READ_BUFFER bytes.
 */
export class MetaReader {
  private readonly fd: number;
  private readonly store = Buffer.allocUnsafe(READ_BUFFER);
  /** The unread part of the file in `store`, from `at`. */
  private buf = this.store.subarray(0, 0);
  private at = 0;
  private filePos = 0;
  private eof = false;

  constructor(path: string) {
    try {
      this.fd = openSync(path, "r");
    } catch (err) {
      throw new MetaCorrupt(`cannot read ${path}: ${(err as Error).message}`);
    }
    this.fill(8192);
    const start = this.buf.indexOf(PROPERTIES_KEY);
    if (start < 0) {
      this.close();
      throw new MetaCorrupt(`${path} has no properties`);
    }
    this.at = start + PROPERTIES_KEY.length;
  }

  /** The next name, or null after the last one. */
  nextName(): string | null {
    this.skip(0x2c); // ","
    this.fill(16384);
    if (this.buf[this.at] === 0x7d) return null; // "}"
    if (this.buf[this.at] !== 0x22) throw new MetaCorrupt("expected a name");
    let end = this.at + 1;
    while (end < this.buf.length && this.buf[end] !== 0x22) end += this.buf[end] === 0x5c ? 2 : 1;
    if (end >= this.buf.length) throw new MetaCorrupt("unterminated name");
    const name = JSON.parse(this.buf.toString("utf8", this.at, end + 1)) as string;
    this.at = end + 1;
    this.expect(0x3a); // ":"
    this.expect(0x5b); // "["
    return name;
  }

  /** The raw bytes of the current name's entries, up to and consuming its "]". */
  *entries(): Generator<Buffer> {
    for (;;) {
      this.fill(1);
      const close = this.buf.indexOf(0x5d, this.at);
      if (close >= 0) {
        const tail = this.buf.subarray(this.at, close);
        this.at = close + 1;
        yield tail;
        return;
      }
      if (this.eof) throw new MetaCorrupt("unterminated entries");
      // The caller writes each part before asking for the next, so a view is enough.
      const chunk = this.buf.subarray(this.at);
      this.at = this.buf.length;
      yield chunk;
    }
  }

  close(): void {
    closeSync(this.fd);
  }

  private skip(byte: number): void {
    this.fill(1);
    if (this.buf[this.at] === byte) this.at++;
  }

  private expect(byte: number): void {
    this.fill(1);
    if (this.buf[this.at] !== byte) throw new MetaCorrupt(`expected ${String.fromCharCode(byte)}`);
    this.at++;
  }

  /**
   * Makes at least `min` unread bytes available, unless the file ends first. One buffer
   * serves the whole file: a fresh one per read would be garbage outside the JS heap,
   * which a thread that allocates little JS collects only rarely.
   */
  private fill(min: number): void {
    while (!this.eof && this.buf.length - this.at < min) {
      const unread = this.buf.length - this.at;
      this.store.copyWithin(0, this.at, this.buf.length);
      const n = readSync(this.fd, this.store, unread, this.store.length - unread, this.filePos);
      if (n === 0) this.eof = true;
      this.filePos += n;
      this.buf = this.store.subarray(0, unread + n);
      this.at = 0;
    }
  }
}

/** One occurrence of a property as an index holds it: where its line starts, its length without the newline. */
export interface IndexedProperty {
  name: string;
  type: PropertyType;
  offset: number;
  length: number;
}

/** Which occurrences a property read wants: one name's or every name's, all or the newest only. */
export interface PropertySelect {
  name?: string;
  latest: boolean;
}

const INDEX_CHUNK = 1 << 20;

/**
 * The occurrences a select wants from a .meta file, read in chunks off the thread that
 * serves requests, and the committed length the file covers (every entry lies before
 * it). Names that are not wanted are skipped by a byte scan for their `]`; the newest of
 * a name is its last entry, so only that one is parsed. Null if the file is missing;
 * MetaCorrupt if it does not parse.
 */
export async function readMetaIndex(
  path: string,
  select: PropertySelect,
  chunkBytes = INDEX_CHUNK,
): Promise<{ size: number; entries: IndexedProperty[] } | null> {
  let file: FileHandle;
  try {
    file = await open(path, "r");
  } catch {
    return null;
  }
  try {
    return await scanMetaIndex(file, path, select, chunkBytes);
  } finally {
    await file.close();
  }
}

async function scanMetaIndex(
  file: FileHandle,
  path: string,
  select: PropertySelect,
  chunkBytes: number,
): Promise<{ size: number; entries: IndexedProperty[] }> {
  let buf = Buffer.alloc(0);
  let filePos = 0;
  let eof = false;
  /** Reads the next chunk, keeping the bytes from `keep` on; returns how far they moved. */
  const more = async (keep: number): Promise<number> => {
    if (eof) throw new MetaCorrupt(`${path} ends early`);
    const chunk = Buffer.allocUnsafe(chunkBytes);
    const { bytesRead } = await file.read(chunk, 0, chunkBytes, filePos);
    filePos += bytesRead;
    if (bytesRead === 0) eof = true;
    buf = Buffer.concat([buf.subarray(keep), chunk.subarray(0, bytesRead)]);
    return keep;
  };
  let at = buf.indexOf(PROPERTIES_KEY);
  while (at < 0 && !eof) {
    await more(0);
    at = buf.indexOf(PROPERTIES_KEY);
  }
  if (at < 0) throw new MetaCorrupt(`${path} has no properties`);
  const head = parseJson(`${buf.toString("utf8", 0, at)}}`, path) as MetaHead;
  if (!Number.isSafeInteger(head.size)) throw new MetaCorrupt(`${path} has no size`);
  at += PROPERTIES_KEY.length;
  const entries: IndexedProperty[] = [];
  const byte = async (): Promise<number> => {
    while (at >= buf.length) at -= await more(at);
    return buf[at];
  };
  for (;;) {
    if ((await byte()) === 0x2c) at++; // ","
    if ((await byte()) === 0x7d) break; // "}": the last name is done
    if ((await byte()) !== 0x22) throw new MetaCorrupt(`${path}: expected a name`);
    let end = at + 1;
    for (;;) {
      while (end >= buf.length) {
        const moved = await more(at);
        at -= moved;
        end -= moved;
      }
      if (buf[end] === 0x22) break;
      end += buf[end] === 0x5c ? 2 : 1;
    }
    const name = parseJson(buf.toString("utf8", at, end + 1), path) as string;
    at = end + 1;
    for (const expected of [0x3a, 0x5b]) {
      if ((await byte()) !== expected) throw new MetaCorrupt(`${path}: expected ${String.fromCharCode(expected)}`);
      at++;
    }
    const wanted = select.name === undefined || select.name === name;
    // The entries end at the first "]": none holds one. Only a wanted name's are kept.
    // Of a name whose newest entry is wanted, only the entry begun last is kept.
    let close = buf.indexOf(0x5d, at);
    while (close < 0) {
      const from = !wanted ? buf.length : select.latest ? Math.max(at, buf.lastIndexOf(0x7b)) : at;
      const moved = await more(from);
      at = Math.max(0, at - moved);
      close = buf.indexOf(0x5d, at);
    }
    if (wanted && close > at) {
      const from = select.latest ? buf.lastIndexOf(0x7b, close) : at;
      const list = parseJson(`[${buf.toString("utf8", from, close)}]`, path) as Omit<IndexedProperty, "name">[];
      for (const e of list) entries.push({ name, type: e.type, offset: e.offset, length: e.length });
    }
    at = close + 1;
  }
  return { size: head.size, entries };
}

function parseJson(text: string, path: string): unknown {
  try {
    return JSON.parse(text);
  } catch {
    throw new MetaCorrupt(`${path} does not parse`);
  }
}
