import type { IndexedProperty, PropertySelect } from "../format/meta-file.js";
import type { SliceProps } from "../parse/property-parser.js";

/**
 * The storage seam: what the engine needs of a backend, and all it may use. The file
 * engine (store/file/) is the first implementation; a replicated log can be another, so
 * nothing here assumes files, descriptors, threads or shared memory. Only start-up names
 * a backend.
 *
 * Writes are named by a writer id the engine takes from the store: one write request's
 * begin, appends and finish (or drop) are sent without waiting for one another, and the
 * store carries them out in that order. Each answer comes only once the bytes are as
 * durable as the store promises.
 */

/** The version's committed length after a request's bytes (before any seal). */
export interface Committed {
  end: number;
}

/** The schema a version is pinned to for life (README, "Schemas"). */
export interface Binding {
  type: string;
  schemaVersion: number;
}

export interface BeginArgs {
  writer: number;
  itemId: string;
  version: number;
  /** X-Expected-Offset: refuse unless the committed length is exactly this. */
  expectedOffset?: number;
  /**
   * The schema the writer checks its properties against: a version it creates is bound
   * to it (durably, before the answer); an existing version must be bound to exactly
   * it, or to none when it is absent, else type_mismatch.
   */
  binding?: Binding;
}

export interface AppendArgs {
  writer: number;
  /** Canonical property lines back to back; the store may take ownership of the buffer. */
  bytes: Uint8Array;
  props: SliceProps;
}

/** A whole request at once: begin, its one append (if it has properties) and finish. */
export interface WriteArgs extends BeginArgs {
  bytes?: Uint8Array;
  props?: SliceProps;
  seal: boolean;
}

/** A version as readers see it. `gone`: it does not exist and never can (a newer one does). */
export type VersionState =
  | { kind: "absent" }
  | { kind: "gone" }
  | { kind: "open"; length: number }
  | { kind: "sealed"; length: number };

/**
 * A reader's handle on one version, existing or not yet: its committed length as it
 * changes, and its committed bytes. Close it once; a shared handle closes on its own.
 */
export interface StoredVersion {
  /** The state when the handle was opened. */
  readonly opened: VersionState;
  /** The state now: cheap enough to call on every wake-up. */
  state(): VersionState;
  /**
   * Resolves once state() may differ from what the last call returned, or after
   * `timeoutMs` at the latest (a guard against a missed wake-up, not a promise of change).
   */
  changed(timeoutMs: number): Promise<void>;
  /**
   * Resolves once the version's bytes can be read (the file engine opens its data file),
   * rejects if they cannot: a read session calls it before its answer's head goes out,
   * so such a failure is an error answer, not a body cut short.
   */
  ready(): Promise<void>;
  /** Reads committed bytes at `position` into `buf`; the count read (0 at the end). */
  read(buf: Buffer, position: number): Promise<number>;
  /**
   * The same without waiting, where the backend can serve it at once (the file engine:
   * bytes just written are in the page cache); null where it cannot now.
   */
  readNow(buf: Buffer, position: number): number | null;
  /** Another handle on the same version, closed on its own. */
  share(): StoredVersion;
  close(): void;
}

/**
 * Where a version's properties are as of one moment, from its index (no data file is
 * scanned): the entries a select wants, in file order, all before `state`'s length.
 */
export interface IndexedProperties {
  state: VersionState;
  entries: IndexedProperty[];
}

/**
 * `appended`, where the backend has them at hand: the bytes this change added, from
 * `offset` (a follower then need not read them back).
 */
export type CommitListener = (
  itemId: string,
  version: number,
  state: VersionState,
  appended?: { offset: number; bytes: Uint8Array },
) => void;

export interface StoredVersionInfo {
  itemId: string;
  version: number;
  state: VersionState;
  binding?: Binding;
}

/** What start-up recovery found. */
export interface RecoveryReport {
  versions: number;
  repaired: number;
  /** One line per version that could not be repaired (left untouched, refused later). */
  damaged: string[];
  ms: number;
}

export interface StoreStats {
  /** Version handles lent to readers. */
  slots: number;
  /** Versions held in memory. */
  versions: number;
  /** Write handles open. */
  writeHandles: number;
  /** Write requests begun and not yet finished or dropped. */
  writers: number;
}

export interface Store {
  readonly recovery: RecoveryReport;
  /** Resolves if the store fails for good (never on close): the engine opens another. */
  readonly died: Promise<Error>;
  newWriterId(): number;
  begin(args: BeginArgs): Promise<Committed>;
  append(args: AppendArgs): Promise<Committed>;
  write(args: WriteArgs): Promise<Committed>;
  /** The body is done: create the version if nothing did, seal it if asked. */
  finish(writer: number, seal: boolean): Promise<Committed>;
  /** The request ended without finishing: forget the writer. */
  drop(writer: number): void;
  /** A handle on the version for reading, existing or not; null if it can never exist. */
  open(itemId: string, version: number): Promise<StoredVersion | null>;
  /**
   * Calls `listener` with every version whose committed length or state changes, after the
   * change and before the answers of the writes that made it (one listener; a new call
   * replaces it).
   */
  onCommit(listener: CommitListener): void;
  /** Every version there is, with its state now (how an index catches up at start-up). */
  versions(): Promise<StoredVersionInfo[]>;
  /** The version's index entries that `select` wants, as of its committed length now. */
  properties(itemId: string, version: number, select: PropertySelect): Promise<IndexedProperties>;
  stats(): Promise<StoreStats>;
  /** Finishes what is queued, makes it durable, frees everything. */
  close(): Promise<void>;
}

/** A storage engine: opens its Store, and opens a new one after a store died. */
export interface Backend {
  open(): Promise<Store>;
  /** After the last store closed: frees what the backend holds across stores. */
  close(): void;
}
