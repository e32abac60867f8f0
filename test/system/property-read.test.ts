import { readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { setTimeout as sleep } from "node:timers/promises";
import fc from "fast-check";
import { EventSource } from "undici";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { get, liveRead, openPost, post, prop } from "../helpers/http.js";
import { startTestServer, type TestServer } from "../helpers/server.js";

/**
 * Property reads and snapshots (README, "Reading values"): served from the version's
 * index, whether its entries are still in memory, in the .meta file, or split between
 * the two; each answer compared with the records of a full typed read of the same bytes.
 */

let s: TestServer;
let n = 0;
const fresh = () => `props${++n}`;
const w = (item: string, q = "") => `${s.url}/write-item-stream/${item}/1${q}`;
const r = (item: string, q = "") => `${s.url}/read-item-stream/${item}/1${q}`;
const props = (item: string, rest = "") => `${s.url}/items/${item}/1/properties${rest}`;
/** The .meta files follow their data files within 100 ms. */
const META_LAG_MS = 400;

interface Rec {
  offset: number;
  next: number;
  name: string;
  type: string;
  value: unknown;
}

beforeAll(async () => {
  s = await startTestServer();
});
afterAll(async () => {
  await s.stop();
});

const ndjson = (text: string): Record<string, unknown>[] =>
  text
    .split("\n")
    .filter((l) => l !== "")
    .map((l) => JSON.parse(l));

/** Every record of a full NDJSON read of what is committed now. */
async function allRecords(item: string): Promise<Rec[]> {
  return ndjson((await get(r(item, "?format=ndjson&follow=false"))).text).filter((x) => "name" in x) as never;
}

/** The newest record of each name, in file order. */
function newestOfEach(records: Rec[]): Rec[] {
  const newest = new Map<string, Rec>();
  for (const x of records) newest.set(x.name, x);
  return [...newest.values()].sort((a, b) => a.offset - b.offset);
}

async function expectPropertyReadsMatch(item: string): Promise<void> {
  const all = await allRecords(item);
  const whole = (await get(props(item))).json();
  expect(Object.values(whole.properties)).toEqual(newestOfEach(all));
  expect(whole.offset).toBe(all.length > 0 ? all[all.length - 1].next : 7);
  for (const name of new Set(all.map((x) => x.name))) {
    const mine = all.filter((x) => x.name === name);
    expect((await get(props(item, `/${encodeURIComponent(name)}`))).json()).toEqual({ name, occurrences: mine });
    expect((await get(props(item, `/${encodeURIComponent(name)}?latest=true`))).json()).toEqual(mine.at(-1));
  }
}

describe("property reads", () => {
  it("the newest of every name, one name's occurrences, and its latest, with typed values", async () => {
    const item = fresh();
    await post(
      w(item),
      prop("name", "string", "Ada &amp; co") +
        prop("age", "number", "12345678901234567890") +
        prop("name", "string", "Ada L") +
        prop("ok", "boolean", "false"),
    );
    const whole = (await get(props(item))).json();
    expect(whole).toMatchObject({ item_id: item, version: 1, sealed: false });
    expect(Object.keys(whole.properties)).toEqual(["age", "name", "ok"]);
    expect(whole.properties.name.value).toBe("Ada L");
    // The digits as stored, never rounded through a double.
    expect((await get(props(item, "/age?latest=true"))).text).toContain('"value":12345678901234567890}');
    const names = (await get(props(item, "/name"))).json();
    expect(names.occurrences.map((x: Rec) => x.value)).toEqual(["Ada & co", "Ada L"]);
    await expectPropertyReadsMatch(item);
  });

  it("agrees with a full read with the index in memory, in the .meta file, and split between them", async () => {
    const item = fresh();
    await post(w(item), prop("a", "number", "1") + prop("b", "string", "x"));
    await expectPropertyReadsMatch(item); // in memory only
    await sleep(META_LAG_MS);
    await expectPropertyReadsMatch(item); // in the .meta file
    await post(w(item), prop("a", "number", "2") + prop("c", "boolean", "true"));
    await expectPropertyReadsMatch(item); // both
    await post(w(item, "?seal=true"), prop("b", "string", "y"));
    await expectPropertyReadsMatch(item); // sealed: its .meta is written whole
    expect((await get(props(item))).json().sealed).toBe(true);
  });

  it("after a restart, and from the data file when the .meta file is damaged", async () => {
    const dir = s.dataDir;
    const other = await startTestServer([], `${dir}-restart`);
    const url = (q: string) => `${other.url}${q}`;
    try {
      await post(url("/write-item-stream/kept/1"), prop("a", "string", "one") + prop("b", "number", "2"));
      await post(url("/write-item-stream/kept/1?seal=true"), prop("a", "string", "three"));
      const before = (await get(url("/items/kept/1/properties"))).json();
      await other.close();
      // The scalars stay readable, the index after them does not parse.
      const meta = join(`${dir}-restart`, "kept_1.meta");
      const text = readFileSync(meta, "utf8");
      writeFileSync(meta, `${text.slice(0, text.indexOf('"properties":{') + 20)}#garbage`);
      const again = await startTestServer([], `${dir}-restart`);
      try {
        expect((await get(`${again.url}/items/kept/1/properties`)).json()).toEqual(before);
        expect((await get(`${again.url}/items/kept/1/properties/a`)).json().occurrences).toHaveLength(2);
      } finally {
        await again.stop();
      }
    } finally {
      await other.close().catch(() => undefined);
    }
  });

  it("a name never written is 404 property_not_found; a missing version 404 version_not_found", async () => {
    const item = fresh();
    await post(w(item), prop("a", "string", "x"));
    const none = await get(props(item, "/b"));
    expect(none.status).toBe(404);
    expect(none.json().error.code).toBe("property_not_found");
    for (const url of [props("nothing-here"), props("nothing-here", "/a")]) {
      const missing = await get(url);
      expect(missing.status).toBe(404);
      expect(missing.json().error.code).toBe("version_not_found");
    }
    const bad = await get(props(item, "/a?latest=maybe"));
    expect(bad.status).toBe(400);
    expect(bad.json().error.code).toBe("invalid_parameter");
    const post405 = await post(props(item), "");
    expect(post405.status).toBe(405);
    expect((await get(`${s.url}/items/${item}/1/nope`)).status).toBe(404);
  });

  it("names are percent-decoded", async () => {
    const item = fresh();
    await post(w(item), prop("a.b-c_d", "string", "x"));
    expect((await get(props(item, "/a.b-c_d?latest=true"))).json().value).toBe("x");
    expect((await get(props(item, "/%61.b-c_d?latest=true"))).json().value).toBe("x");
  });

  it("random writes, index anywhere between memory and file: always what a full read says", async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.array(
          fc.array(fc.tuple(fc.constantFrom("a", "b", "c", "d"), fc.integer({ min: -99, max: 99 })), {
            minLength: 0,
            maxLength: 6,
          }),
          { minLength: 1, maxLength: 4 },
        ),
        fc.array(fc.constantFrom(0, 150), { minLength: 4, maxLength: 4 }),
        async (requests, pauses) => {
          const item = fresh();
          for (const [i, body] of requests.entries()) {
            await post(w(item), body.map(([name, v]) => prop(name, "number", String(v))).join(""));
            if (pauses[i] > 0) await sleep(pauses[i]);
          }
          await expectPropertyReadsMatch(item);
        },
      ),
      { numRuns: 15 },
    );
  });
});

describe("?snapshot=true", () => {
  it("NDJSON: the newest of each name, up_to_date at its offset, then the live tail", async () => {
    const item = fresh();
    await post(w(item), prop("a", "number", "1") + prop("b", "string", "x") + prop("a", "number", "2"));
    const reader = liveRead(r(item, "?format=ndjson&snapshot=true"));
    const first = await reader.until((t) => t.includes("up_to_date"));
    const head = ndjson(first);
    const all = await allRecords(item);
    expect(head.slice(0, -1)).toEqual(newestOfEach(all));
    expect(head.at(-1)).toEqual({ up_to_date: true, offset: all.at(-1)?.next });
    await post(w(item, "?seal=true"), prop("b", "string", "y"));
    const rest = ndjson((await reader.done).slice(first.length));
    expect(rest.map((x) => x.value ?? x.sealed)).toEqual(["y", true]);
  });

  it("no gap and no duplicate while writers append during the snapshots", async () => {
    const item = fresh();
    await post(w(item), prop("seed", "number", "0"));
    const writer = openPost(w(item, "?seal=true"));
    const readers: ReturnType<typeof liveRead>[] = [];
    for (let i = 0; i < 40; i++) {
      writer.req.write(prop(`k${i % 7}`, "number", String(i)));
      readers.push(liveRead(r(item, `?format=ndjson&snapshot=true${i % 2 ? "&properties=k1,k2,seed" : ""}`)));
      await sleep(2);
    }
    writer.req.end();
    expect((await writer.answer).status).toBe(200);
    const all = await allRecords(item);
    for (const [i, reader] of readers.entries()) {
      const got = ndjson(await reader.done);
      const marker = got.findIndex((x) => x.up_to_date === true);
      const at = got[marker].offset as number;
      const keep = (x: Rec) => i % 2 === 0 || ["k1", "k2", "seed"].includes(x.name);
      expect(got.slice(0, marker)).toEqual(newestOfEach(all.filter((x) => x.offset < at)).filter(keep));
      expect(got.slice(marker + 1, -1)).toEqual(all.filter((x) => x.offset >= at).filter(keep));
      expect(got.at(-1)).toMatchObject({ sealed: true });
    }
  });

  it("JSON: one document of the newest of each name, up to where it was taken", async () => {
    const item = fresh();
    await post(w(item), prop("a", "number", "1") + prop("a", "number", "2"));
    const doc = (await get(r(item, "?format=json&snapshot=true"))).json();
    const all = await allRecords(item);
    expect(doc).toEqual({
      item_id: item,
      version: 1,
      sealed: false,
      offset: 7,
      properties: [all[1]],
      next: all[1].next,
    });
    expect((await get(r("never-written", "?format=json&snapshot=true"))).status).toBe(404);
  });

  it("SSE with EventSource: snapshot events carry no id, up-to-date does; a reconnect resumes after it", async () => {
    const item = fresh();
    await post(w(item), prop("a", "number", "1") + prop("a", "number", "2"));
    const source = new EventSource(r(item, "?format=sse&snapshot=true"));
    const seen: { type: string; id: string; data: Record<string, unknown> }[] = [];
    const upToDate = new Promise<void>((resolve) => {
      const on = (e: Event) => {
        const m = e as MessageEvent;
        seen.push({ type: m.type, id: m.lastEventId, data: JSON.parse(m.data) });
        if (m.type === "up-to-date") resolve();
      };
      source.addEventListener("property", on);
      source.addEventListener("up-to-date", on);
    });
    await upToDate;
    source.close();
    const all = await allRecords(item);
    expect(seen.map((e) => [e.type, e.id, e.data.value])).toEqual([
      ["property", "", 2],
      ["up-to-date", String(all[1].next), undefined],
    ]);
    // What an EventSource sends when it reconnects: the snapshot is not sent again.
    await post(w(item, "?seal=true"), prop("b", "string", "z"));
    const again = await get(r(item, "?format=sse&snapshot=true"), { "last-event-id": String(all[1].next) });
    expect(again.text).not.toContain("up-to-date");
    expect(again.text).toContain('"value":"z"');
  });

  it("needs a typed format and no ?offset", async () => {
    const item = fresh();
    await post(w(item), prop("a", "number", "1"));
    for (const q of ["?snapshot=true", "?format=ndjson&snapshot=true&offset=7", "?format=ndjson&snapshot=yes"]) {
      const answer = await get(r(item, q));
      expect(answer.status).toBe(400);
      expect(answer.json().error.code).toBe("invalid_parameter");
    }
  });
});
