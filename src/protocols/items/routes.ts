import type { IncomingMessage, ServerResponse } from "node:http";
import { errors, parseItemId, parseVersion } from "../../engine/index.js";
import type { ServerContext } from "../../http/context.js";
import { allowMethods, decodeSegment, type RequestTarget } from "../../http/params.js";
import { handlePropertyRead } from "./property-reads.js";
import { handlePropertyValue } from "./property-value.js";

/**
 * `/items/{item_id}/{version}/properties[/{name}[/value]]`: what is stored, as values. Segments
 * are percent-decoded once; item ids and versions are checked by the engine's grammar.
 */

const PROPERTIES = /^\/items\/([^/]*)\/([^/]*)\/properties(?:\/([^/]*)(\/value)?)?\/?$/;

export function routeItems(
  ctx: ServerContext,
  req: IncomingMessage,
  res: ServerResponse,
  requestId: string,
  { pathname, query }: RequestTarget,
): Promise<void> {
  const m = PROPERTIES.exec(pathname);
  if (!m) throw errors.routeNotFound(pathname);
  allowMethods(req, res, ["GET", "HEAD"]);
  const itemId = parseItemId(decodeSegment(m[1]));
  const version = parseVersion(decodeSegment(m[2]));
  const name = m[3] === undefined ? undefined : decodeSegment(m[3]);
  const p = { itemId, version, query, requestId };
  if (name !== undefined && m[4] !== undefined) return handlePropertyValue(ctx, req, res, p, name);
  return handlePropertyRead(ctx, req, res, { itemId, version, query, requestId }, name);
}
