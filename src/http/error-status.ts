import type { ServerResponse } from "node:http";
import type { Log } from "../core/log.js";
import { DbError, type ErrorCode, type ErrorDetails } from "../engine/index.js";

/**
 * The one place an error becomes an HTTP status. Keyed by every code there is, so adding
 * a code without choosing its status does not compile. The README's table of codes is
 * pinned against this map by test/error-codes.test.ts.
 */
export const STATUS_OF: Readonly<Record<ErrorCode, number>> = Object.freeze({
  invalid_item_id: 400,
  invalid_version: 400,
  invalid_parameter: 400,
  bad_request: 400,
  invalid_xml: 400,
  unsupported_xml: 400,
  invalid_property: 400,
  invalid_value: 400,
  offset_not_at_property: 400,
  invalid_query: 400,
  invalid_schema: 400,
  unknown_type: 400,
  schema_not_found: 404,
  schema_incompatible: 409,
  type_mismatch: 409,
  schema_violation: 422,
  index_disabled: 404,
  route_not_found: 404,
  version_not_found: 404,
  property_not_found: 404,
  method_not_allowed: 405,
  not_acceptable: 406,
  request_timeout: 408,
  version_sealed: 409,
  version_superseded: 409,
  offset_mismatch: 409,
  property_too_large: 413,
  unsupported_media_type: 415,
  range_not_satisfiable: 416,
  header_too_large: 431,
  write_failed: 500,
  version_damaged: 500,
  internal_error: 500,
  shutting_down: 503,
  too_many_readers: 503,
  too_many_writers: 503,
});

export function statusOf(err: unknown): number {
  return err instanceof DbError ? STATUS_OF[err.code] : 500;
}

/** The details an error body carries inside `error`, where the condition has them. */
const ERROR_FIELDS = [
  "property",
  "rule",
  "missing",
  "line",
  "column",
  "before",
  "after",
  "position",
  "path",
  "changes",
] as const satisfies readonly (keyof ErrorDetails)[];

/** Writes `{"error": {...}, ...extra}`; unknown errors become internal_error. */
export function sendError(
  log: Log,
  res: ServerResponse,
  requestId: string,
  err: unknown,
  extra: Record<string, unknown> = {},
): void {
  const status = statusOf(err);
  const known = err instanceof DbError;
  const error: Record<string, unknown> = {
    code: known ? err.code : "internal_error",
    message: known ? err.message : "internal error",
    request_id: requestId,
  };
  const details = known ? err.details : {};
  for (const field of ERROR_FIELDS) if (details[field] !== undefined) error[field] = details[field];
  const body: Record<string, unknown> = { error, ...extra };
  if (details.offset !== undefined && status !== 400 && status !== 413) body.offset = details.offset;
  if (status === 500) {
    // Known conditions (a full disk) get their message; only the unexpected gets a stack.
    const what = known ? `${err.code}: ${err.message}` : ((err as Error)?.stack ?? String(err));
    log.error(`request ${requestId}: ${what}`, { request_id: requestId, status });
  }
  if (res.headersSent) {
    res.destroy();
    return;
  }
  const headers: string[] = [];
  if (status === 416 && details.offset !== undefined) headers.push("Content-Range", `bytes */${details.offset}`);
  if (status === 503) headers.push("Retry-After", "1");
  sendJson(res, requestId, status, body, headers);
}

/** The same JSON error, for a socket whose HTTP parser gave up (no ServerResponse). */
export function errorResponseBytes(status: number, statusText: string, code: string, message: string): string {
  const body = `${JSON.stringify({ error: { code, message } })}\n`;
  return `HTTP/1.1 ${status} ${statusText}\r\nContent-Type: application/json; charset=utf-8\r\nContent-Length: ${Buffer.byteLength(body)}\r\nConnection: close\r\n\r\n${body}`;
}

/**
 * Every JSON answer, with its request id. The headers go to `writeHead` in one flat list:
 * with no header set before it (none is, on the usual path), node:http writes them as
 * they are instead of merging them into its header map first, which was 5-9% of a
 * small append's CPU (`bench/tools/ab.sh`, 6 rounds, twice).
 */
export function sendJson(
  res: ServerResponse,
  requestId: string,
  status: number,
  body: unknown,
  headers?: string[],
): void {
  sendJsonText(res, requestId, status, `${JSON.stringify(body)}\n`, headers);
}

/** sendJson for a body already written as JSON text. */
export function sendJsonText(
  res: ServerResponse,
  requestId: string,
  status: number,
  text: string,
  headers?: string[],
): void {
  const head = [
    "Content-Type",
    "application/json; charset=utf-8",
    "Content-Length",
    String(Buffer.byteLength(text)),
    "X-Request-Id",
    requestId,
  ];
  res.writeHead(status, headers ? head.concat(headers) : head);
  res.end(text);
}
