import type { WireError } from "../../core/errors.js";
import type { Faults } from "../../core/faults.js";
import type { LineLevel, LogFields } from "../../core/log.js";
import type { SliceProps } from "../../parse/property-parser.js";
import type { Binding } from "../types.js";

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
  faults: Faults;
}

/** A reader takes a slot for a version, existing or not. */
export interface OpenRequest {
  type: "open";
  id: number;
  itemId: string;
  version: number;
}

/**
 * A write request starts. Its messages (begin, appends, finish or drop) are posted
 * without waiting for one another: the worker handles them in order, so a small request
 * is one trip to the worker and back. A refusal (sealed, superseded, X-Expected-Offset)
 * is answered at once; so is every later message of a refused writer.
 */
export interface BeginRequest {
  type: "begin";
  id: number;
  /** Chosen by the main thread; names the request in its later messages. */
  writer: number;
  itemId: string;
  version: number;
  /** X-Expected-Offset: refuse unless the committed length is exactly this. */
  expectedOffset?: number;
  /** The schema the writer checks against (store/types.ts, BeginArgs). */
  binding?: Binding;
}

export interface AppendRequest {
  type: "append";
  id: number;
  writer: number;
  /** Canonical property lines back to back (transferred, not copied). */
  bytes: Uint8Array;
  props: SliceProps;
}

/**
 * The body is done and every property was sent: create the version if nothing did (an
 * empty body creates it), seal it if asked, and forget the writer. The reply's `end` is
 * the version's length before any seal.
 */
export interface FinishRequest {
  type: "finish";
  id: number;
  writer: number;
  seal: boolean;
}

/**
 * A whole request whose body was parsed in one piece: begin, its one append (if it had
 * properties) and finish, as one message with one answer (the `end` of the append, or
 * of the version before any seal when there was nothing to append).
 */
export interface WriteRequest {
  type: "write";
  id: number;
  writer: number;
  itemId: string;
  version: number;
  expectedOffset?: number;
  binding?: Binding;
  bytes?: Uint8Array;
  props?: SliceProps;
  seal: boolean;
}

/** The request ended without finishing (an error, the client left): forget the writer. */
export interface DropRequest {
  type: "drop";
  writer: number;
}

/** The main thread no longer needs this slot (its last reader is done). */
export interface ReleaseRequest {
  type: "release";
  slot: number;
}

/** Finish everything queued, sync, write every meta file, close every handle. */
export interface CloseRequest {
  type: "close";
  id: number;
}

/**
 * Where a version's properties are, for a property read: the entries its .meta file does
 * not hold yet (the main thread reads that file itself, off this thread).
 */
export interface PropertiesRequest {
  type: "properties";
  id: number;
  itemId: string;
  version: number;
  /** Only this name's entries. */
  name?: string;
  /** Only the newest entry of each name. */
  latest: boolean;
}

/** Every version with a data file, and its committed length and seal. */
export interface VersionsRequest {
  type: "versions";
  id: number;
}

/** Counters for tests and operators. */
export interface StatsRequest {
  type: "stats";
  id: number;
}

export type ToStorage =
  | OpenRequest
  | BeginRequest
  | AppendRequest
  | FinishRequest
  | WriteRequest
  | DropRequest
  | ReleaseRequest
  | CloseRequest
  | PropertiesRequest
  | VersionsRequest
  | StatsRequest;

/** A run of small `write` messages as they cross to the worker (packed-writes.ts). */
export interface PackedWrites {
  type: "writes";
  strings: string[];
  nums: number[];
  bytes: Uint8Array;
}

/** What a batch holds on the wire: the messages, with runs of small writes packed. */
export type ToStorageWire = ToStorage | PackedWrites;

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

/** The answer to begin, append and finish. */
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
  /** Slots of the shared table lent out, versions held in memory, write handles open, writers. */
  slots: number;
  versions: number;
  fds: number;
  writers: number;
}

/**
 * A version's index as of its committed `length`: the .meta file's entries (when
 * `metaFile`: they all lie before the `size` in its head) and, after them, these.
 */
export interface PropertiesReply {
  id: number;
  ok: true;
  /** false: the version does not exist (`superseded`: and never will). */
  exists: boolean;
  superseded: boolean;
  sealed: boolean;
  length: number;
  metaFile: boolean;
  names: string[];
  types: number[];
  offsets: number[];
  lengths: number[];
}

/** [item id, version, committed length, sealed (1) or not (0)] for each version, flat. */
export type VersionList = (string | number)[];

export interface VersionsReply {
  id: number;
  ok: true;
  versions: VersionList;
  /** [index into `versions` (per version), type, schema version] for each bound version, flat. */
  bindings: (string | number)[];
}

export type Reply = OpenReply | DoneReply | FailedReply | PropertiesReply | VersionsReply | StatsReply;

/** A group's replies on the wire: objects, or [id, end, ...] pairs when all are DoneReplies (packed-replies.ts). */
export type RepliesWire = Reply[] | Float64Array;

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
  | {
      type: "replies";
      replies: RepliesWire;
      /** The versions this group's commit changed, taken in before the replies. */
      committed?: VersionList;
      /**
       * Per entry of `committed`, the bytes the group appended to it from the offset given
       * (batch mode keeps them for the commit log), or null.
       */
      appended?: ({ offset: number; bytes: Uint8Array } | null)[];
      /** The worker has handled everything it was sent: the main thread may send more. */
      idle: boolean;
    }
  /** A line for the main thread's log. */
  | { type: "log"; level: LineLevel; message: string; fields?: LogFields };
