import { errors } from "./errors.js";

/**
 * Item ids and versions become file names, so they are checked here, inside the engine,
 * and not only at the HTTP edge: nothing outside this grammar can reach the file system.
 * The grammar has no `/`, no `\`, no NUL and cannot start with `.`, so `..` and hidden
 * files are out, and `_` before the version is unambiguous because versions are digits.
 */
const ITEM_ID = /^[A-Za-z0-9_-][A-Za-z0-9._-]{0,199}$/;
const VERSION = /^[1-9][0-9]{0,15}$/;

export interface VersionName {
  itemId: string;
  version: number;
}

export function parseItemId(raw: string): string {
  if (!ITEM_ID.test(raw)) {
    throw errors.invalidItemId();
  }
  return raw;
}

export function parseVersion(raw: string): number {
  const n = VERSION.test(raw) ? Number(raw) : Number.NaN;
  if (!Number.isSafeInteger(n)) {
    throw errors.invalidVersion();
  }
  return n;
}

/** The file stem `{item_id}_{version}` shared by the .data and .meta files. */
export function versionKey(itemId: string, version: number): string {
  return `${itemId}_${version}`;
}

/** Inverse of versionKey for names found in the data dir; null for foreign files. */
export function parseVersionKey(stem: string): VersionName | null {
  const cut = stem.lastIndexOf("_");
  if (cut <= 0) return null;
  const itemId = stem.slice(0, cut);
  const rawVersion = stem.slice(cut + 1);
  if (!ITEM_ID.test(itemId) || !VERSION.test(rawVersion)) return null;
  const version = Number(rawVersion);
  return Number.isSafeInteger(version) ? { itemId, version } : null;
}
