import fc from "fast-check";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { get, post, prop } from "../helpers/http.js";
import { startTestServer, type TestServer } from "../helpers/server.js";

/**
 * Queries (README, "Queries") against a reference evaluator written here from the
 * contract's words: random data sets written through the API, random queries in both
 * match modes and both version scopes, read page by page through the cursor.
 */

type Type = "string" | "number" | "boolean" | "datetime";
interface Prop {
  name: string;
  type: Type;
  value: string;
}
interface Version {
  item: string;
  version: number;
  props: Prop[];
  sealed: boolean;
}

const NAMES = ["a", "b", "c"];
const VALUES: Record<Type, string[]> = {
  number: ["-1", "0", "1.5", "2", "12345678901234567890", "12345678901234567891", "1.50"],
  string: ["", "Oslo", "Os", "oslo", "é", "Z"],
  boolean: ["true", "false"],
  datetime: ["2024-01-15T10:30:00Z", "2024-01-15T12:30:00+02:00", "2024-01-15T10:30:00.5Z", "1999-12-31T23:59:59Z"],
};
const TYPES = Object.keys(VALUES) as Type[];

const propArb: fc.Arbitrary<Prop> = fc
  .tuple(fc.constantFrom(...NAMES), fc.constantFrom(...TYPES))
  .chain(([name, type]) => fc.constantFrom(...VALUES[type]).map((value) => ({ name, type, value })));

const dataArb = fc.array(
  fc.tuple(
    fc.constantFrom("i1", "i2", "i3", "i4", "x"),
    fc.array(fc.array(propArb, { maxLength: 4 }), { minLength: 1, maxLength: 3 }),
    fc.boolean(),
  ),
  { minLength: 1, maxLength: 8 },
);

// --- the reference evaluator ------------------------------------------------------

type Leaf =
  | { kind: "cmp"; name: string; op: string; type: Type; value: string }
  | { kind: "exists"; name: string }
  | { kind: "in"; name: string; lits: { type: Type; value: string }[] }
  | { kind: "prefix"; name: string; prefix: string };
type Q = Leaf | { kind: "and" | "or"; items: Q[] } | { kind: "not"; item: Q };

function exact(text: string): { m: bigint; k: number } {
  const [, s, int, frac = "", exp = "0"] = /^(-?)([0-9]+)(?:\.([0-9]+))?(?:[eE]([+-]?[0-9]+))?$/.exec(text) ?? [];
  return { m: BigInt(`${s}${int}${frac}`), k: frac.length - Number(exp) };
}
function compare(type: Type, a: string, b: string): number {
  if (type === "number") {
    const x = exact(a);
    const y = exact(b);
    const k = Math.max(x.k, y.k);
    const d = x.m * 10n ** BigInt(k - x.k) - y.m * 10n ** BigInt(k - y.k);
    return d > 0n ? 1 : d < 0n ? -1 : 0;
  }
  if (type === "string") return Buffer.compare(Buffer.from(a), Buffer.from(b));
  if (type === "boolean") return (a === "true" ? 1 : 0) - (b === "true" ? 1 : 0);
  return Math.sign(Date.parse(a) - Date.parse(b));
}

function leafHolds(l: Leaf, p: Prop): boolean {
  switch (l.kind) {
    case "exists":
      return true;
    case "prefix":
      return p.type === "string" && p.value.startsWith(l.prefix);
    case "in":
      return l.lits.some((x) => x.type === p.type && compare(p.type, p.value, x.value) === 0);
    case "cmp": {
      if (l.type !== p.type) return false;
      const c = compare(p.type, p.value, l.value);
      return { "=": c === 0, "!=": c !== 0, "<": c < 0, "<=": c <= 0, ">": c > 0, ">=": c >= 0 }[l.op] as boolean;
    }
  }
}

function holds(q: Q, v: Version, match: "latest" | "any"): boolean {
  switch (q.kind) {
    case "and":
      return q.items.every((x) => holds(x, v, match));
    case "or":
      return q.items.some((x) => holds(x, v, match));
    case "not":
      return !holds(q.item, v, match);
    default: {
      const mine = v.props.filter((p) => p.name === q.name);
      if (match === "latest") return mine.length > 0 && leafHolds(q, mine[mine.length - 1]);
      return mine.some((p) => leafHolds(q, p));
    }
  }
}

const qArb: fc.Arbitrary<Q> = fc.letrec((tie) => ({
  leaf: fc.oneof(
    fc
      .tuple(fc.constantFrom(...NAMES), fc.constantFrom("=", "!=", "<", "<=", ">", ">="), propArb)
      .map(([name, op, p]) => ({ kind: "cmp", name, op, type: p.type, value: p.value }) as Q),
    fc.constantFrom(...NAMES).map((name) => ({ kind: "exists", name }) as Q),
    fc
      .tuple(fc.constantFrom(...NAMES), fc.array(propArb, { minLength: 1, maxLength: 3 }))
      .map(([name, ps]) => ({ kind: "in", name, lits: ps.map((p) => ({ type: p.type, value: p.value })) }) as Q),
    fc
      .tuple(fc.constantFrom(...NAMES), fc.constantFrom("", "O", "Os", "é"))
      .map(([name, prefix]) => ({ kind: "prefix", name, prefix }) as Q),
  ),
  node: fc.oneof(
    { depthSize: "small" },
    tie("leaf"),
    fc.array(tie("node"), { minLength: 2, maxLength: 3 }).map((items) => ({ kind: "and", items }) as Q),
    fc.array(tie("node"), { minLength: 2, maxLength: 3 }).map((items) => ({ kind: "or", items }) as Q),
    tie("node").map((item) => ({ kind: "not", item }) as Q),
  ),
})).node;

const lit = (type: Type, value: string) => (type === "string" ? JSON.stringify(value) : value);
function text(q: Q): string {
  switch (q.kind) {
    case "and":
      return q.items.map((x) => `(${text(x)})`).join(" AND ");
    case "or":
      return q.items.map((x) => `(${text(x)})`).join(" or ");
    case "not":
      return `NOT (${text(q.item)})`;
    case "exists":
      return `EXISTS ${q.name}`;
    case "prefix":
      return `${q.name} PREFIX ${JSON.stringify(q.prefix)}`;
    case "in":
      return `${q.name} IN [${q.lits.map((l) => lit(l.type, l.value)).join(", ")}]`;
    case "cmp":
      return `${q.name} ${q.op} ${lit(q.type, q.value)}`;
  }
}

// --- the server ---------------------------------------------------------------------

let s: TestServer;
let run = 0;
beforeAll(async () => {
  s = await startTestServer();
});
afterAll(async () => {
  await s.stop();
});

/** Every page of a query, by its cursor, `limit` at a time. */
async function allPages(where: string, extra: string, limit: number, server = s) {
  const items: { item_id: string; version: number; sealed: boolean; offset: number }[] = [];
  let cursor: string | null = null;
  for (let page = 0; page < 100; page++) {
    const url = `${server.url}/query?where=${encodeURIComponent(where)}&limit=${limit}${extra}${cursor ? `&cursor=${cursor}` : ""}`;
    const answer = await get(url);
    expect(answer.status, answer.text).toBe(200);
    const body = answer.json();
    items.push(...body.items);
    cursor = body.cursor;
    if (cursor === null) return items;
  }
  throw new Error("too many pages");
}

describe("queries", () => {
  it("paging while writers append lists every version that matched throughout exactly once", async () => {
    const id = (i: number) => `page-${String(i).padStart(3, "0")}`;
    for (let i = 0; i < 60; i++) await post(`${s.url}/write-item-stream/${id(i)}/1`, prop("kind", "string", "paged"));
    const seen: string[] = [];
    let cursor: string | null = null;
    let extra = 0;
    do {
      const q = `${s.url}/query?where=${encodeURIComponent('kind = "paged"')}&limit=7${cursor ? `&cursor=${cursor}` : ""}`;
      const body = (await get(q)).json();
      seen.push(...body.items.map((x: { item_id: string }) => x.item_id));
      cursor = body.cursor;
      // Between pages: new matching items before and after the cursor, and more properties.
      await post(`${s.url}/write-item-stream/${id(1000 + extra++)}/1`, prop("kind", "string", "paged"));
      await post(`${s.url}/write-item-stream/page-${extra}x/1`, prop("kind", "string", "paged"));
      await post(`${s.url}/write-item-stream/${id(extra)}/1`, prop("other", "number", "1"));
    } while (cursor !== null);
    for (let i = 0; i < 60; i++) expect(seen.filter((x) => x === id(i))).toHaveLength(1);
    expect(new Set(seen).size).toBe(seen.length);
  });

  it("two bounds of one name: one value between them (latest), or each met by some occurrence (any)", async () => {
    await post(`${s.url}/write-item-stream/bounds-a/1`, prop("age", "number", "29") + prop("age", "number", "32"));
    await post(`${s.url}/write-item-stream/bounds-b/1`, prop("age", "number", "30.5"));
    const ids = async (extra: string) =>
      (await get(`${s.url}/query?where=${encodeURIComponent("age >= 30 AND age < 31")}&limit=10000${extra}`))
        .json()
        .items.map((x: { item_id: string }) => x.item_id)
        .filter((x: string) => x.startsWith("bounds-"));
    expect(await ids("")).toEqual(["bounds-b"]);
    expect(await ids("&match=any")).toEqual(["bounds-a", "bounds-b"]);
  });

  it("a name too long for an index key is still found", async () => {
    // 400 characters (names are at most 1,024) of 3 bytes each: 1,200 bytes.
    const name = "中".repeat(400);
    const a = await post(`${s.url}/write-item-stream/long-name/1`, prop(name, "string", "here"));
    expect(a.status, a.text).toBe(200);
    const where = encodeURIComponent(`\`${name}\` = "here"`);
    const body = (await get(`${s.url}/query?where=${where}`)).json();
    expect(body.items.map((x: { item_id: string }) => x.item_id)).toEqual(["long-name"]);
  });

  it("sees every write answered before it", async () => {
    for (let i = 0; i < 20; i++) {
      await post(`${s.url}/write-item-stream/now-${i}/1`, prop("n", "number", String(i)));
      const body = (await get(`${s.url}/query?where=${encodeURIComponent(`n = ${i}`)}&versions=all`)).json();
      expect(body.items.map((x: { item_id: string }) => x.item_id)).toContain(`now-${i}`);
    }
  });

  it("refuses bad parameters", async () => {
    for (const q of [
      "where=a%20%3D",
      "where=a=1&limit=0",
      "where=a=1&limit=10001",
      "where=a=1&versions=some",
      "where=a=1&match=x",
      "where=a=1&cursor=zz",
      "where=a=1&format=xml",
      "",
    ]) {
      const answer = await get(`${s.url}/query?${q}`);
      expect(answer.status, q).toBe(400);
      expect(["invalid_query", "invalid_parameter"]).toContain(answer.json().error.code);
    }
    const bad = (await get(`${s.url}/query?where=${encodeURIComponent("a = ")}`)).json();
    expect(bad.error).toMatchObject({ code: "invalid_query", position: 4 });
  });
});

describe("queries agree with a reference evaluator", () => {
  it("random data, random queries, both match modes and both version scopes, through the cursor", async () => {
    // A server of its own: only these data sets, so every page is one of them.
    const own = await startTestServer();
    try {
      await agree(own);
    } finally {
      await own.stop();
    }
  });
});

async function agree(s: TestServer): Promise<void> {
  await fc.assert(
    fc.asyncProperty(
      dataArb,
      fc.array(qArb, { minLength: 8, maxLength: 8 }),
      fc.integer({ min: 1, max: 4 }),
      async (data, queries, limit) => {
        const prefix = `r${++run}-`;
        const written: Version[] = [];
        const newest = new Map<string, number>();
        for (const [item, requests, seal] of data) {
          const id = prefix + item;
          const version = (newest.get(id) ?? 0) + 1;
          newest.set(id, version);
          const v: Version = { item: id, version, props: [], sealed: false };
          for (const [i, body] of requests.entries()) {
            const last = i === requests.length - 1 && seal;
            const a = await post(
              `${s.url}/write-item-stream/${id}/${version}${last ? "?seal=true" : ""}`,
              body.map((p) => prop(p.name, p.type, p.value)).join(""),
            );
            expect(a.status, a.text).toBe(200);
            v.props.push(...body);
          }
          v.sealed = seal;
          const older = written.find((w) => w.item === id && w.version === version - 1);
          if (older) older.sealed = true; // a newer version seals the one before
          written.push(v);
        }
        for (const q of queries) {
          for (const versions of ["latest", "all"] as const) {
            for (const match of ["latest", "any"] as const) {
              const expected = written
                .filter((v) => versions === "all" || newest.get(v.item) === v.version)
                .filter((v) => holds(q, v, match))
                .map((v) => `${v.item}/${v.version}`)
                .sort(
                  (a, b) =>
                    Buffer.compare(Buffer.from(a.split("/")[0]), Buffer.from(b.split("/")[0])) ||
                    Number(a.split("/")[1]) - Number(b.split("/")[1]),
                );
              const got = (await allPages(text(q), `&versions=${versions}&match=${match}`, limit, s))
                .filter((x) => x.item_id.startsWith(prefix))
                .map((x) => `${x.item_id}/${x.version}`);
              expect(got, `${text(q)} versions=${versions} match=${match}`).toEqual(expected);
            }
          }
        }
      },
    ),
    { numRuns: 12 },
  );
}
