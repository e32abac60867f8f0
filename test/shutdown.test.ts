import { request } from "node:http";
import { describe, expect, it } from "vitest";
import { liveRead, post, prop } from "./helpers/http.js";
import { spawnServer, tempDir } from "./helpers/server.js";

describe("shutdown", () => {
  it("SIGTERM ends an open write with what it committed, ends readers cleanly, exits 0", async () => {
    const s = await spawnServer([], tempDir());
    await post(`${s.url}/write-item-stream/live/1`, prop("a", "string", "1"));
    const reader = liveRead(`${s.url}/read-item-stream/live/1`);
    await reader.until((t) => t.includes("</property>"));
    // A writer mid-body: one whole property sent, the request still open.
    const answer = new Promise<{ status: number; body: string }>((resolve, reject) => {
      const req = request(`${s.url}/write-item-stream/live/1`, {
        method: "POST",
        headers: { "content-type": "application/xml", "transfer-encoding": "chunked" },
      });
      req.on("response", (res) => {
        let body = "";
        res.on("data", (d) => (body += d));
        res.on("end", () => resolve({ status: res.statusCode ?? 0, body }));
      });
      req.on("error", reject);
      req.write(prop("b", "string", "2"));
    });
    await reader.until((t) => t.includes('for="b"'));
    s.child.kill("SIGTERM");
    const a = await answer;
    expect(a.status).toBe(503);
    expect(JSON.parse(a.body)).toMatchObject({ error: { code: "shutting_down" }, committed: 1 });
    const text = await reader.done;
    expect(text.endsWith("</property>\n")).toBe(true);
    const code = await new Promise((r) => s.child.on("exit", (c) => r(c)));
    expect(code).toBe(0);
  });
});
