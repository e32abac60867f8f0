import type { PropertyType } from "./item-file.js";

/**
 * Typed values as bytes that sort as the values do, so that an index can answer `<`, `=`,
 * ranges and PREFIX by comparing keys. Each encoding is self-delimiting (other key parts
 * follow it) and begins with its type's code, so a range never crosses types:
 * - number: exact decimal order, never through a double (`12345678901234567890` and
 *   `12345678901234567891` differ; `1.50` equals `1.5`, `-0` equals `0`);
 * - string: its UTF-8 bytes (byte order), 0x00 escaped as 00 FF, ended by 00 01;
 * - boolean: false before true;
 * - datetime: the instant (UTC seconds, then the fraction), so zones compare as instants;
 * - binary: the type code alone (binary values only exist).
 */

export const TYPE_CODE: Readonly<Record<PropertyType, number>> = {
  string: 1,
  number: 2,
  boolean: 3,
  datetime: 4,
  binary: 5,
};

const END = [0x00, 0x01];

export function encodeValue(type: PropertyType, value: string): Buffer {
  switch (type) {
    case "string":
      return Buffer.concat([Buffer.of(TYPE_CODE.string), escapeBytes(Buffer.from(value, "utf8")), Buffer.from(END)]);
    case "number":
      return Buffer.concat([Buffer.of(TYPE_CODE.number), encodeDecimal(value)]);
    case "boolean":
      return Buffer.of(TYPE_CODE.boolean, value === "true" ? 1 : 0);
    case "datetime":
      return Buffer.concat([Buffer.of(TYPE_CODE.datetime), encodeInstant(value)]);
    case "binary":
      return Buffer.of(TYPE_CODE.binary);
  }
}

/** The bytes every string value starting with `prefix` begins with (PREFIX queries). */
export function stringPrefix(prefix: string): Buffer {
  return Buffer.concat([Buffer.of(TYPE_CODE.string), escapeBytes(Buffer.from(prefix, "utf8"))]);
}

/** 0x00 becomes 00 FF: the 00 01 that ends a string then sorts before any longer string. */
export function escapeBytes(raw: Buffer): Buffer {
  if (!raw.includes(0)) return raw;
  const out: number[] = [];
  for (const b of raw) {
    out.push(b);
    if (b === 0) out.push(0xff);
  }
  return Buffer.from(out);
}

/** The escaped-and-ended form of a key part (names, item ids). */
export function keyPart(text: string): Buffer {
  return Buffer.concat([escapeBytes(Buffer.from(text, "utf8")), Buffer.from(END)]);
}

/**
 * A JSON-style decimal as sign, then (for non-zero) exponent and digits: 0.d1d2... x 10^e
 * with d1 != 0 and no trailing zeros. Positives: 02, e + 2^31 (4 bytes), digits, 00.
 * Negatives: 00, then the same bytes inverted, so larger magnitudes sort first. Zero: 01.
 */
export function encodeDecimal(text: string): Buffer {
  const m = /^(-?)([0-9]+)(?:\.([0-9]+))?(?:[eE]([+-]?[0-9]+))?$/.exec(text);
  if (!m) throw new Error(`not a number: ${text}`);
  const all = m[2] + (m[3] ?? "");
  const lead = all.search(/[1-9]/);
  if (lead < 0) return Buffer.of(0x01);
  const digits = all.slice(lead).replace(/0+$/, "");
  // The value is 0.<all> x 10^(intDigits + exp); dropping `lead` zeros shifts it.
  const exponent = m[2].length + Number(m[4] ?? 0) - lead;
  const body = Buffer.alloc(4 + digits.length + 1);
  body.writeUInt32BE((exponent + 2 ** 31) >>> 0, 0);
  body.write(digits, 4, "latin1");
  if (m[1] !== "-") return Buffer.concat([Buffer.of(0x02), body]);
  for (let i = 0; i < body.length; i++) body[i] = ~body[i] & 0xff;
  return Buffer.concat([Buffer.of(0x00), body]);
}

const DATETIME = /^(\d{4})-(\d{2})-(\d{2})[Tt](\d{2}):(\d{2}):(\d{2})(?:\.(\d+))?(?:[Zz]|([+-])(\d{2}):(\d{2}))$/;

/** An RFC 3339 date-time as its instant: UTC seconds (8 bytes, sign-flipped), fraction digits, 00. */
export function encodeInstant(text: string): Buffer {
  const m = DATETIME.exec(text);
  if (!m) throw new Error(`not a datetime: ${text}`);
  const [y, mo, d, h, mi, s] = m.slice(1, 7).map(Number);
  const zone = m[8] === undefined ? 0 : (m[8] === "-" ? -1 : 1) * (Number(m[9]) * 60 + Number(m[10]));
  const days = daysFromCivil(y, mo, d);
  const seconds = BigInt(days) * 86400n + BigInt(h * 3600 + mi * 60 + s - zone * 60);
  const fraction = (m[7] ?? "").replace(/0+$/, "");
  const out = Buffer.alloc(8 + fraction.length + 1);
  out.writeBigUInt64BE(BigInt.asUintN(64, seconds) ^ (1n << 63n), 0);
  out.write(fraction, 8, "latin1");
  return out;
}

/** Days since 1970-01-01 of a proleptic Gregorian date (H. Hinnant's algorithm). */
function daysFromCivil(year: number, month: number, day: number): number {
  const y = month <= 2 ? year - 1 : year;
  const era = Math.floor(y / 400);
  const yoe = y - era * 400;
  const doy = Math.floor((153 * (month + (month > 2 ? -3 : 9)) + 2) / 5) + day - 1;
  const doe = yoe * 365 + Math.floor(yoe / 4) - Math.floor(yoe / 100) + doy;
  return era * 146097 + doe - 719468;
}

/** The smallest byte string greater than every one that starts with `prefix`. */
export function prefixEnd(prefix: Buffer): Buffer {
  const out = Buffer.from(prefix);
  for (let i = out.length - 1; i >= 0; i--) {
    if (out[i] < 0xff) {
      out[i]++;
      return out.subarray(0, i + 1);
    }
  }
  return Buffer.of(0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff);
}
