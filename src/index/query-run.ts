import { errors } from "../core/errors.js";
import type { PropertyType } from "../format/item-file.js";
import { ITEM_CLOSE } from "../format/item-file.js";
import { encodeValue, keyPart, prefixEnd, stringPrefix, TYPE_CODE } from "../format/value-order.js";
import {
  type IndexDb,
  type IndexedVersion,
  KEY_NAME_BYTES,
  KEY_VALUE_BYTES,
  type KeyRange,
  readVersionKey,
  versionKey,
} from "./index-db.js";
import type { Expr, Literal } from "./query-language.js";

/**
 * Runs a parsed query over the index (README, "Queries"). A plan picks the cheapest
 * indexed way in: the one selective condition of an AND, the union of an OR's, else every
 * version in order. Candidates are then checked against the whole expression, in
 * (item id, version) order, so that a cursor (the last one given) pages on exactly.
 * With match=latest a condition reads each name's newest value from the index; with
 * match=any it asks for every occurrence (`occurrences`, from the store's property reads).
 */

export interface QueryOptions {
  where: Expr;
  versions: "latest" | "all";
  match: "latest" | "any";
  /** Resume after this version (exclusive). */
  after?: { itemId: string; version: number };
}

export type Occurrences = (
  itemId: string,
  version: number,
  name: string,
) => Promise<{ type: PropertyType; value: string }[]>;

/** Candidates past this many: read every version in order instead (it streams). */
const MAX_CANDIDATES = 50_000;

export interface Match extends IndexedVersion {
  /** The committed length before any `</item>`. */
  offset: number;
}

export async function* runQuery(db: IndexDb, o: QueryOptions, occurrences: Occurrences): AsyncGenerator<Match> {
  // Candidates come in item order: each item's newest version is looked up once.
  let item = "";
  let newest = 0;
  const inScope = (v: IndexedVersion) => {
    if (o.versions === "all") return true;
    if (v.itemId !== item) {
      item = v.itemId;
      newest = db.newestVersion(item);
    }
    return newest === v.version;
  };
  const { versions, exact } = candidates(db, o);
  for (const v of versions) {
    if (!inScope(v)) continue;
    if (!exact && !(await matches(db, o, v, occurrences))) continue;
    yield { ...v, offset: v.sealed ? v.indexed - ITEM_CLOSE.length : v.indexed };
  }
}

/** Whether version `v` matches the query's expression (it is in scope). */
export function matches(db: IndexDb, o: QueryOptions, v: IndexedVersion, occurrences: Occurrences): Promise<boolean> {
  const leaf = async (name: string, test: (type: PropertyType, value: string) => boolean) => {
    if (o.match === "latest") {
      const s = db.latestValue(v.itemId, v.version, name);
      return s !== undefined && test(s.type, s.value);
    }
    return (await occurrences(v.itemId, v.version, name)).some((x) => test(x.type, x.value));
  };
  return evaluate(o.where, leaf);
}

async function evaluate(
  e: Expr,
  leaf: (name: string, test: (type: PropertyType, value: string) => boolean) => Promise<boolean>,
): Promise<boolean> {
  switch (e.kind) {
    case "or":
      for (const x of e.items) if (await evaluate(x, leaf)) return true;
      return false;
    case "and":
      for (const x of e.items) if (!(await evaluate(x, leaf))) return false;
      return true;
    case "not":
      return !(await evaluate(e.item, leaf));
    case "exists":
      return leaf(e.name, () => true);
    case "prefix":
      return leaf(e.name, (type, value) => type === "string" && value.startsWith(e.prefix));
    case "in": {
      const encs = e.lits.map((l) => [l.type, encodeValue(l.type, l.text)] as const);
      return leaf(e.name, (type, value) => {
        const enc = encodeValue(type, value);
        return encs.some(([t, x]) => t === type && x.equals(enc));
      });
    }
    case "cmp": {
      const lit = encodeValue(e.lit.type, e.lit.text);
      return leaf(e.name, (type, value) => {
        if (type !== e.lit.type) return false;
        const c = Buffer.compare(encodeValue(type, value), lit);
        switch (e.op) {
          case "=":
            return c === 0;
          case "!=":
            return c !== 0;
          case "<":
            return c < 0;
          case "<=":
            return c <= 0;
          case ">":
            return c > 0;
          case ">=":
            return c >= 0;
        }
      });
    }
  }
}

// --- planning -------------------------------------------------------------------------

interface Lookup {
  name: string;
  ranges: KeyRange[];
}

type Cmp = Extract<Expr, { kind: "cmp" }>;
/** Two comparisons of one name in one AND, planned as the one range between them. */
type Bounded = { kind: "range"; name: string; lower: Cmp; upper: Cmp };

/** The index ranges whose versions include every match of `e`, or null: read them all. */
function plan(db: IndexDb, e: Expr | Bounded, space: "latest" | "any"): Lookup[] | null {
  // A name too long for a key is not in the lookup spaces: read every version.
  if ("name" in e && keyPart(e.name).length > KEY_NAME_BYTES) return null;
  switch (e.kind) {
    case "or": {
      const parts = e.items.map((x) => plan(db, x, space));
      return parts.some((p) => p === null) ? null : (parts as Lookup[][]).flat();
    }
    case "and": {
      let best: Lookup[] | null = null;
      let bestCount = Number.POSITIVE_INFINITY;
      // Bounded ranges first, as they are the likeliest to be narrow; every later count
      // stops at the best so far, so the wide conditions are never counted through.
      // (Only for the newest values: with every occurrence, two of them may meet the two
      // bounds, 29 one and 32 the other, where no single one lies between.)
      const bounded = space === "latest" ? boundedRanges(e.items) : [];
      for (const x of [...bounded, ...e.items] as (Expr | Bounded)[]) {
        const p = plan(db, x, space);
        if (!p) continue;
        let n = 0;
        const cap = Math.min(MAX_CANDIDATES, bestCount);
        for (const l of p) for (const r of l.ranges) if (n < cap) n += db.countIn(space, l.name, r, cap - n);
        if (n < bestCount) {
          best = p;
          bestCount = n;
        }
      }
      return best;
    }
    case "not":
      return null;
    case "range": {
      const lo = plan(db, e.lower, space)?.[0].ranges[0];
      const hi = plan(db, e.upper, space)?.[0].ranges[0];
      if (!lo || !hi) return null;
      // Bounds that cross (`age > 5 AND age < 3`) hold nothing.
      const ranges = Buffer.compare(lo.start, hi.end) < 0 ? [{ start: lo.start, end: hi.end }] : [];
      return [{ name: e.name, ranges }];
    }
    case "exists":
      return [{ name: e.name, ranges: [{ start: Buffer.alloc(0), end: Buffer.of(0xff) }] }];
    case "prefix": {
      const p = stringPrefix(e.prefix);
      return p.length > KEY_VALUE_BYTES ? null : [{ name: e.name, ranges: [{ start: p, end: prefixEnd(p) }] }];
    }
    case "in": {
      const ranges = e.lits.map((l) => equalRange(l));
      return ranges.some((r) => r === null) ? null : [{ name: e.name, ranges: ranges as KeyRange[] }];
    }
    case "cmp": {
      const enc = encodeValue(e.lit.type, e.lit.text);
      if (enc.length > KEY_VALUE_BYTES) return null;
      const type = Buffer.of(TYPE_CODE[e.lit.type]);
      const all = prefixEnd(type);
      const ranges: Record<string, KeyRange[]> = {
        "=": [{ start: enc, end: prefixEnd(enc) }],
        "!=": [
          { start: type, end: enc },
          { start: prefixEnd(enc), end: all },
        ],
        "<": [{ start: type, end: enc }],
        "<=": [{ start: type, end: prefixEnd(enc) }],
        ">": [{ start: prefixEnd(enc), end: all }],
        ">=": [{ start: enc, end: all }],
      };
      return [{ name: e.name, ranges: ranges[e.op] }];
    }
  }
}

/**
 * An AND's comparisons of one name with literals of one type, as the single range they
 * bound together (`age >= 30 AND age < 31`), for the planner to weigh with the rest. Only
 * a lookup: the whole expression is still checked on each candidate.
 */
function boundedRanges(items: Expr[]): Bounded[] {
  const byName = new Map<string, Cmp[]>();
  for (const x of items) {
    if (x.kind !== "cmp" || x.op === "=" || x.op === "!=") continue;
    const key = `${x.lit.type}\u0000${x.name}`;
    byName.set(key, [...(byName.get(key) ?? []), x]);
  }
  const out: Bounded[] = [];
  for (const cmps of byName.values()) {
    const lower = cmps.filter((c) => c.op === ">" || c.op === ">=");
    const upper = cmps.filter((c) => c.op === "<" || c.op === "<=");
    if (lower.length === 0 || upper.length === 0) continue;
    out.push({ kind: "range", name: cmps[0].name, lower: lower[0], upper: upper[0] });
  }
  return out;
}

function equalRange(l: Literal): KeyRange | null {
  const enc = encodeValue(l.type, l.text);
  return enc.length > KEY_VALUE_BYTES ? null : { start: enc, end: prefixEnd(enc) };
}

/**
 * The versions to check, in (item id, version) order, after `o.after`; `exact` when the
 * index lookup is the whole query, so every one it gives matches without a check.
 */
function candidates(db: IndexDb, o: QueryOptions): { versions: Iterable<IndexedVersion>; exact: boolean } {
  const space = o.match === "latest" ? "latest" : "any";
  const lookups = plan(db, o.where, space);
  const found = lookups && collect(db, lookups, space);
  if (!found) return { versions: db.allVersions(o.after), exact: false };
  const after = o.after ? versionKey(o.after.itemId, o.after.version) : null;
  const keys = [...found.values()].filter((k) => !after || Buffer.compare(k, after) > 0).sort(Buffer.compare);
  function* versions(): Generator<IndexedVersion> {
    for (const k of keys) {
      const { itemId, version } = readVersionKey(k);
      const p = db.progress(itemId, version);
      if (p) yield p;
    }
  }
  return { versions: versions(), exact: answersWhole(o.where, space) };
}

/**
 * Whether the plan's lookup is exactly `e`: a condition with an indexed range, an OR of
 * such, or an AND of the two bounds of one name (planned as one range).
 */
function answersWhole(e: Expr, space: "latest" | "any"): boolean {
  switch (e.kind) {
    case "or":
      return e.items.every((x) => answersWhole(x, space));
    case "and": {
      if (e.items.length !== 2 || space !== "latest") return false;
      const [bound] = boundedRanges(e.items);
      return bound !== undefined && e.items.includes(bound.lower) && e.items.includes(bound.upper);
    }
    case "not":
      return false;
    default:
      return true;
  }
}

/** The distinct versions of the lookups' ranges, or null if there are too many to hold. */
function collect(db: IndexDb, lookups: Lookup[], space: "latest" | "any"): Map<string, Buffer> | null {
  const found = new Map<string, Buffer>();
  for (const l of lookups) {
    for (const r of l.ranges) {
      for (const where of db.versionsIn(space, l.name, r)) {
        found.set(where.toString("latin1"), where);
        if (found.size > MAX_CANDIDATES) return null;
      }
    }
  }
  return found;
}

/** A cursor: the last version an answer gave, opaque to clients. */
export function encodeCursor(m: { itemId: string; version: number }): string {
  return Buffer.from(JSON.stringify([m.itemId, m.version])).toString("base64url");
}

export function decodeCursor(raw: string): { itemId: string; version: number } {
  try {
    const [itemId, version] = JSON.parse(Buffer.from(raw, "base64url").toString("utf8"));
    if (typeof itemId === "string" && Number.isSafeInteger(version)) return { itemId, version };
  } catch {}
  throw errors.invalidCursor();
}
