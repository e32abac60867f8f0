import { closeSync, fstatSync, ftruncateSync, openSync, readSync, writeSync } from "node:fs";
import { scanDataFile } from "./data-file.js";
import { EngineError } from "./errors.js";
import { dataPath, readMeta } from "./meta-file.js";
import { PropertyIndex } from "./property-index.js";
import { ITEM_OPEN, Version } from "./version.js";

/**
 * Opens an existing version and brings it to a consistent state: the index is trusted up
 * to the .meta file's `size` and rebuilt from the data file past it; a torn last line
 * (a crash mid-append) is cut off. Damage in the middle is reported, never "fixed".
 */
export function loadVersion(dataDir: string, itemId: string, version: number, key: string): Version {
  const fd = openSync(dataPath(dataDir, key), "r+");
  try {
    const v = repair(dataDir, itemId, version, key, fd);
    if (v.sealed) closeSync(fd);
    else v.fd = fd;
    return v;
  } catch (err) {
    closeSync(fd);
    throw err;
  }
}

function repair(dataDir: string, itemId: string, version: number, key: string, fd: number): Version {
  const stat = fstatSync(fd);
  const size = stat.size;
  if (size < ITEM_OPEN.length) {
    // Torn at creation: nothing was ever acknowledged in this file.
    ftruncateSync(fd, 0);
    writeSync(fd, ITEM_OPEN, 0);
    return new Version(itemId, version, key, stat.mtime.toISOString(), ITEM_OPEN.length, false, new PropertyIndex());
  }
  const head = Buffer.alloc(ITEM_OPEN.length);
  readSync(fd, head, 0, head.length, 0);
  if (head.toString("latin1") !== ITEM_OPEN) {
    throw new EngineError("internal_error", `${key}.data does not begin with <item>; it is left untouched`);
  }
  const meta = readMeta(dataDir, key);
  const trusted = meta && meta.size <= size && meta.size >= ITEM_OPEN.length && !meta.sealed ? meta : null;
  if (meta?.sealed && meta.size === size) {
    const v = new Version(itemId, version, key, meta.created_at, size, true, PropertyIndex.fromJSON(meta.properties));
    v.updatedAt = meta.updated_at;
    return v;
  }
  const index = trusted ? PropertyIndex.fromJSON(trusted.properties) : new PropertyIndex();
  const from = trusted ? trusted.size : ITEM_OPEN.length;
  const scan = scanDataFile(fd, from, size, index);
  if (scan.corruptAt !== undefined) {
    throw new EngineError(
      "internal_error",
      `${key}.data is damaged at byte ${scan.corruptAt}; it is left untouched for inspection`,
    );
  }
  if (scan.end < size) ftruncateSync(fd, scan.end);
  const created = trusted?.created_at ?? meta?.created_at ?? stat.birthtime.toISOString();
  const v = new Version(itemId, version, key, created, scan.end, scan.sealed, index);
  v.updatedAt = stat.mtime.toISOString();
  v.metaDirty = meta === null || meta.size !== scan.end || meta.sealed !== scan.sealed;
  return v;
}
