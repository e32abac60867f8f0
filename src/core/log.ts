import { pino } from "pino";

/**
 * The server's log: JSON lines on standard error (pino), one per event worth an
 * operator's attention, with fields a machine can read. The storage worker has no
 * logger of its own: its lines cross its message port (postingLog) and are written here.
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

export function pinoLog(level: LogLevel): Log {
  // Synchronous: lines are few, and one written just before an exit must not be lost.
  const p = pino(
    { name: "stream-db", level, formatters: { level: (label) => ({ level: label }) } },
    pino.destination({ dest: 2, sync: true }),
  );
  return {
    error: (message, fields) => p.error(fields ?? {}, message),
    warn: (message, fields) => p.warn(fields ?? {}, message),
    info: (message, fields) => p.info(fields ?? {}, message),
    debug: (message, fields) => p.debug(fields ?? {}, message),
  };
}

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
