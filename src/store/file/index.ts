import { type Faults, NO_FAULTS } from "../../core/faults.js";
import { type Log, SILENT } from "../../core/log.js";
import type { Backend } from "../types.js";
import { lockDataDir } from "./data-dir-lock.js";
import { FileStore } from "./file-store.js";
import type { FsyncMode } from "./protocol.js";

/**
 * The file engine: one storage worker thread that owns every write handle of a data
 * directory, group commit through a commit log, .meta upkeep and crash repair.
 */

export type { FsyncMode } from "./protocol.js";

export interface FileBackendOptions {
  dataDir: string;
  fsync: FsyncMode;
  /** How long a dirty .meta file may lag its data file. */
  metaIntervalMs?: number;
  /** Test hooks (README, "Fault injection"). */
  faults?: Faults;
  /** Where the storage worker's lines go. */
  log?: Log;
}

/**
 * Locks the data directory at once (a StartupError if it is in use or unusable), before
 * any store reads it. The lock is held across stores, so a storage worker that died and
 * is replaced never lets another server in between; close() releases it.
 */
export function fileBackend(options: FileBackendOptions): Backend {
  const lock = lockDataDir(options.dataDir);
  return {
    open: () =>
      FileStore.start({
        dataDir: options.dataDir,
        fsync: options.fsync,
        metaIntervalMs: options.metaIntervalMs ?? 100,
        faults: options.faults ?? NO_FAULTS,
        log: options.log ?? SILENT,
      }),
    close: () => lock.release(),
  };
}
