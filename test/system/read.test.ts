import { renameSync } from "node:fs";
import { connect } from "node:net";
import { join } from "node:path";
import fc from "fast-check";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { get, line, liveRead, post, prop } from "../helpers/http.js";
import { spawnServer, startTestServer, type TestServer, tempDir } from "../helpers/server.js";

let s: TestServer;
let n = 0;
const fresh = () => `reader${++n}`;
const w = (item: string, v = 1, q = "") => `${s.url}/write-item-stream/${item}/${v}${q}`;
const r = (item: string, v = 1, q = "") => `${s.url}/read-item-stream/${item}/${v}${q}`;
const HEAD = "<item>\n";

beforeAll(async () => {
  s = await startTestServer();
});
afterAll(async () => {
  await s.stop();
});

/** The number of feeds once it has stopped changing (readers closed by earlier tests). */
async function settledFeeds(): Promise<number> {
  let last = -1;
  for (let i = 0; i < 100; i++) {
    const now = (await s.engine.stats()).feeds;
    if (now === last) return now;
    last = now;
    await new Promise((res) => setTimeout(res, 50));
  }
  return last;
}

/** Writes `count` properties and seals; returns the full data file text. */
async function sealedVersion(item: string, count: number): Promise<string> {
  let body = "";
  let expected = HEAD;
  for (let i = 0; i < count; i++) {
    body += prop(`p${i}`, "number", String(i));
    expected += line(`p${i}`, "number", String(i));
  }
  await post(w(item, 1, "?seal=true"), body);
  return `${expected}</item>\n`;
}

describe("GET /read-item-stream", () => {
  it("streams a sealed version whole, with its headers", async () => {
    const item = fresh();
    const all = await sealedVersion(item, 3);
    const a = await get(r(item));
    expect(a.status).toBe(200);
    expect(a.text).toBe(all);
    expect(a.headers["content-type"]).toBe("application/xml; charset=utf-8");
    expect(a.headers["x-stream-offset"]).toBe("0");
    expect(a.headers["x-stream-sealed"]).toBe("true");
    expect(a.headers["content-length"]).toBe(String(Buffer.byteLength(all)));
  });

  it("a reader that connects before the version exists gets it from the first write", async () => {
    const item = fresh();
    const reader = liveRead(r(item));
    await new Promise((res) => setTimeout(res, 50));
    await post(w(item), prop("a", "string", "first"));
    await reader.until((t) => t.includes("first"));
    expect(await reader.status).toBe(200);
    expect((await reader.headers)["x-stream-sealed"]).toBe("false");
    await post(w(item, 1, "?seal=true"), "");
    expect(await reader.done).toBe(`${HEAD}${line("a", "string", "first")}</item>\n`);
  });

  it("?wait=false answers 404 for a version that does not exist", async () => {
    const a = await get(r(fresh(), 1, "?wait=false"));
    expect(a.status).toBe(404);
    expect(a.json().error.code).toBe("version_not_found");
  });

  it("answers 404 for a version that can never exist, and ends waiting readers with 404", async () => {
    const item = fresh();
    const waiting = liveRead(r(item, 2));
    await new Promise((res) => setTimeout(res, 50));
    await post(w(item, 3), "");
    expect(await waiting.status).toBe(404);
    expect((await get(r(item, 1))).status).toBe(404);
    // An older version that does exist is still readable.
    expect((await get(r(item, 3, "?follow=false"))).text).toBe(HEAD);
  });

  it("?offset=N and Range: bytes=N- start at byte N", async () => {
    const item = fresh();
    const all = await sealedVersion(item, 4);
    const a = await get(r(item, 1, "?offset=10"));
    expect(a.status).toBe(200);
    expect(a.text).toBe(all.slice(10));
    expect(a.headers["x-stream-offset"]).toBe("10");
    const b = await get(r(item), { range: "bytes=20-" });
    expect(b.status).toBe(206);
    expect(b.text).toBe(all.slice(20));
    expect(b.headers["content-range"]).toBe(`bytes 20-${all.length - 1}/${all.length}`);
    const end = await get(r(item, 1, `?offset=${all.length}`));
    expect(end.status).toBe(200);
    expect(end.text).toBe("");
  });

  it("answers 416 past the end of a sealed version", async () => {
    const item = fresh();
    const all = await sealedVersion(item, 1);
    const a = await get(r(item, 1, `?offset=${all.length + 1}`));
    expect(a.status).toBe(416);
    expect(a.json()).toMatchObject({ error: { code: "range_not_satisfiable" }, offset: all.length });
    expect(a.headers["content-range"]).toBe(`bytes */${all.length}`);
    const b = await get(r(item), { range: `bytes=${all.length + 5}-` });
    expect(b.status).toBe(416);
  });

  it("Range: bytes=A-B answers 206 with exactly those bytes, on sealed and open versions", async () => {
    const sealed = fresh();
    const all = await sealedVersion(sealed, 5);
    const open = fresh();
    await post(w(open), prop("a", "string", "open one") + prop("b", "number", "42"));
    const openText = HEAD + line("a", "string", "open one") + line("b", "number", "42");
    // Every range inside each version, including one byte and the whole of it.
    await fc.assert(
      fc.asyncProperty(
        fc.constantFrom({ item: sealed, text: all }, { item: open, text: openText }),
        fc.nat(),
        fc.nat(),
        async ({ item, text }, x, y) => {
          const first = x % text.length;
          const last = first + (y % (text.length - first));
          const a = await get(r(item), { range: `bytes=${first}-${last}` });
          expect(a.status).toBe(206);
          expect(a.text).toBe(text.slice(first, last + 1));
          expect(a.headers["content-range"]).toBe(`bytes ${first}-${last}/${text.length}`);
          expect(a.headers["content-length"]).toBe(String(last - first + 1));
          expect(a.headers["x-stream-offset"]).toBe(String(first));
        },
      ),
      { numRuns: 60 },
    );
    // ?follow=false does not change a bounded read; the open version's end is its committed length.
    const f = await get(r(open, 1, "?follow=false"), { range: "bytes=7-20" });
    expect([f.status, f.text]).toEqual([206, openText.slice(7, 21)]);
  });

  it("a range past the end is cut to it, a suffix range gives the last bytes, other forms are ignored", async () => {
    const item = fresh();
    const all = await sealedVersion(item, 3);
    const n = all.length;
    const past = await get(r(item), { range: `bytes=10-${n + 100}` });
    expect([past.status, past.text, past.headers["content-range"]]).toEqual([
      206,
      all.slice(10),
      `bytes 10-${n - 1}/${n}`,
    ]);
    const suffix = await get(r(item), { range: "bytes=-8" });
    expect([suffix.status, suffix.text, suffix.headers["content-range"]]).toEqual([
      206,
      "</item>\n",
      `bytes ${n - 8}-${n - 1}/${n}`,
    ]);
    expect((await get(r(item), { range: `bytes=-${n + 50}` })).text).toBe(all);
    for (const range of [`bytes=${n}-${n + 5}`, "bytes=-0"]) {
      const a = await get(r(item), { range });
      expect(a.status).toBe(416);
      expect(a.headers["content-range"]).toBe(`bytes */${n}`);
    }
    // Positions of any length: an end past 2^53 is past the end; so is such a start.
    const huge = "9".repeat(17);
    expect((await get(r(item), { range: `bytes=0-${huge}` })).text).toBe(all);
    expect((await get(r(item), { range: `bytes=${huge}-` })).status).toBe(416);
    expect((await get(r(item), { range: "BYTES=0-3" })).text).toBe(all.slice(0, 4));
    // A Range that starts at the end of a sealed version has nothing to send; ?offset there reads nothing.
    expect((await get(r(item), { range: `bytes=${n}-` })).status).toBe(416);
    expect((await get(r(item, 1, `?offset=${n}`))).text).toBe("");
    // Several ranges, a reversed one, another unit: the whole stream, 200.
    for (const range of ["bytes=0-1,5-6", "bytes=9-3", "items=0-1"]) {
      const a = await get(r(item), { range });
      expect([a.status, a.text]).toEqual([200, all]);
    }
    // ?offset wins over Range.
    const o = await get(r(item, 1, "?offset=7"), { range: "bytes=0-3" });
    expect([o.status, o.text]).toEqual([200, all.slice(7)]);
  });

  it("a bounded range of an open version that starts past its committed end is 416, at once", async () => {
    const item = fresh();
    await post(w(item), prop("a", "string", "x"));
    const n = (HEAD + line("a", "string", "x")).length;
    const a = await get(r(item), { range: `bytes=${n}-${n + 10}` });
    expect(a.status).toBe(416);
    expect(a.json()).toMatchObject({ error: { code: "range_not_satisfiable" }, offset: n });
  });

  it("?follow=false, a bounded range and HEAD on a missing version answer 404 at once, leaving no feed", async () => {
    const item = fresh();
    const before = (await s.engine.stats()).feeds;
    for (const [path, init] of [
      [r(item, 1, "?follow=false"), {}],
      [r(item, 1, "?follow=false&wait=true"), {}],
      [r(item), { range: "bytes=0-10" }],
      [r(item), { range: "bytes=-10" }],
    ] as const) {
      const a = await get(path, init);
      expect(a.status).toBe(404);
      expect(a.json()).toMatchObject({ error: { code: "version_not_found" } });
    }
    expect((await get(r(item), {}, "HEAD")).status).toBe(404);
    expect((await s.engine.stats()).feeds).toBe(before);
  });

  it("a live reader waits for a version while a ?follow=false reader of it is answered 404", async () => {
    const pairs = Array.from({ length: 60 }, () => {
      const item = fresh();
      return { item, live: liveRead(r(item)), snap: liveRead(r(item, 1, "?follow=false")) };
    });
    for (const p of pairs) expect(await p.snap.status).toBe(404);
    await Promise.all(pairs.map((p) => post(w(p.item), prop("a", "string", "x"))));
    for (const p of pairs) {
      expect(await p.live.status).toBe(200);
      await p.live.until((t) => t.includes("</property>"));
      p.live.close();
    }
  });

  it("readers of versions that can never exist leave no feed behind, under load", async () => {
    const before = await settledFeeds();
    for (let round = 0; round < 5; round++) {
      const items = Array.from({ length: 40 }, () => fresh());
      const waiting = items.map((item) => liveRead(r(item, 2)));
      await Promise.all(items.map((item) => post(w(item, 3), "")));
      for (const x of waiting) expect(await x.status).toBe(404);
      // Slots are reused at once: live readers of new versions must still work.
      const item = fresh();
      const live = liveRead(r(item));
      await post(w(item), prop("p", "string", "y"));
      await live.until((t) => t.includes("</property>"));
      live.close();
    }
    expect(await settledFeeds()).toBe(before);
  });

  it("a reader that hangs up while it waits is not logged as an error", async () => {
    const c = await spawnServer([], tempDir());
    try {
      const { port } = new URL(c.url);
      // One waiting reader with its own socket, and one queued behind it on a connection.
      const alone = liveRead(`${c.url}/read-item-stream/nobody/1`);
      const sock = connect(Number(port), "127.0.0.1");
      sock.on("error", () => undefined);
      sock.write(
        "GET /read-item-stream/nobody/2 HTTP/1.1\r\nHost: x\r\n\r\nGET /read-item-stream/nobody/3 HTTP/1.1\r\nHost: x\r\n\r\n",
      );
      await new Promise((r) => setTimeout(r, 300));
      alone.close();
      sock.destroy();
      await new Promise((r) => setTimeout(r, 300));
      // The server still answers, and said nothing about the readers that left.
      expect((await get(`${c.url}/read-item-stream/nobody/1?wait=false`)).status).toBe(404);
      expect(c.output()).not.toMatch(/went away|internal_error/);
    } finally {
      c.child.kill("SIGKILL");
    }
  });

  it("a data file that cannot be opened is a 500 before any header, and a later read tries again", async () => {
    const item = fresh();
    await post(w(item), prop("a", "string", "x"));
    const path = join(s.dataDir, `${item}_1.data`);
    renameSync(path, `${path}.away`);
    try {
      for (const url of [r(item, 1, "?follow=false"), r(item)]) {
        const a = await get(url);
        expect(a.status).toBe(500);
        expect(a.json().error.code).toBe("internal_error");
      }
    } finally {
      renameSync(`${path}.away`, path);
    }
    expect((await get(r(item, 1, "?follow=false"))).text).toBe(HEAD + line("a", "string", "x"));
  });

  it("rejects a malformed ?offset with 400", async () => {
    const a = await get(r(fresh(), 1, "?offset=abc"));
    expect(a.status).toBe(400);
    expect(a.json().error.code).toBe("invalid_parameter");
  });

  it("?follow=false sends what is committed now and ends, on an open version", async () => {
    const item = fresh();
    await post(w(item), prop("a", "string", "1"));
    const a = await get(r(item, 1, "?follow=false"));
    expect(a.text).toBe(`${HEAD}${line("a", "string", "1")}`);
    expect(a.headers["x-stream-sealed"]).toBe("false");
  });

  it("a live reader at an offset ahead of the data waits for it", async () => {
    const item = fresh();
    await post(w(item), "");
    const reader = liveRead(r(item, 1, "?offset=20"));
    await post(w(item), prop("a", "string", "hello"));
    const full = `${HEAD}${line("a", "string", "hello")}`;
    await reader.until((t) => t === full.slice(20));
    reader.close();
  });

  it("HEAD gives the headers alone, with X-Stream-Length", async () => {
    const item = fresh();
    await post(w(item), prop("a", "string", "1"));
    const a = await get(r(item), {}, "HEAD");
    expect(a.status).toBe(200);
    expect(a.text).toBe("");
    expect(a.headers["x-stream-length"]).toBe(String(HEAD.length + line("a", "string", "1").length));
    expect(a.headers["x-stream-sealed"]).toBe("false");
  });

  it("200 concurrent live readers each receive every property, in order", async () => {
    const item = fresh();
    await post(w(item), "");
    const readers = Array.from({ length: 200 }, () => liveRead(r(item)));
    await Promise.all(readers.map((x) => x.status));
    let expected = HEAD;
    for (let i = 0; i < 10; i++) {
      await post(w(item), prop(`k${i}`, "number", String(i)));
      expected += line(`k${i}`, "number", String(i));
    }
    await post(w(item, 1, "?seal=true"), "");
    expected += "</item>\n";
    const texts = await Promise.all(readers.map((x) => x.done));
    for (const t of texts) expect(t).toBe(expected);
  });

  it("readers that disconnect free what they held", async () => {
    const item = fresh();
    await post(w(item), "");
    const before = await s.engine.stats();
    const readers = Array.from({ length: 50 }, () => liveRead(r(item)));
    const waiting = Array.from({ length: 50 }, (_, i) => liveRead(r(`${item}-later${i}`)));
    await Promise.all(readers.map((x) => x.status));
    await new Promise((res) => setTimeout(res, 50));
    expect((await s.engine.stats()).readers).toBeGreaterThanOrEqual(before.readers + 50);
    for (const x of [...readers, ...waiting]) x.close();
    const deadline = Date.now() + 5000;
    while (Date.now() < deadline && (await s.engine.stats()).feeds > before.feeds)
      await new Promise((res) => setTimeout(res, 20));
    expect(await s.engine.stats()).toEqual(before);
  });

  it("a reader that never reads holds back no other reader", async () => {
    const item = fresh();
    await post(w(item), "");
    // A raw socket that sends the request and never reads a byte of the answer.
    const { connect } = await import("node:net");
    const { port } = new URL(s.url);
    const stuck = connect(Number(port), "127.0.0.1");
    stuck.write(`GET /read-item-stream/${item}/1 HTTP/1.1\r\nHost: x\r\n\r\n`);
    stuck.pause();
    const healthy = liveRead(r(item));
    const big = "x".repeat(200_000);
    for (let i = 0; i < 20; i++) await post(w(item), prop(`b${i}`, "string", big));
    await healthy.until((t) => t.includes('for="b19"'));
    stuck.destroy();
    healthy.close();
  });
});
