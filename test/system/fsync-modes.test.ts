import { describe, expect, it } from "vitest";
import { get, line, liveRead, post, prop } from "../helpers/http.js";
import { startTestServer } from "../helpers/server.js";

describe.each(["always", "batch", "never"])("--fsync %s", (mode) => {
  it("commits, publishes to live readers, and acknowledges", async () => {
    const s = await startTestServer(["--fsync", mode]);
    try {
      const reader = liveRead(`${s.url}/read-item-stream/m/1`);
      const answers = await Promise.all(
        Array.from({ length: 20 }, (_, i) =>
          post(`${s.url}/write-item-stream/m/1`, prop(`p${i}`, "number", String(i))),
        ),
      );
      expect(answers.map((a) => a.status)).toEqual(new Array(20).fill(200));
      await post(`${s.url}/write-item-stream/m/1?seal=true`, "");
      const text = await reader.done;
      expect(text.split("\n")).toHaveLength(23);
      for (let i = 0; i < 20; i++) expect(text).toContain(line(`p${i}`, "number", String(i)));
      expect((await get(`${s.url}/read-item-stream/m/1`)).text).toBe(text);
    } finally {
      await s.stop();
    }
  });
});
