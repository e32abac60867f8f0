import { spawn } from "node:child_process";
import { existsSync } from "node:fs";
import { connect } from "node:net";
import { request } from "undici";
import { describe, expect, it } from "vitest";
import { liveRead, openPost, post, prop } from "../helpers/http.js";
import { spawnServer, startTestServer, tempDir } from "../helpers/server.js";

describe("shutdown", () => {
  it("SIGTERM ends an open write with what it committed, cuts readers at a property boundary, exits 0", async () => {
    const s = await spawnServer([], tempDir());
    await post(`${s.url}/write-item-stream/live/1`, prop("a", "string", "1"));
    const reader = liveRead(`${s.url}/read-item-stream/live/1`);
    await reader.until((t) => t.includes("</property>"));
    // A writer mid-body: one whole property sent, the request still open.
    const { req, answer } = openPost(`${s.url}/write-item-stream/live/1`);
    req.write(prop("b", "string", "2"));
    await reader.until((t) => t.includes('for="b"'));
    s.child.kill("SIGTERM");
    const a = await answer;
    expect(a.status).toBe(503);
    expect(JSON.parse(a.body)).toMatchObject({ error: { code: "shutting_down" }, committed: 1 });
    // An incomplete transfer: every byte up to the boundary, then no terminating chunk.
    const { text, complete } = await reader.ended;
    expect(complete).toBe(false);
    expect(text.endsWith('<property for="b"><string>2</string></property>\n')).toBe(true);
    const code = await new Promise((r) => s.child.on("exit", (c) => r(c)));
    expect(code).toBe(0);
  });

  it("a live read cut by SIGTERM is an incomplete transfer to curl (exit 18) and to undici", async () => {
    const s = await spawnServer([], tempDir());
    const url = `${s.url}/read-item-stream/cut/1`;
    await post(`${s.url}/write-item-stream/cut/1`, prop("a", "string", "1"));
    const curl = new Promise<{ code: number | null; out: string }>((resolve) => {
      const c = spawn("curl", ["-sN", url]);
      let out = "";
      c.stdout.on("data", (d) => (out += d));
      c.on("exit", (code) => resolve({ code, out }));
    });
    const res = await request(url);
    const body = res.body.text();
    body.catch(() => undefined);
    // Both readers are live (the curl one has its bytes) before the signal.
    const probe = liveRead(url);
    await probe.until((t) => t.includes("</property>"));
    await new Promise((r) => setTimeout(r, 200));
    s.child.kill("SIGTERM");
    const c = await curl;
    expect(c.code).toBe(18);
    expect(c.out).toBe(`<item>\n${prop("a", "string", "1")}\n`);
    await expect(body).rejects.toThrow();
    expect((await probe.ended).complete).toBe(false);
    expect(await new Promise((r) => s.child.on("exit", (code) => r(code)))).toBe(0);
  });

  it("a live read that ends at its seal is a complete transfer", async () => {
    const s = await startTestServer();
    await post(`${s.url}/write-item-stream/whole/1`, prop("a", "string", "1"));
    const reader = liveRead(`${s.url}/read-item-stream/whole/1`);
    await reader.until((t) => t.includes("</property>"));
    await post(`${s.url}/write-item-stream/whole/1?seal=true`, "");
    expect(await reader.ended).toEqual({ text: `<item>\n${prop("a", "string", "1")}\n</item>\n`, complete: true });
    await s.stop();
  });

  it("SIGTERM answers 503 to a small body that has not started, and writes nothing", async () => {
    const s = await spawnServer([], tempDir());
    const { port } = new URL(s.url);
    const sock = connect(Number(port), "127.0.0.1");
    let text = "";
    sock.on("data", (d) => (text += d));
    sock.on("error", () => undefined);
    const closed = new Promise((r) => sock.on("close", r));
    sock.write(
      "POST /write-item-stream/partial/1 HTTP/1.1\r\nHost: x\r\nContent-Type: application/xml\r\nContent-Length: 50\r\n\r\n",
    );
    // The request has reached the handler once a later one on another socket is answered.
    await post(`${s.url}/write-item-stream/other/1`, prop("b", "string", "2"));
    s.child.kill("SIGTERM");
    await closed;
    expect(text).toMatch(/^HTTP\/1.1 503 /);
    expect(JSON.parse(text.slice(text.indexOf("\r\n\r\n") + 4))).toMatchObject({
      error: { code: "shutting_down" },
      committed: 0,
    });
    expect(await new Promise((r) => s.child.on("exit", (c) => r(c)))).toBe(0);
    expect(existsSync(`${s.dataDir}/partial_1.data`)).toBe(false);
  });

  it("exits 0 within a few seconds with 2,000 readers attached", async () => {
    const s = await spawnServer([], tempDir());
    await post(`${s.url}/write-item-stream/many/1`, prop("a", "string", "1"));
    const { port } = new URL(s.url);
    let ended = 0;
    const sockets = Array.from({ length: 2000 }, (_, i) => {
      const sock = connect(Number(port), "127.0.0.1");
      sock.on("error", () => undefined);
      sock.on("close", () => ended++);
      sock.write(`GET /read-item-stream/many/${i % 2 === 0 ? "1" : "2"} HTTP/1.1\r\nHost: x\r\n\r\n`);
      sock.resume();
      return sock;
    });
    await new Promise((r) => setTimeout(r, 500));
    const t0 = Date.now();
    s.child.kill("SIGTERM");
    const code = await new Promise((r) => s.child.on("exit", (c) => r(c)));
    expect(code).toBe(0);
    // Without a stuck client nothing waits for the 2 s cut-off.
    expect(Date.now() - t0).toBeLessThan(1500);
    for (let i = 0; i < 100 && ended < 2000; i++) await new Promise((r) => setTimeout(r, 20));
    expect(ended).toBe(2000);
    for (const sock of sockets) sock.destroy();
  });

  it("ends live readers at a property boundary even in the middle of a large commit", async () => {
    const s = await startTestServer();
    await post(`${s.url}/write-item-stream/bulk/1`, "");
    const reader = liveRead(`${s.url}/read-item-stream/bulk/1`);
    await reader.status;
    // One slice of ~10 MB: committed in one step, handed to readers in 1 MiB pieces.
    const writer = await s.engine.openWriter("bulk", 1);
    writer.push(
      Buffer.from(Array.from({ length: 60_000 }, (_, i) => prop(`p${i % 5}`, "string", `${i}`.repeat(30))).join("")),
    );
    await writer.finish();
    await s.close();
    const { text, complete } = await reader.ended;
    expect(complete).toBe(false);
    expect(text.length).toBeGreaterThan(1 << 20);
    expect(text.endsWith("</property>\n")).toBe(true);
  });

  it("exits promptly with a client whose malformed request waits behind a waiting reader", async () => {
    const s = await spawnServer([], tempDir());
    const exited = new Promise((r) => s.child.on("exit", (c) => r(c)));
    const { port } = new URL(s.url);
    const sock = connect(Number(port), "127.0.0.1");
    let raw = "";
    sock.on("data", (d) => (raw += d));
    sock.on("error", () => undefined);
    sock.write("GET /read-item-stream/ghost/1 HTTP/1.1\r\nHost: x\r\n\r\nHELLO THERE\r\n\r\n");
    await new Promise((r) => setTimeout(r, 300));
    const t0 = Date.now();
    s.child.kill("SIGTERM");
    expect(await exited).toBe(0);
    expect(Date.now() - t0).toBeLessThan(1500);
    // The reader was ended by the shutdown, and only then was the malformed request refused.
    expect(raw.match(/^HTTP\/1\.1 \d+/gm)?.at(-1)).toBe("HTTP/1.1 400");
    sock.destroy();
  });

  it("a refused client that never closes its end does not hold up SIGTERM", async () => {
    const s = await spawnServer([], tempDir());
    const exited = new Promise((r) => s.child.on("exit", (c) => r(c)));
    const { port } = new URL(s.url);
    const sock = connect({ port: Number(port), host: "127.0.0.1", allowHalfOpen: true });
    sock.on("error", () => undefined);
    let raw = "";
    sock.on("data", (d) => (raw += d));
    // allowHalfOpen: it reads the 400 and the server's FIN, and never sends its own.
    sock.write("HELLO THERE\r\n\r\n");
    await expect.poll(() => raw).toMatch(/^HTTP\/1\.1 400 /);
    await new Promise((r) => setTimeout(r, 1300));
    const t0 = Date.now();
    s.child.kill("SIGTERM");
    expect(await exited).toBe(0);
    expect(Date.now() - t0).toBeLessThan(1500);
    sock.destroy();
  });

  it("a second signal exits at once, without waiting for a stuck reader", async () => {
    const s = await spawnServer([], tempDir());
    const exited = new Promise((r) => s.child.on("exit", (c) => r(c)));
    // Enough data that a reader who never reads keeps its response from finishing, so a
    // clean shutdown waits for its 2 s cut-off: more than the kernel buffers on both ends
    // of a loopback connection hold (4 MiB alone sometimes fit, and then the first signal
    // ended the server cleanly).
    const big = prop("big", "string", "x".repeat(4 << 20));
    for (let i = 0; i < 4; i++) await post(`${s.url}/write-item-stream/stuck/1`, big);
    const { port } = new URL(s.url);
    const stuck = connect(Number(port), "127.0.0.1");
    stuck.on("error", () => undefined);
    stuck.write("GET /read-item-stream/stuck/1 HTTP/1.1\r\nHost: x\r\n\r\n");
    stuck.pause();
    await new Promise((r) => setTimeout(r, 300));
    const t0 = Date.now();
    s.child.kill("SIGTERM");
    await new Promise((r) => setTimeout(r, 200));
    s.child.kill("SIGTERM");
    expect(await exited).toBe(1);
    expect(Date.now() - t0).toBeLessThan(1500);
    stuck.destroy();
  });
});
