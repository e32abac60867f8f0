import { existsSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import { get, line, liveRead, post, prop } from "../helpers/http.js";
import { startTestServer, type TestServer, tempDir } from "../helpers/server.js";

const HEAD = "<item>\n";
let servers: TestServer[] = [];
afterEach(async () => {
  for (const s of servers) await s.close().catch(() => undefined);
  servers = [];
});

async function start(dir: string): Promise<TestServer> {
  const s = await startTestServer([], dir);
  servers.push(s);
  return s;
}

const meta = (dir: string, key: string) => JSON.parse(readFileSync(join(dir, `${key}.meta`), "utf8"));

describe("files on disk", () => {
  it("the .meta file indexes every property by name, in file order", async () => {
    const dir = tempDir();
    const s = await start(dir);
    const url = `${s.url}/write-item-stream/doc/7`;
    await post(url, prop("a", "string", "x") + prop("b", "number", "1") + prop("a", "boolean", "true"));
    await post(`${url}?seal=true`, "");
    const m = meta(dir, "doc_7");
    const file = readFileSync(join(dir, "doc_7.data"));
    expect(m).toMatchObject({ item_id: "doc", version: 7, size: file.length, sealed: true, property_count: 3 });
    expect(Date.parse(m.created_at)).not.toBeNaN();
    expect(Date.parse(m.updated_at)).toBeGreaterThanOrEqual(Date.parse(m.created_at));
    expect(Object.keys(m.properties)).toEqual(["a", "b"]);
    expect(m.properties.a.map((e: { type: string }) => e.type)).toEqual(["string", "boolean"]);
    for (const [name, entries] of Object.entries(m.properties) as [
      string,
      { type: string; offset: number; length: number }[],
    ][]) {
      for (const e of entries) {
        const text = file.subarray(e.offset, e.offset + e.length).toString();
        expect(text).toMatch(new RegExp(`^<property for="${name}"><${e.type}>.*</${e.type}></property>$`));
        expect(file[e.offset + e.length]).toBe(0x0a);
      }
    }
    expect(file.toString()).toBe(
      `${HEAD}${line("a", "string", "x")}${line("b", "number", "1")}${line("a", "boolean", "true")}</item>\n`,
    );
  });

  it("keeps everything across a restart, and offsets continue from the end", async () => {
    const dir = tempDir();
    let s = await start(dir);
    const first = await post(`${s.url}/write-item-stream/keep/1`, prop("a", "string", "1"));
    await s.close();
    s = await start(dir);
    const second = await post(`${s.url}/write-item-stream/keep/1`, prop("b", "string", "2"), {
      "content-type": "application/xml",
      "x-expected-offset": String(first.json().offset),
    });
    expect(second.status).toBe(200);
    expect(second.json().offset).toBe(first.json().offset + line("b", "string", "2").length);
    const all = await get(`${s.url}/read-item-stream/keep/1?follow=false`);
    expect(all.text).toBe(`${HEAD}${line("a", "string", "1")}${line("b", "string", "2")}`);
    await s.close();
    expect(meta(dir, "keep_1")).toMatchObject({ size: all.text.length, property_count: 2, sealed: false });
    rmSync(dir, { recursive: true, force: true });
  });

  it("start-up cuts a torn last line and rebuilds a lost .meta from the data file", async () => {
    const dir = tempDir();
    const whole = `${HEAD}${line("a", "string", "1")}${line("b", "number", "2")}`;
    writeFileSync(join(dir, "torn_1.data"), `${whole}<property for="c"><str`);
    writeFileSync(join(dir, "stale_1.data"), whole);
    writeFileSync(join(dir, "stale_1.meta"), "{not json");
    const s = await start(dir);
    const torn = await get(`${s.url}/read-item-stream/torn/1?follow=false`);
    expect(torn.text).toBe(whole);
    const w = await post(`${s.url}/write-item-stream/torn/1`, prop("c", "string", "3"));
    expect(w.json().offset).toBe(whole.length + line("c", "string", "3").length);
    expect((await get(`${s.url}/read-item-stream/stale/1?follow=false`)).text).toBe(whole);
    await s.close();
    expect(readFileSync(join(dir, "torn_1.data"), "utf8")).toBe(`${whole}${line("c", "string", "3")}`);
    expect(meta(dir, "stale_1")).toMatchObject({ size: whole.length, property_count: 2 });
    expect(meta(dir, "stale_1").properties.b).toEqual([
      {
        type: "number",
        offset: HEAD.length + line("a", "string", "1").length,
        length: line("b", "number", "2").length - 1,
      },
    ]);
  });

  it("a .meta deleted under a running server is rebuilt, and nothing else is disturbed", async () => {
    const dir = tempDir();
    const s = await start(dir);
    const other = liveRead(`${s.url}/read-item-stream/other/1`);
    await post(`${s.url}/write-item-stream/other/1`, prop("o", "string", "1"));
    await other.until((t) => t.includes("</property>"));
    await post(`${s.url}/write-item-stream/gone/1`, prop("a", "string", "1"));
    const metaFile = join(dir, "gone_1.meta");
    for (let i = 0; i < 100 && !existsSync(metaFile); i++) await new Promise((r) => setTimeout(r, 20));
    rmSync(metaFile);
    await post(`${s.url}/write-item-stream/gone/1`, prop("b", "string", "2"));
    // Give the .meta upkeep time to meet the missing file, then check the storage worker
    // did not fall over: a live reader of another version would have been cut.
    await new Promise((r) => setTimeout(r, 400));
    await post(`${s.url}/write-item-stream/other/1`, prop("o", "string", "2"));
    await other.until((t) => t.split("</property>").length === 3);
    await s.close();
    const data = readFileSync(join(dir, "gone_1.data"));
    expect(meta(dir, "gone_1")).toMatchObject({ size: data.length, property_count: 2 });
    expect(Object.keys(meta(dir, "gone_1").properties)).toEqual(["a", "b"]);
  });

  it("a clean stop in the middle of .meta upkeep leaves every .meta exact", async () => {
    const dir = tempDir();
    const s = await start(dir);
    const body = Array.from({ length: 100_000 }, (_, i) => prop(`p${i % 7}`, "number", String(i))).join("");
    await post(`${s.url}/write-item-stream/many/1`, body);
    await post(`${s.url}/write-item-stream/many/1`, body);
    await s.close();
    const data = readFileSync(join(dir, "many_1.data"));
    const m = meta(dir, "many_1");
    expect(m).toMatchObject({ size: data.length, property_count: 200_000 });
    const entries = Object.values(m.properties as Record<string, { offset: number }[]>).flat();
    expect(entries).toHaveLength(200_000);
    expect(new Set(entries.map((e) => e.offset)).size).toBe(200_000);
  });

  it("a sealed version stays sealed across a restart, even when its .meta lags", async () => {
    const dir = tempDir();
    const whole = `${HEAD}${line("a", "string", "1")}</item>\n`;
    writeFileSync(join(dir, "old_1.data"), whole);
    const s = await start(dir);
    expect((await get(`${s.url}/read-item-stream/old/1`)).text).toBe(whole);
    expect((await post(`${s.url}/write-item-stream/old/1`, "")).status).toBe(409);
  });

  it("finishes sealing an older version left open by a crash", async () => {
    const dir = tempDir();
    writeFileSync(join(dir, "two_1.data"), `${HEAD}${line("a", "string", "1")}`);
    writeFileSync(join(dir, "two_2.data"), HEAD);
    const s = await start(dir);
    expect((await get(`${s.url}/read-item-stream/two/1`)).text).toBe(`${HEAD}${line("a", "string", "1")}</item>\n`);
  });

  it("a damaged data file is reported and left untouched; the rest still serves", async () => {
    const dir = tempDir();
    const bad = `${HEAD}garbage in the middle\n${line("a", "string", "1")}`;
    writeFileSync(join(dir, "bad_1.data"), bad);
    // With a .meta that vouches for the header only, start-up scans the rest and finds it.
    const now = new Date().toISOString();
    const meta = {
      item_id: "bad",
      version: 1,
      created_at: now,
      updated_at: now,
      size: 7,
      sealed: false,
      property_count: 0,
      properties: {},
    };
    writeFileSync(join(dir, "bad_1.meta"), JSON.stringify(meta));
    // Without one, the damage is found when the index is rebuilt (here: on first use).
    writeFileSync(join(dir, "bad_2.data"), bad);
    writeFileSync(join(dir, "good_1.data"), HEAD);
    const s = await start(dir);
    const a = await get(`${s.url}/read-item-stream/bad/1`);
    expect(a.status).toBe(500);
    expect(a.json().error.code).toBe("version_damaged");
    expect(a.json().error.message).toContain("bad_1.data");
    expect(s.engine.recovery.damaged).toEqual([expect.stringContaining("bad_1.data")]);
    expect(readFileSync(join(dir, "bad_1.data"), "utf8")).toBe(bad);
    const b = await get(`${s.url}/read-item-stream/bad/2`);
    expect(b.status).toBe(500);
    expect(b.json().error.code).toBe("version_damaged");
    expect(readFileSync(join(dir, "bad_2.data"), "utf8")).toBe(bad);
    expect(readFileSync(join(dir, "bad_1.data"), "utf8")).toBe(bad);
    expect((await post(`${s.url}/write-item-stream/good/1`, prop("x", "string", "y"))).status).toBe(200);
  });

  it("a torn creation (shorter than <item>) restarts the version empty", async () => {
    const dir = tempDir();
    writeFileSync(join(dir, "new_1.data"), "<it");
    const s = await start(dir);
    expect((await get(`${s.url}/read-item-stream/new/1?follow=false`)).text).toBe(HEAD);
  });
});
