import fs, {
  closeSync,
  copyFileSync,
  existsSync,
  openSync,
  readdirSync,
  readFileSync,
  statSync,
  truncateSync,
  writeFileSync,
  writeSync,
} from "node:fs";
import { syncBuiltinESMExports } from "node:module";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { CommitLog, inspectLog, LOG_NAME } from "../../dist/store/file/commit-log.js";
import { get, line, post, prop } from "../helpers/http.js";
import { type ChildServer, ROOT, spawnServer, tempDir } from "../helpers/server.js";

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
    writeAt(join(dir, LOG_NAME), inspectLog(join(dir, LOG_NAME)).end, Buffer.from([0x57, 0x41, 0x4c, 0x31, 9, 0]));

    const reopened = CommitLog.open(dir, true);
    expect(reopened.replayed).toBe(3);
    reopened.log?.close();
    expect(readFileSync(join(dir, "one_1.data"), "utf8")).toBe(`<item>\n${b}`);
    expect(readFileSync(join(dir, "two_1.data"), "utf8")).toBe(`<item>\n${b}`);
    expect(inspectLog(join(dir, LOG_NAME)).records).toBe(0);
  });

  it("emptied, it starts a new generation: records of the last one, left in the file, are not replayed", async () => {
    const dir = tempDir();
    const { log } = CommitLog.open(dir, true);
    if (!log) throw new Error("no log");
    const item = Buffer.from("<item>\n");
    const long = Buffer.from(`<property for="x"><string>${"a".repeat(200)}</string></property>\n`);
    log.append([{ key: "old_1", offset: 0, bytes: [item, long] }]);
    log.append([{ key: "old_1", offset: item.length + long.length, bytes: [long] }]);
    await log.sync();
    log.reset(); // as at a checkpoint, once the data files are synced
    // Exactly as long as the old first record: the old second one follows it, whole.
    log.append([{ key: "new_1", offset: 0, bytes: [item, long] }]);
    await log.sync();
    log.close();
    const raw = readFileSync(join(dir, LOG_NAME));
    const end = inspectLog(join(dir, LOG_NAME)).end;
    expect(raw.readUInt32LE(end)).toBe(0x314c4157);
    expect(raw.includes(long, end)).toBe(true);

    const reopened = CommitLog.open(dir, true);
    reopened.log?.close();
    expect(reopened.replayed).toBe(1);
    expect(existsSync(join(dir, "old_1.data"))).toBe(false);
    expect(readFileSync(join(dir, "new_1.data"), "utf8")).toBe(`<item>\n${long}`);
  });

  it("a checkpoint whose header write fails keeps the old generation, so what is acknowledged after still replays", async () => {
    const dir = tempDir();
    const { log } = CommitLog.open(dir, true);
    if (!log) throw new Error("no log");
    const item = Buffer.from("<item>\n");
    log.append([{ key: "a_1", offset: 0, bytes: [item] }]);
    await log.sync();
    // Writes at offset 0 (the header) fail with EIO; the worker catches that and goes on.
    withFailingWriteSync(
      (position) => position === 0,
      () => expect(() => log.reset()).toThrow(/EIO/),
    );
    const b = Buffer.from('<property for="x"><string>acked</string></property>\n');
    log.append([{ key: "b_1", offset: 0, bytes: [item, b] }]);
    await log.sync();
    // A crash: no clean close.
    const { log: again, replayed } = CommitLog.open(dir, true);
    again?.close();
    expect(replayed).toBe(2);
    expect(readFileSync(join(dir, "b_1.data"), "utf8")).toBe(`<item>\n${b}`);
  });

  it("stale bytes past the end that claim a huge record do not stop the start", () => {
    const dir = tempDir();
    CommitLog.open(dir, true).log?.close();
    const fake = Buffer.alloc(64);
    fake.writeUInt32LE(0x314c4157, 0); // a record's magic, then a length of nearly 4 GiB
    fake.writeUInt16LE(0xffff, 4);
    fake.writeUInt32LE(0xfffffff0, 16);
    writeAt(join(dir, LOG_NAME), 16, fake);
    const { log, replayed } = CommitLog.open(dir, true);
    log?.close();
    expect(replayed).toBe(0);
  });

  it("a failed group is cut back: a shorter group after it does not let its records replay", async () => {
    const dir = tempDir();
    const { log } = CommitLog.open(dir, true);
    if (!log) throw new Error("no log");
    const item = Buffer.from("<item>\n");
    const p = (s: string) => Buffer.from(`<property for="x"><string>${s}</string></property>\n`);
    log.append([{ key: "a_1", offset: 0, bytes: [item] }]);
    await log.sync();
    log.append([
      { key: "a_1", offset: 7, bytes: [p("failed-a")] },
      { key: "f_1", offset: 0, bytes: [item, p("failed-f")] },
    ]);
    await expect(log.sync(new Error("EIO: injected"))).rejects.toThrow(/EIO/);
    log.append([{ key: "a_1", offset: 7, bytes: [p("acked-aa")] }]); // as long as the failed first record
    await log.sync();
    CommitLog.open(dir, true).log?.close();
    expect(existsSync(join(dir, "f_1.data"))).toBe(false);
    expect(readFileSync(join(dir, "a_1.data"), "utf8")).toBe(`<item>\n${p("acked-aa")}`);
  });

  it("a log left by the first format (records from byte 0, checksums unseeded) is replayed once", async () => {
    const dir = tempDir();
    const item = Buffer.from("<item>\n");
    const a = Buffer.from('<property for="x"><string>a</string></property>\n');
    // Its three records: <item> and `a` for l_1, <item> for m_1.
    copyFileSync(join(ROOT, "test/fixtures/formats/wal1", LOG_NAME), join(dir, LOG_NAME));
    const { log, replayed } = CommitLog.open(dir, true);
    if (!log) throw new Error("no log");
    expect(replayed).toBe(3);
    expect(readFileSync(join(dir, "l_1.data"), "utf8")).toBe(`<item>\n${a}`);
    // The log goes on in the new format; after a crash only its new record replays.
    log.append([{ key: "n_1", offset: 0, bytes: [item] }]);
    await log.sync();
    writeFileSync(join(dir, "l_1.data"), "changed since");
    const again = CommitLog.open(dir, true);
    again.log?.close();
    expect(again.replayed).toBe(1);
    expect(readFileSync(join(dir, "l_1.data"), "utf8")).toBe("changed since");
  });

  it("grows a mebibyte of zeros at a time, so that most syncs overwrite and need no journal commit", async () => {
    const dir = tempDir();
    const { log } = CommitLog.open(dir, true);
    if (!log) throw new Error("no log");
    const sizes = new Set<number>();
    for (let i = 0; i < 100; i++) {
      log.append([{ key: "g_1", offset: i * 1000, bytes: [Buffer.alloc(1000, 0x61)] }]);
      await log.sync();
      sizes.add(statSync(join(dir, LOG_NAME)).size);
    }
    expect([...sizes]).toEqual([1 << 20]);
    expect(inspectLog(join(dir, LOG_NAME)).records).toBe(100);
    // A clean close of an emptied log gives the zeros back.
    log.reset();
    log.close();
    expect(statSync(join(dir, LOG_NAME)).size).toBe(16);
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
    raw[inspectLog(join(dir, LOG_NAME)).end - 2] ^= 0xff; // flip a byte of the second record's data
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
    expect(inspectLog(join(dir, LOG_NAME)).records).toBeGreaterThan(0);
    // The data files were never synced: a power cut could leave them empty.
    for (const name of readdirSync(dir)) if (name.endsWith(".data")) truncateSync(join(dir, name), 0);

    const again = await spawnServer(["--fsync", "batch"], dir);
    try {
      // The storage worker's line, written as JSON by the main thread's log.
      const replayed = again
        .output()
        .split("\n")
        .find((l) => l.includes("commit-log records"));
      expect(JSON.parse(replayed ?? "{}")).toMatchObject({
        level: "info",
        name: "stream-db",
        msg: expect.stringMatching(/^replayed \d+ commit-log records$/),
      });
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
        largest = Math.max(largest, inspectLog(join(dir, LOG_NAME)).end);
      },
    );
    // About 40 KiB went through the log; it never held much more than one threshold.
    expect(largest).toBeGreaterThan(0);
    expect(largest).toBeLessThan(32 << 10);
    for (const [name, text] of expected) expect(readFileSync(join(dir, name), "utf8")).toBe(text);
  });
});

function writeAt(path: string, position: number, bytes: Buffer): void {
  const fd = openSync(path, "r+");
  try {
    writeSync(fd, bytes, 0, bytes.length, position);
  } finally {
    closeSync(fd);
  }
}

/** Runs `body` with fs.writeSync failing (EIO) at the positions `fails` picks. */
function withFailingWriteSync(fails: (position: unknown) => boolean, body: () => void): void {
  const real = fs.writeSync;
  (fs as { writeSync: unknown }).writeSync = (...args: unknown[]) => {
    if (fails(args[4])) throw Object.assign(new Error("EIO: injected i/o error, write"), { code: "EIO" });
    return (real as (...a: unknown[]) => number)(...args);
  };
  syncBuiltinESMExports();
  try {
    body();
  } finally {
    (fs as { writeSync: unknown }).writeSync = real;
    syncBuiltinESMExports();
  }
}
