import { request as httpRequest } from "node:http";
import fc from "fast-check";
import { EventSource } from "undici";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { get, liveRead, post, prop } from "../helpers/http.js";
import { startTestServer, type TestServer } from "../helpers/server.js";

/**
 * Live queries (README, "Queries"): the current matches, up_to_date, then add, change and
 * remove as commits move versions in and out; a follower that falls behind is told to
 * refetch, never skipped past.
 */

let s: TestServer;
beforeAll(async () => {
  s = await startTestServer();
});
afterAll(async () => {
  await s.stop();
});

const w = (item: string, v = 1, q = "") => `${s.url}/write-item-stream/${item}/${v}${q}`;
const follow = (where: string, extra = "") =>
  `${s.url}/query?where=${encodeURIComponent(where)}&follow=true&format=ndjson${extra}`;
const lines = (t: string) =>
  t
    .split("\n")
    .filter((l) => l)
    .map((l) => JSON.parse(l));

describe("live queries", () => {
  it("add, change and remove as commits move versions in and out, each with its at", async () => {
    await post(w("lq-a"), prop("city", "string", "Oslo"));
    const reader = liveRead(follow('city = "Oslo" AND EXISTS city', "&select=city"));
    await reader.until((t) => t.includes("up_to_date"));
    const b = await post(w("lq-b"), prop("city", "string", "Oslo"));
    await post(w("lq-a"), prop("city", "string", "Paris"));
    const c = await post(w("lq-b"), prop("city", "string", "Oslo"));
    await post(w("lq-b", 2), prop("other", "number", "1"));
    await reader.until((t) => lines(t).filter((x) => x.op === "remove").length === 2);
    reader.close();
    const ops = lines(reader.text()).filter((x) => x.item_id?.startsWith("lq-"));
    expect(ops.map((x) => `${x.op} ${x.item_id}/${x.version}`)).toEqual([
      "add lq-a/1",
      "add lq-b/1",
      "remove lq-a/1",
      "change lq-b/1",
      "remove lq-b/1",
    ]);
    expect(ops[1].at).toBe(b.json().offset);
    expect(ops[3].at).toBe(c.json().offset);
    expect(ops[3].properties.city.next).toBe(c.json().offset);
  });

  it("the set the events describe is the query's answer, after random writes", async () => {
    let run = 0;
    await fc.assert(
      fc.asyncProperty(
        fc.array(fc.tuple(fc.integer({ min: 0, max: 4 }), fc.integer({ min: 0, max: 9 }), fc.boolean()), {
          minLength: 1,
          maxLength: 25,
        }),
        async (writes) => {
          const tag = `r${++run}`;
          const where = `run = "${tag}" AND n >= 5`;
          const reader = liveRead(follow(where));
          await reader.until((t) => t.includes("up_to_date"));
          const version = new Map<number, number>();
          for (const [item, n, bump] of writes) {
            const v = (version.get(item) ?? 1) + (bump ? 1 : 0);
            version.set(item, v);
            const a = await post(w(`${tag}-${item}`, v), prop("run", "string", tag) + prop("n", "number", String(n)));
            expect(a.status, a.text).toBe(200);
          }
          const answer = (await get(`${s.url}/query?where=${encodeURIComponent(where)}&limit=10000`)).json();
          const expected = answer.items
            .map((x: { item_id: string; version: number }) => `${x.item_id}/${x.version}`)
            .sort();
          // The events of the writes above have all come once the set agrees.
          const set = () => {
            const now = new Set<string>();
            for (const e of lines(reader.text())) {
              const k = `${e.item_id}/${e.version}`;
              if (e.op === "add" || e.op === "change") now.add(k);
              if (e.op === "remove") now.delete(k);
            }
            return [...now].sort();
          };
          await reader.until(() => JSON.stringify(set()) === JSON.stringify(expected), 5000).catch(() => undefined);
          reader.close();
          expect(set()).toEqual(expected);
        },
      ),
      { numRuns: 10 },
    );
  });

  it("an EventSource gets add, up_to_date and the events after", async () => {
    await post(w("lq-sse"), prop("kind", "string", "sse"));
    const source = new EventSource(`${s.url}/query?where=${encodeURIComponent('kind = "sse"')}&follow=true&format=sse`);
    const seen: string[] = [];
    const done = new Promise<void>((resolve) => {
      const on = (e: Event) => {
        const m = e as MessageEvent;
        seen.push(`${m.type} ${JSON.parse(m.data).item_id ?? ""}`.trim());
        if (m.type === "up_to_date") void post(w("lq-sse2"), prop("kind", "string", "sse"));
        if (seen.length === 3) resolve();
      };
      for (const type of ["add", "up_to_date", "change", "remove"]) source.addEventListener(type, on);
    });
    await done;
    source.close();
    expect(seen).toEqual(["add lq-sse", "up_to_date", "add lq-sse2"]);
  });

  it("a follower that does not read gets must_refetch, and its stream ends", async () => {
    const big = "x".repeat(100_000);
    const got: string[] = [];
    const ended = new Promise<void>((resolve, reject) => {
      const req = httpRequest(follow('kind = "big"', "&select=*"), (res) => {
        res.pause();
        setTimeout(() => {
          res.setEncoding("utf8");
          res.on("data", (d: string) => got.push(d));
          res.on("end", resolve);
          res.resume();
        }, 3000);
      });
      req.on("error", reject);
      req.end();
    });
    await new Promise((r) => setTimeout(r, 200));
    for (let i = 0; i < 80; i++)
      await post(w(`lq-big-${i}`), prop("kind", "string", "big") + prop("blob", "string", big));
    await ended;
    const all = lines(got.join(""));
    expect(all.at(-1)).toEqual({ op: "must_refetch" });
  });

  it("refuses follow=true as JSON, and with a cursor", async () => {
    for (const q of ["&format=json", "&cursor=abc"]) {
      const a = await get(`${s.url}/query?where=a%3D1&follow=true${q}`);
      expect(a.status).toBe(400);
    }
  });
});
