import type { IncomingMessage, ServerResponse } from "node:http";
import { errors } from "../../engine/index.js";
import { originalBytes } from "../../format/records.js";
import type { RouteParams, ServerContext } from "../../http/context.js";
import { byteRange } from "../../http/params.js";

/**
 * GET /items/{item_id}/{version}/properties/{name}/value (README, "Compression"): one
 * binary value's original bytes, decompressed if it is stored compressed; `?n=K` the K-th
 * occurrence (1 the first), by default the latest. `Range` counts the original bytes.
 */
export async function handlePropertyValue(
  ctx: ServerContext,
  req: IncomingMessage,
  res: ServerResponse,
  p: RouteParams,
  name: string,
): Promise<void> {
  const rawN = p.query.get("n");
  const n = rawN === null ? undefined : occurrence(rawN);
  const read = await ctx.engine.readProperties(p.itemId, p.version, { name, latest: n === undefined });
  if (read.state.kind !== "open" && read.state.kind !== "sealed") throw errors.versionNotFound(p.itemId, p.version);
  const record = n === undefined ? read.records[read.records.length - 1] : read.records[n - 1];
  if (!record) throw errors.propertyNotFound(p.itemId, p.version, n === undefined ? name : `${name} (occurrence ${n})`);
  if (record.type !== "binary") throw errors.notBinary(name, record.type);
  const bytes = originalBytes(record);
  const headers: Record<string, string | number> = {
    "Content-Type": "application/octet-stream",
    "Accept-Ranges": "bytes",
    "Cache-Control": "no-store",
    "X-Request-Id": p.requestId,
    "X-Content-Type-Options": "nosniff",
  };
  const range = byteRange(req.headers.range);
  let body = bytes;
  let status = 200;
  if (range) {
    const first = "suffix" in range ? Math.max(0, bytes.length - range.suffix) : range.first;
    const last =
      "first" in range && range.last !== undefined ? Math.min(range.last, bytes.length - 1) : bytes.length - 1;
    if (first >= bytes.length || ("suffix" in range && range.suffix === 0)) {
      throw errors.rangeNotSatisfiable(`Range: ${req.headers.range}`, bytes.length);
    }
    body = bytes.subarray(first, last + 1);
    status = 206;
    headers["Content-Range"] = `bytes ${first}-${last}/${bytes.length}`;
  }
  headers["Content-Length"] = body.length;
  res.writeHead(status, headers);
  res.end(req.method === "HEAD" ? undefined : body);
}

function occurrence(raw: string): number {
  const n = /^[1-9][0-9]{0,15}$/.test(raw) ? Number(raw) : Number.NaN;
  if (!Number.isSafeInteger(n)) throw errors.invalidQueryParameter("n", "an occurrence number from 1", raw);
  return n;
}
