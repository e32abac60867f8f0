import { HttpError } from "./errors.js";

/** Query and header values shared by the handlers, each checked once. */

export function booleanParam(query: URLSearchParams, name: string, fallback: boolean): boolean {
  const raw = query.get(name);
  if (raw === null) return fallback;
  if (raw === "true" || raw === "1") return true;
  if (raw === "false" || raw === "0") return false;
  throw new HttpError("invalid_parameter", `?${name} must be true or false, got "${raw}"`);
}

export function offsetValue(what: string, raw: string): number {
  const n = /^[0-9]{1,16}$/.test(raw.trim()) ? Number(raw.trim()) : Number.NaN;
  if (!Number.isSafeInteger(n))
    throw new HttpError("invalid_parameter", `${what} must be a byte offset (a non-negative integer), got "${raw}"`);
  return n;
}

/** `Range: bytes=N-` gives N; any other form of Range is ignored (RFC 9110 allows it). */
export function rangeStart(header: string | undefined): number | undefined {
  if (!header) return undefined;
  const m = /^\s*bytes\s*=\s*([0-9]{1,16})\s*-\s*$/.exec(header);
  return m ? offsetValue("Range", m[1]) : undefined;
}

const XML_TYPES = new Set(["application/xml", "text/xml"]);

/** Throws unsupported_media_type unless the body is declared as XML in UTF-8. */
export function checkXmlContentType(header: string | undefined): void {
  if (header === "application/xml" || header === "text/xml") return; // the usual case, checked per request
  const [essence, ...params] = (header ?? "").split(";");
  if (!XML_TYPES.has(essence.trim().toLowerCase())) {
    throw new HttpError(
      "unsupported_media_type",
      `Content-Type must be application/xml or text/xml, got "${header ?? ""}"`,
    );
  }
  for (const param of params) {
    const [name, value = ""] = param.split("=");
    const charset = value.trim().replace(/^"|"$/g, "").toLowerCase();
    if (name.trim().toLowerCase() === "charset" && charset !== "utf-8" && charset !== "utf8") {
      throw new HttpError("unsupported_media_type", `only charset=utf-8 is supported, got "${value.trim()}"`);
    }
  }
}
