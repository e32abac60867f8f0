import { canonicalLine } from "../format/item-file.js";

/**
 * A large binary value in its usual shape (base64 without whitespace, a plain `for`) is
 * recognised and checked on the bytes themselves: decoding megabytes to a string, running
 * a regex over it and encoding the line back cost ten times the scan below. This takes
 * exactly what the parser's text fast path (SIMPLE_BINARY there) takes, and gives up on
 * anything else, which the text parser then handles as before. test/fast-path.test.ts
 * holds the two to the same output.
 */

/** Smaller values are left to the text parser: decoding them costs little. */
export const BIG_VALUE_BYTES = 64 << 10;

/** The same bound as the parser's (MAX_FOR_LENGTH): longer names are left to it. */
const MAX_NAME = 1024;

export interface LeadingBinary {
  /** The property's canonical line, without its value: what goes before and after it. */
  head: Uint8Array;
  tail: Uint8Array;
  name: string;
  valueStart: number;
  valueEnd: number;
  /** Where the property ends in the slice (just past `</property>`). */
  end: number;
  /** Newlines in the raw property, and its UTF-16 units after the last one (or in all, if none). */
  newlines: number;
  lastLineUnits: number;
}

const BASE64 = byteSet("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/");
const SPACE = byteSet(" \t\r\n");
const nameDecoder = new TextDecoder("utf-8", { fatal: true, ignoreBOM: true });
const encoder = new TextEncoder();
const TAIL = encoder.encode("</binary></property>\n");

function byteSet(chars: string): Uint8Array {
  const set = new Uint8Array(256);
  for (let i = 0; i < chars.length; i++) set[chars.charCodeAt(i)] = 1;
  return set;
}

/**
 * The first property in `bytes`, if it is a plain binary one with a value large enough to
 * be worth it, complete, and within `maxBytes` as a canonical line; null otherwise.
 */
export function leadingBinary(bytes: Uint8Array, maxBytes: number): LeadingBinary | null {
  if (bytes.length < BIG_VALUE_BYTES) return null;
  let i = skipSpace(bytes, 0);
  if (!startsWith(bytes, i, "<property")) return null;
  const afterTag = skipSpace(bytes, i + 9);
  if (afterTag === i + 9 || !startsWith(bytes, afterTag, 'for="')) return null;
  const nameStart = afterTag + 5;
  const nameLimit = Math.min(bytes.length, nameStart + 4 * MAX_NAME + 1);
  i = nameStart;
  for (; i < nameLimit && bytes[i] !== 0x22; i++) {
    const c = bytes[i];
    if (c < 0x20 || c === 0x3c || c === 0x26) return null;
  }
  if (i >= nameLimit) return null;
  const nameEnd = i;
  let name: string;
  try {
    name = nameDecoder.decode(bytes.subarray(nameStart, nameEnd));
  } catch {
    return null;
  }
  if (name.length === 0 || name.length > MAX_NAME || /[\ufffe\uffff]/.test(name)) return null;
  i = skipSpace(bytes, nameEnd + 1);
  if (bytes[i] !== 0x3e) return null;
  i = skipSpace(bytes, i + 1);
  if (!startsWith(bytes, i, "<binary>")) return null;
  const valueStart = i + 8;
  i = skipBase64(bytes, valueStart);
  for (let pad = 0; pad < 2 && bytes[i] === 0x3d; pad++) i++;
  const valueEnd = i;
  const length = valueEnd - valueStart;
  if (length < BIG_VALUE_BYTES || length % 4 !== 0 || !startsWith(bytes, i, "</binary>")) return null;
  i = skipSpace(bytes, i + 9);
  if (!startsWith(bytes, i, "</property>")) return null;
  const end = i + 11;

  const line = canonicalLine(name, "binary", "");
  const head = encoder.encode(line.slice(0, line.length - TAIL.length));
  if (head.length + length + TAIL.length > maxBytes) return null;
  const at = position(
    bytes,
    { start: nameStart, end: nameEnd, units: name.length },
    { start: valueStart, end: valueEnd },
    end,
  );
  return { head, tail: TAIL, name, valueStart, valueEnd, end, ...at };
}

/**
 * Where the body stands after the property: newlines can only be in the whitespace around
 * the tags, and the name is the one part whose bytes and UTF-16 units differ.
 */
function position(
  bytes: Uint8Array,
  name: { start: number; end: number; units: number },
  value: { start: number; end: number },
  end: number,
): { newlines: number; lastLineUnits: number } {
  let newlines = 0;
  let last = -1;
  for (const [from, to] of [
    [0, value.start],
    [value.end, end],
  ]) {
    for (let k = from; k < to; k++) {
      if (bytes[k] === 0x0a) {
        newlines++;
        last = k;
      }
    }
  }
  const nameExtra = last < name.start ? name.end - name.start - name.units : 0;
  return { newlines, lastLineUnits: end - (last + 1) - nameExtra };
}

function skipSpace(bytes: Uint8Array, from: number): number {
  let i = from;
  while (i < bytes.length && SPACE[bytes[i]] === 1) i++;
  return i;
}

/** Eight bytes a step while they last: this loop is the cost of a large value. */
function skipBase64(b: Uint8Array, from: number): number {
  const t = BASE64;
  let i = from;
  const stop = b.length - 8;
  while (
    i < stop &&
    (t[b[i]] & t[b[i + 1]] & t[b[i + 2]] & t[b[i + 3]] & t[b[i + 4]] & t[b[i + 5]] & t[b[i + 6]] & t[b[i + 7]]) === 1
  ) {
    i += 8;
  }
  while (i < b.length && t[b[i]] === 1) i++;
  return i;
}

function startsWith(bytes: Uint8Array, at: number, ascii: string): boolean {
  if (at + ascii.length > bytes.length) return false;
  for (let k = 0; k < ascii.length; k++) if (bytes[at + k] !== ascii.charCodeAt(k)) return false;
  return true;
}
