import { execFile } from "node:child_process";
import { readdirSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { promisify } from "node:util";
import { describe, expect, it } from "vitest";
import { get, line, post, prop } from "../helpers/http.js";
import { ROOT, spawnServer, startTestServer, tempDir } from "../helpers/server.js";

/**
 * One owner per data directory, and start-up failures as one line and exit code 2. The
 * second server is a real process started on the first one's directory: it must refuse
 * before it reads anything there, since replaying the commit log alone would empty the
 * running server's log under it.
 */

const run = promisify(execFile);

/** `node dist/server.js ARGS` to its exit: code and stderr. */
async function startFails(args: string[]): Promise<{ code: number; stderr: string }> {
  const failed = await run(process.execPath, [join(ROOT, "dist/server.js"), ...args], { timeout: 10_000 }).then(
    () => ({ code: 0, stderr: "it started" }),
    (e: { code: number; stderr: string }) => e,
  );
  return { code: failed.code, stderr: failed.stderr };
}

/** Every file of the directory and its bytes. */
function snapshot(dir: string, under = ""): Record<string, string> {
  const files: Record<string, string> = {};
  for (const entry of readdirSync(join(dir, under), { withFileTypes: true }).sort((a, b) =>
    a.name < b.name ? -1 : 1,
  )) {
    const name = join(under, entry.name);
    if (entry.isDirectory()) Object.assign(files, snapshot(dir, name));
    else files[name] = readFileSync(join(dir, name)).toString("base64");
  }
  return files;
}

const w = (url: string, item: string) => `${url}/write-item-stream/${item}/1`;

describe("one owner per data directory", () => {
  it("a second server on the directory exits 2 naming it and its holder, and changes no byte", async () => {
    const dir = tempDir();
    const a = await spawnServer([], dir);
    try {
      expect((await post(w(a.url, "owned"), prop("a", "string", "first"))).json().offset).toBe(
        `<item>\n${line("a", "string", "first")}`.length,
      );
      // Once its .meta is written (within 100 ms) the first server touches nothing more
      // until the next write; the acknowledged one is in the commit log, which a replay
      // would empty.
      await new Promise((r) => setTimeout(r, 400));
      const before = snapshot(dir);
      expect(Object.keys(before)).toEqual([
        "index/data.mdb",
        "index/lock.mdb",
        "owned_1.data",
        "owned_1.meta",
        "stream-db.lock",
        "stream-db.wal",
      ]);
      const second = await startFails(["--port", "0", "--data-dir", dir]);
      expect(second.code).toBe(2);
      expect(second.stderr.trim().split("\n")).toHaveLength(1);
      expect(second.stderr).toContain(`data directory ${dir} is in use`);
      expect(second.stderr).toContain(`pid ${a.child.pid}`);
      expect(snapshot(dir)).toEqual(before);
      // The first server goes on exactly where it was.
      const next = await post(w(a.url, "owned"), prop("b", "string", "second"));
      expect(next.json().offset).toBe(`<item>\n${line("a", "string", "first")}${line("b", "string", "second")}`.length);
    } finally {
      a.child.kill("SIGKILL");
    }
  });

  it("two servers in one process on one directory: the second is refused", async () => {
    const first = await startTestServer();
    try {
      await expect(startTestServer([], first.dataDir)).rejects.toThrow(/is in use by another stream-db server/);
      expect((await post(w(first.url, "still"), "")).status).toBe(200);
    } finally {
      await first.stop();
    }
    // Released on close: the directory can be opened again.
    const again = await startTestServer([], tempDir());
    await again.stop();
  });

  it("after kill -9 the next server takes the lock over at once and has every acknowledged write", async () => {
    const dir = tempDir();
    let expected = "<item>\n";
    for (let round = 0; round < 3; round++) {
      const s = await spawnServer([], dir);
      const a = await post(w(s.url, "survivor"), prop("r", "number", String(round)));
      expect(a.status).toBe(200);
      expected += line("r", "number", String(round));
      s.child.kill("SIGKILL");
      await new Promise((r) => s.child.once("exit", r));
    }
    const last = await spawnServer([], dir);
    try {
      expect((await get(`${last.url}/read-item-stream/survivor/1?follow=false`)).text).toBe(expected);
    } finally {
      last.child.kill("SIGKILL");
    }
  });
});

describe("start-up failures: one line, exit 2", () => {
  it("a port in use", async () => {
    const a = await spawnServer([], tempDir());
    try {
      const { port } = new URL(a.url);
      const failed = await startFails(["--port", port, "--data-dir", tempDir()]);
      expect(failed.code).toBe(2);
      expect(failed.stderr.trim().split("\n")).toHaveLength(1);
      expect(failed.stderr).toMatch(new RegExp(`port ${port} is in use.*--port`));
    } finally {
      a.child.kill("SIGKILL");
    }
  });

  it("an address this machine does not have", async () => {
    // TEST-NET-3 (RFC 5737): binding to it fails locally; nothing is sent anywhere.
    const failed = await startFails(["--host", "203.0.113.7", "--port", "0", "--data-dir", tempDir()]);
    expect(failed.code).toBe(2);
    expect(failed.stderr.trim().split("\n")).toHaveLength(1);
    expect(failed.stderr).toMatch(/address 203\.0\.113\.7 is not available.*--host/);
  });

  it.each([
    ["a file", (f: string) => f, /is not a directory/],
    ["a path under a file", (f: string) => join(f, "data"), /cannot be used \(a part of the path is not a directory\)/],
    ["a place where no directory can be made", () => "/proc/stream-db-test", /cannot be created/],
  ])("a data directory that is %s", async (_what, path, reason) => {
    const file = join(tempDir(), "plain-file");
    writeFileSync(file, "not a directory");
    const failed = await startFails(["--port", "0", "--data-dir", path(file)]);
    expect(failed.code).toBe(2);
    expect(failed.stderr.trim().split("\n")).toHaveLength(1);
    expect(failed.stderr).toMatch(reason);
    expect(readFileSync(file, "utf8")).toBe("not a directory");
  });
});
