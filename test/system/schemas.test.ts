import { request } from "undici";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { get } from "../helpers/http.js";
import { spawnServer, startTestServer, type TestServer, tempDir } from "../helpers/server.js";

/** The schema registry (README, "Schemas"): documents checked at PUT, versions, compatibility, durability. */

let s: TestServer;
beforeAll(async () => {
  s = await startTestServer();
});
afterAll(async () => {
  await s.stop();
});

let n = 0;
const fresh = () => `t${++n}`;

async function put(url: string, doc: unknown) {
  const res = await request(url, {
    method: "PUT",
    headers: { "content-type": "application/json" },
    body: typeof doc === "string" ? doc : JSON.stringify(doc),
  });
  const text = await res.body.text();
  return { status: res.statusCode, json: () => JSON.parse(text), text };
}
const schema = (type: string) => `${s.url}/schemas/${type}`;
const doc = (properties: Record<string, unknown>, extra: Record<string, unknown> = {}) => ({ properties, ...extra });

describe("schemas", () => {
  it("registers versions, answers 200 for the same document, and lists them", async () => {
    const t = fresh();
    const v1 = doc({ name: { type: "string", required: true, max_length: 200 } });
    expect((await put(schema(t), v1)).status).toBe(201);
    const same = await put(schema(t), { properties: { name: { max_length: 200, required: true, type: "string" } } });
    expect(same.status).toBe(200);
    expect(same.json()).toEqual({ type: t, version: 1 });
    const v2 = doc({ name: { type: "string", required: true, max_length: 300 }, age: { type: "number", min: 0 } });
    expect((await put(schema(t), v2)).json()).toEqual({ type: t, version: 2 });
    expect((await get(schema(t))).json()).toEqual({ type: t, versions: [1, 2] });
    expect((await get(`${schema(t)}/2`)).json()).toEqual({ type: t, version: 2, schema: v2 });
    expect((await get(`${s.url}/schemas`)).json().schemas).toContainEqual({ type: t, versions: 2 });
    for (const url of [`${schema(t)}/3`, `${schema(t)}/0`, schema("nope-none")]) {
      const a = await get(url);
      expect(a.status, url).toBe(404);
      expect(a.json().error.code).toBe("schema_not_found");
    }
  });

  it("accepts every rule, and refuses a bad part with invalid_schema and its JSON path", async () => {
    const full = doc(
      {
        name: { type: "string", required: true, max_length: 200, pattern: "^[A-Z]", enum: ["Ada", "Bo"] },
        age: { type: "number", integer: true, min: 0, max: 150 },
        tags: { type: "string", repeated: true },
        avatar: { type: "binary", max_bytes: 1048576 },
        seen: { type: "datetime", min: "2000-01-01T00:00:00Z", max: "2100-01-01T00:00:00+02:00" },
        ok: { type: "boolean" },
      },
      { additional_properties: false, compatibility: "full" },
    );
    expect((await put(schema(fresh()), full)).status).toBe(201);
    const bad: [unknown, string][] = [
      ["not json", ""],
      [[], ""],
      [{ properties: {}, extra: 1 }, "/extra"],
      [{ properties: [] }, "/properties"],
      [doc({ a: { type: "text" } }), "/properties/a/type"],
      [doc({ a: { type: "number", max_length: 3 } }), "/properties/a/max_length"],
      [doc({ a: { type: "string", colour: "red" } }), "/properties/a/colour"],
      [doc({ a: { type: "number", min: "ten" } }), "/properties/a/min"],
      [doc({ a: { type: "datetime", max: "2024-01-01" } }), "/properties/a/max"],
      [doc({ a: { type: "string", max_length: -1 } }), "/properties/a/max_length"],
      [doc({ a: { type: "string", enum: [] } }), "/properties/a/enum"],
      [doc({ a: { type: "string", required: "yes" } }), "/properties/a/required"],
      [doc({ "a/b": { type: "string", pattern: "(a)\\1" } }), "/properties/a~1b/pattern"],
      [doc({ a: { type: "string", pattern: "(?=a)b" } }), "/properties/a/pattern"],
      [doc({ a: { type: "string", pattern: "(" } }), "/properties/a/pattern"],
      [{ properties: {}, additional_properties: "no" }, "/additional_properties"],
      [{ properties: {}, compatibility: "sideways" }, "/compatibility"],
    ];
    for (const [body, path] of bad) {
      const a = await put(schema(fresh()), body);
      expect(a.status, JSON.stringify(body)).toBe(400);
      expect(a.json().error).toMatchObject({ code: "invalid_schema", path });
    }
    expect((await put(`${s.url}/schemas/a%20b`, doc({}))).json().error.code).toBe("invalid_item_id");
  });

  it("checks each compatibility mode against the latest version, listing what breaks it", async () => {
    const base = { a: { type: "string", max_length: 10 }, b: { type: "number", min: 0 } };
    const cases: [string, Record<string, unknown>, boolean][] = [
      // backward: every old document stays valid
      ["backward", { ...base, c: { type: "string" } }, true],
      ["backward", { ...base, a: { type: "string", max_length: 20 } }, true],
      ["backward", { ...base, c: { type: "string", required: true } }, false],
      ["backward", { ...base, a: { type: "string", max_length: 5 } }, false],
      ["backward", { ...base, b: { type: "number", min: 1 } }, false],
      ["backward", { ...base, b: { type: "string" } }, false],
      // forward: every new document was valid before
      ["forward", { ...base, a: { type: "string", max_length: 5 } }, true],
      ["forward", { ...base, a: { type: "string", max_length: 20 } }, false],
      ["forward", { ...base, b: { type: "number", min: -1 } }, false],
      // full: both
      ["full", { ...base, c: { type: "string" } }, true],
      ["full", { ...base, a: { type: "string", max_length: 20 } }, false],
      ["full", { ...base, a: { type: "string", max_length: 5 } }, false],
      // none: anything, a type change too
      ["none", { a: { type: "boolean" } }, true],
    ];
    for (const [mode, properties, ok] of cases) {
      const t = fresh();
      expect((await put(schema(t), doc(base, { compatibility: mode }))).status).toBe(201);
      const next = await put(schema(t), doc(properties));
      expect(next.status, `${mode} ${JSON.stringify(properties)}`).toBe(ok ? 201 : 409);
      if (!ok) {
        expect(next.json().error.code).toBe("schema_incompatible");
        expect(next.json().error.changes.length).toBeGreaterThan(0);
      }
    }
  });

  it("survive a restart and kill -9", async () => {
    const dir = tempDir();
    const a = await spawnServer([], dir);
    const t = fresh();
    const v1 = doc({ name: { type: "string" } });
    expect((await put(`${a.url}/schemas/${t}`, v1)).status).toBe(201);
    a.child.kill("SIGKILL");
    await new Promise((r) => a.child.once("exit", r));
    const b = await spawnServer([], dir);
    try {
      expect((await get(`${b.url}/schemas/${t}/1`)).json().schema).toEqual(v1);
    } finally {
      b.child.kill("SIGKILL");
    }
  });
});
