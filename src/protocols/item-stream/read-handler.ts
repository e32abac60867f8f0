import type { IncomingMessage, ServerResponse } from "node:http";
import type { Duplex, Readable } from "node:stream";
import { type Binding, errors, type ReadOptions } from "../../engine/index.js";
import { ITEM_CLOSE, ITEM_OPEN } from "../../format/item-file.js";
import { LineSplitter, type PropertyRecord } from "../../format/records.js";
import { type BodySink, contentCoding, encodedSink, plainSink } from "../../http/content-coding.js";
import type { RouteParams, ServerContext } from "../../http/context.js";
import { booleanParam, byteRange, offsetValue, propertyNames } from "../../http/params.js";
import { sseKeepAlive } from "../../http/sse-keepalive.js";
import { schemaHeaders } from "../schemas/binding-json.js";
import { MEDIA_TYPE, type ReadFormat, readFormat } from "./formats.js";
import { type RecordView, recordView, sharedBytes } from "./record-views.js";

/**
 * GET and HEAD /read-item-stream/{item_id}/{version}. Headers wait until the version
 * exists (a reader may come first); then the committed bytes stream out, then every new
 * byte as it is committed, until the version is sealed.
 */
export async function handleRead(
  ctx: ServerContext,
  req: IncomingMessage,
  res: ServerResponse,
  p: RouteParams,
): Promise<void> {
  const { format, names, resumed, decode, options } = readRequest(req, p);
  const typed = options.typed === true;
  if (options.snapshot && format === "json") return sendSnapshot(ctx, req, res, p, names, decode);

  const release = admitReader(ctx, `${p.itemId}_${p.version}`);
  // Needed only while the open waits; dropped after, as idle readers may be many.
  let opening: AbortController | null = new AbortController();
  const { signal } = opening;
  let stream: ReadStream | null = null;
  whenGone(req, res, () => {
    release();
    opening?.abort();
    stream?.destroy();
    sseKeepAlive.delete(res);
  });
  const session = await ctx.engine.openReader(p.itemId, p.version, { ...options, signal });
  opening = null;
  if (signal.aborted || res.destroyed) {
    session.close();
    return;
  }

  // An EventSource reconnects whenever its stream ends, also after the seal: a 204 is
  // what makes it stop (the SSE spec), once it has had everything.
  if (resumed && session.sealed && session.start >= session.length - ITEM_CLOSE.length) {
    session.close();
    res.writeHead(204, { "X-Request-Id": p.requestId, Vary: "Accept" });
    res.end();
    return;
  }

  // A Range request whose end is known gets a proper 206 (never empty: that is a 416); a
  // live stream cannot say where it ends, so it answers 200 and names its first byte in
  // X-Stream-Offset.
  const partial = options.range === true && session.end !== null;
  const schema = ctx.engine.bindingOf(p.itemId, p.version);
  const headers = readHeaders(format, p.requestId, session.start, session.sealed, session.length, schema);
  const coding = contentCoding(req);
  headers.Vary = "Accept, Accept-Encoding";
  if (coding) headers["Content-Encoding"] = coding;
  else if (session.end !== null && !typed) headers["Content-Length"] = session.end - session.start;
  if (partial && session.end !== null) {
    headers["Content-Range"] = `bytes ${session.start}-${session.end - 1}/${session.length}`;
  }
  res.writeHead(partial ? 206 : 200, headers);
  if (req.method === "HEAD") {
    session.close();
    res.end();
    return;
  }
  res.flushHeaders();
  stream = session.stream();
  const sink = coding ? encodedSink(res, coding, cut) : plainSink(res, cut);
  const destroy = () => res.destroy();
  if (!typed) return forward(stream, sink, destroy);
  if (format === "sse") sseKeepAlive.add(res, (text) => sink.write(text));
  const view = recordView(format, {
    itemId: p.itemId,
    version: p.version,
    sealed: session.sealed,
    start: session.start,
    schema,
    decode,
  });
  let prelude = "";
  if (session.snapshot) {
    for (const r of session.snapshot) if (names === null || names.has(r.name)) prelude += view.snapshotRecord(r);
    prelude += view.upToDate(session.start);
  }
  forwardRecords(stream, sink, destroy, format, view, names, session.start, prelude);
}

/**
 * ?snapshot=true as one JSON document: the newest record of each name, of the bytes
 * from the end of `<item>\n` (`offset`) to the boundary the snapshot was taken at (`next`).
 */
async function sendSnapshot(
  ctx: ServerContext,
  req: IncomingMessage,
  res: ServerResponse,
  p: RouteParams,
  names: Set<string> | null,
  decode: boolean,
): Promise<void> {
  const read = await ctx.engine.readProperties(p.itemId, p.version, { latest: true });
  if (read.state.kind !== "open" && read.state.kind !== "sealed") throw errors.versionNotFound(p.itemId, p.version);
  const schema = ctx.engine.bindingOf(p.itemId, p.version);
  const view = recordView("json", {
    itemId: p.itemId,
    version: p.version,
    sealed: read.state.kind === "sealed",
    start: ITEM_OPEN.length,
    schema,
    decode,
  });
  let body = view.begin();
  for (const r of read.records) if (names === null || names.has(r.name)) body += view.snapshotRecord(r);
  body += view.end(null, read.at);
  const headers = readHeaders("json", p.requestId, read.at, read.state.kind === "sealed", read.state.length, schema);
  headers["Content-Length"] = Buffer.byteLength(body);
  res.writeHead(200, headers);
  res.end(req.method === "HEAD" ? undefined : body);
}

/** The head every read answer has: its format, and where the stream starts and stands. */
function readHeaders(
  format: ReadFormat,
  requestId: string,
  start: number,
  sealed: boolean,
  length: number,
  schema: Binding | undefined,
): Record<string, string | number> {
  return {
    ...schemaHeaders(schema),
    "Content-Type": MEDIA_TYPE[format],
    Vary: "Accept",
    "Cache-Control": "no-store",
    "X-Content-Type-Options": "nosniff",
    "X-Request-Id": requestId,
    "X-Stream-Offset": start,
    "X-Stream-Sealed": String(sealed),
    "X-Stream-Length": length,
  };
}

/** A read's query and headers, each checked once: its format, filter and engine options. */
function readRequest(
  req: IncomingMessage,
  p: RouteParams,
): { format: ReadFormat; names: Set<string> | null; resumed: boolean; decode: boolean; options: ReadOptions } {
  const format = readFormat(req, p.query);
  const names = propertyNames(req.url ?? "");
  // Records, not bytes: typed formats, and XML filtered by ?properties.
  const typed = format !== "xml" || names !== null;
  // An EventSource that reconnects says where it was: that wins over ?offset.
  const lastEventId = format === "sse" ? req.headers["last-event-id"] : undefined;
  const resumed = typeof lastEventId === "string" && lastEventId !== "";
  const rawOffset = resumed ? (lastEventId as string) : p.query.get("offset");
  // A reconnect resumes after the snapshot it had (its last id is at or past it).
  const snapshot = booleanParam(p.query, "snapshot", false) && !resumed;
  if (snapshot && format === "xml") throw errors.snapshotNeedsRecords();
  if (snapshot && rawOffset !== null) throw errors.snapshotWithOffset();
  // ?offset wins over Range; a Range is only read without it, and only as bytes.
  const range = rawOffset === null && !typed ? byteRange(req.headers.range) : undefined;
  const offset =
    rawOffset !== null
      ? offsetValue(resumed ? "Last-Event-ID" : "?offset", rawOffset)
      : range && "first" in range
        ? range.first
        : 0;
  const last = range && "last" in range ? range.last : undefined;
  const suffix = range && "suffix" in range ? range.suffix : undefined;
  // A JSON document is what is committed now.
  const follow = booleanParam(p.query, "follow", true) && format !== "json";
  // Only a live GET waits for a version to exist: a snapshot, a bounded range and HEAD
  // answer at once, so they can check whether it exists.
  const bounded = last !== undefined || suffix !== undefined;
  const wait = booleanParam(p.query, "wait", true) && follow && !bounded && req.method !== "HEAD";
  return {
    format,
    names,
    resumed,
    decode: booleanParam(p.query, "decode", true),
    options: { offset, last, suffix, range: range !== undefined, typed, follow, wait, snapshot },
  };
}

/**
 * A read as records: the stream's bytes cut into properties (format/records.ts), kept if
 * ?properties names them, and framed by the format's view. Records go out as their lines
 * complete; a reader that stops reading pauses the byte stream, as a raw one does.
 */
function forwardRecords(
  stream: ReadStream,
  res: BodySink,
  destroy: () => void,
  format: ReadFormat,
  view: RecordView,
  names: Set<string> | null,
  start: number,
  prelude: string,
): void {
  const splitter = new LineSplitter();
  let pos = start;
  let next = start;
  const head = view.begin() + prelude;
  if (head) res.write(head);
  const own = (records: PropertyRecord[]) => {
    let text = "";
    for (const r of records) if (names === null || names.has(r.name)) text += view.record(r);
    return text;
  };
  stream.on("data", (chunk: Buffer) => {
    let records: PropertyRecord[];
    try {
      records = splitter.push(chunk, pos);
    } catch (err) {
      stream.destroy(err as Error);
      return;
    }
    pos += chunk.length;
    if (records.length === 0) return;
    next = records[records.length - 1].next;
    const out = names === null && view.shareable ? sharedBytes(format, view, records) : own(records);
    if (out.length > 0 && !res.write(out)) stream.pause();
  });
  res.onDrain(() => stream.resume());
  stream.on("end", () => {
    if (stream.interrupted) return res.cut();
    res.end(view.end(splitter.sealedAt, next));
  });
  stream.on("error", destroy);
}

/**
 * Runs `fn` once the answer is over, or its client gone. An answer queued behind another
 * on its connection (pipelined) has no socket yet, and node:http 20 never closes it when
 * the connection goes, so those also wait on the connection's own 'close'.
 */
function whenGone(req: IncomingMessage, res: ServerResponse, fn: () => void): void {
  let queued: Set<() => void> | undefined;
  let done = false;
  const run = () => {
    if (done) return;
    done = true;
    queued?.delete(run);
    fn();
  };
  res.once("close", run);
  if (res.socket) return;
  queued = queuedAnswers.get(req.socket);
  if (!queued) {
    const answers = new Set<() => void>();
    queuedAnswers.set(req.socket, answers);
    req.socket.once("close", () => {
      for (const answer of answers) answer();
    });
    queued = answers;
  }
  queued.add(run);
}

/** A read session's byte stream: it knows, once ended, whether it ended short. */
type ReadStream = Readable & { readonly interrupted: boolean };

const queuedAnswers = new WeakMap<Duplex, Set<() => void>>();

/**
 * stream.pipe(res) with the few listeners this needs: an idle reader is mostly its
 * listeners and closures, and there may be ten thousand of them. (The stream is destroyed
 * by whenGone's callback when the answer closes.)
 */
function forward(stream: ReadStream, res: BodySink, destroy: () => void): void {
  stream.on("data", (chunk: Buffer) => {
    if (!res.write(chunk)) stream.pause();
  });
  res.onDrain(() => stream.resume());
  stream.on("end", () => (stream.interrupted ? res.cut() : res.end()));
  stream.on("error", destroy);
}

/**
 * Ends a read that stopped short of its end (a shutdown) as an incomplete transfer: the
 * bytes written so far go out, then the connection closes without the terminating chunk,
 * so every HTTP client reports the read as cut (curl exits 18) and can resume with
 * ?offset=. (res.destroy() would drop what is still queued on the socket.)
 */
function cut(res: ServerResponse): void {
  const socket = res.socket;
  if (!socket) {
    res.destroy();
    return;
  }
  socket.end();
}

/** Counts the read against --max-readers and --max-readers-per-version; 503 past them. */
function admitReader(ctx: ServerContext, key: string): () => void {
  const { readers, config } = ctx;
  const mine = readers.byVersion.get(key) ?? 0;
  if (readers.total >= config.maxReaders) {
    throw errors.tooManyReaders(config.maxReaders, "--max-readers");
  }
  if (mine >= config.maxReadersPerVersion) {
    throw errors.tooManyReaders(config.maxReadersPerVersion, "--max-readers-per-version");
  }
  readers.total++;
  readers.byVersion.set(key, mine + 1);
  return () => {
    readers.total--;
    const left = (readers.byVersion.get(key) ?? 1) - 1;
    if (left === 0) readers.byVersion.delete(key);
    else readers.byVersion.set(key, left);
  };
}
