import { pino } from "pino";
import type { Log, LogLevel } from "./core/log.js";

/** The process's one log writer: pino, JSON lines on standard error. */
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
