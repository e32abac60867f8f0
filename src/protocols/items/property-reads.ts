import type { IncomingMessage, ServerResponse } from "node:http";
import { errors } from "../../engine/index.js";
import { type PropertyRecord, recordJson } from "../../format/records.js";
import type { RouteParams, ServerContext } from "../../http/context.js";
import { sendJsonText } from "../../http/error-status.js";
import { booleanParam } from "../../http/params.js";
import { schemaField } from "../schemas/binding-json.js";

/**
 * Property reads (README, "Reading values"), served from the version's index:
 *   /properties          {"item_id","version","sealed","offset":X,"properties":{name: record}}
 *   /properties/{name}   {"name","occurrences":[record, ...]}, or with ?latest=true the record
 * Records are the typed views' records, numbers with their stored digits.
 */
export async function handlePropertyRead(
  ctx: ServerContext,
  req: IncomingMessage,
  res: ServerResponse,
  p: RouteParams,
  name: string | undefined,
): Promise<void> {
  const latest = name === undefined || booleanParam(p.query, "latest", false);
  const decode = booleanParam(p.query, "decode", true);
  const read = await ctx.engine.readProperties(p.itemId, p.version, { name, latest });
  const { state } = read;
  if (state.kind !== "open" && state.kind !== "sealed") throw errors.versionNotFound(p.itemId, p.version);
  let body: string;
  if (name === undefined) {
    const schema = schemaField(ctx.engine.bindingOf(p.itemId, p.version));
    body = `{"item_id":${JSON.stringify(p.itemId)},"version":${p.version},"sealed":${state.kind === "sealed"},"offset":${read.at}${schema},"properties":{${read.records.map((r) => `${JSON.stringify(r.name)}:${recordJson(r, decode)}`).join(",")}}}\n`;
  } else {
    const last: PropertyRecord | undefined = read.records[read.records.length - 1];
    if (!last) throw errors.propertyNotFound(p.itemId, p.version, name);
    body = latest
      ? `${recordJson(last, decode)}\n`
      : `{"name":${JSON.stringify(name)},"occurrences":[${read.records.map((r) => recordJson(r, decode)).join(",")}]}\n`;
  }
  const headers = ["Cache-Control", "no-store", "X-Stream-Offset", String(read.at)];
  if (req.method === "HEAD") {
    res.writeHead(200, ["Content-Type", "application/json; charset=utf-8", "X-Request-Id", p.requestId, ...headers]);
    res.end();
    return;
  }
  sendJsonText(res, p.requestId, 200, body, headers);
}
