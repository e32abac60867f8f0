import type { IncomingMessage, ServerResponse } from "node:http";
import { errors } from "../../engine/index.js";
import type { ServerContext } from "../../http/context.js";
import { sendJson, sendJsonText } from "../../http/error-status.js";
import { allowMethods, decodeSegment, type RequestTarget } from "../../http/params.js";

/**
 * The schema registry's routes (README, "Schemas"):
 *   PUT /schemas/{type}       the next version: 201 {"type","version"}, 200 when unchanged
 *   GET /schemas              {"schemas":[{"type","versions"}]}
 *   GET /schemas/{type}       {"type","versions":[1..n]}
 *   GET /schemas/{type}/{n}   {"type","version","schema":document}
 */

const ROUTE = /^\/schemas(?:\/([^/]+))?(?:\/([^/]+))?\/?$/;
/** A schema document is small; a body past this is refused before it is read whole. */
const MAX_SCHEMA_BYTES = 1 << 20;

export async function routeSchemas(
  ctx: ServerContext,
  req: IncomingMessage,
  res: ServerResponse,
  requestId: string,
  { pathname }: RequestTarget,
): Promise<void> {
  const m = ROUTE.exec(pathname);
  if (!m) throw errors.routeNotFound(pathname);
  const type = m[1] === undefined ? undefined : decodeSegment(m[1]);
  const n = m[2];
  const registry = ctx.engine.schemas;
  allowMethods(req, res, type !== undefined && n === undefined ? ["GET", "PUT"] : ["GET"]);
  if (req.method === "PUT" && type !== undefined) {
    const r = registry.register(type, await body(req));
    sendJson(res, requestId, r.created ? 201 : 200, { type: r.type, version: r.version });
    return;
  }
  if (type === undefined) {
    sendJson(res, requestId, 200, { schemas: registry.list() });
    return;
  }
  if (n === undefined) {
    const count = registry.versions(type);
    sendJson(res, requestId, 200, { type, versions: Array.from({ length: count }, (_, i) => i + 1) });
    return;
  }
  const version = /^[1-9][0-9]{0,8}$/.test(n) ? Number(n) : Number.NaN;
  if (Number.isNaN(version)) throw errors.schemaNotFound(type, Number(n));
  const { text } = registry.get(type, version);
  sendJsonText(res, requestId, 200, `{"type":${JSON.stringify(type)},"version":${version},"schema":${text}}\n`);
}

async function body(req: IncomingMessage): Promise<string> {
  const parts: Buffer[] = [];
  let size = 0;
  for await (const chunk of req) {
    size += (chunk as Buffer).length;
    if (size > MAX_SCHEMA_BYTES)
      throw errors.invalidSchema("", `a schema document is at most ${MAX_SCHEMA_BYTES} bytes`);
    parts.push(chunk as Buffer);
  }
  return Buffer.concat(parts).toString("utf8");
}
