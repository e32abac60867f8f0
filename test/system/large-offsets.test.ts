import { closeSync, openSync, writeFileSync, writeSync } from "node:fs";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { get, line, liveRead, post, prop } from "../helpers/http.js";
import { startTestServer, type TestServer, tempDir } from "../helpers/server.js";

let s: TestServer | undefined;
afterAll(async () => {
  await s?.stop();
});

describe("lengths past 2 GiB", () => {
  it("appends, publishes and serves offsets beyond 2^31 and 2^32", async () => {
    const dir = tempDir();
    // A sparse data file: the meta file vouches for its first `size` bytes, so start-up
    // does not scan the hole.
    const size = 2 ** 32 + 7;
    const fd = openSync(join(dir, "huge_1.data"), "w");
    writeSync(fd, "<item>\n", 0);
    writeSync(fd, "\n", size - 1);
    closeSync(fd);
    const now = new Date().toISOString();
    writeFileSync(
      join(dir, "huge_1.meta"),
      JSON.stringify({
        item_id: "huge",
        version: 1,
        created_at: now,
        updated_at: now,
        size,
        sealed: false,
        property_count: 0,
        properties: {},
      }),
    );
    // Without the index, which would read the 4 GiB hole as one line that never ends.
    s = await startTestServer(["--index", "false"], dir);
    const reader = liveRead(`${s.url}/read-item-stream/huge/1?offset=${size}`);
    const a = await post(`${s.url}/write-item-stream/huge/1`, prop("far", "string", "away"));
    expect(a.status, a.text).toBe(200);
    expect(a.json().offset).toBe(size + line("far", "string", "away").length);
    await reader.until((t) => t === line("far", "string", "away"));
    const head = await get(`${s.url}/read-item-stream/huge/1`, {}, "HEAD");
    expect(head.headers["x-stream-length"]).toBe(String(a.json().offset));
    reader.close();
  });
});
