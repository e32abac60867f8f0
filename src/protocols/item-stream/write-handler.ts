import type { IncomingMessage, ServerResponse } from "node:http";
import {
  type DbError,
  errors,
  SMALL_BODY_BYTES,
  WriteFailure,
  type WriteOptions,
  type WriteResult,
} from "../../engine/index.js";
import type { RouteParams, ServerContext } from "../../http/context.js";
import { sendError, sendJsonText } from "../../http/error-status.js";
import { booleanParam, checkXmlContentType, offsetValue } from "../../http/params.js";

/**
 * POST /write-item-stream/{item_id}/{version}: streams the body into the engine chunk by
 * chunk, pausing the socket while the engine is full, and answers once every property
 * is committed, or at the first error with the count that did commit. A small body that
 * arrives whole in its first chunk (the usual one-property append) is handed over in
 * one piece instead: one parse and one message, not a stream's machinery.
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
    throw errors.tooManyWriters(ctx.config.maxWriters);
  }
  const length = bodyLength(req);
  const type = p.query.get("type") ?? undefined;
  const opts: WriteOptions = { expectedOffset, seal, contentLength: length, type };
  // The place is taken before the first await, so a burst cannot overshoot the limit,
  // and held until the request is answered.
  let stop = () => {};
  const interrupt = () => stop();
  ctx.activeWrites.add(interrupt);
  const onStop = (fn: () => void) => {
    stop = fn;
  };
  let outcome: Outcome | null;
  try {
    const first =
      length !== undefined && length <= SMALL_BODY_BYTES ? await firstChunk(ctx, req, length, onStop) : null;
    if (first?.kind === "whole") {
      stop = () => {}; // in the engine's hands: shutdown lets queued writes finish
      outcome = await ctx.engine.writeWhole(p.itemId, p.version, opts, first.body).catch(asOutcome);
    } else if (first?.kind === "over") {
      outcome = first.outcome;
    } else {
      outcome = await writeStreamed(ctx, req, p, opts, first?.chunk, onStop);
    }
  } finally {
    ctx.activeWrites.delete(interrupt);
  }
  if (outcome === null || res.destroyed) return;
  if (outcome instanceof WriteFailure) {
    if (!req.complete) {
      // The rest of the body is not wanted; answer now and close once it is sent.
      res.setHeader("Connection", "close");
      req.resume();
    }
    sendError(ctx.log, res, p.requestId, outcome.error, { committed: outcome.committed });
    return;
  }
  sendJsonText(res, p.requestId, 200, writtenJson(p, outcome));
}

/**
 * The 200's body, as JSON.stringify would write it: built as text because it is sent once
 * per request, and nothing in it needs escaping (the item id's grammar is `[A-Za-z0-9._-]`).
 */
function writtenJson(p: { itemId: string; version: number }, r: WriteResult): string {
  return `{"item_id":"${p.itemId}","version":${p.version},"committed":${r.committed},"offset":${r.offset},"sealed":${r.sealed}}\n`;
}

type Outcome = WriteResult | WriteFailure;

/** A write's own failure is its outcome; anything else (a bug, a refused name) is thrown on. */
function asOutcome(err: unknown): Outcome {
  if (err instanceof WriteFailure) return err;
  throw err;
}

type FirstChunk =
  /** The whole body, in one chunk (or none, for an empty body). */
  | { kind: "whole"; body: Uint8Array }
  /** Only part of it: the request is paused, to be streamed from this chunk on. */
  | { kind: "part"; chunk: Buffer }
  /** Ended before anything was written: silent, shut down, or (null) the client left. */
  | { kind: "over"; outcome: WriteFailure | null };

/**
 * Waits for a small body's first chunk. Usually it is the whole body; if not, the body
 * is streamed like any other, so that each property still commits as it arrives.
 */
function firstChunk(
  ctx: ServerContext,
  req: IncomingMessage,
  length: number,
  onStop: (fn: () => void) => void,
): Promise<FirstChunk> {
  return new Promise((resolve) => {
    let waiting = true;
    let idle: NodeJS.Timeout | undefined;
    const done = (result: FirstChunk) => {
      if (!waiting) return;
      waiting = false;
      clearTimeout(idle);
      req.off("data", onData);
      req.off("end", onEnd);
      req.off("close", onClose);
      resolve(result);
    };
    const over = (error: DbError | null) => done({ kind: "over", outcome: error && new WriteFailure(error, 0) });
    let whole: Buffer | null = null;
    const onData = (chunk: Buffer) => {
      // All of it: the request's 'end' follows at once (node:http has the whole message).
      // It is still awaited: every small request, empty or not, then goes on from its
      // 'end', so requests pipelined on one connection reach the engine in their order.
      if (chunk.length >= length) whole = chunk;
      else {
        req.pause();
        done({ kind: "part", chunk });
      }
    };
    const onEnd = () => done({ kind: "whole", body: whole ?? new Uint8Array(0) });
    const onClose = () => {
      if (!req.readableEnded) over(null);
    };
    onStop(() => over(errors.shuttingDown()));
    req.on("data", onData);
    req.on("end", onEnd);
    req.on("close", onClose);
    // A body that came with the head has flowed by the next tick (its 'data' was queued
    // first, by req.on above); only one still missing then needs the silence timer.
    process.nextTick(() => {
      if (waiting && whole === null) idle = idleTimer(ctx, () => over(silent(ctx)));
    });
  });
}

/** Any other body: streamed through a Writer, with backpressure. */
async function writeStreamed(
  ctx: ServerContext,
  req: IncomingMessage,
  p: RouteParams,
  opts: WriteOptions,
  first: Buffer | undefined,
  onStop: (fn: () => void) => void,
): Promise<Outcome> {
  const writer = await ctx.engine.openWriter(p.itemId, p.version, opts);
  onStop(() => writer.interrupt(errors.shuttingDown()));
  const idle = idleTimer(ctx, () => writer.interrupt(silent(ctx)));
  const room = first === undefined || writer.push(first);
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
  // Paused after its first chunk, the body flows again now that the writer listens (or
  // at its 'drain', if that chunk already filled it).
  else if (first && room) req.resume();
  try {
    return await writer.result;
  } catch (err) {
    return asOutcome(err);
  } finally {
    clearTimeout(idle);
  }
}

/** Bodies may legitimately stream slowly, so the limit is on silence, not on duration. */
function idleTimer(ctx: ServerContext, onSilence: () => void): NodeJS.Timeout {
  return setTimeout(onSilence, ctx.config.bodyIdleTimeoutMs);
}

function silent(ctx: ServerContext): DbError {
  const ms = ctx.config.bodyIdleTimeoutMs;
  return errors.bodySilent(ms);
}

/** The body's length when the request declares it (node:http has checked it is exact). */
function bodyLength(req: IncomingMessage): number | undefined {
  if (req.headers["transfer-encoding"] !== undefined) return undefined;
  const n = Number(req.headers["content-length"] ?? 0);
  return Number.isSafeInteger(n) && n >= 0 ? n : undefined;
}
