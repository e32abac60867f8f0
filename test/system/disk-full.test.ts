import { spawn, spawnSync } from "node:child_process";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { get, line, post, prop } from "../helpers/http.js";
import { ROOT, tempDir } from "../helpers/server.js";

/**
 * A real full disk: the server runs in its own mount namespace (`unshare -rm`, which
 * needs no privileges where user namespaces are allowed) over a 256 KiB tmpfs, so writes
 * fail with a genuine ENOSPC from the kernel. No fault injection.
 */
const canUnshare = spawnSync("unshare", ["-rm", "sh", "-c", "mount -t tmpfs -o size=64k tmpfs /mnt"]).status === 0;

function serverOnTinyDisk(dir: string): Promise<{ url: string; kill: () => void }> {
  const script = `mount -t tmpfs -o size=256k tmpfs "$0" && exec "$1" "$2" --port 0 --data-dir "$0"`;
  const child = spawn("unshare", ["-rm", "sh", "-c", script, dir, process.execPath, join(ROOT, "dist/server.js")], {
    stdio: ["ignore", "pipe", "pipe"],
  });
  process.once("exit", () => child.kill("SIGKILL"));
  let out = "";
  return new Promise((resolve, reject) => {
    const onData = (d: Buffer) => {
      out += d;
      const m = /listening on (http:\/\/\S+)/.exec(out);
      if (m) resolve({ url: m[1], kill: () => child.kill("SIGKILL") });
    };
    child.stdout.on("data", onData);
    child.stderr.on("data", onData);
    child.on("exit", (code) => reject(new Error(`exited ${code}: ${out}`)));
  });
}

describe("a full disk", () => {
  it.skipIf(!canUnshare)(
    "answers 500 write_failed with the committed count, leaves no half line, keeps serving",
    async () => {
      const s = await serverOnTinyDisk(tempDir());
      try {
        const w = `${s.url}/write-item-stream/full/1`;
        expect((await post(w, prop("a", "string", "small"))).status).toBe(200);
        const a = await post(w, prop("ok", "string", "fine") + prop("big", "string", "x".repeat(400_000)));
        expect(a.status).toBe(500);
        expect(a.json()).toMatchObject({ error: { code: "write_failed" } });
        expect(a.json().error.message).toMatch(/ENOSPC/);
        // "ok" and "big" went to the storage worker in one slice; neither was acknowledged.
        const committed = a.json().committed;
        const text = (await get(`${s.url}/read-item-stream/full/1?follow=false`)).text;
        const expected = `<item>\n${line("a", "string", "small")}${committed === 1 ? line("ok", "string", "fine") : ""}`;
        expect(text).toBe(expected);
        // The space the failed append took is given back: the next write fits.
        const after = await post(w, prop("after", "string", "still works"));
        expect(after.status).toBe(200);
        expect(after.json().offset).toBe(Buffer.byteLength(expected + line("after", "string", "still works")));
        expect((await get(`${s.url}/read-item-stream/full/1?follow=false`)).text).toBe(
          expected + line("after", "string", "still works"),
        );
      } finally {
        s.kill();
      }
    },
  );
});
