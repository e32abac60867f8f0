import type { IncomingMessage, ServerResponse } from "node:http";
import { EngineError, WriteFailure, type WriteResult, type Writer } from "../engine/index.js";
import type { RouteParams, ServerContext } from "./context.js";
import { sendError, sendJson } from "./error-status.js";
import { HttpError } from "./errors.js";
import { booleanParam, checkXmlContentType, offsetValue } from "./params.js";

/**
 * POST /write-item-stream/{item_id}/{version}: streams the body into the engine chunk by
 * chunk, pausing the socket while the engine is full, and answers once every property
 * is committed, or at the first error with the count that did commit.
 */
export async function handleWrite(
  ctx: ServerContext,
  req: IncomingMessage,
  res: ServerResponse,
  p: RouteParams,
): Promise<void> {
  checkXmlContentType(req.headers["content-type"]);
  const seal = booleanParam(p.query, "seal", false);
  const expectedHeader = req.headers["x-expected-offset"];
  const expectedOffset =
    expectedHeader === undefined ? undefined : offsetValue("X-Expected-Offset", String(expectedHeader));

  if (ctx.activeWrites.size >= ctx.config.maxWriters) {
    throw new HttpError(
      "too_many_writers",
      `${ctx.config.maxWriters} write requests are open (--max-writers); retry shortly`,
    );
  }
  // The place is taken before the first await, so a burst cannot overshoot the limit.
  let stop = () => {};
  const interrupt = () => stop();
  ctx.activeWrites.add(interrupt);
  let writer: Writer;
  try {
    writer = await ctx.engine.openWriter(p.itemId, p.version, { expectedOffset, seal, contentLength: bodyLength(req) });
  } catch (err) {
    ctx.activeWrites.delete(interrupt);
    throw err;
  }
  stop = () => writer.interrupt(new EngineError("shutting_down", "the server is shutting down"));
  // Bodies may legitimately stream slowly, so the limit is on silence, not on duration.
  const idleMs = ctx.config.bodyIdleTimeoutMs;
  const idle = setTimeout(() => {
    writer.interrupt(new HttpError("request_timeout", `the body sent nothing for ${idleMs} ms (--body-idle-timeout)`));
  }, idleMs);
  req.on("data", (chunk: Buffer) => {
    idle.refresh();
    if (!writer.push(chunk)) req.pause();
  });
  writer.on("drain", () => req.resume());
  req.on("end", () => writer.finish());
  // A request destroyed before its body was read to the end ('end' will never come):
  // the client went away, possibly after sending everything, possibly while the version
  // was being opened (then 'close' has fired already).
  req.on("close", () => {
    if (!req.readableEnded) writer.abort();
  });
  if (req.destroyed && !req.readableEnded) writer.abort();

  let outcome: WriteResult | WriteFailure;
  try {
    outcome = await writer.result;
  } catch (err) {
    if (!(err instanceof WriteFailure)) throw err;
    outcome = err;
  } finally {
    clearTimeout(idle);
    ctx.activeWrites.delete(interrupt);
  }
  if (res.destroyed) return;
  if (outcome instanceof WriteFailure) {
    if (!req.complete) {
      // The rest of the body is not wanted; answer now and close once it is sent.
      res.setHeader("Connection", "close");
      req.resume();
    }
    sendError(res, p.requestId, outcome.error, { committed: outcome.committed });
    return;
  }
  sendJson(res, 200, {
    item_id: p.itemId,
    version: p.version,
    committed: outcome.committed,
    offset: outcome.offset,
    sealed: outcome.sealed,
  });
}

/** The body's length when the request declares it (node:http has checked it is exact). */
function bodyLength(req: IncomingMessage): number | undefined {
  if (req.headers["transfer-encoding"] !== undefined) return undefined;
  const n = Number(req.headers["content-length"] ?? 0);
  return Number.isSafeInteger(n) && n >= 0 ? n : undefined;
}
