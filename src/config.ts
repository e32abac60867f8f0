import { resolve } from "node:path";
import { type Faults, faultsFrom } from "./core/faults.js";
import { LOG_LEVELS, type LogLevel } from "./core/log.js";
import { CODECS, type Codec, hasCodec } from "./format/codec.js";
import type { ServerOptions } from "./http/context.js";
import type { FsyncMode } from "./store/file/index.js";

/**
 * Options are read once at start-up, flag first, then environment, then default, and
 * validated into a frozen Config. A bad value stops the process with a one-line reason.
 */

/** The HTTP side's options (limits and timeouts), and these. */
export interface Config extends ServerOptions {
  port: number;
  host: string;
  dataDir: string;
  fsync: FsyncMode;
  /** undefined: piscina's default for this machine. */
  parserThreads: number | undefined;
  maxPropertyBytes: number;
  logLevel: LogLevel;
  /** Keep the secondary index (queries need it). */
  index: boolean;
  /** Rebuild the index from the data files at start-up. */
  reindex: boolean;
  /** The codec large binary values are stored with; "none": as they come. */
  compression: Codec | "none";
  /** Binary values from this many decoded bytes are compressed. */
  compressMinBytes: number;
  /** Test hooks from the environment only (README, "Fault injection"). */
  faults: Faults;
}

export class ConfigError extends Error {}

interface OptionSpec {
  flag: string;
  env: string;
  fallback: string | undefined;
  help: string;
}

const SPECS = {
  port: { flag: "--port", env: "PORT", fallback: "3000", help: "TCP port; 0 picks a free one" },
  host: { flag: "--host", env: "HOST", fallback: "127.0.0.1", help: "address to bind" },
  dataDir: {
    flag: "--data-dir",
    env: "STREAM_DB_DATA_DIR",
    fallback: "./data",
    help: "where .data and .meta files live; created if missing",
  },
  fsync: {
    flag: "--fsync",
    env: "STREAM_DB_FSYNC",
    fallback: "batch",
    help: "always | batch | never (see README, Durability)",
  },
  parserThreads: {
    flag: "--parser-threads",
    env: "STREAM_DB_PARSER_THREADS",
    fallback: undefined,
    help: "parser pool size (default: piscina's, from the CPU count)",
  },
  maxPropertyBytes: {
    flag: "--max-property-bytes",
    env: "STREAM_DB_MAX_PROPERTY_BYTES",
    fallback: "67108864",
    help: "largest single property in bytes; more is 413",
  },
  maxHeaderBytes: {
    flag: "--max-header-bytes",
    env: "STREAM_DB_MAX_HEADER_BYTES",
    fallback: "16384",
    help: "largest request head; more is 431",
  },
  headersTimeoutMs: {
    flag: "--headers-timeout",
    env: "STREAM_DB_HEADERS_TIMEOUT",
    fallback: "10000",
    help: "ms to receive a request head, else the connection is cut",
  },
  bodyIdleTimeoutMs: {
    flag: "--body-idle-timeout",
    env: "STREAM_DB_BODY_IDLE_TIMEOUT",
    fallback: "300000",
    help: "ms a write body may stay silent before 408",
  },
  maxReaders: {
    flag: "--max-readers",
    env: "STREAM_DB_MAX_READERS",
    fallback: "20000",
    help: "concurrent reads in all; more is 503",
  },
  maxReadersPerVersion: {
    flag: "--max-readers-per-version",
    env: "STREAM_DB_MAX_READERS_PER_VERSION",
    fallback: "10000",
    help: "concurrent reads of one version; more is 503",
  },
  maxWriters: {
    flag: "--max-writers",
    env: "STREAM_DB_MAX_WRITERS",
    fallback: "1024",
    help: "concurrent write requests; more is 503",
  },
  logLevel: {
    flag: "--log-level",
    env: "STREAM_DB_LOG_LEVEL",
    fallback: "info",
    help: `${LOG_LEVELS.join(" | ")}: the least a line must be to be logged`,
  },
  index: {
    flag: "--index",
    env: "STREAM_DB_INDEX",
    fallback: "true",
    help: "keep the secondary index under DATA_DIR/index (false: no queries)",
  },
  reindex: {
    flag: "--reindex",
    env: "STREAM_DB_REINDEX",
    fallback: "false",
    help: "true: rebuild the index from the data files at start-up",
  },
  compression: {
    flag: "--compression",
    env: "STREAM_DB_COMPRESSION",
    fallback: "gzip",
    help: "gzip | br | zstd (where Node has it) | none: how large binary values are stored",
  },
  compressMinBytes: {
    flag: "--compress-min-bytes",
    env: "STREAM_DB_COMPRESS_MIN_BYTES",
    fallback: "4096",
    help: "binary values from this many decoded bytes are compressed (when that saves 10 %)",
  },
} satisfies Record<Exclude<keyof Config, "faults">, OptionSpec>;

/** Columns as wide as their longest entry, so no flag runs into its variable. */
export const USAGE = ((): string => {
  const rows = Object.values(SPECS).map((s): string[] => [`${s.flag} <value>`, s.env, s.fallback ?? "-", s.help]);
  const width = (i: number) => Math.max(...rows.map((r) => r[i].length)) + 2;
  const [flag, env, fallback] = [width(0), width(1), width(2)];
  return [
    "Usage: node dist/server.js [options]",
    "",
    "Options (flag, then environment variable, then default):",
    ...rows.map((r) => `  ${r[0].padEnd(flag)}${r[1].padEnd(env)}${r[2].padEnd(fallback)}${r[3]}`),
    `  ${"-h, --help".padEnd(flag)}print this and exit`,
    `  ${"--version".padEnd(flag)}print the version and exit`,
  ].join("\n");
})();

function logLevel({ name, raw }: { name: string; raw: string | undefined }): LogLevel {
  const level = LOG_LEVELS.find((l) => l === raw);
  if (!level) throw new ConfigError(`${name} must be one of ${LOG_LEVELS.join(", ")}, got "${raw}"`);
  return level;
}

function codec({ name, raw }: { name: string; raw: string | undefined }): Codec | "none" {
  if (raw === "none") return "none";
  const known = CODECS.find((c) => c === raw);
  if (!known) throw new ConfigError(`${name} must be one of ${CODECS.join(", ")} or none, got "${raw}"`);
  if (!hasCodec(known)) throw new ConfigError(`${name}: this Node (${process.version}) has no ${known} in node:zlib`);
  return known;
}

function bool({ name, raw }: { name: string; raw: string | undefined }): boolean {
  if (raw === "true" || raw === "1") return true;
  if (raw === "false" || raw === "0") return false;
  throw new ConfigError(`${name} must be true or false, got "${raw}"`);
}

function integer(name: string, raw: string, min: number, max: number): number {
  const n = /^[0-9]+$/.test(raw) ? Number(raw) : Number.NaN;
  if (!Number.isSafeInteger(n) || n < min || n > max) {
    throw new ConfigError(`${name} must be an integer from ${min} to ${max}, got "${raw}"`);
  }
  return n;
}

/** Splits argv into flag values; `--flag value` and `--flag=value` both work. */
function readFlags(argv: readonly string[]): { values: Map<string, string>; help: boolean; version: boolean } {
  const known = new Set(Object.values(SPECS).map((s) => s.flag));
  const values = new Map<string, string>();
  let help = false;
  let version = false;
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i];
    if (arg === "--help" || arg === "-h") {
      help = true;
      continue;
    }
    if (arg === "--version") {
      version = true;
      continue;
    }
    const eq = arg.indexOf("=");
    const flag = eq > 0 ? arg.slice(0, eq) : arg;
    if (!known.has(flag)) throw new ConfigError(`unknown option "${arg}" (try --help)`);
    const value = eq > 0 ? arg.slice(eq + 1) : argv[++i];
    if (value === undefined) throw new ConfigError(`${flag} needs a value`);
    values.set(flag, value);
  }
  return { values, help, version };
}

export function parseConfig(
  argv: readonly string[],
  env: NodeJS.ProcessEnv,
): { config: Config; help: boolean; version: boolean } {
  const { values, help, version } = readFlags(argv);
  const pick = (spec: OptionSpec): { name: string; raw: string | undefined } => {
    if (values.has(spec.flag)) return { name: spec.flag, raw: values.get(spec.flag) };
    const fromEnv = env[spec.env];
    if (fromEnv !== undefined && fromEnv !== "") return { name: spec.env, raw: fromEnv };
    return { name: spec.flag, raw: spec.fallback };
  };
  const port = pick(SPECS.port);
  const host = pick(SPECS.host);
  const dataDir = pick(SPECS.dataDir);
  const fsync = pick(SPECS.fsync);
  const threads = pick(SPECS.parserThreads);
  const maxProp = pick(SPECS.maxPropertyBytes);
  const int = (spec: OptionSpec, min: number, max: number) => {
    const { name, raw } = pick(spec);
    return integer(name, raw as string, min, max);
  };
  if (fsync.raw !== "always" && fsync.raw !== "batch" && fsync.raw !== "never") {
    throw new ConfigError(`${fsync.name} must be always, batch or never, got "${fsync.raw}"`);
  }
  if (!host.raw) throw new ConfigError(`${host.name} must not be empty`);
  if (!dataDir.raw) throw new ConfigError(`${dataDir.name} must not be empty`);
  const config: Config = {
    port: integer(port.name, port.raw as string, 0, 65535),
    host: host.raw,
    dataDir: resolve(dataDir.raw),
    fsync: fsync.raw,
    parserThreads: threads.raw === undefined ? undefined : integer(threads.name, threads.raw, 1, 256),
    maxPropertyBytes: integer(maxProp.name, maxProp.raw as string, 64, 1 << 30),
    maxHeaderBytes: int(SPECS.maxHeaderBytes, 1024, 1 << 20),
    headersTimeoutMs: int(SPECS.headersTimeoutMs, 100, 3_600_000),
    bodyIdleTimeoutMs: int(SPECS.bodyIdleTimeoutMs, 100, 86_400_000),
    maxReaders: int(SPECS.maxReaders, 1, 1_000_000),
    maxReadersPerVersion: int(SPECS.maxReadersPerVersion, 1, 1_000_000),
    maxWriters: int(SPECS.maxWriters, 1, 1_000_000),
    logLevel: logLevel(pick(SPECS.logLevel)),
    index: bool(pick(SPECS.index)),
    reindex: bool(pick(SPECS.reindex)),
    compression: codec(pick(SPECS.compression)),
    compressMinBytes: int(SPECS.compressMinBytes, 1, 1 << 30),
    faults: faultsFrom(env),
  };
  return { config: Object.freeze(config), help, version };
}
