import type { IncomingMessage, ServerResponse } from "node:http";
import { errors, type QueryEvent, type QueryRequest } from "../../engine/index.js";
import type { ServerContext } from "../../http/context.js";
import { sseKeepAlive } from "../../http/sse-keepalive.js";
import { itemJson, type QueryFormat } from "./routes.js";

/**
 * GET /query?follow=true (README, "Queries"), as NDJSON or SSE: `{"op":"add",…item}` for
 * each version matching now, `{"op":"up_to_date"}`, then `add`, `change` and `remove` as
 * commits move versions in and out, each with `at`. A follower whose socket holds more
 * than FALL_BEHIND_BYTES unsent gets `{"op":"must_refetch"}` and its stream ends: it
 * starts again with a fresh query, and is never skipped past in silence.
 */

const FALL_BEHIND_BYTES = 1 << 20;

export async function followQuery(
  ctx: ServerContext,
  req: IncomingMessage,
  res: ServerResponse,
  requestId: string,
  q: QueryRequest,
  format: QueryFormat,
): Promise<void> {
  if (format === "json") throw errors.invalidQueryParameter("format", "ndjson or sse with follow=true", "json");
  if (q.cursor !== undefined) throw errors.invalidQueryParameter("cursor", "absent with follow=true", q.cursor);
  const frame = format === "sse" ? sseFrame : ndjsonFrame;
  let ended = false;
  const end = (last?: string) => {
    if (ended) return;
    ended = true;
    follower?.close();
    res.end(last);
  };
  let follower: { close(): void } | null = null;
  const onEvent = (e: QueryEvent) => {
    if (ended) return;
    if (res.writableLength > FALL_BEHIND_BYTES) {
      end(frame("must_refetch", '{"op":"must_refetch"}'));
      return;
    }
    e.text ??= `{"op":"${e.op}",${itemJson(e.item).slice(1, -1)},"at":${e.at}}`;
    if (early) early.push(frame(e.op, e.text));
    else res.write(frame(e.op, e.text));
  };
  // Events that come before the head and the current set are written go after them.
  let early: string[] | null = [];
  res.once("close", () => {
    ended = true;
    follower?.close();
    sseKeepAlive.delete(res);
  });
  const f = await ctx.engine.followQuery(q, onEvent);
  follower = f;
  if (res.destroyed) {
    f.close();
    return;
  }
  res.writeHead(200, {
    "Content-Type": format === "sse" ? "text/event-stream" : "application/x-ndjson",
    "Cache-Control": "no-store",
    Vary: "Accept",
    "X-Request-Id": requestId,
  });
  let head = format === "sse" ? "retry: 1000\n\n" : "";
  for (const item of f.initial) head += frame("add", `{"op":"add",${itemJson(item).slice(1, -1)}}`);
  head += frame("up_to_date", '{"op":"up_to_date"}');
  res.write(head + early.join(""));
  early = null;
  if (format === "sse") sseKeepAlive.add(res);
  req.socket.setTimeout(0);
}

function ndjsonFrame(_op: string, json: string): string {
  return `${json}\n`;
}

function sseFrame(op: string, json: string): string {
  return `event: ${op}\ndata: ${json}\n\n`;
}
