import { encodeValue } from "../format/value-order.js";
import type { Compatibility, PropertyRules, SchemaDocument } from "./schema-document.js";

/**
 * Whether a new schema version may follow the latest (README, "Schemas"), in the sense of
 * schema registries: `backward`, every document valid under the old version is valid
 * under the new one (rules may loosen, optional properties may be added); `forward`, the
 * reverse; `full`, both; `none`, no check. A change of a property's type breaks the three.
 * Each change that breaks the mode is listed.
 */

export interface Change {
  property: string;
  change: string;
}

export function incompatibleChanges(older: SchemaDocument, newer: SchemaDocument, mode: Compatibility): Change[] {
  if (mode === "none") return [];
  const found: Change[] = [];
  if (mode === "backward" || mode === "full") found.push(...narrowings(older, newer));
  if (mode === "forward" || mode === "full") {
    for (const c of narrowings(newer, older))
      if (!found.some((f) => f.property === c.property && f.change === c.change)) found.push(c);
  }
  return found;
}

/** What `to` refuses that `from` accepts: each is a reason documents valid under `from` fail `to`. */
function narrowings(from: SchemaDocument, to: SchemaDocument): Change[] {
  const out: Change[] = [];
  if (from.additionalProperties && !to.additionalProperties) {
    out.push({ property: "*", change: "additional_properties went from true to false" });
  }
  for (const [name, before] of Object.entries(from.properties)) {
    const after = to.properties[name];
    if (!after) {
      if (!to.additionalProperties)
        out.push({ property: name, change: "removed, and other properties are not allowed" });
      continue;
    }
    out.push(...propertyNarrowings(name, before, after));
  }
  for (const [name, after] of Object.entries(to.properties)) {
    if (!from.properties[name] && after.required) out.push({ property: name, change: "added as required" });
  }
  return out;
}

function propertyNarrowings(name: string, a: PropertyRules, b: PropertyRules): Change[] {
  const out: Change[] = [];
  const say = (change: string) => out.push({ property: name, change });
  if (a.type !== b.type) {
    say(`type changed from ${a.type} to ${b.type}`);
    return out;
  }
  if (!a.required && b.required) say("became required");
  if (a.repeated && !b.repeated) say("may no longer repeat");
  if (b.maxLength !== undefined && (a.maxLength === undefined || b.maxLength < a.maxLength)) {
    say(`max_length ${a.maxLength === undefined ? "added" : "lowered"}: ${b.maxLength}`);
  }
  if (b.pattern !== undefined && b.pattern !== a.pattern)
    say(`pattern ${a.pattern === undefined ? "added" : "changed"}`);
  if (b.enum !== undefined && (a.enum === undefined || a.enum.some((v) => !b.enum?.includes(v)))) {
    say(a.enum === undefined ? "enum added" : "enum lost values");
  }
  if (b.maxBytes !== undefined && (a.maxBytes === undefined || b.maxBytes < a.maxBytes)) {
    say(`max_bytes ${a.maxBytes === undefined ? "added" : "lowered"}: ${b.maxBytes}`);
  }
  if (a.type === "number" && !a.integer && b.integer) say("became integer only");
  if (a.type === "number" || a.type === "datetime") {
    const kind = a.type;
    const cmp = (x: string, y: string) => Buffer.compare(encodeValue(kind, x), encodeValue(kind, y));
    if (b.min !== undefined && (a.min === undefined || cmp(b.min, a.min) > 0))
      say(`min ${a.min === undefined ? "added" : "raised"}: ${b.min}`);
    if (b.max !== undefined && (a.max === undefined || cmp(b.max, a.max) < 0))
      say(`max ${a.max === undefined ? "added" : "lowered"}: ${b.max}`);
  }
  return out;
}
