import type { PropertyType } from "../format/item-file.js";
import { encodeDecimal, encodeInstant } from "../format/value-order.js";
import { type PropertyRules, patternRegExp, type SchemaDocument } from "./schema-document.js";

/**
 * A schema document compiled for checking values as they are parsed: one lookup per
 * property, then only the rules it has. Values arrive canonical (section 3 of the
 * contract: trimmed, base64 without whitespace), so each rule is a plain test. Numbers and
 * instants compare through their sortable encodings, exactly, never through a double.
 */

/** A broken rule: its name as the error reports it, and why. */
export interface Violation {
  rule: string;
  message: string;
}

export interface CompiledRules {
  rules: PropertyRules;
  /** The writer must hear of its first occurrence: required, or not repeatable. */
  tracked: boolean;
  pattern?: RegExp;
  enumSet?: Set<string>;
  min?: Buffer;
  max?: Buffer;
}

/** What the parser hands a compiled schema to reach the same one on any thread. */
export interface SchemaRef {
  /** `type@version`: a schema version never changes, so this names its compiled form. */
  key: string;
  doc: SchemaDocument;
}

export class CompiledSchema {
  private readonly byName = new Map<string, CompiledRules>();
  readonly required: readonly string[];

  constructor(readonly doc: SchemaDocument) {
    const required: string[] = [];
    for (const [name, rules] of Object.entries(doc.properties)) {
      this.byName.set(name, compileRules(rules));
      if (rules.required) required.push(name);
    }
    this.required = required;
    this.undeclared = doc.additionalProperties
      ? null
      : { rule: "additional_properties", message: "the schema has no such property (additional_properties is false)" };
  }

  /** What a property the schema does not declare breaks, if anything. */
  readonly undeclared: Violation | null;

  /** True when a second occurrence of `name` in a version breaks the schema. */
  unique(name: string): boolean {
    const c = this.byName.get(name);
    return c !== undefined && !c.rules.repeated;
  }

  /** The first rule `value` (canonical) of property `name` breaks, or null. */
  check(name: string, type: PropertyType, value: string): Violation | null {
    const c = this.byName.get(name);
    return c === undefined ? this.undeclared : checkValue(c, type, value);
  }

  /** A property's compiled rules; undefined for a name the schema does not declare. */
  rulesOf(name: string): CompiledRules | undefined {
    return this.byName.get(name);
  }
}

/** The first rule `value` (canonical) breaks, or null. */
export function checkValue(c: CompiledRules, type: PropertyType, value: string): Violation | null {
  const r = c.rules;
  if (type !== r.type) return { rule: "type", message: `must be a ${r.type}, not a ${type}` };
  switch (type) {
    case "string":
      return checkString(c, value);
    case "number":
      return checkNumber(c, value);
    case "datetime":
      return checkRange(c, encodeInstant(value), value);
    case "binary":
      return r.maxBytes !== undefined && decodedBytes(value) > r.maxBytes
        ? { rule: "max_bytes", message: `is ${decodedBytes(value)} bytes, more than max_bytes ${r.maxBytes}` }
        : null;
    default:
      return null;
  }
}

function compileRules(rules: PropertyRules): CompiledRules {
  const c: CompiledRules = { rules, tracked: rules.required || !rules.repeated };
  if (rules.pattern !== undefined) c.pattern = patternRegExp(rules.pattern);
  if (rules.enum !== undefined) c.enumSet = new Set(rules.enum);
  const encode = rules.type === "number" ? encodeDecimal : encodeInstant;
  if (rules.min !== undefined) c.min = encode(rules.min);
  if (rules.max !== undefined) c.max = encode(rules.max);
  return c;
}

function checkString(c: CompiledRules, value: string): Violation | null {
  const { maxLength } = c.rules;
  // Code points, not UTF-16 units: no more code points than units, so most values skip the count.
  if (maxLength !== undefined && value.length > maxLength) {
    const points = codePoints(value);
    if (points > maxLength)
      return { rule: "max_length", message: `is ${points} characters, more than max_length ${maxLength}` };
  }
  if (c.enumSet && !c.enumSet.has(value)) return { rule: "enum", message: "is not one of the schema's enum values" };
  if (c.pattern && !c.pattern.test(value))
    return { rule: "pattern", message: `does not match pattern ${c.rules.pattern}` };
  return null;
}

function checkNumber(c: CompiledRules, value: string): Violation | null {
  if (c.rules.integer && !isWhole(value)) return { rule: "integer", message: `${value} is not a whole number` };
  return c.min || c.max ? checkRange(c, encodeDecimal(value), value) : null;
}

function checkRange(c: CompiledRules, key: Buffer, value: string): Violation | null {
  if (c.min && Buffer.compare(key, c.min) < 0) return { rule: "min", message: `${value} is below min ${c.rules.min}` };
  if (c.max && Buffer.compare(key, c.max) > 0) return { rule: "max", message: `${value} is above max ${c.rules.max}` };
  return null;
}

function codePoints(s: string): number {
  let n = 0;
  for (let i = 0; i < s.length; i++) {
    const u = s.charCodeAt(i);
    if (u >= 0xd800 && u <= 0xdbff && i + 1 < s.length) {
      const next = s.charCodeAt(i + 1);
      if (next >= 0xdc00 && next <= 0xdfff) i++;
    }
    n++;
  }
  return n;
}

/** `2`, `2.0`, `1e2`, `1.5e1`: whole; `1.5`, `1e-1`: not. Exact on the digits. */
export function isWhole(text: string): boolean {
  const m = /^-?(\d+)(?:\.(\d+))?(?:[eE]([+-]?\d+))?$/.exec(text);
  if (!m) return false;
  // The value is DIGITS x 10^shift; it is whole when the shift does not reach past the
  // digits' trailing zeros.
  const digits = m[1] + (m[2] ?? "");
  const shift = (m[3] === undefined ? 0 : Number(m[3])) - (m[2]?.length ?? 0);
  if (shift >= 0) return true;
  const significant = digits.replace(/0+$/, "");
  return significant.replace(/^0+/, "").length === 0 || digits.length - significant.length >= -shift;
}

/** The decoded size of canonical base64 (padded, no whitespace). */
function decodedBytes(b64: string): number {
  const pad = b64.endsWith("==") ? 2 : b64.endsWith("=") ? 1 : 0;
  return (b64.length / 4) * 3 - pad;
}

const compiled = new Map<string, CompiledSchema>();
/** Schema versions compiled per thread, at most: each is a few rules, and they never change. */
const COMPILED_CAP = 1024;

/** The compiled form of a schema version, compiled once per thread. */
export function compiledSchema(ref: SchemaRef): CompiledSchema {
  let c = compiled.get(ref.key);
  if (c === undefined) {
    if (compiled.size >= COMPILED_CAP) compiled.clear();
    c = new CompiledSchema(ref.doc);
    compiled.set(ref.key, c);
  }
  return c;
}
