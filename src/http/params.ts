import { errors } from "../core/errors.js";

/** Query and header values shared by the handlers, each checked once. */

/** Shared by every request without a query string; handlers only read it. */
const NO_QUERY = new URLSearchParams();

/**
 * The raw path and the query of a request. Not `new URL()`: that would resolve "..",
 * "%2e%2e" and friends, and a name should be refused for what it is, not silently
 * turned into another path.
 */
export interface RequestTarget {
  pathname: string;
  query: URLSearchParams;
}

export function requestTarget(req: { url?: string }): RequestTarget {
  const target = req.url ?? "/";
  const q = target.indexOf("?");
  return q < 0
    ? { pathname: target, query: NO_QUERY }
    : { pathname: target.slice(0, q), query: new URLSearchParams(target.slice(q + 1)) };
}

/** Throws method_not_allowed, its Allow header set, unless the request's method is one of `allowed`. */
export function allowMethods(
  req: { method?: string },
  res: { setHeader(name: string, value: string): unknown },
  allowed: string[],
): void {
  if (allowed.includes(req.method ?? "")) return;
  res.setHeader("Allow", allowed.join(", "));
  throw errors.methodNotAllowed(req.method, allowed);
}

/** A path segment percent-decoded; one that does not decode becomes NUL, which no name allows. */
export function decodeSegment(raw: string): string {
  if (!raw.includes("%")) return raw;
  try {
    return decodeURIComponent(raw);
  } catch {
    return "\u0000";
  }
}

export function booleanParam(query: URLSearchParams, name: string, fallback: boolean): boolean {
  const raw = query.get(name);
  if (raw === null) return fallback;
  if (raw === "true" || raw === "1") return true;
  if (raw === "false" || raw === "0") return false;
  throw errors.invalidBoolean(name, raw);
}

export function offsetValue(what: string, raw: string): number {
  const n = /^[0-9]{1,16}$/.test(raw.trim()) ? Number(raw.trim()) : Number.NaN;
  if (!Number.isSafeInteger(n)) throw errors.invalidOffset(what, raw);
  return n;
}

/**
 * One byte range of a `Range` header (RFC 9110 14.1.2): `bytes=A-` (from A on, live on an
 * open version), `bytes=A-B` (A to B inclusive) or `bytes=-N` (the last N bytes). Several
 * ranges, other units and malformed ones give undefined: the header is ignored and the
 * whole stream is sent, as RFC 9110 allows.
 */
export type ByteRange = { first: number; last?: number } | { suffix: number };

export function byteRange(header: string | undefined): ByteRange | undefined {
  if (!header) return undefined;
  const m = /^\s*bytes\s*=\s*([0-9]*)\s*-\s*([0-9]*)\s*$/i.exec(header);
  if (!m || (m[1] === "" && m[2] === "")) return undefined;
  if (m[1] === "") return { suffix: position(m[2]) };
  const first = position(m[1]);
  if (m[2] === "") return { first };
  const last = position(m[2]);
  return last < first ? undefined : { first, last };
}

/** A Range position of any length: past 2^53 - 1 it is past any end, and taken as that. */
function position(digits: string): number {
  return digits.length > 16 ? Number.MAX_SAFE_INTEGER : Math.min(Number(digits), Number.MAX_SAFE_INTEGER);
}

const XML_TYPES = new Set(["application/xml", "text/xml"]);

/** Throws unsupported_media_type unless the body is declared as XML in UTF-8. */
export function checkXmlContentType(header: string | undefined): void {
  if (header === "application/xml" || header === "text/xml") return; // the usual case, checked per request
  const [essence, ...params] = (header ?? "").split(";");
  if (!XML_TYPES.has(essence.trim().toLowerCase())) {
    throw errors.unsupportedMediaType(header);
  }
  for (const param of params) {
    const [name, value = ""] = param.split("=");
    const charset = value.trim().replace(/^"|"$/g, "").toLowerCase();
    if (name.trim().toLowerCase() === "charset" && charset !== "utf-8" && charset !== "utf8") {
      throw errors.unsupportedCharset(value.trim());
    }
  }
}

/**
 * `?properties=a,b` (repeatable): the names a read keeps, or null for all. Split on the
 * commas of the raw query before each name is percent-decoded, so `%2C` is a comma in a name.
 */
export function propertyNames(url: string): Set<string> | null {
  const q = url.indexOf("?");
  if (q < 0 || !url.includes("properties=", q)) return null;
  let names: Set<string> | null = null;
  for (const pair of url.slice(q + 1).split("&")) {
    const eq = pair.indexOf("=");
    if (eq < 0 || decodeQuery(pair.slice(0, eq)) !== "properties") continue;
    names ??= new Set();
    for (const raw of pair.slice(eq + 1).split(",")) {
      const name = decodeQuery(raw);
      if (name === "") throw errors.invalidPropertyNames(pair.slice(eq + 1));
      names.add(name);
    }
  }
  return names;
}

function decodeQuery(raw: string): string {
  try {
    return decodeURIComponent(raw.replace(/\+/g, " "));
  } catch {
    throw errors.invalidPropertyNames(raw);
  }
}
