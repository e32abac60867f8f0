/**
 * Every failure stream-db reports is a DbError with a stable `code`, built here by one
 * factory per condition with its one message. The codes are part of the public API
 * (README, "Errors"); the HTTP status of each is chosen in one place, src/http/
 * error-status.ts, never from message text, and test/unit/error-codes.test.ts pins the
 * table against the README's.
 */

export type ErrorCode =
  // a request's names and parameters
  | "invalid_item_id"
  | "invalid_version"
  | "invalid_parameter"
  | "bad_request"
  | "route_not_found"
  | "method_not_allowed"
  | "unsupported_media_type"
  | "header_too_large"
  | "request_timeout"
  | "not_acceptable"
  | "offset_not_at_property"
  | "invalid_query"
  | "invalid_schema"
  | "unknown_type"
  | "index_disabled"
  // a write body
  | "invalid_xml"
  | "unsupported_xml"
  | "invalid_property"
  | "invalid_value"
  | "property_too_large"
  // schemas
  | "schema_incompatible"
  | "schema_not_found"
  | "type_mismatch"
  | "schema_violation"
  // versions
  | "version_sealed"
  | "version_superseded"
  | "offset_mismatch"
  | "version_not_found"
  | "property_not_found"
  | "version_damaged"
  | "range_not_satisfiable"
  // the server
  | "write_failed"
  | "shutting_down"
  | "too_many_readers"
  | "too_many_writers"
  | "internal_error";

/** What the parser refuses a body with. */
export type ParseErrorCode =
  | "invalid_xml"
  | "unsupported_xml"
  | "invalid_property"
  | "invalid_value"
  | "property_too_large";

export interface ErrorDetails {
  line?: number;
  column?: number;
  /** The version's committed length, where the client can act on it (409s, 416). */
  offset?: number;
  /** The property boundaries around an offset that is not one. */
  before?: number;
  after?: number;
  /** Where in a query it went wrong (0-based character). */
  position?: number;
  /** The JSON Pointer of a schema's bad part. */
  path?: string;
  /** A schema's incompatible changes. */
  changes?: { property: string; change: string }[];
  /** A schema violation: the property and the rule it broke. */
  property?: string;
  rule?: string;
  /** The required properties a refused seal would leave missing. */
  missing?: string[];
}

export class DbError extends Error {
  constructor(
    readonly code: ErrorCode,
    message: string,
    readonly details: ErrorDetails = {},
  ) {
    super(message);
    this.name = "DbError";
  }
}

/** How much of a refused value a message quotes: enough to recognise it. */
const QUOTED_CHARS = 64;

function quoted(value: string): string {
  return JSON.stringify(value.length > QUOTED_CHARS ? `${value.slice(0, QUOTED_CHARS)}…` : value);
}

function reason(err: unknown): string {
  return (err as Error)?.message ?? String(err);
}

export const errors = {
  invalidItemId: () =>
    new DbError(
      "invalid_item_id",
      "item_id must be 1 to 200 characters of A-Z a-z 0-9 . _ - and must not start with '.'",
    ),
  invalidVersion: () =>
    new DbError(
      "invalid_version",
      "version must be a decimal integer from 1 to 9007199254740991 without leading zeros",
    ),
  invalidBoolean: (name: string, raw: string) =>
    new DbError("invalid_parameter", `?${name} must be true or false (or 1 or 0), got ${quoted(raw)}`),
  invalidOffset: (what: string, raw: string) =>
    new DbError("invalid_parameter", `${what} must be a byte offset (a non-negative integer), got ${quoted(raw)}`),
  routeNotFound: (path: string) =>
    new DbError("route_not_found", `no such resource: ${path.slice(0, 200)}; see the README for the API`),
  methodNotAllowed: (method: string | undefined, allowed: string[]) =>
    new DbError("method_not_allowed", `${method} is not allowed here; use ${allowed.join(" or ")}`),
  unsupportedMediaType: (header: string | undefined) =>
    new DbError(
      "unsupported_media_type",
      `Content-Type must be application/xml or text/xml, got ${quoted(header ?? "")}`,
    ),
  unsupportedCharset: (charset: string) =>
    new DbError("unsupported_media_type", `only charset=utf-8 is supported, got ${quoted(charset)}`),
  notAcceptable: (accept: string, offered: string[]) =>
    new DbError("not_acceptable", `none of ${offered.join(", ")} satisfies Accept: ${quoted(accept)}`),
  invalidFormat: (raw: string, formats: string[]) =>
    new DbError("invalid_parameter", `?format must be one of ${formats.join(", ")}, got ${quoted(raw)}`),
  invalidPropertyNames: (raw: string) =>
    new DbError("invalid_parameter", `?properties must be names separated by commas, got ${quoted(raw)}`),
  offsetNotAtProperty: (offset: number, before: number, after: number) =>
    new DbError(
      "offset_not_at_property",
      `offset ${offset} is inside a property: typed reads start at a property boundary (${before} or ${after})`,
      { before, after },
    ),
  invalidQuery: (message: string, position: number) =>
    new DbError("invalid_query", `?where: ${message} (at character ${position})`, { position }),
  indexDisabled: () => new DbError("index_disabled", "this server runs without an index (--index false): no queries"),
  invalidSchema: (path: string, message: string) =>
    new DbError("invalid_schema", `${path || "the schema"}: ${message}`, { path }),
  schemaIncompatible: (mode: string, changes: { property: string; change: string }[]) =>
    new DbError(
      "schema_incompatible",
      `${changes.length} change(s) are not ${mode} compatible with the latest version: ${changes.map((c) => `${c.property}: ${c.change}`).join("; ")}`,
      { changes },
    ),
  schemaNotFound: (type: string, version?: number) =>
    new DbError(
      "schema_not_found",
      version === undefined
        ? `no schema of type ${quoted(type)}`
        : `type ${quoted(type)} has no schema version ${version}`,
    ),
  unknownType: (type: string) =>
    new DbError(
      "unknown_type",
      `?type=${type.slice(0, 200)}: no schema of that type is registered (PUT /schemas/${type.slice(0, 200)})`,
    ),
  typeMismatch: (itemId: string, version: number, bound: string | undefined, asked: string | undefined) =>
    new DbError(
      "type_mismatch",
      `version ${version} of item ${itemId} ${bound === undefined ? "has no type" : `is of type ${quoted(bound)}`}; this write ${asked === undefined ? "names none" : `names ${quoted(asked)}`}`,
    ),
  /** A property that breaks its version's schema: where it is, which rule. */
  schemaViolation: (property: string, rule: string, message: string, where: { line: number; column: number }) =>
    new DbError("schema_violation", `property ${quoted(property)}: ${message}`, { property, rule, ...where }),
  /** A second occurrence of a name that may occur once, wherever the first one is. */
  repeatedProperty: (property: string, where: { line: number; column: number }) =>
    new DbError(
      "schema_violation",
      `property ${quoted(property)}: occurs a second time in the version (repeated is false)`,
      {
        property,
        rule: "repeated",
        line: where.line,
        column: where.column,
      },
    ),
  requiredMissing: (missing: string[]) =>
    new DbError(
      "schema_violation",
      `the version cannot be sealed: required ${missing.length === 1 ? "property" : "properties"} ${missing.map((m) => quoted(m)).join(", ")} missing; it stays open`,
      { rule: "required", missing },
    ),
  notBinary: (name: string, type: string) =>
    new DbError("invalid_parameter", `/value serves binary values; property ${quoted(name)} is a ${type} there`),
  invalidCursor: () => new DbError("invalid_parameter", "?cursor is not one this server gave out"),
  invalidQueryParameter: (name: string, allowed: string, raw: string) =>
    new DbError("invalid_parameter", `?${name} must be ${allowed}, got ${quoted(raw)}`),
  bodySilent: (ms: number) =>
    new DbError("request_timeout", `the body sent nothing for ${ms} ms (--body-idle-timeout)`),

  /** The parser's refusals: the message says which construct, `where` where it is. */
  parse: (code: ParseErrorCode, message: string, where: ErrorDetails = {}) => new DbError(code, message, where),
  invalidValue: (type: string, name: string, value: string, why: string) =>
    new DbError("invalid_value", `property "${name}": invalid ${type} value ${quoted(value)}: ${why}`),
  propertyTooLarge: (limit: number) =>
    new DbError("property_too_large", `a property is larger than ${limit} bytes (--max-property-bytes)`),

  versionSealed: (itemId: string, version: number, offset: number) =>
    new DbError("version_sealed", `version ${version} of item ${itemId} is sealed`, { offset }),
  versionSuperseded: (itemId: string, version: number, offset?: number) =>
    new DbError(
      "version_superseded",
      `a newer version of item ${itemId} exists; version ${version} takes no writes`,
      offset === undefined ? {} : { offset },
    ),
  offsetMismatch: (expected: number, current: number) =>
    new DbError("offset_mismatch", `X-Expected-Offset is ${expected} but the version's length is ${current}`, {
      offset: current,
    }),
  versionNotFound: (itemId: string, version: number) =>
    new DbError("version_not_found", `version ${version} of item ${itemId} does not exist`),
  /** A version waited for that can no longer be created. */
  versionGone: () =>
    new DbError("version_not_found", "that version does not exist and cannot be created: a newer version exists"),
  propertyNotFound: (itemId: string, version: number, name: string) =>
    new DbError("property_not_found", `version ${version} of item ${itemId} has no property ${quoted(name)}`),
  snapshotNeedsRecords: () =>
    new DbError("invalid_parameter", "?snapshot=true needs a typed format: ndjson, sse or json"),
  snapshotWithOffset: () =>
    new DbError("invalid_parameter", "?snapshot=true starts where the snapshot is taken; leave out ?offset"),
  versionDamaged: (reason: string) => new DbError("version_damaged", reason),
  rangeNotSatisfiable: (asked: string, length: number) =>
    new DbError("range_not_satisfiable", `${asked}: the version has ${length} bytes`, { offset: length }),

  writeFailed: (cause: unknown) => new DbError("write_failed", `the append failed: ${reason(cause)}`),
  shuttingDown: () => new DbError("shutting_down", "the server is shutting down"),
  tooManyReaders: (limit: number, flag: "--max-readers" | "--max-readers-per-version") =>
    new DbError(
      "too_many_readers",
      `${limit} reads ${flag === "--max-readers" ? "are" : "of this version are"} open (${flag}); retry shortly`,
    ),
  tooManyWriters: (limit: number) =>
    new DbError("too_many_writers", `${limit} write requests are open (--max-writers); retry shortly`),
  /** A bug, or a thread that died: the log has the request id. */
  internal: (message: string) => new DbError("internal_error", message),
};

/** Plain shape that crosses thread boundaries; rebuilt into a DbError on arrival. */
export interface WireError {
  code: ErrorCode;
  message: string;
  details?: ErrorDetails;
}

export function toWire(err: DbError): WireError {
  return { code: err.code, message: err.message, details: err.details };
}

export function fromWire(w: WireError): DbError {
  return new DbError(w.code, w.message, w.details ?? {});
}

/**
 * The server cannot start (data directory unusable or in use, address unavailable): one
 * line for the operator, exit code 2. Never an answer to a request, so it has no code.
 */
export class StartupError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "StartupError";
  }
}

/** The reader left while its read was being set up: nobody to answer, nothing to log. */
export class ReaderGone extends Error {
  constructor() {
    super("the reader went away");
    this.name = "ReaderGone";
  }
}
