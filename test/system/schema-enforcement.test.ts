import fc from "fast-check";
import { request } from "undici";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { get, line, post, postChunks, XML } from "../helpers/http.js";
import { spawnServer, startTestServer, type TestServer, tempDir } from "../helpers/server.js";

/** Schemas bound to versions with ?type= and enforced while the body streams (README, "Schemas"). */

let s: TestServer;
beforeAll(async () => {
  s = await startTestServer();
});
afterAll(async () => {
  await s.stop();
});

let n = 0;
const fresh = (what = "i") => `${what}${++n}`;

async function putSchema(base: string, type: string, doc: unknown) {
  const res = await request(`${base}/schemas/${type}`, {
    method: "PUT",
    headers: { "content-type": "application/json" },
    body: JSON.stringify(doc),
  });
  const text = await res.body.text();
  return { status: res.statusCode, json: () => JSON.parse(text) };
}

/** A type with one property `p` under `rules`, other properties refused. */
async function typeWith(rules: Record<string, unknown>, extra: Record<string, unknown> = {}): Promise<string> {
  const t = fresh("t");
  const put = await putSchema(s.url, t, { properties: { p: rules }, additional_properties: false, ...extra });
  expect(put.status).toBe(201);
  return t;
}

const write = (item: string, v: number, query = "") => `${s.url}/write-item-stream/${item}/${v}${query}`;

describe("enforcing a schema", () => {
  // Each rule: the values at its edge that pass, and the next ones, which do not.
  const rules: { rules: Record<string, unknown>; type: string; ok: string[]; bad: string[]; rule: string }[] = [
    {
      rules: { type: "string", max_length: 3 },
      type: "string",
      ok: ["abc", "a😀c", ""],
      bad: ["abcd", "😀😀😀😀"],
      rule: "max_length",
    },
    { rules: { type: "string", pattern: "^[a-z]+$" }, type: "string", ok: ["abc"], bad: ["ab1", ""], rule: "pattern" },
    { rules: { type: "string", pattern: "b" }, type: "string", ok: ["abc"], bad: ["ac"], rule: "pattern" },
    {
      rules: { type: "string", enum: ["a", "b"] },
      type: "string",
      ok: ["a", "b"],
      bad: ["c", "A", " a"],
      rule: "enum",
    },
    {
      rules: { type: "number", min: 0 },
      type: "number",
      ok: ["0", "0.0", "-0", "1e-300"],
      bad: ["-1e-300", "-0.5"],
      rule: "min",
    },
    {
      rules: { type: "number", max: "12345678901234567890" },
      type: "number",
      ok: ["12345678901234567890", "1.2345678901234567890e19"],
      bad: ["12345678901234567891", "12345678901234567890.000001"],
      rule: "max",
    },
    {
      rules: { type: "number", integer: true },
      type: "number",
      ok: ["2", "2.0", "1e2", "1.5e1", "-3", "0e-5"],
      bad: ["1.5", "1e-1", "15e-1"],
      rule: "integer",
    },
    {
      rules: { type: "binary", max_bytes: 3 },
      type: "binary",
      ok: ["AAAA", "AA==", ""],
      bad: ["AAAAAA==", "AAAAAAAA"],
      rule: "max_bytes",
    },
    {
      rules: { type: "datetime", min: "2000-01-01T00:00:00Z" },
      type: "datetime",
      ok: ["2000-01-01T02:00:00+02:00", "2000-01-01T00:00:00.000Z"],
      bad: ["2000-01-01T01:59:59+02:00", "1999-12-31T23:59:59.999Z"],
      rule: "min",
    },
    {
      rules: { type: "datetime", max: "2000-01-01T00:00:00Z" },
      type: "datetime",
      ok: ["1999-12-31T19:00:00-05:00"],
      bad: ["2000-01-01T00:00:00.001Z"],
      rule: "max",
    },
    { rules: { type: "boolean" }, type: "boolean", ok: ["true", "false"], bad: [], rule: "type" },
  ];

  for (const r of rules) {
    it(`${JSON.stringify(r.rules)}: accepts its edge and refuses past it`, async () => {
      const t = await typeWith({ ...r.rules, repeated: true });
      const item = fresh();
      for (const value of r.ok) {
        const a = await post(write(item, 1, `?type=${t}`), line("p", r.type, value));
        expect(a.status, `${value}: ${a.text}`).toBe(200);
      }
      for (const value of r.bad) {
        const a = await post(write(item, 1), `${line("p", r.type, r.ok[0])}${line("p", r.type, value)}`);
        expect(a.status, `${value}: ${a.text}`).toBe(422);
        expect(a.json()).toMatchObject({
          error: { code: "schema_violation", property: "p", rule: r.rule, line: 2, column: 1 },
          committed: 1,
        });
      }
    });
  }

  it("refuses another type, an undeclared property, and a second occurrence", async () => {
    const t = await typeWith({ type: "number" });
    const item = fresh();
    const typeBroken = await post(write(item, 1, `?type=${t}`), line("p", "string", "5"));
    expect(typeBroken.status).toBe(422);
    expect(typeBroken.json().error).toMatchObject({ rule: "type", property: "p", line: 1, column: 1 });
    const extra = await post(write(item, 1, `?type=${t}`), `${line("p", "number", "1")}  ${line("q", "number", "1")}`);
    expect(extra.json()).toMatchObject({
      error: { rule: "additional_properties", property: "q", line: 2, column: 3 },
      committed: 1,
    });
    // Within one body, and across requests: `p` is in the version now.
    const twice = await post(write(fresh(), 1, `?type=${t}`), `${line("p", "number", "1")}${line("p", "number", "2")}`);
    expect(twice.json()).toMatchObject({ error: { rule: "repeated", line: 2 }, committed: 1 });
    const again = await post(write(item, 1), line("p", "number", "2"));
    expect(again.status).toBe(422);
    expect(again.json()).toMatchObject({
      error: { rule: "repeated", property: "p", line: 1, column: 1 },
      committed: 0,
    });
    const read = await get(`${s.url}/read-item-stream/${item}/1?format=json`);
    expect(read.json().properties.map((p: { value: number }) => p.value)).toEqual([1]);
  });

  it("checks required at the seal, leaving the version open until they are there", async () => {
    const t = fresh("t");
    await putSchema(s.url, t, {
      properties: {
        name: { type: "string", required: true },
        email: { type: "string", required: true },
        n: { type: "number" },
      },
    });
    const item = fresh();
    const first = await post(write(item, 1, `?type=${t}&seal=true`), line("n", "number", "1"));
    expect(first.status).toBe(422);
    expect(first.json()).toMatchObject({
      error: { code: "schema_violation", rule: "required", missing: ["name", "email"] },
      committed: 1,
    });
    const empty = await post(write(item, 1, "?seal=true"), "");
    expect(empty.json().error.missing).toEqual(["name", "email"]);
    expect((await post(write(item, 1), line("name", "string", "Ada"))).status).toBe(200);
    const sealed = await post(write(item, 1, "?seal=true"), line("email", "string", "ada@example.com"));
    expect(sealed.status, sealed.text).toBe(200);
    expect(sealed.json().sealed).toBe(true);
    // Superseding seals as it stands: version 2, created without its required ones, seals version 2 by version 3.
    expect((await post(write(item, 2), line("n", "number", "2"))).status).toBe(200);
    expect((await post(write(item, 3), "")).status).toBe(200);
    expect((await get(`${s.url}/read-item-stream/${item}/2?format=json`)).json().sealed).toBe(true);
  });

  it("pins the schema version for life; later versions inherit the type at its newest schema", async () => {
    const t = fresh("t");
    await putSchema(s.url, t, { properties: { age: { type: "number", max: 10 } } });
    const item = fresh();
    expect((await post(write(item, 1, `?type=${t}`), line("age", "number", "5"))).status).toBe(200);
    // Version 2 of the schema loosens the rule (backward compatible).
    expect((await putSchema(s.url, t, { properties: { age: { type: "number", max: 100 } } })).json()).toEqual({
      type: t,
      version: 2,
    });
    const old = await post(write(item, 1), line("age2", "number", "1") + line("age", "number", "50"));
    expect(old.status).toBe(422);
    expect(old.json().error).toMatchObject({ rule: "max", property: "age" });
    expect((await post(write(item, 2), line("age", "number", "50"))).status).toBe(200);
    const v1 = (await get(`${s.url}/read-item-stream/${item}/1?format=json`)).json();
    expect(v1.schema).toEqual({ type: t, version: 1 });
    const v2 = await get(`${s.url}/read-item-stream/${item}/2?format=ndjson&follow=false`);
    expect(v2.headers["x-schema-type"]).toBe(t);
    expect(v2.headers["x-schema-version"]).toBe("2");
    const props = (await get(`${s.url}/items/${item}/2/properties`)).json();
    expect(props.schema).toEqual({ type: t, version: 2 });
    const q = (await get(`${s.url}/query?where=${encodeURIComponent("age = 50")}&versions=all`)).json();
    expect(q.items.find((i: { item_id: string }) => i.item_id === item)).toMatchObject({
      version: 2,
      schema: { type: t, version: 2 },
    });
    // A version without a type has no schema field.
    const plain = fresh();
    await post(write(plain, 1), line("age", "number", "1"));
    expect((await get(`${s.url}/read-item-stream/${plain}/1?format=json`)).json().schema).toBeUndefined();
  });

  it("refuses an unknown type and a type another than the version's", async () => {
    const t = await typeWith({ type: "number" });
    const u = await typeWith({ type: "number" });
    const unknown = await post(write(fresh(), 1, "?type=no-such-type"), "");
    expect(unknown.status).toBe(400);
    expect(unknown.json().error.code).toBe("unknown_type");
    const item = fresh();
    await post(write(item, 1, `?type=${t}`), "");
    const other = await post(write(item, 1, `?type=${u}`), "");
    expect(other.status).toBe(409);
    expect(other.json().error.code).toBe("type_mismatch");
    expect((await post(write(item, 1, `?type=${t}`), "")).status).toBe(200);
    const untyped = fresh();
    await post(write(untyped, 1), "");
    const late = await post(write(untyped, 1, `?type=${t}`), "");
    expect(late.status).toBe(409);
    expect(late.json().error.code).toBe("type_mismatch");
    // A later version may name another type; the one after inherits that.
    expect((await post(write(item, 2, `?type=${u}`), line("p", "number", "1"))).status).toBe(200);
    await post(write(item, 3), "");
    expect((await get(`${s.url}/read-item-stream/${item}/3?format=json`)).json().schema).toEqual({
      type: u,
      version: 1,
    });
  });

  it("reports the same line and column whatever the chunks, on the main thread and in the parser pool", async () => {
    const t = await typeWith({ type: "string", max_length: 8, repeated: true });
    // Over 16 KiB, a slice goes to the parser pool; the small body is parsed on the main thread.
    const filler = line("p", "string", "ok").repeat(600);
    for (const head of ["", filler]) {
      const body = `<item>\n${head}  ${line("p", "string", "fine")}\n\t<property for="p"><string>far too long</string></property>\n</item>`;
      const whole = await post(write(fresh(), 1, `?type=${t}`), body);
      expect(whole.status).toBe(422);
      const expected = whole.json();
      expect(expected.error).toMatchObject({ rule: "max_length", column: 2 });
      const bytes = Buffer.from(body);
      const ones = [...bytes].map((b) => Buffer.of(b));
      const chunked = await postChunks(
        write(fresh(), 1, `?type=${t}`),
        head === "" ? ones : [bytes.subarray(0, 20000), ...ones.slice(20000)],
      );
      expect(chunked.json().error).toMatchObject({ line: expected.error.line, column: expected.error.column });
      expect(chunked.json().committed).toBe(expected.committed);
    }
  });

  it("gives the same answer for a body split anywhere (property-based)", async () => {
    const t = fresh("t");
    await putSchema(s.url, t, {
      properties: { a: { type: "number", min: 0 }, b: { type: "string", enum: ["x", "y"], repeated: true } },
      additional_properties: false,
    });
    await fc.assert(
      fc.asyncProperty(
        fc.array(
          fc.constantFrom(
            line("a", "number", "1"),
            line("b", "string", "x"),
            " \n",
            line("b", "string", "é"),
            line("c", "number", "1"),
            line("a", "number", "-1"),
          ),
          { minLength: 1, maxLength: 8 },
        ),
        fc.array(fc.integer({ min: 1, max: 40 }), { minLength: 1, maxLength: 20 }),
        async (parts, cuts) => {
          const body = Buffer.from(parts.join(""));
          const whole = await post(write(fresh(), 1, `?type=${t}`), body);
          const chunks: Buffer[] = [];
          let at = 0;
          for (let i = 0; at < body.length; i++) {
            const size = cuts[i % cuts.length];
            chunks.push(body.subarray(at, at + size));
            at += size;
          }
          const split = await postChunks(write(fresh(), 1, `?type=${t}`), chunks);
          expect(split.status).toBe(whole.status);
          const strip = (a: { json: () => { error?: { request_id?: string } } }) => {
            const j = a.json();
            if (j.error) delete j.error.request_id;
            return { ...j, item_id: undefined };
          };
          expect(strip(split)).toEqual(strip(whole));
        },
      ),
      { numRuns: 25 },
    );
  });

  it("matches a pattern that would backtrack in linear time", async () => {
    const t = await typeWith({ type: "string", pattern: "^(a+)+$" });
    const evil = `${"a".repeat(50_000)}b`;
    const started = Date.now();
    const a = await post(write(fresh(), 1, `?type=${t}`), line("p", "string", evil));
    expect(a.json().error).toMatchObject({ rule: "pattern" });
    // A backtracking engine takes longer than the age of the universe here; this bound only catches that.
    expect(Date.now() - started).toBeLessThan(5000);
    expect((await post(write(fresh(), 1, `?type=${t}`), line("p", "string", "a".repeat(50_000)))).status).toBe(200);
  });
});

describe("bindings on disk", () => {
  it("survive kill -9 right after the answer, and restart enforcing the same schema version", async () => {
    const dir = tempDir();
    const a = await spawnServer(["--fsync", "batch"], dir);
    await putSchema(a.url, "person", { properties: { age: { type: "number", max: 10 } } });
    const w = await post(`${a.url}/write-item-stream/p1/1?type=person`, line("age", "number", "5"));
    expect(w.status).toBe(200);
    const empty = await post(`${a.url}/write-item-stream/p2/1?type=person`, "", XML);
    expect(empty.status).toBe(200);
    a.child.kill("SIGKILL");
    await new Promise((r) => a.child.once("exit", r));
    const b = await spawnServer([], dir);
    try {
      for (const item of ["p1", "p2"]) {
        const refused = await post(
          `${b.url}/write-item-stream/${item}/1`,
          line("x", "number", "50") + line("age", "number", "11"),
        );
        expect(refused.status, item).toBe(422);
        expect(refused.json()).toMatchObject({ error: { rule: "max" }, committed: 1 });
        expect((await get(`${b.url}/read-item-stream/${item}/1?format=json`)).json().schema).toEqual({
          type: "person",
          version: 1,
        });
      }
      // The item's type carries on to its next version.
      const next = await post(`${b.url}/write-item-stream/p1/2`, line("age", "number", "11"));
      expect(next.status).toBe(422);
    } finally {
      b.child.kill("SIGKILL");
    }
  });
});
