import type { AddressInfo } from "node:net";
import type { Config } from "./config.js";
import type { Log } from "./core/log.js";
import { Engine, StartupError } from "./engine/index.js";
import { createApp } from "./http/app.js";
import type { ServerContext } from "./http/context.js";
import { IndexDamaged, IndexDb } from "./index/index-db.js";
import { pinoLog } from "./logger.js";
import { route } from "./protocols/routes.js";
import { SchemaRegistry } from "./schema/registry.js";
import { fileBackend } from "./store/file/index.js";

export interface RunningServer {
  url: string;
  port: number;
  engine: Engine;
  log: Log;
  /** Stops accepting, ends in-flight writes with what they committed, ends readers, flushes. */
  close(): Promise<void>;
}

export async function startServer(config: Config, log: Log = pinoLog(config.logLevel)): Promise<RunningServer> {
  const backend = fileBackend({ dataDir: config.dataDir, fsync: config.fsync, faults: config.faults, log });
  // After the backend: its lock says this process owns the data directory and its index.
  const index = config.index ? openIndex(config, log, backend) : undefined;
  const schemas = SchemaRegistry.open(config.dataDir, log);
  const engine = await Engine.open({
    backend,
    parserThreads: config.parserThreads,
    maxPropertyBytes: config.maxPropertyBytes,
    compress:
      config.compression === "none" ? undefined : { codec: config.compression, minBytes: config.compressMinBytes },
    faults: config.faults,
    log,
    index,
    schemas,
  });
  const ctx: ServerContext = {
    engine,
    config,
    log,
    activeWrites: new Set(),
    readers: { total: 0, byVersion: new Map() },
  };
  const server = createApp(ctx, route);
  await new Promise<void>((resolve, reject) => {
    server.once("error", reject);
    server.listen(config.port, config.host, () => {
      server.off("error", reject);
      resolve();
    });
  }).catch(async (err: NodeJS.ErrnoException) => {
    await engine.close();
    throw listenFailure(err, config);
  });
  const { port } = server.address() as AddressInfo;
  const host = config.host.includes(":") ? `[${config.host}]` : config.host;
  let closing: Promise<void> | null = null;
  return {
    url: `http://${host}:${port}`,
    port,
    engine,
    log,
    close: () => {
      closing ??= (async () => {
        const stopped = new Promise<void>((resolve) => server.close(() => resolve()));
        server.closeIdleConnections();
        for (const interrupt of ctx.activeWrites) interrupt();
        await engine.close();
        // Readers have been ended; connections go idle as their last bytes leave. Give
        // them a moment, then cut whatever is left.
        const sweep = setInterval(() => server.closeIdleConnections(), 25);
        const cut = setTimeout(() => server.closeAllConnections(), 2000);
        await stopped;
        clearInterval(sweep);
        clearTimeout(cut);
      })();
      return closing;
    },
  };
}

/** The index, or a fresh one to rebuild when --reindex asks or it cannot be used. */
function openIndex(config: Config, log: Log, backend: { close(): void }): IndexDb {
  try {
    if (config.reindex) log.info("--reindex: rebuilding the index from the data files", { event: "index_rebuild" });
    return IndexDb.open(config.dataDir, config.reindex);
  } catch (err) {
    if (!(err instanceof IndexDamaged)) {
      backend.close();
      throw err;
    }
    log.error(`${err.message}; rebuilding it from the data files`, { event: "index_rebuild" });
    return IndexDb.open(config.dataDir, true);
  }
}

/** A failed listen as the operator's one line: which flag to change, and why. */
function listenFailure(err: NodeJS.ErrnoException, config: Config): StartupError {
  const where = `${config.host} port ${config.port}`;
  switch (err.code) {
    case "EADDRINUSE":
      return new StartupError(`${where} is in use by another process; choose another --port`);
    case "EADDRNOTAVAIL":
      return new StartupError(`address ${config.host} is not available on this machine; choose another --host`);
    case "EACCES":
      return new StartupError(`${where} needs privileges this process does not have; choose a --port above 1023`);
    case "ENOTFOUND":
    case "EAI_AGAIN":
      return new StartupError(`--host ${config.host} does not resolve to an address`);
    default:
      return new StartupError(`cannot listen on ${where}: ${err.message}`);
  }
}
