import { rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { get, post, prop } from "../helpers/http.js";
import { spawnServer, tempDir } from "../helpers/server.js";

/**
 * The index is derived from the data files: after kill -9 it catches up on what it had
 * not committed; missing, damaged or asked to (--reindex), it is rebuilt from them, and
 * query answers are the same as before.
 */

const where = (q: string) => `/query?where=${encodeURIComponent(q)}&versions=all&limit=10000&select=*`;

async function writeMany(url: string, n: number): Promise<void> {
  for (let i = 0; i < n; i++) {
    const a = await post(
      `${url}/write-item-stream/k${i % 37}/${1 + Math.floor(i / 37)}${i % 5 === 0 ? "?seal=true" : ""}`,
      prop("n", "number", String(i)) + prop("tag", "string", i % 2 ? "odd" : "even"),
    );
    expect(a.status, a.text).toBe(200);
  }
}

describe("the index after a crash and without its files", () => {
  it("kill -9 right after acknowledged writes loses nothing from query answers", async () => {
    const dir = tempDir();
    const a = await spawnServer([], dir);
    await writeMany(a.url, 150);
    a.child.kill("SIGKILL");
    await new Promise((r) => a.child.once("exit", r));
    const b = await spawnServer([], dir);
    try {
      const body = (await get(b.url + where("EXISTS n"))).json();
      const ns = body.items
        .map((x: { properties: { n: { value: number } } }) => x.properties.n.value)
        .sort((x: number, y: number) => x - y);
      // Each version's newest n: the last write to each of the 37 items' versions.
      const expected = new Map<string, number>();
      for (let i = 0; i < 150; i++) expected.set(`k${i % 37}/${1 + Math.floor(i / 37)}`, i);
      expect(ns).toEqual([...expected.values()].sort((x, y) => x - y));
      const odd = (await get(b.url + where('tag = "odd"'))).json().items.length;
      expect(odd).toBe([...expected.values()].filter((i) => i % 2 === 1).length);
    } finally {
      b.child.kill("SIGKILL");
    }
  });

  it("a missing index, a damaged one and --reindex are rebuilt from the data files, with progress in the log", async () => {
    const dir = tempDir();
    const a = await spawnServer([], dir);
    await writeMany(a.url, 80);
    const before = (await get(a.url + where('tag = "even" OR n > 40'))).json();
    a.child.kill("SIGTERM");
    await new Promise((r) => a.child.once("exit", r));
    const cases: [string, () => void, string[]][] = [
      ["missing", () => rmSync(join(dir, "index"), { recursive: true, force: true }), []],
      ["damaged", () => writeFileSync(join(dir, "index", "data.mdb"), "not an LMDB file".repeat(1000)), []],
      ["--reindex", () => undefined, ["--reindex", "true"]],
    ];
    for (const [what, damage, args] of cases) {
      damage();
      const b = await spawnServer(args, dir);
      try {
        expect((await get(b.url + where('tag = "even" OR n > 40'))).json(), what).toEqual(before);
        expect(b.output(), what).toMatch(/indexing \d+ of \d+ versions/);
        if (what === "damaged") expect(b.output()).toMatch(/rebuilding it from the data files/);
      } finally {
        b.child.kill("SIGTERM");
        await new Promise((r) => b.child.once("exit", r));
      }
    }
  });
});
