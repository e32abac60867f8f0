import fc from "fast-check";
import { SaxesParser } from "saxes";
import { describe, expect, it } from "vitest";
import { escapeXml } from "../../dist/format/item-file.js";
import { LineSplitter, type PropertyRecord, recordJson } from "../../dist/format/records.js";
import { INITIAL_STATE, parseSlice } from "../../dist/parse/property-parser.js";

/**
 * The typed views' records, read from the data file's bytes in chunks split anywhere,
 * against the same file parsed as XML by saxes: the same (offset, next, name, type, value)
 * sequence, for random bodies. The data file is made by the real parser.
 */

const RUNS = Number(process.env.FUZZ_RUNS ?? 100);
const CHARS = [..."abcXYZ019 _-.:/&<>\"'é✓😀中", "\n", "\r", "\t"];
const text = (max: number) => fc.array(fc.constantFrom(...CHARS), { maxLength: max }).map((a) => a.join(""));
const digits = (min: number) =>
  fc.array(fc.constantFrom(..."0123456789"), { minLength: min, maxLength: 25 }).map((a) => a.join(""));

const property = fc.oneof(
  fc.tuple(text(12), fc.constant("string"), text(40)),
  fc.tuple(
    text(12),
    fc.constant("number"),
    fc
      .tuple(
        fc.boolean(),
        fc.constantFrom("0", "7", "12345678901234567890"),
        digits(0),
        fc.option(fc.integer({ min: -99, max: 99 })),
      )
      .map(
        ([neg, int, frac, exp]) => `${neg ? "-" : ""}${int}${frac ? `.${frac}` : ""}${exp === null ? "" : `e${exp}`}`,
      ),
  ),
  fc.tuple(text(12), fc.constant("boolean"), fc.constantFrom("true", "false")),
  fc.tuple(
    text(12),
    fc.constant("datetime"),
    fc.date({ min: new Date(0), max: new Date(4e12), noInvalidDate: true }).map((d) => d.toISOString()),
  ),
  fc.tuple(
    text(12),
    fc.constant("binary"),
    fc.uint8Array({ maxLength: 40 }).map((b) => Buffer.from(b).toString("base64")),
  ),
);

/** The data file a body gives: <item>, the parser's canonical lines, and </item> if sealed. */
function dataFile(props: [string, string, string][], sealed: boolean): Buffer {
  const body = props.map(
    ([n, t, v]) => `<property for="${escapeXml(n || "x")}"><${t}>${escapeXml(v)}</${t}></property>`,
  );
  const out = parseSlice({
    bytes: Buffer.from(body.join("")),
    state: INITIAL_STATE,
    final: true,
    maxPropertyBytes: 1 << 20,
  });
  expect(out.error).toBeUndefined();
  return Buffer.concat([Buffer.from("<item>\n"), Buffer.from(out.out), Buffer.from(sealed ? "</item>\n" : "")]);
}

/** The same file read as XML: each property's name, type and text, at its line's offsets. */
function bySaxes(file: Buffer, sealed: boolean): Omit<PropertyRecord, never>[] {
  const xml = file.toString("utf8") + (sealed ? "" : "</item>\n");
  const found: { name: string; type: string; value: string }[] = [];
  const parser = new SaxesParser();
  let current: { name: string; type: string; value: string } | null = null;
  parser.on("opentag", (tag) => {
    if (tag.name === "property") current = { name: String(tag.attributes.for), type: "", value: "" };
    else if (current && tag.name !== "item") current.type = tag.name;
  });
  parser.on("text", (t) => {
    if (current?.type) current.value += t;
  });
  parser.on("closetag", (tag) => {
    if (tag.name === "property" && current) found.push(current);
    if (tag.name === "property") current = null;
  });
  parser.write(xml).close();
  // Offsets: the lines of the file, after <item>.
  const records = [];
  let at = "<item>\n".length;
  for (const p of found) {
    const next = file.indexOf(0x0a, at) + 1;
    records.push({ ...p, offset: at, next } as PropertyRecord);
    at = next;
  }
  return records;
}

describe("typed records", () => {
  it("read in chunks split anywhere, give what saxes finds in the same file", () => {
    fc.assert(
      fc.property(
        fc.array(property, { maxLength: 12 }),
        fc.boolean(),
        fc.array(fc.nat(), { maxLength: 8 }),
        (props, sealed, cuts) => {
          const file = dataFile(props as [string, string, string][], sealed);
          const at = [...new Set(cuts.map((c) => c % (file.length + 1)))].sort((a, b) => a - b);
          const splitter = new LineSplitter();
          const got: PropertyRecord[] = [];
          let from = 0;
          for (const end of [...at, file.length]) {
            got.push(...splitter.push(file.subarray(from, end), from));
            from = end;
          }
          expect(splitter.carried).toBe(0);
          expect(got).toEqual(bySaxes(file, sealed));
        },
      ),
      { numRuns: RUNS },
    );
  });

  it("as JSON: numbers keep their digits, strings are unescaped, the rest is text", () => {
    const rec = (type: string, value: string): PropertyRecord =>
      ({ offset: 7, next: 65, name: 'a "b"', type, value }) as PropertyRecord;
    expect(recordJson(rec("number", "12345678901234567890.50e-3"))).toBe(
      '{"offset":7,"next":65,"name":"a \\"b\\"","type":"number","value":12345678901234567890.50e-3}',
    );
    expect(JSON.parse(recordJson(rec("boolean", "false"))).value).toBe(false);
    expect(JSON.parse(recordJson(rec("string", "x\ny<"))).value).toBe("x\ny<");
    expect(JSON.parse(recordJson(rec("binary", "aGVsbG8="))).value).toBe("aGVsbG8=");
    expect(JSON.parse(recordJson(rec("datetime", "2024-01-15T10:30:00Z"))).value).toBe("2024-01-15T10:30:00Z");
  });

  it("an unfinished line is held until its end arrives, and counted", () => {
    const s = new LineSplitter();
    const line = Buffer.from('<property for="n"><number>1</number></property>\n');
    expect(s.push(line.subarray(0, 10), 7)).toEqual([]);
    expect(s.carried).toBe(10);
    expect(s.push(line.subarray(10), 17)).toMatchObject([
      { name: "n", type: "number", value: "1", offset: 7, next: 7 + line.length },
    ]);
    expect(s.carried).toBe(0);
    expect(() => s.push(line, 0)).toThrow(/does not follow/);
  });
});

describe("a chunk shared by many live readers", () => {
  const lines = (...names: string[]) =>
    Buffer.from(names.map((n) => `<property for="${n}"><number>1</number></property>\n`).join(""));

  it("is cut once; a splitter with an unfinished line still gets that line's record", () => {
    const first = lines("a");
    const shared = lines("b", "c");
    const clean = new LineSplitter();
    clean.push(first, 7);
    const behind = new LineSplitter();
    behind.push(first.subarray(0, 10), 7); // an unfinished line, carried
    behind.push(first.subarray(10), 17);
    const held = new LineSplitter();
    held.push(first.subarray(0, first.length - 1), 7); // all but the newline
    const a = clean.push(shared, 7 + first.length);
    const b = behind.push(shared, 7 + first.length);
    expect(b).toBe(a); // the same array: cut once
    const c = held.push(Buffer.concat([Buffer.from("\n"), shared]), 7 + first.length - 1);
    expect(c.map((r) => r.name)).toEqual(["a", "b", "c"]);
    // The same buffer at another offset is another chunk.
    const other = new LineSplitter();
    other.push(lines("x", "y", "z"), 7);
    expect(other.push(shared, 7 + 3 * first.length)[0].offset).toBe(7 + 3 * first.length);
  });
});
