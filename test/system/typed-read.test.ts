import { execFile } from "node:child_process";
import { readdirSync, readlinkSync } from "node:fs";
import { promisify } from "node:util";
import fc from "fast-check";
import { SaxesParser } from "saxes";
import { EventSource } from "undici";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { get, line, liveRead, post, postChunks, prop } from "../helpers/http.js";
import { spawnServer, startTestServer, type TestServer, tempDir } from "../helpers/server.js";

/** Typed reads (README, "Reading values"): the same committed properties as records. */

const run = promisify(execFile);
let s: TestServer;
let n = 0;
const fresh = () => `typed${++n}`;
const w = (item: string, q = "") => `${s.url}/write-item-stream/${item}/1${q}`;
const r = (item: string, q = "") => `${s.url}/read-item-stream/${item}/1${q}`;
const HEAD = "<item>\n";

beforeAll(async () => {
  s = await startTestServer();
});
afterAll(async () => {
  await s.stop();
});

const ndjson = (text: string) =>
  text
    .split("\n")
    .filter((l) => l !== "")
    .map((l) => JSON.parse(l));

describe("typed reads", () => {
  it("NDJSON of a sealed version with curl: one record per property, values typed, then the seal", async () => {
    const item = fresh();
    await post(
      w(item, "?seal=true"),
      prop("big", "number", "12345678901234567890") +
        prop("s", "string", "a &amp; &quot;b&quot;&#10;c") +
        prop("ok", "boolean", "true") +
        prop("at", "datetime", "2024-01-15T10:30:00Z") +
        prop("bin", "binary", "aGVsbG8="),
    );
    const { stdout } = await run("curl", ["-sN", r(item, "?format=ndjson")]);
    const lines = stdout.trimEnd().split("\n");
    // The number's digits as stored: never rounded through a double.
    const next = 7 + line("big", "number", "12345678901234567890").length;
    expect(lines[0]).toBe(`{"offset":7,"next":${next},"name":"big","type":"number","value":12345678901234567890}`);
    const records = lines.map((l) => JSON.parse(l));
    expect(records.slice(1, 5).map((x) => x.value)).toEqual(['a & "b"\nc', true, "2024-01-15T10:30:00Z", "aGVsbG8="]);
    // Offsets are the data file's: each record's bytes are its line.
    const raw = (await get(r(item))).text;
    for (const x of records.slice(0, 5))
      expect(raw.slice(x.offset, x.next)).toMatch(/^<property for="[a-z]+">.*<\/property>\n$/);
    expect(records[5]).toEqual({ sealed: true, offset: raw.length - "</item>\n".length });
  });

  it("JSON: one document of what is committed now", async () => {
    const item = fresh();
    await post(w(item), prop("a", "number", "1") + prop("b", "string", "x"));
    const a = await get(r(item), { accept: "application/json" });
    expect(a.status).toBe(200);
    expect(a.headers["content-type"]).toBe("application/json; charset=utf-8");
    const end = (HEAD + line("a", "number", "1") + line("b", "string", "x")).length;
    expect(a.json()).toEqual({
      item_id: item,
      version: 1,
      sealed: false,
      offset: 7,
      next: end,
      properties: [
        { offset: 7, next: 7 + line("a", "number", "1").length, name: "a", type: "number", value: 1 },
        { offset: 7 + line("a", "number", "1").length, next: end, name: "b", type: "string", value: "x" },
      ],
    });
  });

  it("live NDJSON: records as they commit, from a boundary, and the seal ends it complete", async () => {
    const item = fresh();
    await post(w(item), prop("a", "number", "1"));
    const from = (HEAD + line("a", "number", "1")).length;
    const reader = liveRead(r(item, `?format=ndjson&offset=${from}`));
    await post(w(item), prop("b", "number", "2"));
    await reader.until((t) => t.includes('"name":"b"'));
    await post(w(item, "?seal=true"), prop("c", "number", "3"));
    const { text, complete } = await reader.ended;
    expect(complete).toBe(true);
    expect(ndjson(text).map((x) => x.name ?? x.sealed)).toEqual(["b", "c", true]);
    expect(ndjson(text)[0].offset).toBe(from);
  });

  it("an offset inside a property is 400 with the boundaries around it; past the end of a sealed version 416", async () => {
    const item = fresh();
    await post(w(item, "?seal=true"), prop("a", "string", "hello") + prop("b", "string", "world"));
    const first = line("a", "string", "hello").length;
    const a = await get(r(item, "?format=ndjson&offset=10"));
    expect(a.status).toBe(400);
    expect(a.json().error).toMatchObject({ code: "offset_not_at_property", before: 7, after: 7 + first });
    for (const offset of [0, 7])
      expect(ndjson((await get(r(item, `?format=ndjson&offset=${offset}`))).text)[0].name).toBe("a");
    expect((await get(r(item, "?format=ndjson&offset=9999"))).status).toBe(416);
  });

  it("chooses by ?format, then Accept with q-values; 406 when none fits; Vary: Accept", async () => {
    const item = fresh();
    await post(w(item), prop("a", "number", "1"));
    const cases: [string, Record<string, string>, number, string][] = [
      ["", {}, 200, "application/xml; charset=utf-8"],
      ["", { accept: "*/*" }, 200, "application/xml; charset=utf-8"],
      ["", { accept: "text/xml" }, 200, "application/xml; charset=utf-8"],
      ["", { accept: "application/json;q=0.5, application/x-ndjson" }, 200, "application/x-ndjson"],
      ["?format=json", { accept: "application/x-ndjson" }, 200, "application/json; charset=utf-8"],
      ["", { accept: "text/html" }, 406, "application/json; charset=utf-8"],
      ["?format=yaml", {}, 400, "application/json; charset=utf-8"],
    ];
    for (const [q, headers, status, type] of cases) {
      const a = await get(r(item, `${q}${q ? "&" : "?"}follow=false`), headers);
      expect([a.status, a.headers["content-type"]], `${q} ${JSON.stringify(headers)}`).toEqual([status, type]);
      if (status === 200) expect(a.headers.vary).toBe("Accept, Accept-Encoding");
    }
    expect((await get(r(item), { accept: "text/html" })).json().error.code).toBe("not_acceptable");
  });

  it("for random bodies sent in random chunks, NDJSON, SSE and JSON give what saxes finds in the raw XML", async () => {
    const chars = [..."ab <>&\"'é😀\n"];
    const value = fc.array(fc.constantFrom(...chars), { maxLength: 20 }).map((a) => a.join(""));
    const esc = (t: string) =>
      t.replace(/&/g, "&amp;").replace(/</g, "&lt;").replace(/>/g, "&gt;").replace(/"/g, "&quot;");
    await fc.assert(
      fc.asyncProperty(
        fc.array(fc.tuple(value, fc.constantFrom("string", "number"), value, fc.integer({ min: -5, max: 99999 })), {
          maxLength: 8,
        }),
        fc.array(fc.nat(), { maxLength: 5 }),
        async (props, cuts) => {
          const item = fresh();
          const body = props
            .map(([name, type, text, num]) => prop(esc(name || "x"), type, type === "number" ? String(num) : esc(text)))
            .join("");
          const bytes = Buffer.from(body);
          const at = [...new Set(cuts.map((c) => c % (bytes.length + 1)))].sort((x, y) => x - y);
          const chunks = [...at, bytes.length].map((end, i, all) => bytes.subarray(i === 0 ? 0 : all[i - 1], end));
          expect((await postChunks(w(item, "?seal=true"), chunks)).status).toBe(200);
          const raw = (await get(r(item))).text;
          const expected: { name: string; type: string; value: string | number }[] = [];
          const parser = new SaxesParser();
          let cur: { name: string; type: string; value: string } | null = null;
          parser.on("opentag", (t) => {
            if (t.name === "property") cur = { name: String(t.attributes.for), type: "", value: "" };
            else if (cur) cur.type = t.name;
          });
          parser.on("text", (t) => {
            if (cur?.type) cur.value += t;
          });
          parser.on("closetag", (t) => {
            if (t.name === "property" && cur)
              expected.push({ ...cur, value: cur.type === "number" ? Number(cur.value) : cur.value });
          });
          parser.write(raw).close();
          const records = ndjson((await get(r(item, "?format=ndjson"))).text);
          expect(records.slice(0, -1).map(({ name, type, value }) => ({ name, type, value }))).toEqual(expected);
          expect(records.at(-1)).toEqual({ sealed: true, offset: Buffer.byteLength(raw) - 8 });
          // SSE (read with curl, as a terminal user would) and JSON carry the same records.
          const { stdout } = await run("curl", ["-sN", r(item, "?format=sse")]);
          const events = stdout.split("\n\n").filter((e) => e.includes("event: property"));
          expect(events.map((e) => JSON.parse(e.slice(e.indexOf("data: ") + 6)))).toEqual(records.slice(0, -1));
          expect((await get(r(item, "?format=json"))).json().properties).toEqual(records.slice(0, -1));
        },
      ),
      { numRuns: 25 },
    );
  });
});

describe("?properties", () => {
  it("keeps only the named properties, in every format; XML stays a document of them", async () => {
    const item = fresh();
    const lines = [
      line("a", "number", "1"),
      line("b,c", "string", "x"),
      line("a", "number", "2"),
      line("d", "string", "y"),
    ];
    const live = liveRead(r(item, "?properties=a"));
    await post(w(item), prop("a", "number", "1") + prop("b,c", "string", "x"));
    await live.until((t) => t.includes("<number>1</number>"));
    await post(w(item, "?seal=true"), prop("a", "number", "2") + prop("d", "string", "y"));
    // Live, then sealed: <item>, the matching lines as the file has them, </item>.
    expect(await live.ended).toEqual({ text: `${HEAD}${lines[0]}${lines[2]}</item>\n`, complete: true });
    // A comma inside a name is %2C; names repeat or are listed.
    const records = ndjson((await get(r(item, "?properties=b%2Cc&properties=d&format=ndjson"))).text);
    expect(records.map((x) => x.name ?? x.sealed)).toEqual(["b,c", "d", true]);
    const doc = (await get(r(item, "?properties=d&format=json"))).json();
    expect(doc.properties.map((x: { name: string }) => x.name)).toEqual(["d"]);
    expect(doc.next).toBe((HEAD + lines.join("")).length);
    const bad = await get(r(item, "?properties=a,,b"));
    expect([bad.status, bad.json().error.code]).toEqual([400, "invalid_parameter"]);
  });
});

describe("SSE", () => {
  it("EventSource gets one property event per property, ids at each next byte, then sealed", async () => {
    const item = fresh();
    await post(w(item, "?seal=true"), prop("a", "number", "1") + prop("b", "string", "two"));
    const events = await collect(r(item, "?format=sse"), (e) => e.type === "sealed");
    const a = 7 + line("a", "number", "1").length;
    const b = a + line("b", "string", "two").length;
    expect(events).toEqual([
      { type: "property", id: String(a), data: { offset: 7, next: a, name: "a", type: "number", value: 1 } },
      { type: "property", id: String(b), data: { offset: a, next: b, name: "b", type: "string", value: "two" } },
      { type: "sealed", id: String(b), data: { offset: b } },
    ]);
    // Its reconnect after the seal, from the last id, is told 204: an EventSource then stops.
    const again = await get(r(item, "?format=sse"), { "last-event-id": String(b) });
    expect(again.status).toBe(204);
    // From an earlier id, it gets the rest.
    const rest = await get(r(item, "?format=sse"), { "last-event-id": String(a) });
    expect(rest.text).toBe(
      `retry: 1000\n\nid: ${b}\nevent: property\ndata: ${JSON.stringify({ offset: a, next: b, name: "b", type: "string", value: "two" })}\n\nid: ${b}\nevent: sealed\ndata: {"offset":${b}}\n\n`,
    );
  });
});

describe("many live typed readers", () => {
  it("resuming mid-stream, they hold no data file descriptor each (the feed and the index do)", async () => {
    const item = fresh();
    await post(w(item), prop("a", "number", "1") + prop("b", "number", "2"));
    const from = HEAD.length + line("a", "number", "1").length;
    const dataFds = () =>
      readdirSync("/proc/self/fd").filter((fd) => {
        try {
          return readlinkSync(`/proc/self/fd/${fd}`).endsWith(`${item}_1.data`);
        } catch {
          return false;
        }
      }).length;
    const readers = Array.from({ length: 40 }, () =>
      liveRead(r(item, "?format=sse"), { "last-event-id": String(from) }),
    );
    await Promise.all(readers.map((x) => x.until((t) => t.includes('"name":"b"'))));
    await post(w(item), prop("c", "number", "3"));
    await Promise.all(readers.map((x) => x.until((t) => t.includes('"name":"c"'))));
    // The version's feed, and the index's reader of new commits.
    expect(dataFds()).toBeLessThanOrEqual(3);
    for (const x of readers) x.close();
  });
});

describe("SSE through restarts", () => {
  it("an EventSource resumes by Last-Event-ID through SIGTERM and kill -9, nothing lost, nothing repeated", async () => {
    const dir = tempDir();
    let server = await spawnServer([], dir);
    const port = new URL(server.url).port;
    const url = `${server.url}/read-item-stream/resumed/1?format=sse`;
    const names: string[] = [];
    const source = new EventSource(url);
    const sealed = new Promise<void>((resolve) => source.addEventListener("sealed", () => resolve()));
    source.addEventListener("property", (e) => names.push(JSON.parse((e as MessageEvent).data).name));
    const write = (url: string, name: string, q = "") =>
      post(`${url}/write-item-stream/resumed/1${q}`, prop(name, "number", "1"));
    const seen = (count: number) => expect.poll(() => names.length, { timeout: 10_000 }).toBe(count);
    await write(server.url, "p1");
    await write(server.url, "p2");
    await seen(2);
    for (const signal of ["SIGTERM", "SIGKILL"] as const) {
      server.child.kill(signal);
      await new Promise((res) => server.child.once("exit", res));
      server = await spawnServer(["--port", port], dir);
      await write(server.url, `${signal}-a`);
      await write(server.url, `${signal}-b`);
      await seen(names.length + 2);
    }
    await write(server.url, "last", "?seal=true");
    await sealed;
    source.close();
    server.child.kill("SIGKILL");
    expect(names).toEqual(["p1", "p2", "SIGTERM-a", "SIGTERM-b", "SIGKILL-a", "SIGKILL-b", "last"]);
  });
});

/** Events of an EventSource until `done` says so. */
function collect(
  url: string,
  done: (e: { type: string }) => boolean,
): Promise<{ type: string; id: string; data: unknown }[]> {
  return new Promise((resolve, reject) => {
    const source = new EventSource(url);
    const events: { type: string; id: string; data: unknown }[] = [];
    const on = (e: Event) => {
      const m = e as MessageEvent;
      const event = { type: m.type, id: m.lastEventId, data: JSON.parse(m.data) };
      events.push(event);
      if (done(event)) {
        source.close();
        resolve(events);
      }
    };
    source.addEventListener("property", on);
    source.addEventListener("sealed", on);
    source.onerror = () => {
      if (source.readyState === EventSource.CLOSED) reject(new Error("the EventSource closed"));
    };
  });
}
