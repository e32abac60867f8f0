import { existsSync, readdirSync, readFileSync, rmSync, statSync, truncateSync } from "node:fs";
import { request } from "node:http";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { get, post, prop } from "../helpers/http.js";
import { type ChildServer, spawnServer, tempDir } from "../helpers/server.js";

/**
 * Kill -9 the real server in the middle of a load of concurrent writers, restart it, and
 * check what a database must keep: every property that got a 200 is there, in order per
 * writer, no torn line, offsets continue, and after a clean stop the .meta files agree
 * with the data files. The power-cut variant also takes away, after each kill, every
 * data-file byte that no sync covered (a clean stop syncs them all; in between, only the
 * commit log is synced): start-up must put them back. `npm run soak` runs many more
 * iterations.
 */

const ITERATIONS = Number(process.env.SOAK_ITERATIONS ?? 3);
const LINE = /^<property for="w(\d+)"><string>(\d+):(\d+):x*<\/string><\/property>$/;

/** Writer k writes to VERSION_OF[k]: three share one version, the rest have their own. */
const WRITERS = 6;
const versionOf = (k: number) => (k < 3 ? "crash-shared" : `crash-w${k}`);
const ITEMS = [...new Set(Array.from({ length: WRITERS }, (_, k) => versionOf(k)))];

let acked: number[][] = [];
let nextSeq: number[] = [];

async function writerLoop(url: string, k: number, stop: { now: boolean }): Promise<void> {
  while (!stop.now) {
    const count = 1 + (nextSeq[k] % 4);
    const seqs = Array.from({ length: count }, () => nextSeq[k]++);
    const body = seqs.map((seq) => prop(`w${k}`, "string", `${k}:${seq}:${"x".repeat(seq % 50)}`)).join("");
    try {
      const a = await post(`${url}/write-item-stream/${versionOf(k)}/1`, body);
      if (a.status === 200) acked[k].push(...seqs);
    } catch {
      return; // the server died under us
    }
  }
}

/** A long chunked request that streams properties until the server dies. */
function streamingWriter(url: string, stop: { now: boolean }): Promise<void> {
  return new Promise((resolve) => {
    const req = request(`${url}/write-item-stream/crash-stream/1`, {
      method: "POST",
      headers: { "content-type": "application/xml", "transfer-encoding": "chunked" },
    });
    req.on("error", () => resolve());
    req.on("response", (res) => res.resume().on("end", resolve));
    let i = 0;
    const tick = setInterval(() => {
      if (stop.now) {
        clearInterval(tick);
        resolve();
        return;
      }
      req.write(prop("s", "number", String(i++)));
    }, 2);
  });
}

function checkLines(text: string, item: string): { w: number; seq: number }[] {
  expect(text.startsWith("<item>\n"), `${item} starts with <item>`).toBe(true);
  const lines = text.slice(7).split("\n");
  expect(lines.pop(), `${item} ends with a whole line`).toBe("");
  return lines
    .filter((l) => !l.startsWith('<property for="s">'))
    .map((l) => {
      const m = LINE.exec(l);
      expect(m, `${item}: ${l.slice(0, 80)}`).not.toBeNull();
      expect(m![2]).toBe(m![1]);
      return { w: Number(m![1]), seq: Number(m![3]) };
    });
}

async function stopCleanly(s: ChildServer): Promise<void> {
  s.child.kill("SIGTERM");
  const code = await new Promise((r) => s.child.on("exit", (c) => r(c)));
  expect(code).toBe(0);
}

/** Each data file's size now: what a clean stop has synced. */
function syncedSizes(dir: string): Map<string, number> {
  const sizes = new Map<string, number>();
  for (const name of readdirSync(dir)) if (name.endsWith(".data")) sizes.set(name, statSync(join(dir, name)).size);
  return sizes;
}

/** As a power cut may leave them: data files back to their synced size, new ones gone. */
function cutPower(dir: string, synced: Map<string, number>): void {
  for (const name of readdirSync(dir)) {
    if (!name.endsWith(".data")) continue;
    const size = synced.get(name);
    if (size === undefined) rmSync(join(dir, name));
    else truncateSync(join(dir, name), size);
  }
}

async function crashRounds(powerCut: boolean): Promise<void> {
  acked = Array.from({ length: WRITERS }, () => []);
  nextSeq = new Array(WRITERS).fill(0);
  const dir = tempDir();
  for (let iter = 0; iter < ITERATIONS; iter++) {
    const synced = syncedSizes(dir);
    const s = await spawnServer([], dir);
    const stop = { now: false };
    const load = [
      ...Array.from({ length: WRITERS }, (_, k) => writerLoop(s.url, k, stop)),
      streamingWriter(s.url, stop),
    ];
    await new Promise((r) => setTimeout(r, 150 + ((iter * 137) % 500)));
    s.child.kill("SIGKILL");
    await new Promise((r) => s.child.on("exit", r));
    stop.now = true;
    await Promise.all(load);
    if (powerCut) {
      expect(existsSync(join(dir, "stream-db.wal"))).toBe(true);
      cutPower(dir, synced);
    }

    const again = await spawnServer([], dir);
    for (const item of ITEMS) {
      const text = (await get(`${again.url}/read-item-stream/${item}/1?follow=false`)).text;
      const lines = checkLines(text, item);
      for (let k = 0; k < WRITERS; k++) {
        if (versionOf(k) !== item) continue;
        const seqs = lines.filter((l) => l.w === k).map((l) => l.seq);
        for (let i = 1; i < seqs.length; i++) expect(seqs[i], `writer ${k} in order`).toBeGreaterThan(seqs[i - 1]);
        const present = new Set(seqs);
        const lost = acked[k].filter((seq) => !present.has(seq));
        expect(lost, `writer ${k} lost acknowledged properties`).toEqual([]);
      }
      // Offsets continue: the next append lands exactly at the end of what survived.
      const end = Buffer.byteLength(text);
      const a = await post(`${again.url}/write-item-stream/${item}/1`, "", {
        "content-type": "application/xml",
        "x-expected-offset": String(end),
      });
      expect(a.status, a.text).toBe(200);
      expect(a.json().offset).toBe(end);
    }
    const stream = (await get(`${again.url}/read-item-stream/crash-stream/1?follow=false`)).text;
    expect(stream === "" || /^<item>\n(<property for="s"><number>\d+<\/number><\/property>\n)*$/.test(stream)).toBe(
      true,
    );
    await stopCleanly(again);
    for (const item of [...ITEMS, "crash-stream"]) {
      let data: Buffer;
      try {
        data = readFileSync(join(dir, `${item}_1.data`));
      } catch {
        continue;
      }
      const meta = JSON.parse(readFileSync(join(dir, `${item}_1.meta`), "utf8"));
      expect(meta.size, `${item}.meta size after a clean stop`).toBe(data.length);
      expect(meta.property_count).toBe(data.toString().split("\n").length - 2);
    }
  }
  expect(acked.flat().length).toBeGreaterThan(0);
}

describe("crash safety", () => {
  it(
    `keeps every acknowledged property across ${ITERATIONS} kill -9s under load`,
    () => crashRounds(false),
    30_000 + ITERATIONS * 20_000,
  );

  it(
    `keeps every acknowledged property across ${ITERATIONS} power cuts under load (unsynced data-file bytes lost)`,
    () => crashRounds(true),
    30_000 + ITERATIONS * 20_000,
  );
});
