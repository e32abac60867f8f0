// The peer: @durable-streams/server (the Node reference server of the Durable Streams
// protocol), in memory, or file-backed with --data-dir DIR (log files + LMDB, fdatasync per
// append). Streams: PUT /path creates, POST /path appends, GET /path?offset=-1&live=sse follows.
import { DurableStreamTestServer } from "@durable-streams/server";

const i = process.argv.indexOf("--data-dir");
const dataDir = i >= 0 ? process.argv[i + 1] : undefined;

const server = new DurableStreamTestServer({ port: 0, host: "127.0.0.1", dataDir });
await server.start();
console.log(`durable-streams (${dataDir ? "file-backed" : "in-memory"}) listening on ${server.url}`);

for (const sig of ["SIGINT", "SIGTERM"]) {
  process.once(sig, async () => {
    await server.stop();
    process.exit(0);
  });
}
