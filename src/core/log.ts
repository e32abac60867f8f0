/**
 * The server's log: JSON lines on standard error, one per event worth an operator's
 * attention, with fields a machine can read. Start-up makes the one writer (src/logger.ts,
 * pino); the storage worker has none of its own: its lines cross its message port
 * (postingLog) and the main thread writes them. So no worker thread loads pino.
 * Standard output has the one "listening" line and nothing else.
 */

export const LOG_LEVELS = ["fatal", "error", "warn", "info", "debug", "trace", "silent"] as const;
export type LogLevel = (typeof LOG_LEVELS)[number];
export type LogFields = Record<string, unknown>;
type Emit = (message: string, fields?: LogFields) => void;

export interface Log {
  error: Emit;
  warn: Emit;
  info: Emit;
  debug: Emit;
}

/** A level a Log line is written at, as it crosses a thread. */
export type LineLevel = keyof Log;

/** A Log whose lines are handed to `post` (another thread's logger writes them). */
export function postingLog(post: (level: LineLevel, message: string, fields?: LogFields) => void): Log {
  return {
    error: (message, fields) => post("error", message, fields),
    warn: (message, fields) => post("warn", message, fields),
    info: (message, fields) => post("info", message, fields),
    debug: (message, fields) => post("debug", message, fields),
  };
}

const ignore: Emit = () => undefined;
export const SILENT: Log = { error: ignore, warn: ignore, info: ignore, debug: ignore };
