/**
 * Fault injection for tests (README, "Fault injection"): read from the environment once,
 * at start-up, into the frozen config, and passed to the threads that act on them.
 */
export interface Faults {
  /** A parser thread that receives a body slice containing this text exits. */
  parserCrash?: string;
  /** The storage worker exits on an append to this item. */
  storageCrash?: string;
  /** The first group commit that writes to this item holds its log sync 200 ms, then fails it. */
  syncFail?: string;
  /** Checkpoint the commit log past this many bytes instead of the default. */
  checkpointBytes?: number;
}

export const NO_FAULTS: Faults = Object.freeze({});

export function faultsFrom(env: NodeJS.ProcessEnv): Faults {
  const checkpointBytes = Number(env.STREAM_DB_TEST_CHECKPOINT_BYTES);
  return Object.freeze({
    parserCrash: env.STREAM_DB_FAULT_PARSER_CRASH || undefined,
    storageCrash: env.STREAM_DB_FAULT_STORAGE_CRASH || undefined,
    syncFail: env.STREAM_DB_FAULT_SYNC_FAIL || undefined,
    checkpointBytes: checkpointBytes > 0 ? checkpointBytes : undefined,
  });
}
