import { readdirSync } from "node:fs";
import { request } from "node:http";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { get, post, prop } from "../helpers/http.js";
import { startTestServer, type TestServer } from "../helpers/server.js";

/** The files a request could make: the commit log, the lock and the index are there from the start. */
const dataFiles = (dir: string) =>
  readdirSync(dir).filter((f) => f !== "stream-db.wal" && f !== "stream-db.lock" && f !== "index");

let s: TestServer;
beforeAll(async () => {
  s = await startTestServer();
});
afterAll(async () => {
  await s.stop();
});

/** Sends a raw request path (undici would normalise dot segments away). */
function raw(path: string, method = "POST"): Promise<{ status: number; body: string }> {
  return new Promise((resolve, reject) => {
    const { port } = new URL(s.url);
    const req = request(
      { host: "127.0.0.1", port, path, method, headers: { "content-type": "application/xml" } },
      (res) => {
        let body = "";
        res.on("data", (d) => (body += d));
        res.on("end", () => resolve({ status: res.statusCode ?? 0, body }));
      },
    );
    req.on("error", reject);
    req.end(method === "POST" ? prop("a", "string", "x") : undefined);
  });
}

describe("names", () => {
  it.each([
    ["..", "invalid_item_id"],
    ["%2e%2e", "invalid_item_id"],
    [".hidden", "invalid_item_id"],
    ["a%2Fb", "invalid_item_id"],
    ["a%5Cb", "invalid_item_id"],
    ["a%00b", "invalid_item_id"],
    ["caf%C3%A9", "invalid_item_id"],
    ["a%20b", "invalid_item_id"],
    ["%E0%A4%A", "invalid_item_id"],
    ["x".repeat(201), "invalid_item_id"],
  ])("item id %s is refused with 400 %s and touches no file", async (id, code) => {
    for (const verb of ["write", "read"]) {
      const a = await raw(`/${verb}-item-stream/${id}/1`, verb === "write" ? "POST" : "GET");
      expect(a.status).toBe(400);
      expect(JSON.parse(a.body).error.code).toBe(code);
    }
    expect(dataFiles(s.dataDir)).toEqual([]);
  });

  it.each(["0", "01", "-1", "1.5", "abc", "9007199254740992", "1e3", ""])(
    "version %j is refused with 400",
    async (v) => {
      const a = await raw(`/write-item-stream/ok/${v}`);
      expect(a.status).toBe(400);
      expect(JSON.parse(a.body).error.code).toBe("invalid_version");
      expect(dataFiles(s.dataDir)).toEqual([]);
    },
  );

  it("dot segments in the path do not escape the routes", async () => {
    expect((await raw("/write-item-stream/../../etc/1")).status).toBe(404);
    expect((await raw("/read-item-stream/a/../../x/1", "GET")).status).toBe(404);
    expect(dataFiles(s.dataDir)).toEqual([]);
  });

  it("accepts the full grammar: 200 characters, dots, dashes, underscores, the largest version", async () => {
    const id = `A-z_0.${"x".repeat(194)}`;
    expect(id).toHaveLength(200);
    const a = await post(`${s.url}/write-item-stream/${id}/9007199254740991`, prop("a", "string", "x"));
    expect(a.status).toBe(200);
    expect(readdirSync(s.dataDir)).toContain(`${id}_9007199254740991.data`);
    expect((await get(`${s.url}/read-item-stream/${id}/9007199254740991?follow=false`)).status).toBe(200);
  });
});
