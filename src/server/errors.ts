import { DbError } from "../engine/index.js";

/** Errors only the HTTP front end can produce; engine errors come from the engine. */
export type HttpErrorCode = "route_not_found" | "method_not_allowed" | "unsupported_media_type" | "invalid_parameter";

export class HttpError extends DbError {
  declare readonly code: HttpErrorCode;
  constructor(code: HttpErrorCode, message: string) {
    super(code, message);
  }
}
