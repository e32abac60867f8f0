import { describe, expect, it } from "vitest";
import { get, liveRead, post, prop } from "./helpers/http.js";
import { spawnServer, tempDir } from "./helpers/server.js";

/**
 * Faults injected into the real worker threads through the server's test hooks
 * (STREAM_DB_FAULT_*): the thread really dies, mid-request.
 */
describe("a worker that crashes", () => {
  it("a parser thread: that request gets 500 with a request id, everything else carries on", async () => {
    const s = await spawnServer([], tempDir(), { STREAM_DB_FAULT_PARSER_CRASH: "KABOOM" });
    try {
      const others = Array.from({ length: 20 }, (_, i) =>
        post(`${s.url}/write-item-stream/fine${i}/1`, prop("a", "string", "ok")),
      );
      // Large enough to be parsed in the pool: small bodies are parsed on the main thread.
      const padding = `<!--${"x".repeat(64 << 10)}-->`;
      const bad = await post(`${s.url}/write-item-stream/doomed/1`, padding + prop("a", "string", "KABOOM"));
      expect(bad.status).toBe(500);
      expect(bad.json()).toMatchObject({
        error: { code: "internal_error", request_id: bad.headers["x-request-id"] },
        committed: 0,
      });
      for (const a of await Promise.all(others)) expect(a.status).toBe(200);
      // The pool replaced the thread: more writes and reads work.
      for (let i = 0; i < 10; i++)
        expect((await post(`${s.url}/write-item-stream/after/1`, prop("n", "number", String(i)))).status).toBe(200);
      expect((await get(`${s.url}/read-item-stream/after/1?follow=false`)).text.split("\n")).toHaveLength(12);
    } finally {
      s.child.kill("SIGKILL");
    }
  });

  it("the storage worker: requests on it fail with 500, a new one takes over, nothing acknowledged is lost", async () => {
    const s = await spawnServer([], tempDir(), { STREAM_DB_FAULT_STORAGE_CRASH: "doomed" });
    try {
      expect((await post(`${s.url}/write-item-stream/kept/1`, prop("a", "string", "before"))).status).toBe(200);
      const reader = liveRead(`${s.url}/read-item-stream/kept/1`);
      await reader.until((t) => t.includes("before"));
      const bad = await post(`${s.url}/write-item-stream/doomed/1`, prop("a", "string", "x"));
      expect(bad.status).toBe(500);
      expect(bad.json().error.request_id).toBe(bad.headers["x-request-id"]);
      // Live readers of the dead worker are cut, so they can reconnect.
      await expect(reader.done).rejects.toThrow();
      let after = await post(`${s.url}/write-item-stream/kept/1`, prop("b", "string", "after"));
      for (let i = 0; i < 50 && after.status !== 200; i++) {
        await new Promise((r) => setTimeout(r, 50));
        after = await post(`${s.url}/write-item-stream/kept/1`, prop("b", "string", "after"));
      }
      expect(after.status).toBe(200);
      const text = (await get(`${s.url}/read-item-stream/kept/1?follow=false`)).text;
      expect(text).toContain("before");
      expect(text).toContain("after");
      expect(s.output()).toMatch(/storage worker died/);
    } finally {
      s.child.kill("SIGKILL");
    }
  });
});
