import { readSync } from "node:fs";
import { errors } from "../core/errors.js";
import type { Codec } from "./codec.js";
import type { PropertyIndex } from "./property-index.js";

/**
 * The data file's format, written and read in one place: `<item>\n`, then one canonical
 * property per line (each value checked against its type and written in one canonical
 * form), then `</item>\n` at the seal. Writing is canonicalValue and canonicalLine;
 * reading back is readLine (one line) and scanDataFile (a file, into its index).
 */

export const ITEM_OPEN = "<item>\n";
export const ITEM_CLOSE = "</item>\n";

/**
 * Typed values and their canonical on-disk form. One property is one line:
 *   <property for="NAME"><TYPE>VALUE</TYPE></property>\n
 * `&`, `<`, `>`, `"` are escaped, and so are CR and LF (as &#13; / &#10;): a string value
 * may hold newlines, and "one property per line" is what makes repair and the index
 * possible.
 */

export const PROPERTY_TYPES = ["string", "number", "boolean", "datetime", "binary"] as const;
export type PropertyType = (typeof PROPERTY_TYPES)[number];

/** Index into PROPERTY_TYPES; what crosses threads (smaller than the string). */
export type TypeCode = 0 | 1 | 2 | 3 | 4;

export function typeCode(name: string): TypeCode | -1 {
  return PROPERTY_TYPES.indexOf(name as PropertyType) as TypeCode | -1;
}

const NUMBER = /^-?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)?$/;
const DATETIME = /^(\d{4})-(\d{2})-(\d{2})[Tt](\d{2}):(\d{2}):(\d{2})(\.\d+)?([Zz]|([+-])(\d{2}):(\d{2}))$/;
// No nested quantifiers: the value may be tens of megabytes, and a backtracking group
// over it overflows the regex engine's stack. Length and padding are checked apart.
const BASE64 = /^[A-Za-z0-9+/]*(?:[A-Za-z0-9+/]=|==)?$/;
// XML whitespace only: base64 "whitespace inside is ignored" means the XML kind.
const XML_SPACE = /[ \t\r\n]+/g;
const HAS_XML_SPACE = /[ \t\r\n]/;
const NEEDS_ESCAPE = /[&<>"\r\n]/;
const ESCAPED = /[&<>"\r\n]/g;
const ESCAPES: Record<string, string> = {
  "&": "&amp;",
  "<": "&lt;",
  ">": "&gt;",
  '"': "&quot;",
  "\r": "&#13;",
  "\n": "&#10;",
};

export function escapeXml(s: string): string {
  return NEEDS_ESCAPE.test(s) ? s.replace(ESCAPED, (c) => ESCAPES[c]) : s;
}

function trimXml(s: string): string {
  return s.replace(/^[ \t\r\n]+|[ \t\r\n]+$/g, "");
}

const invalid = errors.invalidValue;

function daysInMonth(year: number, month: number): number {
  if (month === 2) {
    const leap = (year % 4 === 0 && year % 100 !== 0) || year % 400 === 0;
    return leap ? 29 : 28;
  }
  return [4, 6, 9, 11].includes(month) ? 30 : 31;
}

function checkDatetime(v: string, name: string): void {
  const m = DATETIME.exec(v);
  if (!m) throw invalid("datetime", name, v, "expected RFC 3339 like 2024-01-15T10:30:00Z");
  const [year, month, day, hour, minute, second] = m.slice(1, 7).map(Number);
  const zoneHour = m[10] === undefined ? 0 : Number(m[10]);
  const zoneMinute = m[11] === undefined ? 0 : Number(m[11]);
  if (month < 1 || month > 12 || day < 1 || day > daysInMonth(year, month)) {
    throw invalid("datetime", name, v, "that date does not exist");
  }
  // Second 60 is RFC 3339's leap second.
  if (hour > 23 || minute > 59 || second > 60 || zoneHour > 23 || zoneMinute > 59) {
    throw invalid("datetime", name, v, "time or zone out of range");
  }
}

/** Validates `raw` (the element's text) as `type` and returns its canonical text. */
export function canonicalValue(type: PropertyType, raw: string, name: string): string {
  if (type === "string") return raw;
  if (type === "binary") {
    // Values can be tens of megabytes: the usual one, without whitespace, is scanned once.
    if (raw.length % 4 === 0 && BASE64.test(raw)) return raw;
    const b64 = HAS_XML_SPACE.test(raw) ? raw.replace(XML_SPACE, "") : raw;
    if (b64.length % 4 !== 0 || !BASE64.test(b64))
      throw invalid(type, name, raw, "expected standard base64 with padding");
    return b64;
  }
  const v = trimXml(raw);
  switch (type) {
    case "number":
      if (!NUMBER.test(v) || !Number.isFinite(Number(v))) {
        throw invalid(type, name, v, "expected a finite JSON-style number");
      }
      return v;
    case "boolean":
      if (v !== "true" && v !== "false") throw invalid(type, name, v, "expected true or false");
      return v;
    case "datetime":
      checkDatetime(v, name);
      return v;
  }
}

/** `value` is canonicalValue's result: only a string can hold characters to escape. */
export function canonicalLine(name: string, type: PropertyType, value: string): string {
  const text = type === "string" ? escapeXml(value) : value;
  return `<property for="${escapeXml(name)}"><${type}>${text}</${type}></property>\n`;
}

// --- reading a data file back ---------------------------------------------------

/**
 * Reading a data file back: used to rebuild the index past the .meta file's `size` and to
 * find where a crash tore the last property. The file is the truth; this only reads.
 */

/**
 * A canonical line: name, type, value (values never hold `<`: it is escaped). A binary
 * value stored compressed names its codec and original length (README, "Compression").
 */
const LINE =
  /^<property for="([^"]*)"><(string|number|boolean|datetime|binary)(?: codec="(gzip|br|zstd)" length="(0|[1-9][0-9]*)")?>([^<]*)<\/\2><\/property>$/;
const CHUNK = 1 << 20;

export interface ScanResult {
  /** End of the last whole, valid line: where a torn tail gets cut. */
  end: number;
  sealed: boolean;
  /** Offset of a line that is whole but not a property: damage we must not "repair". */
  corruptAt?: number;
}

/** escapeXml undone: the text a canonical line holds. */
export function unescapeXml(s: string): string {
  return s.includes("&")
    ? s.replace(/&(amp|lt|gt|quot|#10|#13);/g, (_, e: string) =>
        e === "amp" ? "&" : e === "lt" ? "<" : e === "gt" ? ">" : e === "quot" ? '"' : e === "#10" ? "\n" : "\r",
      )
    : s;
}

/**
 * Scans whole lines in [from, size) of an open file, adding each property to `index`.
 * A final line without its newline is a torn write and is not counted.
 */
export function scanDataFile(
  fd: number,
  from: number,
  size: number,
  index: PropertyIndex,
  /** Called with the end of the last whole line when the index holds this many entries. */
  onFull?: { every: number; flush: (end: number) => void },
): ScanResult {
  const buf = Buffer.allocUnsafe(CHUNK);
  let pos = from;
  let carry = "";
  let carryStart = from;
  let sealed = false;
  while (pos < size) {
    const n = readSync(fd, buf, 0, Math.min(CHUNK, size - pos), pos);
    if (n <= 0) break;
    pos += n;
    const text = carry + buf.toString("latin1", 0, n);
    let lineStart = 0;
    for (let nl = text.indexOf("\n"); nl >= 0; nl = text.indexOf("\n", lineStart)) {
      const offset = carryStart + lineStart;
      const line = text.slice(lineStart, nl);
      lineStart = nl + 1;
      if (sealed) return { end: offset - ITEM_CLOSE.length, sealed: false, corruptAt: offset };
      if (`${line}\n` === ITEM_CLOSE) {
        sealed = true;
        continue;
      }
      const m = LINE.exec(line);
      if (!m || (m[3] !== undefined && m[2] !== "binary")) return { end: offset, sealed: false, corruptAt: offset };
      // latin1 keeps offsets byte-exact; names are decoded as UTF-8 only for the index.
      const name = unescapeXml(Buffer.from(m[1], "latin1").toString("utf8"));
      index.add(name, PROPERTY_TYPES.indexOf(m[2] as never), offset, line.length);
      if (onFull && index.count >= onFull.every) onFull.flush(carryStart + lineStart);
    }
    carryStart += lineStart;
    carry = text.slice(lineStart);
  }
  return { end: carryStart, sealed };
}

/** One canonical line read back: its name and type, and its value as text (unescaped). */
export interface StoredProperty {
  name: string;
  type: PropertyType;
  /** As stored: for a compressed binary value, the base64 of the compressed bytes. */
  value: string;
  /** A binary value stored compressed: its codec and original length in bytes. */
  codec?: Codec;
  rawLength?: number;
}

/** A canonical property line (without its newline) as canonicalLine wrote it; null if it is not one. */
export function readLine(line: string): StoredProperty | null {
  const m = LINE.exec(line);
  if (!m) return null;
  const type = m[2] as PropertyType;
  const p: StoredProperty = { name: unescapeXml(m[1]), type, value: type === "string" ? unescapeXml(m[5]) : m[5] };
  if (m[3] !== undefined) {
    if (type !== "binary") return null;
    p.codec = m[3] as Codec;
    p.rawLength = Number(m[4]);
  }
  return p;
}

/** The line of a binary value stored compressed: `stored` is the compressed bytes' base64. */
export function compressedLine(name: string, codec: Codec, rawLength: number, stored: string): string {
  return `<property for="${escapeXml(name)}"><binary codec="${codec}" length="${rawLength}">${stored}</binary></property>\n`;
}

/** The line a property read back was stored as. */
export function storedLine(p: StoredProperty): string {
  return p.codec === undefined
    ? canonicalLine(p.name, p.type, p.value)
    : compressedLine(p.name, p.codec, p.rawLength as number, p.value);
}
