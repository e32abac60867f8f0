import { setFlagsFromString } from "node:v8";
import { errors } from "../core/errors.js";

/**
 * A schema document (README, "Schemas"), checked once at PUT into a frozen shape:
 *   {"properties":{NAME:{"type":T, RULES...}}, "additional_properties":bool, "compatibility":MODE}
 * Every refusal is invalid_schema with the JSON path of the bad part. A string's `pattern`
 * must compile for V8's linear-time engine (no backreferences, no lookaround): a pattern
 * that engine cannot run is refused here, so that a match can always move to it.
 */

export type PropertyKind = "string" | "number" | "boolean" | "datetime" | "binary";
export type Compatibility = "backward" | "forward" | "full" | "none";

export interface PropertyRules {
  type: PropertyKind;
  required: boolean;
  repeated: boolean;
  maxLength?: number;
  pattern?: string;
  enum?: string[];
  min?: string;
  max?: string;
  integer?: boolean;
  maxBytes?: number;
}

export interface SchemaDocument {
  properties: Record<string, PropertyRules>;
  additionalProperties: boolean;
  compatibility: Compatibility | undefined;
}

const KINDS: readonly PropertyKind[] = ["string", "number", "boolean", "datetime", "binary"];
const MODES: readonly Compatibility[] = ["backward", "forward", "full", "none"];
const COMMON = ["type", "required", "repeated"];
const RULES_OF: Record<PropertyKind, string[]> = {
  string: [...COMMON, "max_length", "pattern", "enum"],
  number: [...COMMON, "min", "max", "integer"],
  boolean: COMMON,
  datetime: [...COMMON, "min", "max"],
  binary: [...COMMON, "max_bytes"],
};
const NUMBER = /^-?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)?$/;
const DATETIME = /^(\d{4})-(\d{2})-(\d{2})[Tt](\d{2}):(\d{2}):(\d{2})(\.\d+)?([Zz]|([+-])(\d{2}):(\d{2}))$/;

export function parseSchemaDocument(text: string): SchemaDocument {
  let doc: unknown;
  try {
    doc = JSON.parse(text);
  } catch (err) {
    throw errors.invalidSchema("", `the body is not JSON: ${(err as Error).message}`);
  }
  if (!isObject(doc)) throw errors.invalidSchema("", "a schema is a JSON object");
  for (const key of Object.keys(doc)) {
    if (!["properties", "additional_properties", "compatibility"].includes(key)) {
      throw errors.invalidSchema(`/${pointerSegment(key)}`, `unknown field "${key}"`);
    }
  }
  if (!isObject(doc.properties)) throw errors.invalidSchema("/properties", "properties must be an object of names");
  const properties: Record<string, PropertyRules> = {};
  for (const [name, rules] of Object.entries(doc.properties)) {
    properties[name] = propertyRules(`/properties/${pointerSegment(name)}`, rules);
  }
  const extra = doc.additional_properties;
  if (extra !== undefined && typeof extra !== "boolean") {
    throw errors.invalidSchema("/additional_properties", "additional_properties must be true or false");
  }
  const mode = doc.compatibility;
  if (mode !== undefined && !MODES.includes(mode as Compatibility)) {
    throw errors.invalidSchema("/compatibility", `compatibility must be one of ${MODES.join(", ")}`);
  }
  return Object.freeze({
    properties,
    additionalProperties: extra ?? true,
    compatibility: mode as Compatibility | undefined,
  });
}

function propertyRules(path: string, raw: unknown): PropertyRules {
  if (!isObject(raw)) throw errors.invalidSchema(path, "a property's rules are a JSON object");
  const type = raw.type;
  if (!KINDS.includes(type as PropertyKind)) {
    throw errors.invalidSchema(`${path}/type`, `type must be one of ${KINDS.join(", ")}`);
  }
  const kind = type as PropertyKind;
  for (const key of Object.keys(raw)) {
    if (!RULES_OF[kind].includes(key)) {
      const other = KINDS.some((k) => RULES_OF[k].includes(key));
      throw errors.invalidSchema(
        `${path}/${pointerSegment(key)}`,
        other ? `${key} is not a rule of type ${kind}` : `unknown rule "${key}"`,
      );
    }
  }
  const flag = (key: string): boolean => {
    const v = raw[key];
    if (v !== undefined && typeof v !== "boolean")
      throw errors.invalidSchema(`${path}/${key}`, `${key} must be true or false`);
    return v === true;
  };
  const count = (key: string): number | undefined => {
    const v = raw[key];
    if (v === undefined) return undefined;
    if (!Number.isSafeInteger(v) || (v as number) < 0) {
      throw errors.invalidSchema(`${path}/${key}`, `${key} must be a non-negative integer`);
    }
    return v as number;
  };
  const rules: PropertyRules = { type: kind, required: flag("required"), repeated: flag("repeated") };
  if (kind === "string") {
    rules.maxLength = count("max_length");
    if (raw.pattern !== undefined) rules.pattern = checkPattern(`${path}/pattern`, raw.pattern);
    if (raw.enum !== undefined) {
      if (!Array.isArray(raw.enum) || raw.enum.length === 0 || raw.enum.some((e) => typeof e !== "string")) {
        throw errors.invalidSchema(`${path}/enum`, "enum must be a non-empty array of strings");
      }
      rules.enum = raw.enum as string[];
    }
  }
  if (kind === "number" || kind === "datetime") {
    for (const key of ["min", "max"] as const) {
      const v = raw[key];
      if (v === undefined) continue;
      const text = kind === "number" && typeof v === "number" ? String(v) : v;
      const ok = typeof text === "string" && (kind === "number" ? NUMBER.test(text) : DATETIME.test(text));
      if (!ok) {
        throw errors.invalidSchema(
          `${path}/${key}`,
          kind === "number" ? `${key} must be a number` : `${key} must be an RFC 3339 date-time with a zone`,
        );
      }
      rules[key] = text as string;
    }
  }
  if (kind === "number") rules.integer = flag("integer");
  if (kind === "binary") rules.maxBytes = count("max_bytes");
  return rules;
}

/** Compiles for the linear-time engine (README, "Schemas"): refused if it cannot run there. */
function checkPattern(path: string, raw: unknown): string {
  if (typeof raw !== "string") throw errors.invalidSchema(path, "pattern must be a string");
  try {
    linearRegExp(raw);
  } catch (err) {
    throw errors.invalidSchema(path, `the pattern cannot be matched in linear time: ${(err as Error).message}`);
  }
  return raw;
}

let enginesReady = false;

/**
 * V8's linear-time engine is behind a flag, read when a pattern is compiled; so is the
 * fallback to it. Both are process-wide, for every thread.
 */
function regExpEngines(): void {
  if (enginesReady) return;
  setFlagsFromString("--enable-experimental-regexp-engine");
  setFlagsFromString("--enable-experimental-regexp-engine-on-excessive-backtracks");
  enginesReady = true;
}

/** A RegExp run by V8's linear-time engine (the `l` flag), or a throw. */
export function linearRegExp(source: string): RegExp {
  regExpEngines();
  return new RegExp(source, "l");
}

/**
 * The RegExp a checked pattern is matched with. The backtracking engine is several times
 * faster on the usual pattern, and V8 moves a match that backtracks past a bound (50,000
 * steps) to the linear-time engine, which `linearRegExp` proved can run the pattern: so
 * the common case runs fast, and the worst case stays linear in the value's length.
 */
export function patternRegExp(source: string): RegExp {
  regExpEngines();
  return new RegExp(source);
}

function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === "object" && v !== null && !Array.isArray(v);
}

/** A JSON Pointer segment (RFC 6901). */
function pointerSegment(key: string): string {
  return key.replace(/~/g, "~0").replace(/\//g, "~1");
}
