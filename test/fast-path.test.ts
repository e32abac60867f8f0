import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { INITIAL_STATE, type ParseOutput, parseSlice } from "../dist/engine/property-parser.js";

/**
 * The parser's regex fast path must be invisible: for any body, split anywhere, it gives
 * exactly what saxes alone gives (lines, index data, cut points, state, errors and their
 * positions). Bodies mix plain properties with everything the fast path must hand over.
 */

const RUNS = Number(process.env.FUZZ_RUNS ?? 300);

function parseAll(body: Buffer, cuts: number[], slowOnly: boolean) {
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
    const r = parseSlice({ bytes, state, final: k === points.length, maxPropertyBytes: 300, slowOnly });
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
