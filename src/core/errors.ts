/**
 * Every failure the engine reports is a DbError with a stable `code`. The codes are part
 * of the public API (README "Error codes"); the HTTP status for each is chosen in one
 * place, src/server/error-status.ts, never from message text.
 */

export type EngineErrorCode =
  | "invalid_item_id"
  | "invalid_version"
  | "invalid_xml"
  | "unsupported_xml"
  | "invalid_property"
  | "invalid_value"
  | "property_too_large"
  | "version_sealed"
  | "version_superseded"
  | "offset_mismatch"
  | "version_not_found"
  | "version_damaged"
  | "range_not_satisfiable"
  | "write_failed"
  | "shutting_down"
  | "internal_error";

export interface ErrorDetails {
  line?: number;
  column?: number;
  /** The version's committed length, where the client can act on it (409s, 416). */
  offset?: number;
}

export class DbError extends Error {
  readonly code: string;
  readonly details: ErrorDetails;
  constructor(code: string, message: string, details: ErrorDetails = {}) {
    super(message);
    this.name = "DbError";
    this.code = code;
    this.details = details;
  }
}

export class EngineError extends DbError {
  declare readonly code: EngineErrorCode;
  constructor(code: EngineErrorCode, message: string, details: ErrorDetails = {}) {
    super(code, message, details);
  }
}

/** Plain shape that crosses thread boundaries; rebuilt into an EngineError on arrival. */
export interface WireError {
  code: EngineErrorCode;
  message: string;
  details?: ErrorDetails;
}

export function toWire(err: EngineError): WireError {
  return { code: err.code, message: err.message, details: err.details };
}

export function fromWire(w: WireError): EngineError {
  return new EngineError(w.code, w.message, w.details ?? {});
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
