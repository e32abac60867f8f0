/**
 * The part of a version's .meta index that is not in its .meta file yet. A long upload
 * can leave millions of entries waiting for a .meta rewrite, so each name's entries are
 * packed as two varints: the offset's distance from the previous entry of that name,
 * and length * 8 + type. A 100-byte property costs about 4 bytes. Entries live in blocks
 * that grow by doubling up to 64 KiB and then chain; a .meta write drops what it wrote
 * (dropFirst), freeing whole blocks, so memory follows the .meta lag.
 */

const FIRST_BLOCK = 32;
const MAX_BLOCK = 64 << 10;
/** Two varints of values below 2^53: at most 8 bytes each. */
const MAX_ENTRY = 16;

export interface Entry {
  type: number;
  offset: number;
  length: number;
}

export class Column {
  /** Entries not yet dropped. */
  n = 0;
  private blocks: Uint8Array[] = [new Uint8Array(FIRST_BLOCK)];
  /** Bytes used in each block; the last one is still being written. */
  private used: number[] = [0];
  /** Where the first entry starts in blocks[0], and the offset its distance is from. */
  private head = 0;
  private headBase = 0;
  private lastOffset = 0;
  /** The newest entry, kept whole: a snapshot asks for it without reading the column. */
  private lastType = 0;
  private lastLength = 0;

  push(type: number, offset: number, length: number): void {
    let last = this.blocks.length - 1;
    if (this.used[last] + MAX_ENTRY > this.blocks[last].length) last = this.grow();
    const block = this.blocks[last];
    let at = writeVarint(block, this.used[last], offset - this.lastOffset);
    at = writeVarint(block, at, length * 8 + type);
    this.used[last] = at;
    this.lastOffset = offset;
    this.lastType = type;
    this.lastLength = length;
    this.n++;
  }

  /** The newest entry not yet dropped, or null if there is none. */
  last(): Entry | null {
    return this.n === 0 ? null : { type: this.lastType, offset: this.lastOffset, length: this.lastLength };
  }

  /** Reads the first `count` entries in order, without consuming them. */
  *read(count: number): Generator<Entry> {
    const entry: Entry = { type: 0, offset: this.headBase, length: 0 };
    let b = 0;
    let at = this.head;
    for (let i = 0; i < count; i++) {
      // Blocks only grow or chain while a reader is paused between entries; positions hold.
      while (at >= this.used[b]) {
        b++;
        at = 0;
      }
      const block = this.blocks[b];
      entry.offset += readVarint(block, at);
      const packed = readVarint(block, next);
      at = next;
      entry.type = packed % 8;
      entry.length = (packed - entry.type) / 8;
      yield entry;
    }
  }

  /** Forgets the first `k` entries (they are in the .meta file now). */
  dropFirst(k: number): void {
    if (k >= this.n) {
      this.n = 0;
      this.blocks = [new Uint8Array(FIRST_BLOCK)];
      this.used = [0];
      this.head = 0;
      this.headBase = this.lastOffset;
      return;
    }
    let b = 0;
    let at = this.head;
    let base = this.headBase;
    for (let i = 0; i < k; i++) {
      while (at >= this.used[b]) {
        b++;
        at = 0;
      }
      base += readVarint(this.blocks[b], at);
      readVarint(this.blocks[b], next);
      at = next;
    }
    if (at >= this.used[b] && b < this.blocks.length - 1) {
      b++;
      at = 0;
    }
    this.blocks.splice(0, b);
    this.used.splice(0, b);
    this.head = at;
    this.headBase = base;
    this.n -= k;
  }

  /** Room for one more entry: double the only block up to MAX_BLOCK, then chain new ones. */
  private grow(): number {
    const last = this.blocks.length - 1;
    const block = this.blocks[last];
    if (last === 0 && block.length < MAX_BLOCK) {
      // Copied whole, consumed prefix included, so positions stay valid for readers.
      const bigger = new Uint8Array(block.length * 2);
      bigger.set(block.subarray(0, this.used[0]));
      this.blocks[0] = bigger;
      return 0;
    }
    this.blocks.push(new Uint8Array(MAX_BLOCK));
    this.used.push(0);
    return last + 1;
  }
}

function writeVarint(buf: Uint8Array, at: number, value: number): number {
  let v = value;
  while (v >= 0x80) {
    buf[at++] = (v % 0x80) | 0x80;
    v = Math.floor(v / 0x80);
  }
  buf[at++] = v;
  return at;
}

/** Where the varint readVarint just read ends (a module variable: no tuple per read). */
let next = 0;

function readVarint(buf: Uint8Array, at: number): number {
  let value = 0;
  let scale = 1;
  let i = at;
  for (;;) {
    const byte = buf[i++];
    value += (byte & 0x7f) * scale;
    if (byte < 0x80) {
      next = i;
      return value;
    }
    scale *= 0x80;
  }
}

export class PropertyIndex {
  readonly byName = new Map<string, Column>();
  count = 0;

  add(name: string, type: number, offset: number, length: number): void {
    let col = this.byName.get(name);
    if (!col) {
      col = new Column();
      this.byName.set(name, col);
    }
    col.push(type, offset, length);
    this.count++;
  }

  /** Forgets the first `n` entries of each name (they are in the .meta file now). */
  dropFirst(taken: ReadonlyMap<string, number>): void {
    for (const [name, k] of taken) {
      const col = this.byName.get(name);
      if (!col || k === 0) continue;
      col.dropFirst(k);
      this.count -= k;
      if (col.n === 0) this.byName.delete(name);
    }
  }

  clear(): void {
    this.byName.clear();
    this.count = 0;
  }
}
