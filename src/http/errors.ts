import { DbError } from "../engine/index.js";

/** Errors only the HTTP front end can produce; engine errors come from the engine. */
export type HttpErrorCode =
  | "route_not_found"
  | "method_not_allowed"
  | "unsupported_media_type"
  | "invalid_parameter"
  | "bad_request"
  | "header_too_large"
  | "request_timeout"
  | "too_many_readers"
  | "too_many_writers";

export class HttpError extends DbError {
  declare readonly code: HttpErrorCode;
  constructor(code: HttpErrorCode, message: string) {
    super(code, message);
  }
}
