import type { IncomingMessage, ServerResponse } from "node:http";
import { encodeCursor, errors, type QueryItem, type QueryRequest } from "../../engine/index.js";
import type { ServerContext } from "../../http/context.js";
import { allowMethods, booleanParam, type RequestTarget } from "../../http/params.js";
import { schemaField } from "../schemas/binding-json.js";
import { followQuery } from "./follow.js";

/**
 * GET /query (README, "Queries"): the versions whose properties match `where`, in item id
 * then version order, a page of `limit` at a time with a cursor, as one JSON document or
 * NDJSON (an item a line, then the cursor); `follow=true` goes on live (follow.ts).
 */

const DEFAULT_LIMIT = 100;
const MAX_LIMIT = 10_000;

export async function routeQuery(
  ctx: ServerContext,
  req: IncomingMessage,
  res: ServerResponse,
  requestId: string,
  { pathname, query }: RequestTarget,
): Promise<void> {
  if (pathname !== "/query" && pathname !== "/query/") throw errors.routeNotFound(pathname);
  allowMethods(req, res, ["GET"]);
  const q = queryRequest(query);
  const limit = limitParam(query);
  const format = queryFormat(req, query);
  if (booleanParam(query, "follow", false)) return followQuery(ctx, req, res, requestId, q, format);
  const items = ctx.engine.query(q);
  // The first item (or the refusal of a bad query) comes before the head goes out.
  let next = await items.next();
  res.writeHead(200, {
    "Content-Type": format === "ndjson" ? "application/x-ndjson" : "application/json; charset=utf-8",
    "Cache-Control": "no-store",
    Vary: "Accept",
    "X-Request-Id": requestId,
  });
  let n = 0;
  let last: QueryItem | null = null;
  let text = format === "json" ? '{"items":[' : "";
  while (!next.done && n < limit) {
    const item = next.value;
    text += (format === "json" && n > 0 ? "," : "") + itemJson(item) + (format === "ndjson" ? "\n" : "");
    n++;
    last = item;
    if (text.length > 64 << 10) {
      if (!res.write(text)) await new Promise((resolve) => res.once("drain", resolve));
      text = "";
    }
    next = await items.next();
  }
  const more = !next.done && last !== null;
  await items.return(undefined);
  const cursor = more && last ? JSON.stringify(encodeCursor(last)) : "null";
  text += format === "json" ? `],"cursor":${cursor}}\n` : `{"cursor":${cursor}}\n`;
  res.end(text);
}

/** One matching version as the answer lists it. */
export function itemJson(m: QueryItem): string {
  const props =
    m.properties === null
      ? ""
      : `,"properties":{${m.properties.map(([n, r]) => `${JSON.stringify(n)}:${r}`).join(",")}}`;
  return `{"item_id":${JSON.stringify(m.itemId)},"version":${m.version},"sealed":${m.sealed},"offset":${m.offset}${schemaField(m.schema)}${props}}`;
}

export function queryRequest(query: URLSearchParams): QueryRequest {
  const where = query.get("where");
  if (where === null || where.trim() === "") throw errors.invalidQuery("?where is missing", 0);
  const rawSelect = query.get("select");
  const select = rawSelect === null ? null : rawSelect === "*" ? "*" : rawSelect.split(",").filter((s) => s !== "");
  const versions = oneOf(query, "versions", ["latest", "all"], "latest");
  const match = oneOf(query, "match", ["latest", "any"], "latest");
  const cursor = query.get("cursor") ?? undefined;
  return { where, select, versions, match, cursor: cursor === "" ? undefined : cursor };
}

function oneOf<T extends string>(query: URLSearchParams, name: string, allowed: T[], fallback: T): T {
  const raw = query.get(name);
  if (raw === null) return fallback;
  if (!(allowed as string[]).includes(raw)) throw errors.invalidQueryParameter(name, allowed.join(" or "), raw);
  return raw as T;
}

function limitParam(query: URLSearchParams): number {
  const raw = query.get("limit");
  if (raw === null) return DEFAULT_LIMIT;
  const n = /^[0-9]{1,6}$/.test(raw) ? Number(raw) : Number.NaN;
  if (!(n >= 1 && n <= MAX_LIMIT))
    throw errors.invalidQueryParameter("limit", `an integer from 1 to ${MAX_LIMIT}`, raw);
  return n;
}

export type QueryFormat = "json" | "ndjson" | "sse";

export function queryFormat(req: IncomingMessage, query: URLSearchParams): QueryFormat {
  const raw = query.get("format");
  if (raw !== null) {
    if (raw !== "json" && raw !== "ndjson" && raw !== "sse") {
      throw errors.invalidQueryParameter("format", "json, ndjson or sse", raw);
    }
    return raw;
  }
  const accept = req.headers.accept ?? "";
  if (accept.includes("text/event-stream")) return "sse";
  if (accept.includes("application/x-ndjson")) return "ndjson";
  return "json";
}
