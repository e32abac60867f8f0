import { closeSync, fsyncSync, openSync, readSync } from "node:fs";
import { join } from "node:path";

/**
 * The .meta file is a cache of facts the data file already holds, so a missing or
 * unreadable one is not an error: the caller rebuilds it. meta-writer.ts writes it, with
 * its scalar fields first, so their values can be read without the index after them.
 */

export function metaPath(dataDir: string, key: string): string {
  return join(dataDir, `${key}.meta`);
}

export function dataPath(dataDir: string, key: string): string {
  return join(dataDir, `${key}.data`);
}

/** The scalar fields of a .meta file: everything but `properties`. */
export interface MetaHead {
  item_id: string;
  version: number;
  created_at: string;
  updated_at: string;
  size: number;
  sealed: boolean;
  property_count: number;
}

const HEAD_BYTES = 4096;
export const PROPERTIES_KEY = ',"properties":{';

/** Reads the scalar fields from the start of the file; null if missing or malformed. */
export function readMetaHead(dataDir: string, key: string): MetaHead | null {
  let text: string;
  try {
    const fd = openSync(metaPath(dataDir, key), "r");
    try {
      const buf = Buffer.alloc(HEAD_BYTES);
      text = buf.toString("utf8", 0, readSync(fd, buf, 0, HEAD_BYTES, 0));
    } finally {
      closeSync(fd);
    }
  } catch {
    return null;
  }
  const cut = text.indexOf(PROPERTIES_KEY);
  if (cut < 0) return null;
  let head: MetaHead;
  try {
    head = JSON.parse(`${text.slice(0, cut)}}`);
  } catch {
    return null;
  }
  const ok =
    Number.isSafeInteger(head.size) &&
    head.size >= 0 &&
    Number.isSafeInteger(head.property_count) &&
    head.property_count >= 0 &&
    typeof head.sealed === "boolean" &&
    typeof head.created_at === "string";
  return ok ? head : null;
}

export function syncDir(dir: string): void {
  const fd = openSync(dir, "r");
  try {
    fsyncSync(fd);
  } finally {
    closeSync(fd);
  }
}
