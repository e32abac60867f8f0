import type { Config } from "../config.js";
import type { Log } from "../core/log.js";
import type { Engine } from "../engine/index.js";

/** What every handler gets: the engine, the config, and the requests in flight. */
export interface ServerContext {
  engine: Engine;
  config: Config;
  log: Log;
  /** Called on shutdown so open write requests end with what they committed. */
  activeWrites: Set<() => void>;
  /** Open reads, per version key and in all, for the reader limits. */
  readers: { total: number; byVersion: Map<string, number> };
}

export interface RouteParams {
  itemId: string;
  version: number;
  query: URLSearchParams;
  requestId: string;
}
