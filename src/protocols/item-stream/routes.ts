import type { IncomingMessage, ServerResponse } from "node:http";
import { errors, parseItemId, parseVersion } from "../../engine/index.js";
import type { RouteParams, ServerContext } from "../../http/context.js";
import { decodeSegment, type RequestTarget } from "../../http/params.js";
import { handleRead } from "./read-handler.js";
import { handleWrite } from "./write-handler.js";

/**
 * Routing: two resources, each `/{verb}-item-stream/{item_id}/{version}`. Names are
 * percent-decoded once and then checked by the engine's grammar, which has no room for
 * `/`, `..` or NUL; a name that fails is answered 400 before any file is touched.
 */

const ROUTE = /^\/(write|read)-item-stream\/([^/]*)\/([^/]*)\/?$/;

type Handler = (ctx: ServerContext, req: IncomingMessage, res: ServerResponse, p: RouteParams) => Promise<void>;

const METHODS: Record<string, Record<string, Handler>> = {
  write: { POST: handleWrite },
  read: { GET: handleRead, HEAD: handleRead },
};

/** The handler's promise; a request refused by its route throws before any handler runs. */
export function routeItemStream(
  ctx: ServerContext,
  req: IncomingMessage,
  res: ServerResponse,
  requestId: string,
  { pathname, query }: RequestTarget,
): Promise<void> {
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
