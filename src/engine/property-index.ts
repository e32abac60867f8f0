/**
 * The part of a version's .meta index that is not in its .meta file yet: per name, three
 * typed columns (offset, length, type), about 13 bytes a property. Columns only grow
 * until a .meta write has taken them; the writer then drops what it wrote
 * (dropFirst), so memory follows the .meta lag, not the version's size.
 */

export class Column {
  offsets = new Float64Array(4);
  lengths = new Uint32Array(4);
  types = new Uint8Array(4);
  n = 0;

  push(type: number, offset: number, length: number): void {
    if (this.n === this.offsets.length) this.resize(this.offsets.length * 2);
    this.offsets[this.n] = offset;
    this.lengths[this.n] = length;
    this.types[this.n] = type;
    this.n++;
  }

  dropFirst(k: number): void {
    this.offsets.copyWithin(0, k, this.n);
    this.lengths.copyWithin(0, k, this.n);
    this.types.copyWithin(0, k, this.n);
    this.n -= k;
    // No shrinking: capacity is bounded by the pending cap, and freeing big arrays over
    // and over only feeds malloc fragmentation.
  }

  private resize(cap: number): void {
    const offsets = new Float64Array(cap);
    offsets.set(this.offsets.subarray(0, this.n));
    const lengths = new Uint32Array(cap);
    lengths.set(this.lengths.subarray(0, this.n));
    const types = new Uint8Array(cap);
    types.set(this.types.subarray(0, this.n));
    this.offsets = offsets;
    this.lengths = lengths;
    this.types = types;
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
