import { PROPERTY_TYPES } from "./canonical.js";

/**
 * The .meta index in memory: per name, three typed columns (offset, length, type), about
 * 13 bytes a property. Columns only grow, so a reader that remembers their lengths has a
 * consistent snapshot even while appends continue (the meta writer relies on this).
 */

export interface IndexEntry {
  type: (typeof PROPERTY_TYPES)[number];
  offset: number;
  /** Bytes of `<property ...>...</property>`, without the line's newline. */
  length: number;
}

export class Column {
  offsets = new Float64Array(4);
  lengths = new Uint32Array(4);
  types = new Uint8Array(4);
  n = 0;

  push(type: number, offset: number, length: number): void {
    if (this.n === this.offsets.length) this.grow();
    this.offsets[this.n] = offset;
    this.lengths[this.n] = length;
    this.types[this.n] = type;
    this.n++;
  }

  private grow(): void {
    const cap = this.offsets.length * 2;
    const offsets = new Float64Array(cap);
    offsets.set(this.offsets);
    const lengths = new Uint32Array(cap);
    lengths.set(this.lengths);
    const types = new Uint8Array(cap);
    types.set(this.types);
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

  static fromJSON(props: Record<string, IndexEntry[]>): PropertyIndex {
    const index = new PropertyIndex();
    for (const [name, entries] of Object.entries(props)) {
      for (const e of entries) index.add(name, PROPERTY_TYPES.indexOf(e.type), e.offset, e.length);
    }
    return index;
  }
}
