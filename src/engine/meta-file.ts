import { closeSync, fsyncSync, openSync, readFileSync } from "node:fs";
import { join } from "node:path";
import type { MetaFile } from "./version.js";

/**
 * The .meta file is a cache of facts the data file already holds, so a missing or
 * unreadable one is not an error: the caller rebuilds it. meta-writer.ts writes it.
 */

export function metaPath(dataDir: string, key: string): string {
  return join(dataDir, `${key}.meta`);
}

export function dataPath(dataDir: string, key: string): string {
  return join(dataDir, `${key}.data`);
}

export function readMeta(dataDir: string, key: string): MetaFile | null {
  let parsed: unknown;
  try {
    parsed = JSON.parse(readFileSync(metaPath(dataDir, key), "utf8"));
  } catch {
    return null;
  }
  const m = parsed as MetaFile;
  const ok =
    typeof m === "object" &&
    m !== null &&
    Number.isSafeInteger(m.size) &&
    m.size >= 0 &&
    typeof m.sealed === "boolean" &&
    typeof m.created_at === "string" &&
    typeof m.properties === "object" &&
    m.properties !== null;
  return ok ? m : null;
}

export function syncDir(dir: string): void {
  const fd = openSync(dir, "r");
  try {
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
}
