import { describe, expect, it } from "vitest";
import { get, line, liveRead, post, postChunks, prop } from "../helpers/http.js";
import { spawnServer, tempDir } from "../helpers/server.js";

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
      const died = s
        .output()
        .split("\n")
        .find((l) => l.includes("the store failed (storage worker exited"));
      expect(JSON.parse(died ?? "{}")).toMatchObject({ level: "error", event: "storage_restart" });
      // The 500 is logged once, as JSON, with its request id.
      const failed = s
        .output()
        .split("\n")
        .filter((l) => l.includes(bad.json().error.request_id));
      expect(failed).toHaveLength(1);
      expect(JSON.parse(failed[0])).toMatchObject({
        level: "error",
        request_id: bad.json().error.request_id,
        status: 500,
      });
    } finally {
      s.child.kill("SIGKILL");
    }
  });

  it("a failed commit-log sync: the request gets 500, and nothing it sent after the failure is written", async () => {
    const dir = tempDir();
    // The first group that writes to "flaky" holds its sync 200 ms, then fails it.
    const s = await spawnServer([], dir, { STREAM_DB_FAULT_SYNC_FAIL: "flaky" });
    try {
      // p2 and the end of the body arrive while p1's group is still syncing: they must
      // not be written after the bytes that failed.
      const a = await postChunks(
        `${s.url}/write-item-stream/flaky/1`,
        [prop("p1", "string", "lost"), prop("p2", "string", "after")],
        50,
      );
      expect(a.status, a.text).toBe(500);
      expect(a.json()).toMatchObject({ error: { code: "write_failed" }, committed: 0 });
      expect((await get(`${s.url}/read-item-stream/flaky/1?follow=false`)).text).toBe("<item>\n");
      const b = await post(`${s.url}/write-item-stream/flaky/1`, prop("p3", "string", "kept"));
      expect(b.status).toBe(200);
    } finally {
      s.child.kill("SIGKILL");
      await new Promise((r) => s.child.once("exit", r));
    }
    // The log was cut back: a restart replays p3 and nothing of the failed group.
    const again = await spawnServer([], dir);
    try {
      const text = (await get(`${again.url}/read-item-stream/flaky/1?follow=false`)).text;
      expect(text).toBe(`<item>\n${line("p3", "string", "kept")}`);
    } finally {
      again.child.kill("SIGKILL");
    }
  });
});
