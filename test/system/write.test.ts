import { readdirSync, readFileSync } from "node:fs";
import { connect } from "node:net";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { get, line, liveRead, post, postChunks, prop, XML } from "../helpers/http.js";
import { startTestServer, type TestServer } from "../helpers/server.js";

let s: TestServer;
let n = 0;
/** A fresh item id per test, so tests share one server without sharing state. */
const fresh = () => `item${++n}`;
const w = (item: string, v = 1, q = "") => `${s.url}/write-item-stream/${item}/${v}${q}`;
const r = (item: string, v = 1, q = "") => `${s.url}/read-item-stream/${item}/${v}${q}`;
const data = (item: string, v = 1) => readFileSync(join(s.dataDir, `${item}_${v}.data`), "utf8");

beforeAll(async () => {
  s = await startTestServer();
});
afterAll(async () => {
  await s.stop();
});

describe("POST /write-item-stream", () => {
  it("commits properties and answers with the count and the offset", async () => {
    const item = fresh();
    const a = await post(w(item), prop("name", "string", "John Doe") + prop("age", "number", "25"));
    expect(a.status).toBe(200);
    const expected = `<item>\n${line("name", "string", "John Doe")}${line("age", "number", "25")}`;
    expect(a.json()).toEqual({
      item_id: item,
      version: 1,
      committed: 2,
      offset: Buffer.byteLength(expected),
      sealed: false,
    });
    expect(data(item)).toBe(expected);
  });

  it("answers 200 with exactly the JSON a serializer writes, for every character a name may hold", async () => {
    const item = `Az09._-${fresh()}`;
    const version = Number.MAX_SAFE_INTEGER;
    const a = await post(w(item, version, "?seal=true"), prop("n", "number", "1"));
    expect(a.status).toBe(200);
    expect(a.headers["content-length"]).toBe(String(Buffer.byteLength(a.text)));
    const offset = Buffer.byteLength(`<item>\n${line("n", "number", "1")}`);
    expect(a.text).toBe(`${JSON.stringify({ item_id: item, version, committed: 1, offset, sealed: true })}\n`);
  });

  it("accepts text/xml and a utf-8 charset, refuses other types with 415", async () => {
    const item = fresh();
    expect((await post(w(item), "", { "content-type": "text/xml; charset=UTF-8" })).status).toBe(200);
    const json = await post(w(item), prop("a", "string", "x"), { "content-type": "application/json" });
    expect(json.status).toBe(415);
    expect(json.json().error.code).toBe("unsupported_media_type");
    const latin = await post(w(item), "", { "content-type": "application/xml; charset=iso-8859-1" });
    expect(latin.status).toBe(415);
    expect((await post(w(item), "", {})).status).toBe(415);
  });

  it("writes the canonical form: trimmed values, escaped text, base64 without whitespace", async () => {
    const item = fresh();
    const body = `<?xml version="1.0" encoding="UTF-8"?>
<!-- a comment -->
<item>
  <property for="a&amp;b">
    <string>  x &lt; y &amp;&gt; "q"
second line </string>
  </property>
  <property for="n"><number>  -1.5e+3 </number></property>
  <property for="b"><boolean> true</boolean></property>
  <property for="d"><datetime>2024-01-15T10:30:00.123+02:00</datetime></property>
  <property for="bin"><binary>
    aGVs
    bG8=
  </binary></property>
  <property for="cd"><string><![CDATA[<raw> & stuff]]></string></property>
  <property for="empty"><string/></property>
</item>
`;
    const a = await post(w(item), body);
    expect(a.status, a.text).toBe(200);
    expect(a.json().committed).toBe(7);
    expect(data(item)).toBe(
      "<item>\n" +
        line("a&amp;b", "string", "  x &lt; y &amp;&gt; &quot;q&quot;&#10;second line ") +
        line("n", "number", "-1.5e+3") +
        line("b", "boolean", "true") +
        line("d", "datetime", "2024-01-15T10:30:00.123+02:00") +
        line("bin", "binary", "aGVsbG8=") +
        line("cd", "string", "&lt;raw&gt; &amp; stuff") +
        line("empty", "string", ""),
    );
  });

  it.each([
    ["number", "abc"],
    ["number", "01"],
    ["number", "1."],
    ["number", "1e999"],
    ["number", "+1"],
    ["boolean", "TRUE"],
    ["boolean", "1"],
    ["datetime", "2024-02-30T00:00:00Z"],
    ["datetime", "2024-01-15T10:30:00"],
    ["datetime", "2024-01-15 10:30:00Z"],
    ["datetime", "2024-01-15T24:00:00Z"],
    ["binary", "aGVsbG8"],
    ["binary", "aGV$bG8="],
  ])("rejects %s value %j with 400 invalid_value", async (type, value) => {
    const item = fresh();
    const a = await post(w(item), prop("ok", "string", "fine") + prop("bad", type, value));
    expect(a.status).toBe(400);
    expect(a.json().error.code).toBe("invalid_value");
    // The message quotes the value it refused.
    expect(a.json().error.message).toContain(`invalid ${type} value ${JSON.stringify(value)}: `);
    expect(a.json().committed).toBe(1);
    expect(a.json().error.line).toBe(1);
    expect(data(item)).toBe(`<item>\n${line("ok", "string", "fine")}`);
  });

  it.each([
    ["leap day", "2024-02-29T23:59:60Z"],
    ["lower-case t and z", "2024-01-15t10:30:00z"],
    ["negative zone", "2024-01-15T10:30:00-05:30"],
  ])("accepts a %s datetime", async (_, value) => {
    expect((await post(w(fresh()), prop("d", "datetime", value))).status).toBe(200);
  });

  it.each([
    ["a DOCTYPE", `<!DOCTYPE x [<!ENTITY e "boom">]>${prop("a", "string", "&e;")}`, "unsupported_xml"],
    ["an undefined entity", prop("a", "string", "&e;"), "invalid_xml"],
    [
      "an external entity",
      `<!DOCTYPE x [<!ENTITY e SYSTEM "file:///etc/passwd">]>${prop("a", "string", "&e;")}`,
      "unsupported_xml",
    ],
    ["a processing instruction", `<?php echo 1; ?>${prop("a", "string", "x")}`, "unsupported_xml"],
    ["an unclosed tag", '<property for="a"><string>x</string>', "invalid_xml"],
    ["a mismatched tag", '<property for="a"><string>x</number></property>', "invalid_xml"],
    ["a missing for", "<property><string>x</string></property>", "invalid_property"],
    ["an empty for", '<property for=""><string>x</string></property>', "invalid_property"],
    ["an unknown type", '<property for="a"><integer>1</integer></property>', "invalid_property"],
    ["two values", '<property for="a"><string>x</string><string>y</string></property>', "invalid_property"],
    ["no value", '<property for="a"></property>', "invalid_property"],
    ["a nested element in a value", '<property for="a"><string>x<b/></string></property>', "invalid_property"],
    ["text between properties", `hello${prop("a", "string", "x")}`, "invalid_property"],
    ["a second <item>", "<item></item><item></item>", "invalid_property"],
    ["a for longer than 1024", prop("x".repeat(1025), "string", "x"), "invalid_property"],
    [
      "a non-UTF-8 encoding",
      `<?xml version="1.0" encoding="ISO-8859-1"?>${prop("a", "string", "x")}`,
      "unsupported_xml",
    ],
    ["a late XML declaration", `${prop("a", "string", "x")}<?xml version="1.0"?>`, "invalid_xml"],
  ])("rejects %s with 400", async (_, body, code) => {
    const item = fresh();
    const a = await post(w(item), body);
    expect(a.status, a.text).toBe(400);
    expect(a.json().error.code).toBe(code);
    expect(a.json().error.request_id).toMatch(/^[0-9a-f-]{36}$/);
    expect(a.headers["x-request-id"]).toBe(a.json().error.request_id);
  });

  it("every answer carries its own X-Request-Id: a write, a read, a HEAD, a refusal, an unknown route", async () => {
    const item = fresh();
    const answers = [
      await post(w(item), prop("a", "string", "1")),
      await get(r(item, 1, "?follow=false")),
      await get(r(item, 1, "?follow=false"), {}, "HEAD"),
      await get(r(item, 1, "?follow=false&offset=999")),
      await post(w(item, 1, "?seal=maybe"), prop("a", "string", "1")),
      await get(`${s.url}/nowhere`),
      await get(w(item)),
    ];
    expect(answers.map((a) => a.status)).toEqual([200, 200, 200, 416, 400, 404, 405]);
    const ids = answers.map((a) => a.headers["x-request-id"]);
    for (const id of ids) expect(id).toMatch(/^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/);
    expect(new Set(ids).size).toBe(ids.length);
    // Headers set along the way still go out with it.
    expect(answers[3].headers["content-range"]).toBe("bytes */55");
    expect(answers[6].headers.allow).toBe("POST");
  });

  it("keeps what committed before the first invalid construct and writes nothing after it", async () => {
    const item = fresh();
    const body = `${prop("a", "string", "1") + prop("b", "string", "2")}<oops>${prop("c", "string", "3")}`;
    const a = await post(w(item), body);
    expect(a.status).toBe(400);
    expect(a.json().committed).toBe(2);
    expect(data(item)).toBe(`<item>\n${line("a", "string", "1")}${line("b", "string", "2")}`);
  });

  it("a request rejected before it commits anything creates no version", async () => {
    const item = fresh();
    expect((await post(w(item), prop("a", "number", "x"))).status).toBe(400);
    expect(readdirSync(s.dataDir).filter((f) => f.startsWith(`${item}_`))).toEqual([]);
    expect((await get(r(item, 1, "?wait=false"))).status).toBe(404);
  });

  it("an empty body creates the version", async () => {
    const item = fresh();
    const a = await post(w(item), "");
    expect(a.json()).toEqual({ item_id: item, version: 1, committed: 0, offset: 7, sealed: false });
    expect(data(item)).toBe("<item>\n");
  });

  it("parses a body sent one byte per chunk, split inside multi-byte UTF-8", async () => {
    const item = fresh();
    const body = Buffer.from(`<item>${prop("greet", "string", "héllo wörld 😀 ✓")}${prop("n", "number", "42")}</item>`);
    const chunks = [...body].map((b) => Buffer.from([b]));
    const a = await postChunks(w(item), chunks);
    expect(a.status, a.text).toBe(200);
    expect(a.json().committed).toBe(2);
    expect(data(item)).toBe(`<item>\n${line("greet", "string", "héllo wörld 😀 ✓")}${line("n", "number", "42")}`);
  });

  it("rejects bytes that are not UTF-8, keeping what came before", async () => {
    const item = fresh();
    const a = await post(
      w(item),
      Buffer.concat([Buffer.from(prop("a", "string", "ok")), Buffer.from([0x3c, 0xff, 0xfe])]),
    );
    expect(a.status).toBe(400);
    expect(a.json()).toMatchObject({ error: { code: "invalid_xml" }, committed: 1 });
  });

  it("commits each property while the request is still streaming", async () => {
    const item = fresh();
    const reader = liveRead(r(item));
    const chunks = [prop("p1", "string", "one"), prop("p2", "string", "two"), prop("p3", "string", "three")];
    let seen = 0;
    const writing = postChunks(w(item), chunks, 0);
    void writing;
    // The writer's request is still open while each line appears; wait for each in turn.
    for (const c of chunks) {
      await reader.until((t) => t.includes(`${c}\n`));
      seen++;
    }
    expect(seen).toBe(3);
    expect((await writing).status).toBe(200);
    reader.close();
  });

  it("seals with ?seal=true: </item> appended, readers end, later writes get 409", async () => {
    const item = fresh();
    const reader = liveRead(r(item));
    expect((await post(w(item), prop("a", "string", "1"))).status).toBe(200);
    const sealed = await post(w(item, 1, "?seal=true"), prop("b", "string", "2"));
    expect(sealed.json()).toMatchObject({ committed: 1, sealed: true });
    const all = `<item>\n${line("a", "string", "1")}${line("b", "string", "2")}</item>\n`;
    expect(await reader.done).toBe(all);
    expect(sealed.json().offset).toBe(Buffer.byteLength(all) - "</item>\n".length);
    const again = await post(w(item), prop("c", "string", "3"));
    expect(again.status).toBe(409);
    expect(again.json()).toMatchObject({ error: { code: "version_sealed" }, offset: Buffer.byteLength(all) });
    // The version's state answers before the body's content: a bad body still gets 409.
    const invalid = await post(w(item), prop("x", "number", "abc"));
    expect(invalid.status).toBe(409);
    expect(invalid.json()).toMatchObject({ error: { code: "version_sealed" }, committed: 0 });
    expect(data(item)).toBe(all);
  });

  it("a newer version seals the older one and refuses writes to it with version_superseded", async () => {
    const item = fresh();
    await post(w(item, 1), prop("a", "string", "1"));
    const reader = liveRead(r(item, 1));
    await reader.until((t) => t.includes("</property>"));
    expect((await post(w(item, 2), prop("b", "string", "2"))).status).toBe(200);
    expect(await reader.done).toBe(`<item>\n${line("a", "string", "1")}</item>\n`);
    const old = await post(w(item, 1), prop("c", "string", "3"));
    expect(old.status).toBe(409);
    expect(old.json().error.code).toBe("version_superseded");
    const never = await post(w(item, 1), "");
    expect(never.json().error.code).toBe("version_superseded");
  });

  it("X-Expected-Offset: taken when it matches, 409 offset_mismatch with the offset when not", async () => {
    const item = fresh();
    const first = await post(w(item), prop("a", "string", "1"), { ...XML, "x-expected-offset": "0" });
    expect(first.status).toBe(200);
    const end = first.json().offset;
    const stale = await post(w(item), prop("b", "string", "2"), { ...XML, "x-expected-offset": "0" });
    expect(stale.status).toBe(409);
    expect(stale.json()).toMatchObject({ error: { code: "offset_mismatch" }, offset: end });
    const good = await post(w(item), prop("b", "string", "2"), { ...XML, "x-expected-offset": String(end) });
    expect(good.status).toBe(200);
    const bad = await post(w(item), "", { ...XML, "x-expected-offset": "-3" });
    expect(bad.status).toBe(400);
    expect(bad.json().error.code).toBe("invalid_parameter");
  });

  it("rejects a bad ?seal value, saying what it takes", async () => {
    const a = await post(w(fresh(), 1, "?seal=yes"), "");
    expect(a.status).toBe(400);
    expect(a.json().error).toMatchObject({
      code: "invalid_parameter",
      message: '?seal must be true or false (or 1 or 0), got "yes"',
    });
    // What the message says is what it takes.
    const item = fresh();
    expect((await post(w(item, 1, "?seal=0"), "")).json().sealed).toBe(false);
    expect((await post(w(item, 1, "?seal=1"), "")).json().sealed).toBe(true);
  });

  it("quotes a long refused value cut to 64 characters", async () => {
    const long = `${"9".repeat(100)}x`;
    const a = await post(w(fresh()), prop("n", "number", long));
    expect(a.json().error.message).toBe(
      `property "n": invalid number value "${"9".repeat(64)}…": expected a finite JSON-style number`,
    );
  });

  it("answers 413 for a property over --max-property-bytes, keeping the ones before", async () => {
    const small = await startTestServer(["--max-property-bytes", "1000"]);
    try {
      const url = `${small.url}/write-item-stream/big/1`;
      const a = await post(url, prop("ok", "string", "x") + prop("big", "string", "y".repeat(2000)));
      expect(a.status).toBe(413);
      expect(a.json()).toMatchObject({ error: { code: "property_too_large" }, committed: 1 });
      // Streamed and never closed: the server stops buffering and answers 413 itself.
      const chunks = ['<property for="huge"><string>', ...Array.from({ length: 200 }, () => "z".repeat(100))];
      const b = await postChunks(`${small.url}/write-item-stream/big2/1`, chunks);
      expect(b.status).toBe(413);
    } finally {
      await small.stop();
    }
  });

  it.each([1, 5])("takes one %i MB property, in one body or in small chunks", async (mb) => {
    const item = fresh();
    const value = "v".repeat(mb << 20);
    const whole = await post(w(item), prop("big", "string", value));
    expect(whole.status, whole.text).toBe(200);
    const body = Buffer.from(prop("big2", "string", value));
    const chunks = Array.from({ length: Math.ceil(body.length / 65536) }, (_, i) =>
      body.subarray(i * 65536, (i + 1) * 65536),
    );
    const streamed = await postChunks(w(item), chunks);
    expect(streamed.status, streamed.text).toBe(200);
    expect(data(item)).toBe(`<item>\n${line("big", "string", value)}${line("big2", "string", value)}`);
  });

  it("answers 404 for unknown routes and 405 for wrong methods", async () => {
    const a = await get(`${s.url}/nope`);
    expect(a.status).toBe(404);
    expect(a.json().error.code).toBe("route_not_found");
    const b = await get(w("x"));
    expect(b.status).toBe(405);
    expect(b.headers.allow).toBe("POST");
  });
});

/** Sends raw HTTP/1.1 requests in one write on one connection; the last should close it. */
function pipelined(requests: string[]): Promise<{ status: number; connection: string; body: string }[]> {
  const { port } = new URL(s.url);
  return new Promise((resolve, reject) => {
    const sock = connect(Number(port), "127.0.0.1");
    let raw = "";
    sock.on("data", (d) => (raw += d));
    sock.on("error", reject);
    sock.on("close", () => {
      const answers = [];
      for (let at = 0; at < raw.length; ) {
        const headEnd = raw.indexOf("\r\n\r\n", at);
        const head = raw.slice(at, headEnd);
        const length = Number(/content-length: (\d+)/i.exec(head)?.[1] ?? 0);
        answers.push({
          status: Number(head.slice(9, 12)),
          connection: /\r\nconnection: ([^\r]*)/i.exec(head)?.[1] ?? "",
          body: raw.slice(headEnd + 4, headEnd + 4 + length),
        });
        at = headEnd + 4 + length;
      }
      resolve(answers);
    });
    sock.write(requests.join(""));
  });
}

const rawPost = (path: string, body: string, last = false) =>
  `POST ${path} HTTP/1.1\r\nHost: x\r\nContent-Type: application/xml\r\nContent-Length: ${Buffer.byteLength(body)}\r\n${last ? "Connection: close\r\n" : ""}\r\n${body}`;

describe("requests pipelined on one connection", () => {
  it("a refused bodiless request keeps the connection, and the write behind it is answered", async () => {
    const item = fresh();
    const answers = await pipelined([
      "GET /read-item-stream/.bad/1 HTTP/1.1\r\nHost: x\r\n\r\n",
      "GET /nope HTTP/1.1\r\nHost: x\r\n\r\n",
      rawPost(`/write-item-stream/${item}/1`, prop("n", "number", "1"), true),
    ]);
    expect(answers.map((a) => a.status)).toEqual([400, 404, 200]);
    expect(answers[0].connection).toBe("keep-alive");
    expect(JSON.parse(answers[2].body).committed).toBe(1);
  });

  it("a body longer than its Content-Length: the declared part is answered, then the excess gets 400", async () => {
    const item = fresh();
    const body = prop("n", "number", "1");
    const request = `POST /write-item-stream/${item}/1 HTTP/1.1\r\nHost: x\r\nContent-Type: application/xml\r\nContent-Length: ${body.length}\r\n\r\n`;
    const answers = await pipelined([request, body, '<property for="extra"/>\r\n\r\n']);
    expect(answers.map((a) => a.status)).toEqual([200, 400]);
    expect(JSON.parse(answers[0].body).committed).toBe(1);
    expect(JSON.parse(answers[1].body).error.code).toBe("bad_request");
    expect(data(item)).toBe(`<item>\n${line("n", "number", "1")}`);
  });

  it("malformed bytes after several whole requests: each is answered, then the 400", async () => {
    const item = fresh();
    const path = `/write-item-stream/${item}/1`;
    const answers = await pipelined([
      rawPost(path, prop("a", "number", "1")),
      rawPost(path, prop("b", "number", "2")),
      "GET /nope HTTP/1.1\r\nHost: x\r\n\r\n",
      rawPost(path, prop("c", "number", "3")),
      "HELLO THERE\r\n\r\n",
    ]);
    expect(answers.map((a) => a.status)).toEqual([200, 200, 404, 200, 400]);
    expect(JSON.parse(answers[3].body).committed).toBe(1);
  });

  it("malformed bytes behind a waiting reader: a client that leaves frees what the reader held", async () => {
    const before = await s.engine.stats();
    const { port } = new URL(s.url);
    const sock = connect(Number(port), "127.0.0.1");
    sock.on("error", () => undefined);
    sock.write(`GET /read-item-stream/${fresh()}/1 HTTP/1.1\r\nHost: x\r\n\r\nHELLO THERE\r\n\r\n`);
    await expect.poll(async () => (await s.engine.stats()).slots).toBe(before.slots + 1);
    sock.end();
    await expect.poll(async () => (await s.engine.stats()).slots).toBe(before.slots);
    expect((await s.engine.stats()).feeds).toBe(before.feeds);
    sock.destroy();
  });

  it("readers waiting one behind the other: a client that leaves frees both", async () => {
    const before = await s.engine.stats();
    const { port } = new URL(s.url);
    const sock = connect(Number(port), "127.0.0.1");
    sock.on("error", () => undefined);
    const get = (item: string) => `GET /read-item-stream/${item}/1 HTTP/1.1\r\nHost: x\r\n\r\n`;
    sock.write(get(fresh()) + get(fresh()));
    await expect.poll(async () => (await s.engine.stats()).slots).toBe(before.slots + 2);
    sock.destroy();
    await expect.poll(async () => (await s.engine.stats()).slots).toBe(before.slots);
    expect((await s.engine.stats()).feeds).toBe(before.feeds);
  });

  it("malformed bytes after an answered request still get their 400", async () => {
    const { port } = new URL(s.url);
    const sock = connect(Number(port), "127.0.0.1");
    let raw = "";
    sock.on("data", (d) => (raw += d));
    const closed = new Promise((resolve) => sock.on("close", resolve));
    sock.write(`GET /nope HTTP/1.1\r\nHost: x\r\n\r\n`);
    await expect.poll(() => raw.includes("route_not_found")).toBe(true);
    sock.write("HELLO THERE\r\n\r\n");
    await closed;
    expect(raw.match(/^HTTP\/1\.1 \d+/gm)).toEqual(["HTTP/1.1 404", "HTTP/1.1 400"]);
  });

  it("reach the engine in their order, an empty body included", async () => {
    const item = fresh();
    const answers = await pipelined([
      rawPost(`/write-item-stream/${item}/1`, prop("a", "number", "1")),
      rawPost(`/write-item-stream/${item}/1?seal=true`, ""),
      rawPost(`/write-item-stream/${item}/1`, prop("b", "number", "2"), true),
    ]);
    expect(answers.map((a) => a.status)).toEqual([200, 200, 409]);
    expect(JSON.parse(answers[2].body).error.code).toBe("version_sealed");
    expect(data(item)).toBe(`<item>\n${line("a", "number", "1")}</item>\n`);
  });
});
