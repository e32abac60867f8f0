import type { IncomingMessage } from "node:http";
import Negotiator from "negotiator";
import { errors } from "../../engine/index.js";

/**
 * The formats a read is served in (README, "Reading values"): the raw XML of the data
 * file, or typed records. `?format=` wins; otherwise `Accept`, q-values and all (through
 * negotiator); `*` or no Accept means XML.
 */

export const READ_FORMATS = ["xml", "ndjson", "sse", "json"] as const;
export type ReadFormat = (typeof READ_FORMATS)[number];

export const MEDIA_TYPE: Record<ReadFormat, string> = {
  xml: "application/xml; charset=utf-8",
  ndjson: "application/x-ndjson",
  sse: "text/event-stream",
  json: "application/json; charset=utf-8",
};

/** Media types offered to Accept, in order of preference; text/xml is XML too. */
const OFFERED = ["application/xml", "text/xml", "application/x-ndjson", "text/event-stream", "application/json"];
const FORMAT_OF: Record<string, ReadFormat> = {
  "application/xml": "xml",
  "text/xml": "xml",
  "application/x-ndjson": "ndjson",
  "text/event-stream": "sse",
  "application/json": "json",
};

export function readFormat(req: IncomingMessage, query: URLSearchParams): ReadFormat {
  const asked = query.get("format");
  if (asked !== null) {
    if (!(READ_FORMATS as readonly string[]).includes(asked)) throw errors.invalidFormat(asked, [...READ_FORMATS]);
    return asked as ReadFormat;
  }
  const accept = req.headers.accept;
  // The usual raw reader sends none, or curl's */*: no negotiation for it.
  if (accept === undefined || accept === "*/*") return "xml";
  const chosen = new Negotiator(req).mediaType(OFFERED);
  if (chosen === undefined) throw errors.notAcceptable(accept, OFFERED);
  return FORMAT_OF[chosen];
}
