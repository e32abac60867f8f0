import { describe, expect, it } from "vitest";
import { INITIAL_STATE, type ParseOutput, parseSlice } from "../../dist/parse/property-parser.js";

const enc = new TextEncoder();
const dec = new TextDecoder();

/** Parses `body` delivered in pieces ending at `cuts`, the way a request's tasks do. */
function parseInPieces(body: Uint8Array, cuts: number[], max = 1 << 20) {
  let state = INITIAL_STATE;
  let rest = new Uint8Array(0);
  let out = "";
  let pos = 0;
  let error: ParseOutput["error"];
  for (let k = 0; k <= cuts.length && !error; k++) {
    const end = k < cuts.length ? cuts[k] : body.length;
    const bytes = new Uint8Array(rest.length + end - pos);
    bytes.set(rest);
    bytes.set(body.subarray(pos, end), rest.length);
    pos = end;
    const r = parseSlice({ bytes, state, final: k === cuts.length, maxPropertyBytes: max });
    out += dec.decode(r.out);
    error = r.error;
    state = r.state;
    rest = bytes.subarray(r.consumed);
  }
  return { out, error };
}

const BODY = enc.encode(`\uFEFF<?xml version="1.0" encoding="utf-8"?>
<!-- c1 --><item>
  <property for="naïve &amp; &quot;q&quot;"><string>Ünïcödé 😀 <![CDATA[<x>]]> &#x1F600; &lt;</string></property>
  <property for="n"><number>
    -0.5E-7 </number></property><!-- c2 -->
  <property for="d"><datetime>2000-02-29T00:00:00Z</datetime></property>
  <property for="b"><binary>QU
  JD</binary></property>
</item>
<!-- trailing -->
`);

describe("property parser", () => {
  const whole = parseInPieces(BODY, []);

  it("produces canonical lines", () => {
    expect(whole.error).toBeUndefined();
    expect(whole.out).toBe(
      '<property for="naïve &amp; &quot;q&quot;"><string>Ünïcödé 😀 &lt;x&gt; 😀 &lt;</string></property>\n' +
        '<property for="n"><number>-0.5E-7</number></property>\n' +
        '<property for="d"><datetime>2000-02-29T00:00:00Z</datetime></property>\n' +
        '<property for="b"><binary>QUJD</binary></property>\n',
    );
  });

  it("gives the same result for a split at every byte position", () => {
    for (let cut = 1; cut < BODY.length; cut++) {
      expect(parseInPieces(BODY, [cut]), `split at ${cut}`).toEqual(whole);
    }
  });

  it("gives the same result one byte at a time", () => {
    expect(
      parseInPieces(
        BODY,
        Array.from({ length: BODY.length - 1 }, (_, i) => i + 1),
      ),
    ).toEqual(whole);
  });

  it("reports the line and column of an error in the body, across pieces", () => {
    const body = enc.encode(
      '<item>\n<property for="a"><string>x</string></property>\n  <property for="b"><number>x</number></property>\n</item>',
    );
    for (const cuts of [[], [10], [60, 61, 62]]) {
      const r = parseInPieces(body, cuts);
      expect(r.out).toBe('<property for="a"><string>x</string></property>\n');
      expect(r.error).toMatchObject({ code: "invalid_value", details: { line: 3 } });
    }
  });

  it("rejects a property whose canonical line is over the limit", () => {
    const r = parseInPieces(enc.encode('<property for="a"><string>0123456789</string></property>'), [], 40);
    expect(r.error?.code).toBe("property_too_large");
  });

  it("rejects an unterminated body with the element it ended in", () => {
    expect(parseInPieces(enc.encode("<item>"), []).error?.message).toMatch(/ended inside <item>/);
    expect(parseInPieces(enc.encode('<property for="x">'), []).error?.message).toMatch(/ended inside <property>/);
  });
});
