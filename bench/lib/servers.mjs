// The servers under test and the reference servers, each started as its own process.
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { tempDir } from "./cleanup.mjs";
import { startServer } from "./spawn.mjs";

export const BENCH_DIR = dirname(dirname(fileURLToPath(import.meta.url)));
export const ROOT = dirname(BENCH_DIR);

/** BENCH_SERVER: another build's server.js (a copy of dist/), to run a scenario against it. */
const SERVER_JS = process.env.BENCH_SERVER || join(ROOT, "dist/server.js");
/** BENCH_SERVER_FLAGS: node flags for stream-db's process, e.g. "--cpu-prof --cpu-prof-dir=/tmp/prof". */
const SERVER_FLAGS = (process.env.BENCH_SERVER_FLAGS || "").split(" ").filter(Boolean);

/** stream-db from dist/, with a fresh temp data dir unless `dataDir` is given. */
export async function startStreamDb({ fsync = "batch", dataDir, args = [] } = {}) {
  const dir = dataDir ?? tempDir(`data-${fsync}`);
  const server = await startServer(
    `stream-db(--fsync ${fsync})`,
    [...SERVER_FLAGS, SERVER_JS, "--port", "0", "--host", "127.0.0.1", "--data-dir", dir, "--fsync", fsync, ...args],
    { cwd: ROOT },
  );
  server.dataDir = dir;
  return server;
}

/** One of bench/reference/*.mjs: "post", "file" (args: --file PATH) or "pubsub". */
export function startReference(kind, args = []) {
  return startServer(`${kind}-reference`, [join(BENCH_DIR, "reference", `${kind}-reference.mjs`), ...args], {
    cwd: BENCH_DIR,
  });
}

/** @durable-streams/server, in memory or file-backed (its own temp dataDir). */
export async function startDurable({ fileBacked }) {
  const dir = fileBacked ? tempDir("durable") : null;
  const server = await startServer(
    `durable-streams(${fileBacked ? "file" : "memory"})`,
    [join(BENCH_DIR, "reference", "durable-streams.mjs"), ...(dir ? ["--data-dir", dir] : [])],
    { cwd: BENCH_DIR },
  );
  server.dataDir = dir;
  return server;
}
