import { errors } from "../core/errors.js";
import { ITEM_CLOSE, ITEM_OPEN } from "../format/item-file.js";
import type { IndexedProperty, PropertySelect } from "../format/meta-file.js";
import { type PropertyRecord, recordAt } from "../format/records.js";
import type { Store, StoredVersion, VersionState } from "../store/types.js";

/**
 * Property reads and snapshots: the store's index says where each wanted occurrence is,
 * and only those lines are read back from the data file, never the rest of it.
 */

export interface PropertyRead {
  state: VersionState;
  /** The boundary the index was taken at: every record lies before it. */
  at: number;
  records: PropertyRecord[];
}

/** Lines closer than this are read in one piece; a piece is at most READ_SPAN bytes. */
const GAP = 16 << 10;
const READ_SPAN = 1 << 20;

export async function readProperties(
  store: Store,
  itemId: string,
  version: number,
  select: PropertySelect,
): Promise<PropertyRead> {
  const { state, entries } = await store.properties(itemId, version, select);
  const at =
    state.kind === "sealed"
      ? state.length - ITEM_CLOSE.length
      : state.kind === "open"
        ? state.length
        : ITEM_OPEN.length;
  if (entries.length === 0) return { state, at, records: [] };
  const handle = await store.open(itemId, version);
  if (!handle) throw errors.versionNotFound(itemId, version);
  try {
    return { state, at, records: await readLines(handle, entries) };
  } finally {
    handle.close();
  }
}

/** The records of `entries` (in file order), read in spans that cover neighbouring lines. */
async function readLines(handle: StoredVersion, entries: IndexedProperty[]): Promise<PropertyRecord[]> {
  const records: PropertyRecord[] = [];
  for (let first = 0; first < entries.length; ) {
    const from = entries[first].offset;
    let last = first;
    while (
      last + 1 < entries.length &&
      entries[last + 1].offset - lineEnd(entries[last]) <= GAP &&
      lineEnd(entries[last + 1]) - from <= READ_SPAN
    ) {
      last++;
    }
    const span = Buffer.allocUnsafe(lineEnd(entries[last]) - from);
    for (let got = 0; got < span.length; ) {
      const n = await handle.read(span.subarray(got), from + got);
      if (n === 0) throw errors.internal(`the data file ends before byte ${from + span.length}`);
      got += n;
    }
    for (let i = first; i <= last; i++) {
      const e = entries[i];
      records.push(recordAt(span.toString("utf8", e.offset - from, e.offset - from + e.length), e.offset, lineEnd(e)));
    }
    first = last + 1;
  }
  return records;
}

/** The byte after an entry's newline. */
function lineEnd(e: IndexedProperty): number {
  return e.offset + e.length + 1;
}
