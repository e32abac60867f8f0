import { readdirSync } from "node:fs";
import { connect, type Socket } from "node:net";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { post, prop } from "../helpers/http.js";
import { startTestServer, type TestServer } from "../helpers/server.js";

/**
 * Open and abandon 10,000 readers and 1,000 half-sent writes, then check that file
 * descriptors, Atomics waiters (feeds), slots and counters all return to their baseline.
 * The server runs in this process, so /proc/self/fd counts its descriptors.
 */

let s: TestServer;
const fds = () => readdirSync("/proc/self/fd").length;
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

beforeAll(async () => {
  // A fixed pool size: piscina would otherwise add threads (and their fds) under load.
  s = await startTestServer(["--parser-threads", "2"]);
  await post(`${s.url}/write-item-stream/leaky/1`, prop("warm", "string", "up"));
});
afterAll(async () => {
  await s.stop();
});

/**
 * Each wave connects from its own loopback address: reusing ports still in TIME_WAIT
 * from the previous wave would stall connects for a second (a kernel matter, not ours).
 */
function rawSocket(wave: number): Promise<Socket> {
  const { port } = new URL(s.url);
  return new Promise((resolve) => {
    const sock = connect(
      { port: Number(port), host: "127.0.0.1", localAddress: `127.0.${1 + (wave >> 8)}.${2 + (wave & 0xff)}` },
      () => resolve(sock),
    );
    sock.on("error", () => undefined);
  });
}

async function settle<T>(read: () => Promise<T>, done: (v: T) => boolean): Promise<T> {
  let v = await read();
  for (let i = 0; i < 200 && !done(v); i++) {
    await sleep(25);
    v = await read();
  }
  return v;
}

describe("no leaks", () => {
  it("10,000 aborted readers and 1,000 half-sent writes leave nothing behind", async () => {
    await sleep(200);
    const baseFds = fds();
    const base = await s.engine.stats();
    expect(base).toMatchObject({ feeds: 0, readers: 0, writers: 0, storageWriters: 0 });

    for (let wave = 0; wave < 4; wave++) {
      const socks = await Promise.all(Array.from({ length: 2500 }, () => rawSocket(wave)));
      socks.forEach((sock, i) => {
        // Live readers of an open version, readers waiting for one that does not exist
        // yet, and readers of a sealed snapshot.
        const target = i % 3 === 0 ? "leaky/1" : i % 3 === 1 ? `absent${wave}-${i}/1` : "leaky/1?follow=false";
        sock.write(`GET /read-item-stream/${target} HTTP/1.1\r\nHost: x\r\n\r\n`);
      });
      await sleep(100);
      for (const sock of socks) sock.destroy();
    }
    {
      const socks = await Promise.all(Array.from({ length: 1000 }, () => rawSocket(100)));
      socks.forEach((sock, i) => {
        const body = `${prop("half", "string", "sent")}<property for="cut"><string>never fin`;
        const head = `POST /write-item-stream/leaky/1 HTTP/1.1\r\nHost: x\r\nContent-Type: application/xml\r\n`;
        // Streamed bodies, and small bodies gathered whole before they are written.
        sock.write(
          i % 2 === 0
            ? `${head}Transfer-Encoding: chunked\r\n\r\n${body.length.toString(16)}\r\n${body}\r\n`
            : `${head}Content-Length: ${body.length + 100}\r\n\r\n${body}`,
        );
      });
      await sleep(100);
      for (const sock of socks) sock.destroy();
    }

    const after = await settle(
      () => s.engine.stats(),
      (v) => v.feeds === 0 && v.readers === 0 && v.writers === 0 && v.storageWriters === 0 && v.slots === base.slots,
    );
    expect(after).toEqual(base);
    const afterFds = await settle(
      async () => fds(),
      (n) => n <= baseFds,
    );
    expect(afterFds).toBeLessThanOrEqual(baseFds);
  });

  it("writes to more versions than the idle cap keep at most 1,024 of them loaded, with their handles", async () => {
    // Writers alone (no reader ever opens these) must still trigger the idle cap.
    for (let i = 0; i < 1_200; i += 50) {
      const batch = Array.from({ length: 50 }, (_, j) =>
        post(`${s.url}/write-item-stream/many${i + j}/1`, prop("n", "number", String(i + j))),
      );
      for (const a of await Promise.all(batch)) expect(a.status).toBe(200);
    }
    const stats = await s.engine.stats();
    expect(stats.versions).toBeLessThanOrEqual(1_024 + stats.slots);
    expect(stats.writeHandles).toBeLessThanOrEqual(1_024 + stats.slots);
  });
});
