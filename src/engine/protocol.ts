import type { WireError } from "./errors.js";
import type { SliceProps } from "./property-parser.js";

/**
 * Every message between the main thread and the storage worker. Requests carry an `id`;
 * the worker answers each exactly once, in a `replies` batch posted after the group
 * commit that covered it (so an answer never runs ahead of durability).
 */

export type FsyncMode = "always" | "batch" | "never";

export interface StorageWorkerData {
  dataDir: string;
  fsync: FsyncMode;
  lengths: BigInt64Array;
  /** How long a dirty .meta may lag its data file. */
  metaIntervalMs: number;
}

/** Take a slot for a version (creating the version when `create`). */
export interface OpenRequest {
  type: "open";
  id: number;
  itemId: string;
  version: number;
  /** Writers create the version; readers only watch it. */
  create: boolean;
  /** X-Expected-Offset: refuse unless the committed length is exactly this. */
  expectedOffset?: number;
}

export interface AppendRequest {
  type: "append";
  id: number;
  slot: number;
  /** Canonical property lines back to back (transferred, not copied). */
  bytes: Uint8Array;
  props: SliceProps;
}

export interface SealRequest {
  type: "seal";
  id: number;
  slot: number;
}

/** Make sure the version exists (an empty body creates it). */
export interface TouchRequest {
  type: "touch";
  id: number;
  slot: number;
}

/** The main thread no longer needs this slot (its last reader or writer is done). */
export interface ReleaseRequest {
  type: "release";
  slot: number;
}

/** Finish everything queued, sync, write every meta file, close every handle. */
export interface CloseRequest {
  type: "close";
  id: number;
}

/** Counters for tests and operators. */
export interface StatsRequest {
  type: "stats";
  id: number;
}

export type ToStorage =
  | OpenRequest
  | AppendRequest
  | SealRequest
  | TouchRequest
  | ReleaseRequest
  | CloseRequest
  | StatsRequest;

export interface OpenReply {
  id: number;
  ok: true;
  slot: number;
  /** The version's state now; readers use it to choose headers and status. */
  exists: boolean;
  sealed: boolean;
  /** A newer version exists, so this one is read-only (or can never exist). */
  superseded: boolean;
  length: number;
}

export interface DoneReply {
  id: number;
  ok: true;
  /** Byte length of the data file after this request's bytes. */
  end: number;
}

export interface FailedReply {
  id: number;
  ok: false;
  error: WireError;
}

export interface StatsReply {
  id: number;
  ok: true;
  /** Slots of the shared table lent out, versions held in memory, write handles open. */
  slots: number;
  versions: number;
  fds: number;
}

export type Reply = OpenReply | DoneReply | FailedReply | StatsReply;

/** Sent once, after start-up repair: the server may listen. */
export interface ReadyMessage {
  type: "ready";
  versions: number;
  repaired: number;
  /** One line per data file that could not be repaired (left untouched). */
  damaged: string[];
  ms: number;
}

export type FromStorage =
  | ReadyMessage
  | { type: "replies"; replies: Reply[] }
  | { type: "log"; level: "info" | "warn" | "error"; message: string };
