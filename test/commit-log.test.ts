import { appendFileSync, existsSync, readdirSync, readFileSync, statSync, truncateSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { CommitLog, LOG_NAME } from "../dist/engine/commit-log.js";
import { get, line, post, prop } from "./helpers/http.js";
import { type ChildServer, spawnServer, tempDir } from "./helpers/server.js";

/**
 * In batch mode small appends are acknowledged once the commit log is synced; their data
 * files are synced later. These tests take away what a power cut would (the unsynced
 * data-file bytes) and check that start-up puts back every acknowledged property.
 */
/**
 * Writes `count` properties to each of `versions` versions, one POST each, the versions
 * side by side; every one must be acknowledged. Then kills the server with SIGKILL.
 * Returns what each data file must hold.
 */
async function writeThenKill(
  s: ChildServer,
  prefix: string,
  versions: number,
  count: number,
  value: (n: number) => [type: string, text: string],
  afterEach: () => void = () => undefined,
): Promise<Map<string, string>> {
  const expected = new Map<string, string>();
  try {
    await Promise.all(
      Array.from({ length: versions }, async (_, i) => {
        let text = "<item>\n";
        for (let n = 0; n < count; n++) {
          const [type, v] = value(n);
          const r = await post(`${s.url}/write-item-stream/${prefix}${i}/1`, prop("n", type, v));
          expect(r.status).toBe(200);
          text += line("n", type, v);
          afterEach();
        }
        expected.set(`${prefix}${i}_1.data`, text);
      }),
    );
  } finally {
    s.child.kill("SIGKILL");
    await new Promise((r) => s.child.once("exit", r));
  }
  return expected;
}

describe("the commit log", () => {
  it("replays every whole record into its data file and ignores a torn last one", async () => {
    const dir = tempDir();
    const { log } = CommitLog.open(dir, true);
    if (!log) throw new Error("no log");
    const a = Buffer.from("<item>\n");
    const b = Buffer.from('<property for="x"><number>1</number></property>\n');
    log.append([
      { key: "one_1", offset: 0, bytes: [a, b] },
      { key: "two_1", offset: 0, bytes: [a] },
    ]);
    await log.sync();
    log.append([{ key: "two_1", offset: a.length, bytes: [b] }]);
    await log.sync();
    log.close();
    // As after a power cut: the data files lost what was not synced, and the crash came
    // in the middle of the next record.
    writeFileSync(join(dir, "one_1.data"), "<item>\n<prop");
    appendFileSync(join(dir, LOG_NAME), Buffer.from([0x57, 0x41, 0x4c, 0x31, 9, 0]));

    const reopened = CommitLog.open(dir, true);
    expect(reopened.replayed).toBe(3);
    reopened.log?.close();
    expect(readFileSync(join(dir, "one_1.data"), "utf8")).toBe(`<item>\n${b}`);
    expect(readFileSync(join(dir, "two_1.data"), "utf8")).toBe(`<item>\n${b}`);
    expect(statSync(join(dir, LOG_NAME)).size).toBe(0);
  });

  it("a record whose checksum fails ends the replay there", async () => {
    const dir = tempDir();
    const { log } = CommitLog.open(dir, true);
    if (!log) throw new Error("no log");
    log.append([{ key: "k_1", offset: 0, bytes: [Buffer.from("<item>\n")] }]);
    log.append([{ key: "k_1", offset: 7, bytes: [Buffer.from("garbage\n")] }]);
    await log.sync();
    log.close();
    const raw = readFileSync(join(dir, LOG_NAME));
    raw[raw.length - 2] ^= 0xff; // flip a byte of the second record's data
    writeFileSync(join(dir, LOG_NAME), raw);
    expect(CommitLog.open(dir, false).replayed).toBe(1);
    expect(readFileSync(join(dir, "k_1.data"), "utf8")).toBe("<item>\n");
    // Outside batch mode a replayed log is removed.
    expect(existsSync(join(dir, LOG_NAME))).toBe(false);
  });

  it("a server killed after acknowledging, whose data files then lose their unsynced bytes, gets them back", async () => {
    const dir = tempDir();
    const s = await spawnServer(["--fsync", "batch"], dir);
    const expected = await writeThenKill(s, "wal", 20, 5, (n) => ["number", String(n)]);
    expect(statSync(join(dir, LOG_NAME)).size).toBeGreaterThan(0);
    // The data files were never synced: a power cut could leave them empty.
    for (const name of readdirSync(dir)) if (name.endsWith(".data")) truncateSync(join(dir, name), 0);

    const again = await spawnServer(["--fsync", "batch"], dir);
    try {
      expect(again.output()).toMatch(/replayed \d+ commit-log records/);
      for (const [name, text] of expected) {
        expect(readFileSync(join(dir, name), "utf8")).toBe(text);
        const id = name.replace(/_1\.data$/, "");
        expect((await get(`${again.url}/read-item-stream/${id}/1?follow=false`)).text).toBe(text);
      }
    } finally {
      again.child.kill("SIGKILL");
    }
  });

  it("is checkpointed: past its threshold the data files are synced and the log starts again", async () => {
    const dir = tempDir();
    const s = await spawnServer(["--fsync", "batch"], dir, { STREAM_DB_TEST_CHECKPOINT_BYTES: String(16 << 10) });
    let largest = 0;
    const expected = await writeThenKill(
      s,
      "cp",
      8,
      60,
      (n) => ["string", `${n}`.repeat(40)],
      () => {
        largest = Math.max(largest, statSync(join(dir, LOG_NAME)).size);
      },
    );
    // About 40 KiB went through the log; it never held much more than one threshold.
    expect(largest).toBeGreaterThan(0);
    expect(largest).toBeLessThan(32 << 10);
    for (const [name, text] of expected) expect(readFileSync(join(dir, name), "utf8")).toBe(text);
  });
});
