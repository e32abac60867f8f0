import type { Log } from "../core/log.js";
import type { Engine } from "../engine/index.js";

/** The options the HTTP side and the protocols read (start-up's Config has them all). */
export interface ServerOptions {
  /** Largest request head (request line and headers); more is 431. */
  maxHeaderBytes: number;
  /** A client must finish sending its request head within this (slowloris guard). */
  headersTimeoutMs: number;
  /** A write whose body sends nothing for this long gets 408 (bodies may stream slowly). */
  bodyIdleTimeoutMs: number;
  maxReaders: number;
  maxReadersPerVersion: number;
  maxWriters: number;
}

/** What every handler gets: the engine, the options, and the requests in flight. */
export interface ServerContext {
  engine: Engine;
  config: Readonly<ServerOptions>;
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
