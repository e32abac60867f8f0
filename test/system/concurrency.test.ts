import { readFileSync } from "node:fs";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { get, liveRead, post, postChunks, prop } from "../helpers/http.js";
import { startTestServer, type TestServer } from "../helpers/server.js";

let s: TestServer;
beforeAll(async () => {
  s = await startTestServer();
});
afterAll(async () => {
  await s.stop();
});

describe("concurrent writers on one version", () => {
  it("interleave property by property, never inside one, each in its own order", async () => {
    const writers = 8;
    const perWriter = 50;
    const url = `${s.url}/write-item-stream/shared/1`;
    await post(url, "");
    const reader = liveRead(`${s.url}/read-item-stream/shared/1`);
    const results = await Promise.all(
      Array.from({ length: writers }, (_, wi) => {
        const chunks: string[] = [];
        for (let i = 0; i < perWriter; i++) {
          const p = prop(`w${wi}`, "string", `${wi}:${i}:${"x".repeat(i * 13)}`);
          // Split each property in two so chunks from writers land mid-property.
          chunks.push(p.slice(0, 20), p.slice(20));
        }
        return postChunks(url, chunks);
      }),
    );
    for (const r of results) expect(r.json()).toMatchObject({ committed: perWriter });
    await post(`${url}?seal=true`, "");
    const text = await reader.done;
    const file = readFileSync(join(s.dataDir, "shared_1.data"), "utf8");
    expect(text).toBe(file);
    const lines = file.split("\n").slice(1, -2);
    expect(lines).toHaveLength(writers * perWriter);
    const next = new Array(writers).fill(0);
    for (const l of lines) {
      const m = /^<property for="w(\d+)"><string>(\d+):(\d+):(x*)<\/string><\/property>$/.exec(l);
      expect(m, l).not.toBeNull();
      const [wi, wi2, i, xs] = [Number(m![1]), Number(m![2]), Number(m![3]), m![4]];
      expect(wi2).toBe(wi);
      expect(i).toBe(next[wi]++);
      expect(xs.length).toBe(i * 13);
    }
    const meta = JSON.parse(readFileSync(join(s.dataDir, "shared_1.meta"), "utf8"));
    expect(meta.property_count).toBe(writers * perWriter);
  });

  it("many versions written at once all commit", async () => {
    const answers = await Promise.all(
      Array.from({ length: 100 }, (_, i) =>
        post(`${s.url}/write-item-stream/many${i % 25}/1`, prop("i", "number", String(i))),
      ),
    );
    expect(answers.every((a) => a.status === 200)).toBe(true);
    let total = 0;
    for (let k = 0; k < 25; k++) {
      const t = (await get(`${s.url}/read-item-stream/many${k}/1?follow=false`)).text;
      total += t.split("\n").length - 2;
    }
    expect(total).toBe(100);
  });

  it("a writer that disconnects mid-body keeps its whole properties and nothing torn", async () => {
    const { request } = await import("node:http");
    const url = new URL(`${s.url}/write-item-stream/cut/1`);
    await new Promise<void>((resolve) => {
      const req = request(url, {
        method: "POST",
        headers: { "content-type": "application/xml", "transfer-encoding": "chunked" },
      });
      req.on("error", () => resolve());
      req.write(prop("a", "string", "whole"));
      req.write('<property for="b"><string>half');
      setTimeout(() => {
        req.destroy();
        resolve();
      }, 100);
    });
    const deadline = Date.now() + 5000;
    let text = "";
    while (Date.now() < deadline) {
      text = (await get(`${s.url}/read-item-stream/cut/1?follow=false`)).text;
      if (text.includes("whole")) break;
      await new Promise((r) => setTimeout(r, 20));
    }
    expect(text).toBe(`<item>\n${prop("a", "string", "whole")}\n`);
    // The version still takes writes after the torn request.
    expect((await post(`${s.url}/write-item-stream/cut/1`, prop("c", "string", "next"))).status).toBe(200);
  });
});
