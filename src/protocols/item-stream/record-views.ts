import type { Binding } from "../../engine/index.js";
import { ITEM_CLOSE, ITEM_OPEN, storedLine } from "../../format/item-file.js";
import { type PropertyRecord, recordJson } from "../../format/records.js";
import { schemaField } from "../schemas/binding-json.js";
import type { ReadFormat } from "./formats.js";

/**
 * How each format frames the records of a read (README, "Reading values"): what goes
 * before the first, each record, and what ends a read that reached its end (the seal,
 * or the end of what was committed). A ?snapshot=true read sends its snapshot's records
 * first, then the up-to-date marker, then the records after it. XML is here too, for a read filtered by ?properties: the
 * matching lines, as the data file has them.
 */
export interface RecordView {
  /** The text of a record depends on nothing but the record (not JSON's commas). */
  readonly shareable: boolean;
  begin(): string;
  record(r: PropertyRecord): string;
  /** A snapshot's record, then the marker after the last (NDJSON and SSE). */
  snapshotRecord(r: PropertyRecord): string;
  upToDate(at: number): string;
  /** `sealedAt`: where `</item>` begins, if the read got to it; `next`: the boundary after the last line read. */
  end(sealedAt: number | null, next: number): string;
}

export interface ViewOf {
  itemId: string;
  version: number;
  sealed: boolean;
  start: number;
  schema?: Binding;
  /** false: compressed values as stored (?decode=false). */
  decode?: boolean;
}

/**
 * The NDJSON and SSE views hold no state of a read: one of each serves them all. With
 * `decode` false (compressed values as stored) they are not shared: the bytes differ.
 */
function ndjsonView(decode: boolean): RecordView {
  return {
    shareable: decode,
    begin: () => "",
    record: (r) => `${recordJson(r, decode)}\n`,
    snapshotRecord: (r) => `${recordJson(r, decode)}\n`,
    upToDate: (at) => `{"up_to_date":true,"offset":${at}}\n`,
    end: (at) => (at === null ? "" : `{"sealed":true,"offset":${at}}\n`),
  };
}

function sseView(decode: boolean): RecordView {
  return {
    shareable: decode,
    // A reconnect a second after a cut, rather than a browser's default three.
    begin: () => "retry: 1000\n\n",
    record: (r) => `id: ${r.next}\nevent: property\ndata: ${recordJson(r, decode)}\n\n`,
    // No id: a reconnect part-way through a snapshot resumes before it, and gets it again.
    snapshotRecord: (r) => `event: property\ndata: ${recordJson(r, decode)}\n\n`,
    upToDate: (at) => `id: ${at}\nevent: up-to-date\ndata: {"up_to_date":true,"offset":${at}}\n\n`,
    end: (at) => (at === null ? "" : `id: ${at}\nevent: sealed\ndata: {"offset":${at}}\n\n`),
  };
}

const NDJSON = ndjsonView(true);
const SSE = sseView(true);

export function recordView(format: ReadFormat, v: ViewOf): RecordView {
  switch (format) {
    case "ndjson":
      return v.decode === false ? ndjsonView(false) : NDJSON;
    case "sse":
      return v.decode === false ? sseView(false) : SSE;
    case "json": {
      let first = true;
      const record = (r: PropertyRecord) => {
        const text = first ? recordJson(r, v.decode !== false) : `,${recordJson(r, v.decode !== false)}`;
        first = false;
        return text;
      };
      return {
        shareable: false,
        begin: () =>
          `{"item_id":${JSON.stringify(v.itemId)},"version":${v.version},"sealed":${v.sealed},"offset":${v.start}${schemaField(v.schema)},"properties":[`,
        record,
        snapshotRecord: record,
        upToDate: () => "",
        end: (_at, next) => `],"next":${next}}\n`,
      };
    }
    case "xml":
      return {
        shareable: true,
        // The header only where the read starts at the file's start, as a raw read would.
        begin: () => (v.start === ITEM_OPEN.length ? ITEM_OPEN : ""),
        // The canonical line again: a line read back and written gives its own bytes.
        record: storedLine,
        snapshotRecord: storedLine,
        upToDate: () => "",
        end: (at) => (at === null ? "" : ITEM_CLOSE),
      };
  }
}

/**
 * The bytes of records as a shareable view writes them, made once per records array and
 * format: the live readers of a version in one format all send the same bytes.
 */
export function sharedBytes(format: ReadFormat, view: RecordView, records: PropertyRecord[]): Buffer {
  let byFormat = textOf.get(records);
  if (!byFormat) {
    byFormat = new Map();
    textOf.set(records, byFormat);
  }
  let bytes = byFormat.get(format);
  if (!bytes) {
    let text = "";
    for (const r of records) text += view.record(r);
    bytes = Buffer.from(text);
    byFormat.set(format, bytes);
  }
  return bytes;
}

const textOf = new WeakMap<PropertyRecord[], Map<ReadFormat, Buffer>>();
