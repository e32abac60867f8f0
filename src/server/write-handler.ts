import type { IncomingMessage, ServerResponse } from "node:http";
import {
  EngineError,
  SMALL_BODY_BYTES,
  WriteFailure,
  type WriteOptions,
  type WriteResult,
  type Writer,
} from "../engine/index.js";
import type { RouteParams, ServerContext } from "./context.js";
import { sendError, sendJson } from "./error-status.js";
import { HttpError } from "./errors.js";
import { booleanParam, checkXmlContentType, offsetValue } from "./params.js";

/**
 * POST /write-item-stream/{item_id}/{version}: streams the body into the engine chunk by
 * chunk, pausing the socket while the engine is full, and answers once every property
 * is committed, or at the first error with the count that did commit. A small body with
 * a Content-Length is gathered whole first and handed over in one piece: the usual
 * one-property append then costs one parse and one message, not a stream's machinery.
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
  const length = bodyLength(req);
  const opts: WriteOptions = { expectedOffset, seal, contentLength: length };
  const outcome =
    length !== undefined && length <= SMALL_BODY_BYTES
      ? await writeGathered(ctx, req, p, opts, length)
      : await writeStreamed(ctx, req, p, opts);
  if (outcome === null || res.destroyed) return;
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

type Outcome = WriteResult | WriteFailure;

/**
 * A small body: gathered whole, then written in one piece. Resolves null if the client
 * left before sending all of it (nothing was written then, and nobody is left to tell).
 */
function writeGathered(
  ctx: ServerContext,
  req: IncomingMessage,
  p: RouteParams,
  opts: WriteOptions,
  length: number,
): Promise<Outcome | null> {
  return new Promise((resolve, reject) => {
    const body = new Uint8Array(length);
    let received = 0;
    let gathering = true;
    // Ends the gathering; false if it had ended already.
    const stop = (): boolean => {
      if (!gathering) return false;
      gathering = false;
      clearTimeout(idle);
      ctx.activeWrites.delete(interrupt);
      return true;
    };
    const fail = (error: EngineError | HttpError) => stop() && resolve(new WriteFailure(error, 0));
    const interrupt = () => fail(new EngineError("shutting_down", "the server is shutting down"));
    ctx.activeWrites.add(interrupt);
    const idle = idleTimer(ctx, () => fail(silent(ctx)));
    req.on("data", (chunk: Buffer) => {
      if (!gathering) return;
      idle.refresh();
      // node:http never passes more than Content-Length; a body must not crash the server.
      if (received + chunk.length > length)
        return fail(new HttpError("bad_request", "the body is longer than its Content-Length"));
      body.set(chunk, received);
      received += chunk.length;
    });
    req.on("end", () => {
      if (!stop()) return;
      ctx.engine
        .writeBody(p.itemId, p.version, opts, body)
        .then(resolve, (err: unknown) => (err instanceof WriteFailure ? resolve(err) : reject(err)));
    });
    req.on("close", () => {
      if (!req.readableEnded && stop()) resolve(null);
    });
  });
}

/** Any other body: streamed through a Writer, with backpressure. */
async function writeStreamed(
  ctx: ServerContext,
  req: IncomingMessage,
  p: RouteParams,
  opts: WriteOptions,
): Promise<Outcome> {
  // The place is taken before the first await, so a burst cannot overshoot the limit.
  let stop = () => {};
  const interrupt = () => stop();
  ctx.activeWrites.add(interrupt);
  let writer: Writer;
  try {
    writer = await ctx.engine.openWriter(p.itemId, p.version, opts);
  } catch (err) {
    ctx.activeWrites.delete(interrupt);
    throw err;
  }
  stop = () => writer.interrupt(new EngineError("shutting_down", "the server is shutting down"));
  const idle = idleTimer(ctx, () => writer.interrupt(silent(ctx)));
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
  try {
    return await writer.result;
  } catch (err) {
    if (!(err instanceof WriteFailure)) throw err;
    return err;
  } finally {
    clearTimeout(idle);
    ctx.activeWrites.delete(interrupt);
  }
}

/** Bodies may legitimately stream slowly, so the limit is on silence, not on duration. */
function idleTimer(ctx: ServerContext, onSilence: () => void): NodeJS.Timeout {
  return setTimeout(onSilence, ctx.config.bodyIdleTimeoutMs);
}

function silent(ctx: ServerContext): HttpError {
  const ms = ctx.config.bodyIdleTimeoutMs;
  return new HttpError("request_timeout", `the body sent nothing for ${ms} ms (--body-idle-timeout)`);
}

/** The body's length when the request declares it (node:http has checked it is exact). */
function bodyLength(req: IncomingMessage): number | undefined {
  if (req.headers["transfer-encoding"] !== undefined) return undefined;
  const n = Number(req.headers["content-length"] ?? 0);
  return Number.isSafeInteger(n) && n >= 0 ? n : undefined;
}
