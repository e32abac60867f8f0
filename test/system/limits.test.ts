import { existsSync } from "node:fs";
import { connect } from "node:net";
import { afterEach, describe, expect, it } from "vitest";
import { get, liveRead, openPost, post, postChunks, prop } from "../helpers/http.js";
import { spawnServer, startTestServer, type TestServer, tempDir } from "../helpers/server.js";

let servers: TestServer[] = [];
afterEach(async () => {
  for (const s of servers) await s.stop();
  servers = [];
});
async function start(args: string[]): Promise<TestServer> {
  const s = await startTestServer(args);
  servers.push(s);
  return s;
}

/** Writes raw bytes on a fresh socket and collects everything until the server closes. */
function rawExchange(
  url: string,
  send: (sock: ReturnType<typeof connect>) => void,
): Promise<{ text: string; ms: number }> {
  const { port } = new URL(url);
  const t0 = Date.now();
  return new Promise((resolve) => {
    const sock = connect(Number(port), "127.0.0.1");
    let text = "";
    sock.on("data", (d) => (text += d));
    sock.on("error", () => undefined);
    sock.on("close", () => resolve({ text, ms: Date.now() - t0 }));
    send(sock);
  });
}

const jsonOf = (raw: string) => JSON.parse(raw.slice(raw.indexOf("\r\n\r\n") + 4));

describe("limits", () => {
  it("a request head over --max-header-bytes gets 431 in JSON", async () => {
    const s = await start(["--max-header-bytes", "2048"]);
    const { text } = await rawExchange(s.url, (sock) =>
      sock.write(`GET /read-item-stream/a/1 HTTP/1.1\r\nHost: x\r\nX-Big: ${"y".repeat(4000)}\r\n\r\n`),
    );
    expect(text).toMatch(/^HTTP\/1.1 431 /);
    expect(jsonOf(text).error.code).toBe("header_too_large");
  });

  it("malformed HTTP gets 400 bad_request in JSON", async () => {
    const s = await start([]);
    const { text } = await rawExchange(s.url, (sock) => sock.write("HELLO THERE\r\n\r\n"));
    expect(text).toMatch(/^HTTP\/1.1 400 /);
    expect(jsonOf(text).error.code).toBe("bad_request");
  });

  it("slowloris: a head sent a byte at a time is cut off after --headers-timeout", async () => {
    const s = await start(["--headers-timeout", "400"]);
    const head =
      "GET /read-item-stream/slow/1 HTTP/1.1\r\nHost: x\r\nX-Slow: aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\r\n\r\n";
    let i = 0;
    let timer: NodeJS.Timeout | undefined;
    const { text, ms } = await rawExchange(s.url, (sock) => {
      timer = setInterval(() => {
        if (i < head.length && !sock.destroyed) sock.write(head[i++]);
      }, 50);
    });
    clearInterval(timer);
    expect(i).toBeLessThan(head.length);
    expect(ms).toBeLessThan(3000);
    expect(text).toMatch(/^HTTP\/1.1 408 /);
    expect(jsonOf(text).error.code).toBe("request_timeout");
  });

  it("a write body silent for --body-idle-timeout gets 408 with what it committed", async () => {
    const s = await start(["--body-idle-timeout", "300"]);
    const { req, answer: pending } = openPost(`${s.url}/write-item-stream/idle/1`);
    req.write(prop("a", "string", "1"));
    const answer = await pending;
    expect(answer.status).toBe(408);
    expect(JSON.parse(answer.body)).toMatchObject({ error: { code: "request_timeout" }, committed: 1 });
  });

  it("a small body with a Content-Length commits each property as it arrives; silence then gets 408", async () => {
    const s = await start(["--body-idle-timeout", "400"]);
    const body = prop("a", "string", "1");
    const exchange = rawExchange(s.url, (sock) =>
      sock.write(
        `POST /write-item-stream/quiet/1 HTTP/1.1\r\nHost: x\r\nContent-Type: application/xml\r\nContent-Length: ${body.length + 10}\r\n\r\n${body}`,
      ),
    );
    // Readers see the whole property while the body is still incomplete.
    let seen = "";
    for (let i = 0; i < 50 && !seen.includes('for="a"'); i++) {
      await new Promise((res) => setTimeout(res, 20));
      const r = await get(`${s.url}/read-item-stream/quiet/1?follow=false&wait=false`);
      if (r.status === 200) seen = r.text;
    }
    expect(seen).toContain(`${body}\n`);
    const { text } = await exchange;
    expect(text).toMatch(/^HTTP\/1.1 408 /);
    expect(jsonOf(text)).toMatchObject({ error: { code: "request_timeout" }, committed: 1 });
  });

  it("a small body that never starts gets 408 and writes nothing", async () => {
    const s = await start(["--body-idle-timeout", "300"]);
    const { text, ms } = await rawExchange(s.url, (sock) =>
      sock.write(
        "POST /write-item-stream/never/1 HTTP/1.1\r\nHost: x\r\nContent-Type: application/xml\r\nContent-Length: 50\r\n\r\n",
      ),
    );
    expect(text).toMatch(/^HTTP\/1.1 408 /);
    expect(jsonOf(text)).toMatchObject({ error: { code: "request_timeout" }, committed: 0 });
    expect(ms).toBeGreaterThanOrEqual(250);
    expect(existsSync(`${s.dataDir}/never_1.data`)).toBe(false);
  });

  it("a body that keeps sending is not cut by the idle timeout, however long it runs", async () => {
    const s = await start(["--body-idle-timeout", "200"]);
    const chunks = Array.from({ length: 12 }, (_, i) => prop(`p${i}`, "number", String(i)));
    const a = await postChunks(`${s.url}/write-item-stream/slowbutsteady/1`, chunks, 100);
    expect(a.status).toBe(200);
    expect(a.json().committed).toBe(12);
  });

  it("readers past --max-readers-per-version and --max-readers get 503 with Retry-After", async () => {
    const s = await start(["--max-readers-per-version", "2", "--max-readers", "3"]);
    const r = (item: string) => `${s.url}/read-item-stream/${item}/1`;
    const open = [liveRead(r("a")), liveRead(r("a"))];
    await new Promise((res) => setTimeout(res, 100));
    const third = liveRead(r("a"));
    expect(await third.status).toBe(503);
    expect((await third.headers)["retry-after"]).toBe("1");
    expect(JSON.parse(await third.done).error.code).toBe("too_many_readers");
    open.push(liveRead(r("b")));
    await new Promise((res) => setTimeout(res, 100));
    const fourth = liveRead(r("c"));
    expect(await fourth.status).toBe(503);
    // A reader that leaves makes room.
    for (const x of open) x.close();
    await new Promise((res) => setTimeout(res, 100));
    await post(`${s.url}/write-item-stream/c/1?seal=true`, "");
    const later = liveRead(r("c"));
    expect(await later.status).toBe(200);
  });

  it("writes past --max-writers get 503 with Retry-After", async () => {
    const s = await start(["--max-writers", "1"]);
    const { req } = openPost(`${s.url}/write-item-stream/w/1`);
    req.write(prop("a", "string", "1"));
    await new Promise((res) => setTimeout(res, 100));
    const second = await post(`${s.url}/write-item-stream/w2/1`, "");
    expect(second.status).toBe(503);
    expect(second.headers["retry-after"]).toBe("1");
    expect(second.json().error.code).toBe("too_many_writers");
    req.destroy();
  });

  it("a small write waiting for its commit still holds its --max-writers place", async () => {
    // The first group that writes item "slow" holds its sync for 200 ms (then fails it).
    const s = await spawnServer(["--max-writers", "1"], tempDir(), { STREAM_DB_FAULT_SYNC_FAIL: "slow" });
    try {
      const first = post(`${s.url}/write-item-stream/slow/1`, prop("a", "string", "1"));
      await new Promise((res) => setTimeout(res, 50));
      const second = await post(`${s.url}/write-item-stream/other/1`, prop("b", "string", "2"));
      expect(second.status).toBe(503);
      expect(second.json().error.code).toBe("too_many_writers");
      expect((await first).status).toBe(500);
    } finally {
      s.child.kill("SIGKILL");
    }
  });

  it("a client that sends a whole body and hangs up at once frees its writer place", async () => {
    const s = await start(["--max-writers", "4"]);
    for (let i = 0; i < 8; i++) {
      const body = prop("a", "string", String(i));
      await rawExchange(s.url, (sock) => {
        sock.end(
          `POST /write-item-stream/gone${i}/1 HTTP/1.1\r\nHost: x\r\nContent-Type: application/xml\r\nContent-Length: ${body.length}\r\n\r\n${body}`,
        );
        sock.destroy();
      });
    }
    let stats = await s.engine.stats();
    for (let i = 0; i < 100 && stats.writers > 0; i++) {
      await new Promise((res) => setTimeout(res, 20));
      stats = await s.engine.stats();
    }
    expect(stats.writers).toBe(0);
    expect((await post(`${s.url}/write-item-stream/after/1`, prop("b", "string", "ok"))).status).toBe(200);
  });

  it("rejects an attribute flood on the first unexpected attribute", async () => {
    const s = await start([]);
    const attrs = Array.from({ length: 10_000 }, (_, i) => `a${i}="x"`).join(" ");
    const a = await post(
      `${s.url}/write-item-stream/attrs/1`,
      `<property for="x" ${attrs}><string>y</string></property>`,
    );
    expect(a.status).toBe(400);
    expect(a.json().error).toMatchObject({ code: "invalid_property", message: 'unexpected attribute "a0"' });
  });
});
