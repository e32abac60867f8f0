import { execFile, spawn } from "node:child_process";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { promisify } from "node:util";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { liveRead } from "../helpers/http.js";
import { type ChildServer, ROOT, spawnServer } from "../helpers/server.js";

const run = promisify(execFile);
const README = readFileSync(join(ROOT, "README.md"), "utf8");

let server: ChildServer;
/** README commands name localhost:3000; point them at the test server. */
const here = (cmd: string) => cmd.replaceAll("localhost:3000", new URL(server.url).host);

beforeAll(async () => {
  server = await spawnServer();
});
afterAll(() => {
  server.child.kill("SIGTERM");
});

/** The shell lines of the README's "A first stream" block that start with curl. */
function firstStreamCommands(): string[] {
  const block = README.split("## A first stream")[1].split("```")[1];
  return block
    .replace(/\\\n\s*/g, "")
    .split("\n")
    .filter((l) => l.startsWith("curl"));
}

describe("the README's examples, run as written", () => {
  it("a first stream: the reader sees both properties and the seal", async () => {
    const [reader, ...writes] = firstStreamCommands();
    expect(reader).toMatch(/^curl -N /);
    expect(writes).toHaveLength(2);
    const readerOut = run("bash", ["-c", here(reader)]);
    await new Promise((r) => setTimeout(r, 200));
    for (const w of writes) {
      const { stdout } = await run("bash", ["-c", here(w)]);
      expect(JSON.parse(stdout)).toMatchObject({ item_id: "user123", version: 1, committed: 1 });
    }
    const shown = README.split("The reader prints each property")[1].split("```xml\n")[1].split("```")[0];
    expect((await readerOut).stdout).toBe(shown);
  });

  it("many readers, one slow writer: every reader gets every chunk while it is written", async () => {
    const script = README.split("<!-- readme-test: concurrent -->")[1].split("```sh\n")[1].split("```")[0];
    const watcher = liveRead(`${server.url}/read-item-stream/sensor/1`);
    const arrivals: number[] = [];
    let seen = 0;
    const tick = setInterval(() => {
      const count = (watcher.text().match(/<\/property>/g) ?? []).length;
      while (seen < count) {
        seen++;
        arrivals.push(Date.now());
      }
    }, 10);
    const child = spawn("bash", ["-c", here(script)], { stdio: ["ignore", "pipe", "pipe"] });
    let out = "";
    child.stdout.on("data", (d) => (out += d));
    child.stderr.on("data", (d) => (out += d));
    await new Promise((r) => child.on("exit", r));
    await watcher.done;
    clearInterval(tick);
    for (let i = 1; i <= 3; i++) {
      for (let k = 1; k <= 10; k++) {
        expect(out).toContain(`reader ${i}: <property for="reading"><number>${k}</number></property>`);
      }
      expect(out).toContain(`reader ${i}: </item>`);
    }
    expect(out).toMatch(/"committed":10/);
    // Live, not at the end: the ten properties reached a reader over ~4.5 s, not at once.
    expect(arrivals).toHaveLength(10);
    expect(arrivals[9] - arrivals[0]).toBeGreaterThan(3000);
  });
});
