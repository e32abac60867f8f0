import { closeSync, fstatSync, openSync, readSync, rmSync } from "node:fs";
import { join } from "node:path";
import { type Database, open, type RootDatabase } from "lmdb";
import { PROPERTY_TYPES, type PropertyType } from "../format/item-file.js";
import { type PropertyRecord, recordJson } from "../format/records.js";
import { encodeValue, keyPart, prefixEnd } from "../format/value-order.js";

/**
 * The secondary index, in an LMDB environment under DATA_DIR/index/ (lmdb-js: reads are
 * synchronous, writes are queued and committed in one transaction per event-loop turn, by
 * its own thread). It is derived from the data files and rebuilt from them when missing
 * or damaged, so its commits are not fsynced: a crash loses a tail, which start-up
 * re-indexes from where `versions` says each version was indexed to. Key spaces:
 *   latest   name, value, item, version          -> item, version   (newest of each name)
 *   any      name, value, item, version, offset  -> item, version   (every occurrence)
 *   values   item, version, name                 -> type, value text, record JSON (newest)
 *   versions item, version                       -> indexed length, sealed
 * Values are encoded by value-order.ts; names and item ids by keyPart. In a key, a value
 * is cut to its first KEY_VALUE_BYTES bytes (LMDB keys are at most 1,978 bytes): against a
 * literal no longer than that, the cut key still compares exactly (the literal ends first).
 */

const FORMAT = 1;
/** The bytes of a value's encoding kept in a key; literals longer than this are not looked up. */
export const KEY_VALUE_BYTES = 480;
/** Names longer than this (in bytes) are not indexed for lookups; they are still stored. */
export const KEY_NAME_BYTES = 1024;

export interface IndexedVersion {
  itemId: string;
  version: number;
  /** The committed length the index holds properties up to. */
  indexed: number;
  sealed: boolean;
}

/** A version's newly committed properties, and its length and state after them. */
export interface VersionBatch {
  itemId: string;
  version: number;
  records: PropertyRecord[];
  indexed: number;
  sealed: boolean;
}

export interface KeyRange {
  start: Buffer;
  end: Buffer;
}

/** The index could not be opened or is not one this version wrote: rebuild it. */
export class IndexDamaged extends Error {}

export class IndexDb {
  private constructor(
    private readonly root: RootDatabase,
    private readonly latest: Database<Buffer, Buffer>,
    private readonly any: Database<Buffer, Buffer>,
    private readonly values: Database<Buffer, Buffer>,
    private readonly versions: Database<Buffer, Buffer>,
  ) {}

  static path(dataDir: string): string {
    return join(dataDir, "index");
  }

  /** Opens (or creates) the index; `fresh` deletes what is there first. */
  static open(dataDir: string, fresh: boolean): IndexDb {
    const path = IndexDb.path(dataDir);
    if (fresh) rmSync(path, { recursive: true, force: true });
    checkDataFile(join(path, "data.mdb"));
    let root: RootDatabase;
    try {
      root = open({ path, noSync: true, maxDbs: 8, compression: false });
    } catch (err) {
      throw new IndexDamaged(`the index at ${path} cannot be opened: ${(err as Error).message}`);
    }
    const format = root.get("format");
    if (format === undefined && root.getKeysCount() === 0) root.putSync("format", FORMAT);
    else if (format !== FORMAT) {
      void root.close();
      throw new IndexDamaged(`the index at ${path} has format ${String(format)}, not ${FORMAT}`);
    }
    const db = (name: string) =>
      root.openDB<Buffer, Buffer>({ name, keyEncoding: "binary", encoding: "binary", compression: false });
    return new IndexDb(root, db("latest"), db("any"), db("values"), db("versions"));
  }

  // --- writing ----------------------------------------------------------------------

  /**
   * Queues the batches' writes; they commit together (one transaction) and are visible
   * once the promise resolves. A version has at most one batch in flight: its next one
   * reads what this one wrote.
   */
  apply(batches: VersionBatch[]): Promise<unknown> {
    let last: Promise<unknown> = Promise.resolve();
    for (const b of batches) {
      const where = versionKey(b.itemId, b.version);
      const newest = new Map<string, { record: PropertyRecord; enc: Buffer }>();
      for (const r of b.records) {
        const enc = keyValue(encodeValue(r.type, r.value));
        const name = keyPart(r.name);
        if (name.length <= KEY_NAME_BYTES) this.any.put(Buffer.concat([name, enc, where, u64(r.offset)]), where);
        newest.set(r.name, { record: r, enc });
      }
      for (const [n, { record, enc }] of newest) {
        const name = keyPart(n);
        const valueKey = Buffer.concat([where, name]);
        const old = this.values.get(valueKey);
        if (name.length <= KEY_NAME_BYTES) {
          if (old) this.latest.remove(Buffer.concat([name, keyValue(storedEnc(old)), where]));
          this.latest.put(Buffer.concat([name, enc, where]), where);
        }
        this.values.put(valueKey, storedValue(record));
      }
      last = this.versions.put(where, progressValue(b.indexed, b.sealed));
    }
    return last;
  }

  /** Forgets everything (a rebuild starts from nothing). */
  async clear(): Promise<void> {
    for (const db of [this.latest, this.any, this.values, this.versions]) await db.clearAsync();
  }

  close(): Promise<void> {
    return this.root.close();
  }

  // --- reading ----------------------------------------------------------------------

  progress(itemId: string, version: number): IndexedVersion | undefined {
    const v = this.versions.get(versionKey(itemId, version));
    return v ? { itemId, version, ...readProgress(v) } : undefined;
  }

  /** Every indexed version in (item id, version) order, from after `after` if given. */
  *allVersions(after?: { itemId: string; version: number }): Generator<IndexedVersion> {
    const start = after ? prefixEnd(versionKey(after.itemId, after.version)) : undefined;
    for (const { key, value } of this.versions.getRange({ start, snapshot: false })) {
      yield { ...readVersionKey(key), ...readProgress(value) };
    }
  }

  /** The newest indexed version of an item, or 0. */
  newestVersion(itemId: string): number {
    const item = keyPart(itemId);
    for (const key of this.versions.getKeys({ start: prefixEnd(item), end: item, reverse: true, limit: 1 })) {
      return readVersionKey(key).version;
    }
    return 0;
  }

  /** The newest occurrence of a name in a version: its type, value text and record JSON. */
  latestValue(itemId: string, version: number, name: string): StoredLatest | undefined {
    const v = this.values.get(Buffer.concat([versionKey(itemId, version), keyPart(name)]));
    return v ? readStored(v) : undefined;
  }

  /** Every name's newest occurrence in a version, in name order, with the name. */
  *latestValues(itemId: string, version: number): Generator<StoredLatest & { name: string }> {
    const where = versionKey(itemId, version);
    for (const { key, value } of this.values.getRange({ start: where, end: prefixEnd(where) })) {
      // The key's tail is the name's keyPart: its bytes, then 00 01 (names hold no NUL).
      yield { name: key.toString("utf8", where.length, key.length - 2), ...readStored(value) };
    }
  }

  /** The versions with an entry in `range` of a name's latest or any space (range over value bytes). */
  *versionsIn(space: "latest" | "any", name: string, range: KeyRange): Generator<Buffer> {
    const db = space === "latest" ? this.latest : this.any;
    const head = keyPart(name);
    const start = Buffer.concat([head, range.start]);
    const end = Buffer.concat([head, range.end]);
    for (const { value } of db.getRange({ start, end, snapshot: false })) yield value;
  }

  /** How many entries `range` holds, counting no further than `cap`. */
  countIn(space: "latest" | "any", name: string, range: KeyRange, cap: number): number {
    const db = space === "latest" ? this.latest : this.any;
    const head = keyPart(name);
    let n = 0;
    const start = Buffer.concat([head, range.start]);
    const end = Buffer.concat([head, range.end]);
    for (const _ of db.getKeys({ start, end, limit: cap })) n++;
    return n;
  }
}

/** LMDB's meta pages hold this magic (little-endian) after the page header. */
const LMDB_MAGIC = 0xbeefc0de;
const META_OFFSET = 0x18;

/**
 * LMDB trusts its file: one that is not an LMDB file crashes the process when opened,
 * beyond any catch. Its first meta page is checked first; anything else is damage.
 */
function checkDataFile(file: string): void {
  let fd: number;
  try {
    fd = openSync(file, "r");
  } catch {
    return; // none yet: LMDB makes it
  }
  try {
    const size = fstatSync(fd).size;
    const page = Buffer.alloc(4);
    const magicAt = (at: number) => readSync(fd, page, 0, 4, at) === 4 && page.readUInt32LE(0) === LMDB_MAGIC;
    // (The second meta page sits one page on, and the page size varies by machine.)
    if (size < 8192 || !magicAt(META_OFFSET)) {
      throw new IndexDamaged(`${file} is not an LMDB file`);
    }
  } finally {
    closeSync(fd);
  }
}

function u64(n: number): Buffer {
  const b = Buffer.alloc(8);
  b.writeBigUInt64BE(BigInt(n));
  return b;
}

/** item id and version as a key part: item ids sort by bytes, then versions by number. */
export function versionKey(itemId: string, version: number): Buffer {
  return Buffer.concat([keyPart(itemId), u64(version)]);
}

export function readVersionKey(key: Buffer): { itemId: string; version: number } {
  const end = key.length - 8;
  return { itemId: key.toString("utf8", 0, end - 2), version: Number(key.readBigUInt64BE(end)) };
}

function progressValue(indexed: number, sealed: boolean): Buffer {
  const b = Buffer.alloc(9);
  b.writeBigUInt64BE(BigInt(indexed));
  b[8] = sealed ? 1 : 0;
  return b;
}

function readProgress(b: Buffer): { indexed: number; sealed: boolean } {
  return { indexed: Number(b.readBigUInt64BE(0)), sealed: b[8] === 1 };
}

/** A value's encoding as a key holds it. */
export function keyValue(enc: Buffer): Buffer {
  return enc.length <= KEY_VALUE_BYTES ? enc : enc.subarray(0, KEY_VALUE_BYTES);
}

export interface StoredLatest {
  type: PropertyType;
  /** The value as stored (binary values are not kept: they only exist). */
  value: string;
  record: string;
}

/** type code, value length (4 bytes), value text, record JSON. */
function storedValue(r: PropertyRecord): Buffer {
  const value = Buffer.from(r.type === "binary" ? "" : r.value);
  const head = Buffer.alloc(5);
  head[0] = PROPERTY_TYPES.indexOf(r.type);
  head.writeUInt32BE(value.length, 1);
  return Buffer.concat([head, value, Buffer.from(recordJson(r))]);
}

function readStored(v: Buffer): StoredLatest {
  const n = v.readUInt32BE(1);
  return { type: PROPERTY_TYPES[v[0]], value: v.toString("utf8", 5, 5 + n), record: v.toString("utf8", 5 + n) };
}

function storedEnc(v: Buffer): Buffer {
  const s = readStored(v);
  return encodeValue(s.type, s.value);
}
