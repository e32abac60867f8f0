import type { IncomingMessage, ServerResponse } from "node:http";
import { errors, parseItemId, parseVersion } from "../../engine/index.js";
import type { RouteParams, ServerContext } from "../../http/context.js";
import { handleRead } from "./read-handler.js";
import { handleWrite } from "./write-handler.js";

/**
 * Routing: two resources, each `/{verb}-item-stream/{item_id}/{version}`. Names are
 * percent-decoded once and then checked by the engine's grammar, which has no room for
 * `/`, `..` or NUL; a name that fails is answered 400 before any file is touched.
 */

/** Shared by every request without a query string; handlers only read it. */
const NO_QUERY = new URLSearchParams();

const ROUTE = /^\/(write|read)-item-stream\/([^/]*)\/([^/]*)\/?$/;

type Handler = (ctx: ServerContext, req: IncomingMessage, res: ServerResponse, p: RouteParams) => Promise<void>;

const METHODS: Record<string, Record<string, Handler>> = {
  write: { POST: handleWrite },
  read: { GET: handleRead, HEAD: handleRead },
};

function decodeSegment(raw: string): string {
  if (!raw.includes("%")) return raw;
  try {
    return decodeURIComponent(raw);
  } catch {
    return "\u0000";
  }
}

/** The handler's promise; a request refused by its route throws before any handler runs. */
export function routeItemStream(
  ctx: ServerContext,
  req: IncomingMessage,
  res: ServerResponse,
  requestId: string,
): Promise<void> {
  // The raw path, not `new URL()`: that would resolve "..", "%2e%2e" and friends, and a
  // name should be refused for what it is, not silently turned into another path.
  const target = req.url ?? "/";
  const q = target.indexOf("?");
  const pathname = q < 0 ? target : target.slice(0, q);
  const query = q < 0 ? NO_QUERY : new URLSearchParams(target.slice(q + 1));
  const m = ROUTE.exec(pathname);
  if (!m) throw errors.routeNotFound(pathname);
  const handlers = METHODS[m[1]];
  const handler = handlers[req.method ?? ""];
  if (!handler) {
    res.setHeader("Allow", Object.keys(handlers).join(", "));
    throw errors.methodNotAllowed(req.method, Object.keys(handlers));
  }
  const itemId = parseItemId(decodeSegment(m[2]));
  const version = parseVersion(decodeSegment(m[3]));
  return handler(ctx, req, res, { itemId, version, query, requestId });
}
