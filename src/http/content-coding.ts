import type { IncomingMessage, ServerResponse } from "node:http";
import * as zlib from "node:zlib";
import Negotiator from "negotiator";

/**
 * `Accept-Encoding` on reads (README, "Compression"): gzip or br, by q-value, br at equal
 * q. The body goes through a compressor flushed after every write, so a live reader
 * gets each committed property at once, never held back for a fuller block; a catch-up
 * read writes large chunks, and so compresses in large blocks. A request with `Range`
 * gets no coding: its range is of the file's bytes.
 */

export type ContentCoding = "gzip" | "br";

const OFFERED = ["br", "gzip", "identity"];

export function contentCoding(req: IncomingMessage): ContentCoding | null {
  const header = req.headers["accept-encoding"];
  if (header === undefined || req.headers.range !== undefined || req.method === "HEAD") return null;
  // negotiator 1.x takes `preferred` (its types predate it): the order between equal q-values.
  const negotiate = new Negotiator(req) as unknown as {
    encoding(available: string[], opts: { preferred: string[] }): string | undefined;
  };
  const chosen = negotiate.encoding(OFFERED, { preferred: OFFERED });
  return chosen === "br" || chosen === "gzip" ? chosen : null;
}

/** Where a read's body goes: the response itself, or a compressor in front of it. */
export interface BodySink {
  /** false: stop until 'drain'. */
  write(chunk: string | Buffer): boolean;
  onDrain(fn: () => void): void;
  end(last?: string): void;
  /** The read stopped short: send what was written, then close without ending the body. */
  cut(): void;
}

export function plainSink(res: ServerResponse, cut: (res: ServerResponse) => void): BodySink {
  return {
    write: (chunk) => res.write(chunk),
    onDrain: (fn) => res.on("drain", fn),
    end: (last) => res.end(last),
    cut: () => cut(res),
  };
}

/** Level 5 gzip and quality 4 brotli: a live stream's coding must keep up with its writes. */
export function encodedSink(res: ServerResponse, coding: ContentCoding, cut: (res: ServerResponse) => void): BodySink {
  const z =
    coding === "gzip"
      ? zlib.createGzip({ level: 5 })
      : zlib.createBrotliCompress({ params: { [zlib.constants.BROTLI_PARAM_QUALITY]: 4 } });
  z.on("data", (out: Buffer) => {
    if (!res.write(out)) z.pause();
  });
  res.on("drain", () => z.resume());
  res.on("close", () => z.destroy());
  z.on("error", () => res.destroy());
  // After end or cut nothing more may go in (a keep-alive timer may still fire): a write
  // to an ended zlib stream throws.
  let open = true;
  let cutShort = false;
  z.on("end", () => {
    if (!cutShort) res.end();
  });
  // A sync flush keeps the dictionary: records of a stream compress against the ones before.
  const flushKind = coding === "gzip" ? zlib.constants.Z_SYNC_FLUSH : zlib.constants.BROTLI_OPERATION_FLUSH;
  return {
    write: (chunk) => {
      if (!open) return true;
      const room = z.write(chunk);
      z.flush(flushKind);
      return room;
    },
    onDrain: (fn) => z.on("drain", fn),
    end: (last) => {
      if (!open) return;
      open = false;
      if (last) z.write(last);
      z.end();
    },
    cut: () => {
      if (!open) return;
      open = false;
      cutShort = true;
      z.flush(flushKind, () => setImmediate(() => cut(res)));
    },
  };
}
