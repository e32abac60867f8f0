import { type ChildProcess, spawn } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { parseConfig } from "../../dist/config.js";
import { type RunningServer, startServer } from "../../dist/start.js";

export const ROOT = new URL("../../", import.meta.url).pathname;

/** Under the run's temp root (global-setup.ts), which is removed when the run ends. */
export function tempDir(prefix = "stream-db-test-"): string {
  return mkdtempSync(join(process.env.STREAM_DB_TEST_ROOT ?? tmpdir(), prefix));
}

export interface TestServer extends RunningServer {
  dataDir: string;
  /** Closes the server and removes its data dir. */
  stop(): Promise<void>;
}

/** The real server, in this process, on port 0 with a fresh data dir. */
export async function startTestServer(args: string[] = [], dataDir = tempDir()): Promise<TestServer> {
  const { config } = parseConfig(["--port", "0", "--data-dir", dataDir, ...args], {});
  const server = await startServer(config);
  return {
    ...server,
    dataDir,
    stop: async () => {
      await server.close();
      rmSync(dataDir, { recursive: true, force: true });
    },
  };
}

export interface ChildServer {
  url: string;
  child: ChildProcess;
  output: () => string;
  dataDir: string;
}

/** Children still running when this test process ends (a failed test skips its kill). */
const children = new Set<ChildProcess>();
process.on("exit", () => {
  for (const c of children) c.kill("SIGKILL");
});

/** `node dist/server.js` as a separate process; resolves once it prints its URL. */
export function spawnServer(
  args: string[] = [],
  dataDir = tempDir(),
  env: NodeJS.ProcessEnv = {},
): Promise<ChildServer> {
  const child = spawn(process.execPath, [join(ROOT, "dist/server.js"), "--port", "0", "--data-dir", dataDir, ...args], {
    env: { ...process.env, ...env },
    stdio: ["ignore", "pipe", "pipe"],
  });
  children.add(child);
  child.once("exit", () => children.delete(child));
  let out = "";
  return new Promise((resolve, reject) => {
    const onData = (d: Buffer) => {
      out += d.toString();
      const m = /listening on (http:\/\/\S+)/.exec(out);
      if (m) resolve({ url: m[1], child, output: () => out, dataDir });
    };
    child.stdout.on("data", onData);
    child.stderr.on("data", onData);
    child.once("exit", (code) => reject(new Error(`server exited with ${code}: ${out}`)));
  });
}
