import { existsSync, readFileSync } from "node:fs";
import { join } from "node:path";
import fc from "fast-check";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { get, postChunks } from "../helpers/http.js";
import { startTestServer, type TestServer } from "../helpers/server.js";

/**
 * Property-based: random bodies (valid properties, split anywhere, with corruption thrown
 * in) against the real server. After each: the server answers, the answer is 200 or a 4xx
 * with a code, `committed` is exact, and the data file holds exactly the canonical lines of
 * the committed properties. `npm run fuzz` runs many more cases (FUZZ_RUNS).
 */

const RUNS = Number(process.env.FUZZ_RUNS ?? 40);
let s: TestServer;
let n = 0;
beforeAll(async () => {
  s = await startTestServer(["--max-property-bytes", "20000"]);
});
afterAll(async () => {
  await s.stop();
});

// Characters that survive XML parsing unchanged (no CR, no control characters; attribute
// values also lose tabs and newlines to spaces, so names avoid them).
const NAME_CHARS = [..."abcXYZ019 _-.:/&<>\"'é✓😀中"];
const TEXT_CHARS = [...NAME_CHARS, "\n", "\t", "]]>"];

const escText = (t: string) => t.replace(/&/g, "&amp;").replace(/</g, "&lt;").replace(/>/g, "&gt;");
const escAttr = (t: string) => escText(t).replace(/"/g, "&quot;");
const canon = (t: string) =>
  t.replace(/&/g, "&amp;").replace(/</g, "&lt;").replace(/>/g, "&gt;").replace(/"/g, "&quot;").replace(/\n/g, "&#10;");

interface Prop {
  name: string;
  type: string;
  body: string;
  canonical: string;
}

const name = fc.array(fc.constantFrom(...NAME_CHARS), { minLength: 1, maxLength: 12 }).map((a) => a.join(""));
const text = fc.array(fc.constantFrom(...TEXT_CHARS), { maxLength: 40 }).map((a) => a.join(""));
const pad = fc.constantFrom("", " ", "\n  ", "\t");

const value: fc.Arbitrary<{ type: string; raw: string; canonical: string }> = fc.oneof(
  text.map((t) => ({ type: "string", raw: escText(t), canonical: t })),
  text.map((t) => ({ type: "string", raw: `<![CDATA[${t.replace(/]]>/g, "")}]]>`, canonical: t.replace(/]]>/g, "") })),
  fc
    .tuple(fc.integer(), fc.nat(999), pad)
    .map(([i, f, p]) => ({ type: "number", raw: `${p}${i}.${f}${p}`, canonical: `${i}.${f}` })),
  fc.tuple(fc.boolean(), pad).map(([b, p]) => ({ type: "boolean", raw: `${p}${b}${p}`, canonical: String(b) })),
  fc.date({ min: new Date("1970-01-01"), max: new Date("2100-01-01"), noInvalidDate: true }).map((d) => ({
    type: "datetime",
    raw: d.toISOString(),
    canonical: d.toISOString(),
  })),
  fc.uint8Array({ maxLength: 30 }).map((b) => {
    const b64 = Buffer.from(b).toString("base64");
    return { type: "binary", raw: b64.replace(/(.{4})/g, "$1\n "), canonical: b64 };
  }),
);

const prop: fc.Arbitrary<Prop> = fc.tuple(name, value, pad).map(([nm, v, p]) => ({
  name: nm,
  type: v.type,
  body: `<property for="${escAttr(nm)}">${p}<${v.type}>${v.raw}</${v.type}>${p}</property>${p}`,
  canonical: `<property for="${canon(nm)}"><${v.type}>${canon(v.canonical)}</${v.type}></property>\n`,
}));

/** Constructs that are always invalid, wherever they land between properties. */
const corruption = fc.oneof(
  fc.constant("<bogus/>"),
  fc.constant('<property for="x"><string>unterminated'),
  fc.constant('<property for="x"><string>a<b/></string></property>'),
  fc.constant('<property for="x"><number>1 2</number></property>'),
  fc.constant(`<property for="${"n".repeat(1025)}"><string/></property>`),
  fc.constant(`<property for="big"><string>${"z".repeat(25_000)}</string></property>`),
  fc.constant("stray text"),
  fc.constant("<!DOCTYPE x>"),
  fc.constant("<?pi?>"),
  fc.constant("&undefined;"),
  fc.constant("</property>"),
  fc.uint8Array({ minLength: 1, maxLength: 20 }).map((b) => Buffer.concat([Buffer.from([0xff]), Buffer.from(b)])),
);

const plan = fc.record({
  props: fc.array(prop, { maxLength: 12 }),
  corruptAt: fc.option(fc.nat(12), { nil: undefined }),
  corruption,
  wrapped: fc.boolean(),
  decl: fc.boolean(),
  cuts: fc.array(fc.nat(2000), { maxLength: 8 }),
});

function toChunks(body: Buffer, cuts: number[]): Buffer[] {
  const points = [...new Set(cuts.map((c) => c % (body.length + 1)))].sort((a, b) => a - b);
  const out: Buffer[] = [];
  let at = 0;
  for (const p of [...points, body.length]) {
    if (p > at) out.push(body.subarray(at, p));
    at = Math.max(at, p);
  }
  return out.length > 0 ? out : [Buffer.alloc(0)];
}

describe("fuzzing the write path", () => {
  it(`structured bodies with corruption: exact commits and exact files (${RUNS} runs)`, async () => {
    await fc.assert(
      fc.asyncProperty(plan, async ({ props, corruptAt, corruption, wrapped, decl, cuts }) => {
        const item = `fuzz${++n}`;
        const at = corruptAt === undefined ? -1 : Math.min(corruptAt, props.length);
        const parts = props.map((p) => Buffer.from(p.body));
        if (at >= 0) parts.splice(at, 0, Buffer.from(corruption));
        if (wrapped) parts.unshift(Buffer.from("<item>"));
        if (wrapped) parts.push(Buffer.from("</item>"));
        if (decl) parts.unshift(Buffer.from('<?xml version="1.0" encoding="UTF-8"?>\n'));
        const body = Buffer.concat(parts);
        const a = await postChunks(`${s.url}/write-item-stream/${item}/1`, toChunks(body, cuts));
        const kept = at >= 0 ? props.slice(0, at) : props;
        if (at < 0) {
          expect(a.status, a.text).toBe(200);
        } else {
          expect([400, 413], a.text).toContain(a.status);
          expect(a.json().error.code).toMatch(/^[a-z_]+$/);
        }
        expect(a.json().committed).toBe(kept.length);
        const file = join(s.dataDir, `${item}_1.data`);
        const expected = kept.length === 0 && at >= 0 ? null : `<item>\n${kept.map((p) => p.canonical).join("")}`;
        if (expected === null) expect(existsSync(file)).toBe(false);
        else expect(readFileSync(file, "utf8")).toBe(expected);
      }),
      { numRuns: RUNS },
    );
  });

  it(`random bytes: the server stays up and answers 200 or a coded 4xx (${RUNS} runs)`, async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.uint8Array({ maxLength: 300 }),
        fc.array(fc.nat(300), { maxLength: 5 }),
        async (bytes, cuts) => {
          const item = `noise${++n}`;
          const a = await postChunks(`${s.url}/write-item-stream/${item}/1`, toChunks(Buffer.from(bytes), cuts));
          expect([200, 400, 413]).toContain(a.status);
          if (a.status !== 200) expect(a.json().error.code).toMatch(/^[a-z_]+$/);
          const file = join(s.dataDir, `${item}_1.data`);
          const lines = existsSync(file) ? readFileSync(file, "utf8").split("\n").slice(1, -1) : [];
          expect(lines.length).toBe(a.json().committed);
          for (const l of lines)
            expect(l).toMatch(
              /^<property for="[^"]*"><(string|number|boolean|datetime|binary)>[^<]*<\/\1><\/property>$/,
            );
        },
      ),
      { numRuns: RUNS },
    );
    expect((await get(`${s.url}/read-item-stream/none/1?wait=false`)).status).toBe(404);
  });
});
