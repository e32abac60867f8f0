import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { parseSchemaDocument } from "../../dist/schema/schema-document.js";
import { CompiledSchema, isWhole } from "../../dist/schema/validator.js";

/** The checks a schema makes of canonical values, against plain arithmetic. */

const number = fc
  .tuple(
    fc.boolean(),
    fc.bigInt({ min: 0n, max: 10n ** 30n }),
    fc.option(fc.stringMatching(/^[0-9]{1,12}$/), { nil: undefined }),
    fc.option(fc.integer({ min: -40, max: 40 }), { nil: undefined }),
  )
  .map(([neg, whole, fraction, exp]) => ({
    text: `${neg ? "-" : ""}${whole}${fraction === undefined ? "" : `.${fraction}`}${exp === undefined ? "" : `e${exp}`}`,
    digits: BigInt(`${whole}${fraction ?? ""}`),
    shift: (exp ?? 0) - (fraction?.length ?? 0),
  }));

/** The value as a fraction digits / 10^-shift, compared exactly. */
function compare(
  a: { digits: bigint; shift: number; text: string },
  b: { digits: bigint; shift: number; text: string },
) {
  const sa = a.text.startsWith("-") && a.digits !== 0n ? -1n : 1n;
  const sb = b.text.startsWith("-") && b.digits !== 0n ? -1n : 1n;
  const shift = Math.min(a.shift, b.shift);
  const x = sa * a.digits * 10n ** BigInt(a.shift - shift);
  const y = sb * b.digits * 10n ** BigInt(b.shift - shift);
  return x < y ? -1 : x > y ? 1 : 0;
}

describe("schema checks", () => {
  it("integer: whole exactly when no digit is left behind the point", () => {
    fc.assert(
      fc.property(number, (n) => {
        const whole = n.shift >= 0 || n.digits % 10n ** BigInt(-n.shift) === 0n;
        expect(isWhole(n.text), n.text).toBe(whole);
      }),
    );
  });

  it("min and max compare numbers exactly, inclusive at both ends", () => {
    fc.assert(
      fc.property(number, number, number, (lo, hi, v) => {
        const schema = new CompiledSchema(
          parseSchemaDocument(JSON.stringify({ properties: { n: { type: "number", min: lo.text, max: hi.text } } })),
        );
        const broken = schema.check("n", "number", v.text);
        const expected = compare(v, lo) < 0 ? "min" : compare(v, hi) > 0 ? "max" : null;
        expect(broken?.rule ?? null, `${lo.text} <= ${v.text} <= ${hi.text}`).toBe(expected);
      }),
    );
  });

  it("max_length counts code points", () => {
    fc.assert(
      fc.property(fc.string({ unit: "grapheme", maxLength: 12 }), fc.integer({ min: 0, max: 12 }), (s, max) => {
        const schema = new CompiledSchema(
          parseSchemaDocument(JSON.stringify({ properties: { s: { type: "string", max_length: max } } })),
        );
        expect(schema.check("s", "string", s)?.rule ?? null).toBe([...s].length > max ? "max_length" : null);
      }),
    );
  });
});
