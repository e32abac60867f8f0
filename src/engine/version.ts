import { PROPERTY_TYPES, type PropertyType } from "./canonical.js";

/**
 * The storage worker's in-memory view of one version. `size` runs ahead of `committed`
 * between a write and the sync that covers it; readers and the .meta file only ever see
 * `committed`.
 */

export const ITEM_OPEN = "<item>\n";
export const ITEM_CLOSE = "</item>\n";

export interface IndexEntry {
  type: PropertyType;
  offset: number;
  /** Bytes of `<property ...>...</property>`, without the line's newline. */
  length: number;
}

export interface MetaFile {
  item_id: string;
  version: number;
  created_at: string;
  updated_at: string;
  size: number;
  sealed: boolean;
  property_count: number;
  properties: Record<string, IndexEntry[]>;
}

/**
 * The property index, column-wise per name: a million small properties cost a few
 * numbers each rather than an object each.
 */
export class PropertyIndex {
  private readonly byName = new Map<string, { types: number[]; offsets: number[]; lengths: number[] }>();
  count = 0;

  add(name: string, type: number, offset: number, length: number): void {
    let col = this.byName.get(name);
    if (!col) {
      col = { types: [], offsets: [], lengths: [] };
      this.byName.set(name, col);
    }
    col.types.push(type);
    col.offsets.push(offset);
    col.lengths.push(length);
    this.count++;
  }

  toJSON(): Record<string, IndexEntry[]> {
    const out: Record<string, IndexEntry[]> = {};
    for (const [name, col] of this.byName) {
      out[name] = col.offsets.map((offset, i) => ({
        type: PROPERTY_TYPES[col.types[i]],
        offset,
        length: col.lengths[i],
      }));
    }
    return out;
  }

  static fromJSON(props: Record<string, IndexEntry[]>): PropertyIndex {
    const index = new PropertyIndex();
    for (const [name, entries] of Object.entries(props)) {
      for (const e of entries) index.add(name, PROPERTY_TYPES.indexOf(e.type), e.offset, e.length);
    }
    return index;
  }
}

export class Version {
  /** Write handle; -1 once sealed and closed. */
  fd = -1;
  /** Bytes written to the file (committed plus what awaits the next sync). */
  size: number;
  committed: number;
  sealed: boolean;
  /** Set when a newer version sealed this one: writers then get version_superseded. */
  superseded = false;
  slot = -1;
  refs = 0;
  metaDirty = false;
  /** performance.now() before which the lag writer leaves this .meta alone. */
  metaDueAt = 0;
  updatedAt: string;

  constructor(
    readonly itemId: string,
    readonly version: number,
    readonly key: string,
    readonly createdAt: string,
    size: number,
    sealed: boolean,
    readonly index: PropertyIndex,
  ) {
    this.size = size;
    this.committed = size;
    this.sealed = sealed;
    this.updatedAt = createdAt;
  }

  toMeta(): MetaFile {
    return {
      item_id: this.itemId,
      version: this.version,
      created_at: this.createdAt,
      updated_at: this.updatedAt,
      size: this.committed,
      sealed: this.sealed && this.committed === this.size,
      property_count: this.index.count,
      properties: this.index.toJSON(),
    };
  }
}
