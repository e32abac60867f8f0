import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { encodeValue } from "../../dist/format/value-order.js";

/**
 * The index's value encodings sort exactly as the values do: numbers as exact decimals
 * (also beyond 2^53 and across exponents), strings by UTF-8 bytes, datetimes as instants
 * across zones. Compared here against exact arithmetic on the same texts.
 */

const sign = (n: number | bigint) => (n > 0 ? 1 : n < 0 ? -1 : 0);

/** A JSON-style number's exact value as a fraction m / 10^k, compared by cross-multiplying. */
function exact(text: string): { m: bigint; k: number } {
  const [, s, int, frac = "", exp = "0"] = /^(-?)([0-9]+)(?:\.([0-9]+))?(?:[eE]([+-]?[0-9]+))?$/.exec(text) ?? [];
  const m = BigInt(`${s}${int}${frac}`);
  const k = frac.length - Number(exp);
  return { m, k };
}

function compareExact(a: string, b: string): number {
  const x = exact(a);
  const y = exact(b);
  const k = Math.max(x.k, y.k);
  return sign(x.m * 10n ** BigInt(k - x.k) - y.m * 10n ** BigInt(k - y.k));
}

const digits = (min: number, max: number) =>
  fc.array(fc.constantFrom(..."0123456789"), { minLength: min, maxLength: max }).map((d) => d.join(""));
const number = fc
  .tuple(
    fc.boolean(),
    fc.oneof(
      fc.constant("0"),
      fc.tuple(fc.constantFrom(..."123456789"), digits(0, 22)).map(([a, b]) => a + b),
    ),
    fc.option(digits(1, 6)),
    fc.option(fc.integer({ min: -40, max: 40 })),
  )
  .map(([neg, int, frac, exp]) => `${neg ? "-" : ""}${int}${frac ? `.${frac}` : ""}${exp === null ? "" : `e${exp}`}`);

describe("value encodings sort as the values do", () => {
  it("numbers, exactly", () => {
    fc.assert(
      fc.property(number, number, (a, b) => {
        expect(sign(Buffer.compare(encodeValue("number", a), encodeValue("number", b)))).toBe(compareExact(a, b));
      }),
      { numRuns: 3000 },
    );
    expect(encodeValue("number", "12345678901234567890").equals(encodeValue("number", "12345678901234567891"))).toBe(
      false,
    );
    expect(encodeValue("number", "1.50").equals(encodeValue("number", "1.5"))).toBe(true);
    expect(encodeValue("number", "-0").equals(encodeValue("number", "0.0e5"))).toBe(true);
  });

  it("strings, by UTF-8 bytes", () => {
    fc.assert(
      fc.property(fc.string({ unit: "grapheme" }), fc.string({ unit: "grapheme" }), (a, b) => {
        const want = sign(Buffer.compare(Buffer.from(a), Buffer.from(b)));
        expect(sign(Buffer.compare(encodeValue("string", a), encodeValue("string", b)))).toBe(want);
      }),
      { numRuns: 2000 },
    );
  });

  it("datetimes, as instants across zones", () => {
    const instant = fc.integer({ min: -62_135_596_800_000 + 86_400_000, max: 253_402_300_799_000 - 86_400_000 });
    const zone = fc.integer({ min: -23 * 60 - 59, max: 23 * 60 + 59 });
    const text = (ms: number, z: number, fraction: string) => {
      const local = new Date(ms + z * 60_000).toISOString().slice(0, 19);
      const sgn = z < 0 ? "-" : "+";
      const abs = Math.abs(z);
      const off =
        z === 0 ? "Z" : `${sgn}${String(Math.floor(abs / 60)).padStart(2, "0")}:${String(abs % 60).padStart(2, "0")}`;
      return `${local}${fraction}${off}`;
    };
    fc.assert(
      fc.property(instant, zone, instant, zone, digits(0, 4), digits(0, 4), (a, za, b, zb, fa, fb) => {
        const sa = Math.floor(a / 1000) * 1000;
        const sb = Math.floor(b / 1000) * 1000;
        const fracA = fa ? `.${fa}` : "";
        const fracB = fb ? `.${fb}` : "";
        const want = sa !== sb ? sign(sa - sb) : sign(Number(`0.${fa || 0}`) - Number(`0.${fb || 0}`));
        const got = Buffer.compare(
          encodeValue("datetime", text(sa, za, fracA)),
          encodeValue("datetime", text(sb, zb, fracB)),
        );
        expect(sign(got)).toBe(want);
      }),
      { numRuns: 2000 },
    );
    expect(
      encodeValue("datetime", "2024-01-15T10:30:00+02:00").equals(encodeValue("datetime", "2024-01-15T08:30:00Z")),
    ).toBe(true);
  });
});
