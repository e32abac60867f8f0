import { readFileSync } from "node:fs";
import "./threadpool.js";
import { ConfigError, parseConfig, USAGE } from "./config.js";
import { StartupError } from "./engine/index.js";
import { startServer } from "./start.js";

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
  if (parsed.version) {
    const pkg = JSON.parse(readFileSync(new URL("../package.json", import.meta.url), "utf8")) as { version: string };
    console.log(`stream-db ${pkg.version}`);
    return;
  }
  // Handlers go in before the URL is printed: whoever reads that line may signal at once.
  let server: Awaited<ReturnType<typeof startServer>> | null = null;
  let stopping = false;
  const stop = (signal: string) => {
    if (stopping || !server) {
      const line = `${signal}${stopping ? " again" : ""}, exiting now`;
      if (server) server.log.warn(line, { event: "shutdown", signal });
      else console.error(`stream-db: ${line}`);
      process.exit(stopping ? 1 : 0);
    }
    stopping = true;
    const { log } = server;
    log.info(`${signal}: shutting down`, { event: "shutdown", signal });
    server.close().then(
      () => process.exit(0),
      (err: Error) => {
        log.error(`shutdown failed: ${err.message}`, { event: "shutdown" });
        process.exit(1);
      },
    );
  };
  process.on("SIGINT", () => stop("SIGINT"));
  process.on("SIGTERM", () => stop("SIGTERM"));
  try {
    server = await startServer(parsed.config);
  } catch (err) {
    // Every start-up failure is one line and exit 2, as a bad flag is: a StartupError
    // says what to change; anything else (a repair that could not read a file) its reason.
    const e = err as Error;
    console.error(`stream-db: cannot start: ${e instanceof StartupError ? e.message : (e.message ?? String(e))}`);
    process.exit(2);
  }
  console.log(`stream-db listening on ${server.url}`);
}

main().catch((err: Error) => {
  console.error(`stream-db: ${err.stack ?? err.message}`);
  process.exit(1);
});
