import type { Binding } from "../../engine/index.js";

/**
 * A version's schema as answers show it (README, "Schemas"): `,"schema":{"type","version"}`
 * after a version's fields, or nothing for a version without one.
 */
export function schemaField(b: Binding | undefined): string {
  return b === undefined ? "" : `,"schema":{"type":${JSON.stringify(b.type)},"version":${b.schemaVersion}}`;
}

/** The same as response headers, for every read format. */
export function schemaHeaders(b: Binding | undefined): Record<string, string> {
  return b === undefined ? {} : { "X-Schema-Type": b.type, "X-Schema-Version": String(b.schemaVersion) };
}
