import { randomBytes } from "node:crypto";
import { readFileSync, rmSync, truncateSync } from "node:fs";
import { get as httpGet } from "node:http";
import { join } from "node:path";
import { createBrotliDecompress, createGunzip, gunzipSync } from "node:zlib";
import fc from "fast-check";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { get, line, post, postChunks } from "../helpers/http.js";
import { spawnServer, startTestServer, type TestServer, tempDir } from "../helpers/server.js";

/** Large binary values stored compressed (README, "Compression"): byte-true offsets, original values back. */

let s: TestServer;
beforeAll(async () => {
  s = await startTestServer();
});
afterAll(async () => {
  await s.stop();
});

let n = 0;
const fresh = () => `c${++n}`;
const w = (item: string, q = "") => `${s.url}/write-item-stream/${item}/1${q}`;
const r = (item: string, q = "") => `${s.url}/read-item-stream/${item}/1${q}`;
const jsonLike = (bytes: number) => Buffer.from(`{"k":"${"abc ".repeat(bytes / 4)}"}`.slice(0, bytes));
const bin = (name: string, value: Buffer) => line(name, "binary", value.toString("base64"));

describe("compressed binary values", () => {
  it("store a compressible value compressed, one well-formed line, and give the original back", async () => {
    const item = fresh();
    const value = jsonLike(64 << 10);
    const a = await post(w(item), bin("doc", value) + line("after", "string", "x"));
    expect(a.status).toBe(200);
    const raw = (await get(r(item, "?follow=false"))).text;
    const stored = raw.split("\n")[1];
    const m = /^<property for="doc"><binary codec="gzip" length="65536">([A-Za-z0-9+/=]+)<\/binary><\/property>$/.exec(
      stored,
    );
    expect(m).not.toBeNull();
    expect(gunzipSync(Buffer.from((m as RegExpExecArray)[1], "base64")).equals(value)).toBe(true);
    expect(Buffer.byteLength(raw)).toBe(a.json().offset);
    // Offsets are the file's: the next property starts right after the stored line.
    const records = (await get(r(item, "?format=json"))).json().properties;
    expect(records[0]).toEqual({
      offset: 7,
      next: 7 + Buffer.byteLength(stored) + 1,
      name: "doc",
      type: "binary",
      value: value.toString("base64"),
    });
    expect(records[1].offset).toBe(records[0].next);
    const asStored = (await get(r(item, "?format=ndjson&follow=false&decode=false"))).text.split("\n")[0];
    expect(JSON.parse(asStored)).toMatchObject({ codec: "gzip", length: 65536, value: (m as RegExpExecArray)[1] });
    const prop = (await get(`${s.url}/items/${item}/1/properties/doc?latest=true`)).json();
    expect(prop.value).toBe(value.toString("base64"));
  });

  it("keep values that do not compress, or are small, as they came", async () => {
    const item = fresh();
    const random = randomBytes(100_000);
    const small = jsonLike(4095);
    await post(w(item), bin("r", random) + bin("s", small) + bin("edge", jsonLike(4096)));
    const lines = (await get(r(item, "?follow=false"))).text.split("\n");
    expect(lines[1]).toBe(bin("r", random).trimEnd());
    expect(lines[2]).toBe(bin("s", small).trimEnd());
    expect(lines[3]).toContain('codec="gzip" length="4096"');
  });

  it("serve one value's original bytes at /value, with ?n= and Range", async () => {
    const item = fresh();
    const first = jsonLike(20_000);
    const second = Buffer.concat([jsonLike(30_000), Buffer.from("tail")]);
    await post(w(item), bin("blob", first) + line("x", "number", "1") + bin("blob", second));
    const url = `${s.url}/items/${item}/1/properties/blob/value`;
    const latest = await fetch(url);
    expect(latest.headers.get("content-type")).toBe("application/octet-stream");
    expect(Buffer.from(await latest.arrayBuffer()).equals(second)).toBe(true);
    expect(Buffer.from(await (await fetch(`${url}?n=1`)).arrayBuffer()).equals(first)).toBe(true);
    const part = await fetch(url, { headers: { range: "bytes=30000-" } });
    expect(part.status).toBe(206);
    expect(part.headers.get("content-range")).toBe(`bytes 30000-30003/${second.length}`);
    expect(await part.text()).toBe("tail");
    const mid = await fetch(`${url}?n=1`, { headers: { range: "bytes=10-19" } });
    expect(Buffer.from(await mid.arrayBuffer()).equals(first.subarray(10, 20))).toBe(true);
    expect((await fetch(url, { headers: { range: "bytes=99999-" } })).status).toBe(416);
    expect((await fetch(`${url}?n=3`)).status).toBe(404);
    expect((await fetch(`${s.url}/items/${item}/1/properties/x/value`)).status).toBe(400);
  });

  it("give the same stored bytes whatever the chunks, and random payloads of every size back whole", async () => {
    await fc.assert(
      fc.asyncProperty(
        fc.array(
          fc.oneof(
            fc.integer({ min: 0, max: 70_000 }).map((k) => jsonLike(k)),
            fc.integer({ min: 0, max: 70_000 }).map((k) => randomBytes(k)),
            fc.integer({ min: 1, max: 200 }).map((k) => Buffer.alloc(k * 100, k)),
          ),
          { minLength: 1, maxLength: 4 },
        ),
        fc.integer({ min: 1, max: 5000 }),
        async (values, chunk) => {
          const body = Buffer.from(values.map((v, i) => bin(`b${i}`, v)).join(""));
          const one = fresh();
          const two = fresh();
          expect((await post(w(one), body)).status).toBe(200);
          const chunks: Buffer[] = [];
          for (let at = 0; at < body.length; at += chunk) chunks.push(body.subarray(at, at + chunk));
          expect((await postChunks(w(two), chunks)).status).toBe(200);
          const a = await get(r(one, "?follow=false"));
          expect((await get(r(two, "?follow=false"))).text).toBe(a.text);
          const records = (await get(r(one, "?format=json"))).json().properties;
          expect(records.map((x: { value: string }) => Buffer.from(x.value, "base64"))).toEqual(values);
        },
      ),
      { numRuns: 12 },
    );
  });

  it("with --compression none, or br, store accordingly", async () => {
    for (const [codec, marker] of [
      ["none", "<binary>"],
      ["br", 'codec="br"'],
    ] as const) {
      const t = await startTestServer(["--compression", codec]);
      try {
        const value = jsonLike(50_000);
        await post(`${t.url}/write-item-stream/x/1`, bin("v", value));
        expect((await get(`${t.url}/read-item-stream/x/1?follow=false`)).text).toContain(marker);
        const back = (await get(`${t.url}/read-item-stream/x/1?format=json`)).json().properties[0].value;
        expect(Buffer.from(back, "base64").equals(value)).toBe(true);
      } finally {
        await t.stop();
      }
    }
  });

  it("survive a torn compressed line and a lost .meta: the line is cut, the rest rebuilt", async () => {
    const dir = tempDir();
    const a = await spawnServer(["--fsync", "always"], dir);
    const value = jsonLike(40_000);
    const ok = await post(`${a.url}/write-item-stream/t/1`, bin("a", value));
    await post(`${a.url}/write-item-stream/t/1`, bin("b", jsonLike(30_000)));
    a.child.kill("SIGKILL");
    await new Promise((done) => a.child.once("exit", done));
    const file = join(dir, "t_1.data");
    const size = readFileSync(file).length;
    truncateSync(file, size - 20); // the second line torn, as by a crash mid-append
    rmSync(join(dir, "t_1.meta"), { force: true });
    const b = await spawnServer([], dir);
    try {
      const text = (await get(`${b.url}/read-item-stream/t/1?follow=false`)).text;
      expect(Buffer.byteLength(text)).toBe(ok.json().offset);
      const props = (await get(`${b.url}/items/t/1/properties`)).json().properties;
      expect(Buffer.from(props.a.value, "base64").equals(value)).toBe(true);
    } finally {
      b.child.kill("SIGKILL");
    }
  });
});

describe("Accept-Encoding on reads", () => {
  /** A read with Accept-Encoding, decoded as it arrives; `seen` grows with each flushed piece. */
  function codedRead(url: string, acceptEncoding: string) {
    let seen = "";
    let coding: string | undefined;
    const done = new Promise<string>((resolve, reject) => {
      httpGet(url, { headers: { "accept-encoding": acceptEncoding } }, (res) => {
        coding = res.headers["content-encoding"];
        const decoded =
          coding === "br" ? res.pipe(createBrotliDecompress()) : coding === "gzip" ? res.pipe(createGunzip()) : res;
        decoded.setEncoding("utf8");
        decoded.on("data", (d: string) => (seen += d));
        decoded.on("end", () => resolve(seen));
        decoded.on("error", reject);
      }).on("error", reject);
    });
    return { seen: () => seen, coding: () => coding, done };
  }
  const until = async (cond: () => boolean) => {
    for (let i = 0; i < 500 && !cond(); i++) await new Promise((ok) => setTimeout(ok, 10));
    expect(cond()).toBe(true);
  };

  it("flush each committed property to a live reader, raw and NDJSON, gzip and br", async () => {
    for (const [accept, coding] of [
      ["gzip", "gzip"],
      ["gzip;q=0.5, br", "br"],
      ["br, gzip", "br"],
    ] as const) {
      const item = fresh();
      await post(w(item), line("a", "number", "1"));
      const raw = codedRead(r(item), accept);
      const typed = codedRead(r(item, "?format=ndjson"), accept);
      await until(() => raw.seen().includes("</property>") && typed.seen().includes('"a"'));
      expect(raw.coding()).toBe(coding);
      for (let i = 2; i <= 4; i++) {
        await post(w(item), line("a", "number", String(i)));
        // Each property arrives while the stream is still open: nothing waits for a fuller block.
        await until(() => raw.seen().includes(`<number>${i}</number>`) && typed.seen().includes(`"value":${i}`));
      }
      await post(w(item, "?seal=true"), "");
      expect(await raw.done).toBe((await get(r(item, "?follow=false"))).text);
      expect((await typed.done).trim().split("\n").at(-1)).toMatch(/"sealed":true/);
    }
  });

  it("answer a Range request, and a read that asks for no coding, without one", async () => {
    const item = fresh();
    await post(w(item), line("a", "string", "hello"));
    const ranged = await get(r(item), { "accept-encoding": "gzip", range: "bytes=0-5" });
    expect(ranged.status).toBe(206);
    expect(ranged.headers["content-encoding"]).toBeUndefined();
    expect(ranged.text).toBe("<item>");
    const plain = await get(r(item, "?follow=false"), { "accept-encoding": "identity" });
    expect(plain.headers["content-encoding"]).toBeUndefined();
  });
});
