import { createServer, type IncomingMessage, type Server, type ServerResponse } from "node:http";
import type { Duplex } from "node:stream";
import { v4 as uuidv4 } from "uuid";
import { ReaderGone } from "../engine/index.js";
import type { ServerContext } from "./context.js";
import { errorResponseBytes, sendError } from "./error-status.js";

/**
 * Routes a request: the protocol's promise for it, or a throw for a request refused
 * before any handler runs (404, 405, a bad name).
 */
export type Route = (ctx: ServerContext, req: IncomingMessage, res: ServerResponse, requestId: string) => Promise<void>;

export function createApp(ctx: ServerContext, route: Route): Server {
  const { config } = ctx;
  const server = createServer(
    {
      noDelay: true,
      keepAliveTimeout: 10_000,
      maxHeaderSize: config.maxHeaderBytes,
      headersTimeout: config.headersTimeoutMs,
      // Bodies may stream for hours; a silent body is cut by the write handler instead.
      requestTimeout: 0,
      connectionsCheckingInterval: Math.min(1000, Math.ceil(config.headersTimeoutMs / 2)),
    },
    (req, res) => {
      // Sent with each answer's head (sendJson, the read handler), not set here.
      const requestId = uuidv4();
      const fail = (err: unknown) => {
        // The client is gone (e.g. a reader that hung up while waiting): nobody to tell.
        if (res.destroyed || err instanceof ReaderGone) return;
        if (!req.complete) {
          res.setHeader("Connection", "close");
          req.resume();
        }
        sendError(ctx.log, res, requestId, err);
      };
      // A refusal is answered a microtask later, as a rejection, never from inside the
      // 'request' event: by then node:http has finished reading a bodiless request, so the
      // connection stays open for the requests pipelined behind it.
      let handled: Promise<void>;
      try {
        handled = route(ctx, req, res, requestId);
      } catch (err) {
        handled = Promise.reject(err);
      }
      handled.catch(fail);
    },
  );
  server.on("clientError", (err: NodeJS.ErrnoException, socket) => answerClientError(err, socket));
  return server;
}

/**
 * node:http's own fields, which its default clientError handler reads too (no public API
 * has them): the response it is writing on this socket, and whether any of it went out.
 */
type HttpSocket = Duplex & { _httpMessage?: (ServerResponse & { _headerSent?: boolean }) | null };

/**
 * A request the HTTP parser refused: answer in JSON like everything else, then close.
 * Whole requests before it on the connection are answered first: a body longer than
 * its Content-Length commits what it declared, and its excess fails as the next request,
 * so that answer waits until theirs are out. Only an answer part-way out, a live read
 * say, cannot be followed: then the connection is cut.
 */
function answerClientError(err: NodeJS.ErrnoException, socket: Duplex): void {
  // The parser reports its error again for every later read.
  if (refused.has(socket)) return;
  refused.add(socket);
  answerWhenFree(err, socket);
}

const refused = new WeakSet<Duplex>();

function answerWhenFree(err: NodeJS.ErrnoException, socket: Duplex): void {
  const pending = (socket as HttpSocket)._httpMessage;
  if (!socket.writable || (pending?._headerSent && !pending.writableEnded)) {
    socket.destroy();
    return;
  }
  // A request whose own body the error cut off is answered now, as it always was.
  if (pending?.req.complete) {
    // The socket keeps reading, so a client that leaves meanwhile (a reader waiting for a
    // version, say) frees what its requests hold at once.
    if (!socket.listeners("end").includes(destroySocket)) socket.once("end", destroySocket);
    // By 'close', node:http has moved on to the next response in line, if any.
    pending.once("close", () => answerWhenFree(err, socket));
    return;
  }
  const [status, text, code, message] =
    err.code === "HPE_HEADER_OVERFLOW"
      ? [
          431,
          "Request Header Fields Too Large",
          "header_too_large",
          "the request head is larger than --max-header-bytes",
        ]
      : err.code === "ERR_HTTP_REQUEST_TIMEOUT"
        ? [408, "Request Timeout", "request_timeout", "the request head did not arrive within --headers-timeout"]
        : [400, "Bad Request", "bad_request", `malformed HTTP request (${err.code ?? err.message})`];
  socket.end(errorResponseBytes(status, text, code, message));
  // The peer has a moment to read the answer and close; one that never does is cut, so a
  // refused connection holds nothing (nor a shutdown) for long.
  const cut = setTimeout(() => socket.destroy(), REFUSED_LINGER_MS).unref();
  socket.once("close", () => clearTimeout(cut));
}

const REFUSED_LINGER_MS = 1000;

function destroySocket(this: Duplex): void {
  this.destroy();
}
