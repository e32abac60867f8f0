import { execFile } from "node:child_process";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { promisify } from "node:util";
import { describe, expect, it } from "vitest";
import { parseConfig } from "../../dist/config.js";
import { ROOT, spawnServer, tempDir } from "../helpers/server.js";

const run = promisify(execFile);

describe("configuration", () => {
  it("takes the flag first, then the environment, then the default", () => {
    const env = { PORT: "4000", STREAM_DB_FSYNC: "never", HOST: "0.0.0.0" };
    const { config } = parseConfig(["--port=5000"], env);
    expect(config).toMatchObject({ port: 5000, fsync: "never", host: "0.0.0.0", maxPropertyBytes: 67108864 });
    expect(config.parserThreads).toBeUndefined();
    expect(Object.isFrozen(config)).toBe(true);
    expect(parseConfig([], {}).config).toMatchObject({ port: 3000, host: "127.0.0.1", fsync: "batch" });
  });

  it.each([
    [["--port", "70000"], /--port must be an integer from 0 to 65535/],
    [["--fsync", "sometimes"], /--fsync must be always, batch or never/],
    [["--parser-threads", "0"], /--parser-threads/],
    [["--max-property-bytes", "1k"], /--max-property-bytes/],
    [["--nope"], /unknown option/],
    [["--port"], /--port needs a value/],
    [["--log-level", "loud"], /--log-level must be one of fatal, error, warn, info, debug, trace, silent/],
  ])("%j stops the server with a one-line reason and a non-zero exit", async (args, reason) => {
    const failed = await run(process.execPath, [join(ROOT, "dist/server.js"), ...args]).catch((e) => e);
    expect(failed.code).toBe(2);
    expect(failed.stderr.trim().split("\n")).toHaveLength(1);
    expect(failed.stderr).toMatch(reason);
  });

  it("a bad environment value names the variable", () => {
    expect(() => parseConfig([], { STREAM_DB_FSYNC: "x" })).toThrow(/STREAM_DB_FSYNC/);
  });

  it("--help and -h print every flag", async () => {
    for (const help of ["--help", "-h"]) {
      const { stdout } = await run(process.execPath, [join(ROOT, "dist/server.js"), help]);
      for (const flag of ["--port", "--host", "--data-dir", "--fsync", "--parser-threads", "--max-property-bytes"]) {
        expect(stdout).toContain(flag);
      }
      expect(stdout).toContain("-h, --help");
      expect(stdout).toContain("--version");
      // Aligned: every flag stands apart from its variable, and every variable from its default.
      const rows = stdout.split("\n").filter((l) => l.includes("<value>"));
      const envAt = new Set(rows.map((l) => l.search(/ (PORT|HOST|STREAM_DB_)/) + 1));
      expect(envAt.size).toBe(1);
      for (const row of rows) expect(row).toMatch(/<value> {2,}\S+ {2,}\S+ {2,}\S/);
    }
  });

  it("--version prints the package's version", async () => {
    const { version } = JSON.parse(readFileSync(join(ROOT, "package.json"), "utf8"));
    const { stdout } = await run(process.execPath, [join(ROOT, "dist/server.js"), "--version"]);
    expect(stdout).toBe(`stream-db ${version}\n`);
  });

  it("prints one line with its URL and exits 0 on SIGTERM", async () => {
    const s = await spawnServer([], tempDir());
    expect(s.output()).toMatch(/^stream-db listening on http:\/\/127\.0\.0\.1:\d+\n/);
    s.child.kill("SIGTERM");
    const code = await new Promise((r) => s.child.on("exit", (c, sig) => r(c ?? `${sig} ${s.output()}`)));
    expect(code).toBe(0);
  });
});
