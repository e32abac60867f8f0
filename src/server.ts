import "./server/threadpool.js";
import { ConfigError, parseConfig, USAGE } from "./server/config.js";
import { startServer } from "./server/start.js";

/** Entry point: `node dist/server.js [options]`. */

async function main(): Promise<void> {
  let parsed: ReturnType<typeof parseConfig>;
  try {
    parsed = parseConfig(process.argv.slice(2), process.env);
  } catch (err) {
    if (!(err instanceof ConfigError)) throw err;
    console.error(`stream-db: ${err.message}`);
    process.exit(2);
  }
  if (parsed.help) {
    console.log(USAGE);
    return;
  }
  // Handlers go in before the URL is printed: whoever reads that line may signal at once.
  let server: Awaited<ReturnType<typeof startServer>> | null = null;
  let stopping = false;
  const stop = (signal: string) => {
    if (stopping || !server) {
      console.error(`stream-db: ${signal}${stopping ? " again" : ""}, exiting now`);
      process.exit(stopping ? 1 : 0);
    }
    stopping = true;
    console.error(`stream-db: ${signal}: shutting down`);
    server.close().then(
      () => process.exit(0),
      (err: Error) => {
        console.error(`stream-db: shutdown failed: ${err.message}`);
        process.exit(1);
      },
    );
  };
  process.on("SIGINT", () => stop("SIGINT"));
  process.on("SIGTERM", () => stop("SIGTERM"));
  server = await startServer(parsed.config);
  console.log(`stream-db listening on ${server.url}`);
}

main().catch((err: Error) => {
  console.error(`stream-db: ${err.stack ?? err.message}`);
  process.exit(1);
});
