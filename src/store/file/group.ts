import { DbError, errors, toWire } from "../../core/errors.js";
import type { Binding } from "../types.js";
import type { LogRecord } from "./commit-log.js";
import type { Reply } from "./protocol.js";
import type { Version } from "./version.js";

/**
 * One group commit's worth of work: every message that arrived while the previous group
 * was syncing, what it wrote, and the answers waiting for its sync.
 */

export type VersionRef = { key: string; itemId: string; version: number };

/** One write request, from its begin to its finish or drop. */
export interface WriterState extends VersionRef {
  /** Its version, once loaded or created. */
  target: Version | null;
  /** The refusal or failure that ends it: every later message gets the same answer. */
  error: unknown;
  /** The schema it writes under: a version it creates is bound to it. */
  binding: Binding | undefined;
}

type Deferred = () => Reply;

export class Group {
  readonly touched = new Set<Version>();
  /** What this group wrote to each version, for the commit log (batch mode). */
  readonly written = new Map<Version, LogRecord & { length: number }>();
  /** Versions whose writes this group's commit-log sync covered. */
  readonly viaLog = new Set<Version>();
  /** The write requests that wrote in this group. */
  readonly writers = new Set<WriterState>();
  readonly failed = new Map<Version, Error>();
  /** Answers that promise nothing about durability (opens, refusals): sent before the sync. */
  readonly early: Deferred[] = [];
  /** Answers that acknowledge writes: sent after the sync that covers them. */
  readonly answers: Deferred[] = [];
  createdFile = false;
  closeId = -1;
}

/** The refusal or failure `err` as the answer to request `id`. */
export function failure(id: number, err: unknown): Reply {
  const e = err instanceof DbError ? err : errors.writeFailed(err);
  return { id, ok: false, error: toWire(e) };
}
