import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { BIG_VALUE_BYTES, leadingBinary } from "../../dist/parse/big-binary.js";
import { INITIAL_STATE, type ParseOutput, parseSlice } from "../../dist/parse/property-parser.js";

/**
 * The parser's regex fast path must be invisible: for any body, split anywhere, it gives
 * exactly what saxes alone gives (lines, index data, cut points, state, errors and their
 * positions). Bodies mix plain properties with everything the fast path must hand over.
 */

const RUNS = Number(process.env.FUZZ_RUNS ?? 300);

function parseAll(body: Buffer, cuts: number[], slowOnly: boolean, maxPropertyBytes = 300) {
  let state = INITIAL_STATE;
  let rest = new Uint8Array(0);
  const steps: Omit<ParseOutput, "out">[] = [];
  let out = "";
  let pos = 0;
  const points = [...new Set(cuts.map((c) => c % (body.length + 1)))].sort((a, b) => a - b);
  for (let k = 0; k <= points.length; k++) {
    const end = k < points.length ? points[k] : body.length;
    const bytes = new Uint8Array(rest.length + Math.max(0, end - pos));
    bytes.set(rest);
    if (end > pos) bytes.set(body.subarray(pos, end), rest.length);
    pos = Math.max(pos, end);
    const r = parseSlice({ bytes, state, final: k === points.length, maxPropertyBytes, slowOnly });
    out += Buffer.from(r.out).toString();
    const { out: _, ...rest2 } = r;
    steps.push(rest2);
    if (r.error) break;
    state = r.state;
    rest = bytes.subarray(r.consumed);
  }
  return { out, steps };
}

const piece = fc.oneof(
  {
    weight: 6,
    arbitrary: fc.constantFrom(
      '<property for="a"><string>plain text</string></property>',
      '<property for="n"><number> 42 </number></property>\n',
      '\n  <property  for="b" ><boolean>true</boolean>\r\n</property>',
      '<property for="d"><datetime>2024-01-15T10:30:00Z</datetime></property>',
      '<property for="x&gt;y"><binary>aGVs bG8=</binary></property>',
      '<property for="b64"><binary>aGVsbG8=</binary></property>',
      '<property for="b64"><binary>QQ==</binary></property>',
      '<property for="b64"><binary></binary></property>',
      '<property for="b64"><binary>aGVsbG8</binary></property>',
      '<property for="b64"><binary>aGV=bG8=</binary></property>',
      '<property for="b64"><binary>====</binary></property>',
      '<property for="q>r"><string>a > b "c" \'d\'\t\n</string></property>',
      '<property for="u"><string>héllo 😀</string></property>',
    ),
  },
  fc.constantFrom(
    "<!-- note -->",
    '<property for="c"><string><![CDATA[<x>]]></string></property>',
    '<property for="e"><string>a &amp; b &#x41;</string></property>',
    '<property for="cr"><string>a\rb</string></property>',
    '<property for="t\tab"><string>x</string></property>',
    "<property for='single'><string>x</string></property>",
    '<property for="bad"><number>1.</number></property>',
    '<property for="bad"><boolean>yes</boolean></property>',
    '<property for="cc"><string>a\u0001b</string></property>',
    '<property for="end"><string>a]]>b</string></property>',
    `<property for="${"L".repeat(1025)}"><string>x</string></property>`,
    `<property for="big"><string>${"z".repeat(400)}</string></property>`,
    '<property for=""><string>x</string></property>',
    '<property for="a"><string>x</string ></property>',
    '<property for="a" other="1"><string>x</string></property>',
    '<property for="a"><strin>x</strin></property>',
    "stray",
    "<item>",
    "</item>",
    '<property for="a"><string>unterminated',
  ),
);

const body = fc.record({
  decl: fc.boolean(),
  wrap: fc.boolean(),
  pieces: fc.array(piece, { maxLength: 14 }),
  cuts: fc.array(fc.nat(3000), { maxLength: 6 }),
});

describe("parser fast path", () => {
  it(`gives exactly what saxes alone gives (${RUNS} runs)`, () => {
    fc.assert(
      fc.property(body, ({ decl, wrap, pieces, cuts }) => {
        let text = pieces.join("");
        if (wrap) text = `<item>${text}</item>`;
        if (decl) text = `<?xml version="1.0"?>\n${text}`;
        const b = Buffer.from(text);
        expect(parseAll(b, cuts, false)).toEqual(parseAll(b, cuts, true));
      }),
      { numRuns: RUNS },
    );
  });
});

/**
 * Large binary values are checked on their bytes (big-binary.ts) rather than as text:
 * bodies of big values in every shape that path must take or leave, split anywhere.
 */
const big = (n: number) => "QUJD".repeat(Math.ceil(n / 4));
const bigPiece = fc.oneof(
  fc.constantFrom(
    `<property for="blob"><binary>${big(70_000)}</binary></property>\n`,
    `\r\n  <property\n for="naïve 😀>x" ><binary>${big(90_000)}QQ==</binary>\n\t</property>`,
    `<property for="p"> \n<binary>${big(70_000)}QUI=</binary></property>`,
    `<property for="odd"><binary>${big(70_000)}QU</binary></property>`,
    `<property for="pad3"><binary>${big(70_000)}Q===</binary></property>`,
    `<property for="mid"><binary>${big(40_000)}QU=J${big(40_000)}</binary></property>`,
    `<property for="ws"><binary>${big(40_000)} ${big(40_000)}</binary></property>`,
    `<property for="bad"><binary>${big(40_000)}*${big(40_000)}</binary></property>`,
    `<property for="cut"><binary>${big(70_000)}</binary>`,
    `<property for="huge"><binary>${big(150_000)}</binary></property>`,
    `<property for="small"><binary>${big(1_000)}</binary></property>`,
    '<property for="empty"><binary></binary></property>',
    `<property for="s"><string>${"s".repeat(70_000)}</string></property>`,
  ),
  piece,
);

describe("parser: large binary values from their bytes", () => {
  it("takes a large plain binary property without decoding it", () => {
    const b = Buffer.from(`\n<property for="blob"><binary>${big(BIG_VALUE_BYTES)}</binary></property>`);
    expect(leadingBinary(b, 1 << 20)).toMatchObject({ name: "blob", end: b.length, newlines: 1 });
    expect(leadingBinary(b.subarray(0, b.length - 1), 1 << 20)).toBeNull();
  });

  it(`gives exactly what saxes alone gives (${Math.ceil(RUNS / 10)} runs)`, () => {
    fc.assert(
      fc.property(
        fc.record({
          decl: fc.boolean(),
          wrap: fc.boolean(),
          pieces: fc.array(bigPiece, { minLength: 1, maxLength: 5 }),
          cuts: fc.array(fc.nat(600_000), { maxLength: 4 }),
        }),
        ({ decl, wrap, pieces, cuts }) => {
          let text = pieces.join("");
          if (wrap) text = `<item>${text}</item>`;
          if (decl) text = `<?xml version="1.0"?>\n${text}`;
          const b = Buffer.from(text);
          // Room for the 90,000-byte values but not the 150,000-byte one.
          expect(parseAll(b, cuts, false, 128 << 10)).toEqual(parseAll(b, cuts, true, 128 << 10));
        },
      ),
      { numRuns: Math.ceil(RUNS / 10) },
    );
  });
});
