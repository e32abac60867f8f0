import { closeSync, fstatSync, ftruncateSync, openSync, readSync, writeSync } from "node:fs";
import { errors } from "../../core/errors.js";
import { ITEM_OPEN, scanDataFile } from "../../format/item-file.js";
import { dataPath, type MetaHead, readMetaHead } from "../../format/meta-file.js";
import { PropertyIndex } from "../../format/property-index.js";
import type { Binding } from "../types.js";
import { REBUILD_BATCH } from "./meta-keeper.js";
import { MetaWriter } from "./meta-writer.js";
import { Version } from "./version.js";

/**
 * Opens an existing version and brings it to a consistent state: the .meta file is
 * trusted up to its `size` (only its scalar head is read), and the data file past it is
 * scanned into the in-memory index; a torn last line (a crash mid-append) is cut off.
 * Damage in the middle is reported, never "fixed".
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
  const meta = readMetaHead(dataDir, key);
  if (size < ITEM_OPEN.length) {
    // Torn at creation: nothing was ever acknowledged in this file (but its binding, written first, holds).
    ftruncateSync(fd, 0);
    writeSync(fd, ITEM_OPEN, 0);
    const v = new Version(itemId, version, key, stat.mtime.toISOString(), ITEM_OPEN.length, false, new PropertyIndex());
    v.binding = bindingOf(meta);
    v.metaDirty = true;
    return v;
  }
  const head = Buffer.alloc(ITEM_OPEN.length);
  readSync(fd, head, 0, head.length, 0);
  if (head.toString("latin1") !== ITEM_OPEN) {
    throw errors.versionDamaged(`${key}.data does not begin with <item>; it is left untouched`);
  }
  const trusted = meta && meta.size <= size && meta.size >= ITEM_OPEN.length && !(meta.sealed && meta.size < size);
  const from = trusted ? meta.size : ITEM_OPEN.length;
  const v = new Version(
    itemId,
    version,
    key,
    meta?.created_at ?? stat.birthtime.toISOString(),
    from,
    false,
    new PropertyIndex(),
  );
  v.metaCount = trusted ? meta.property_count : 0;
  v.binding = bindingOf(meta);
  if (trusted && meta.sealed && meta.size === size) {
    v.sealed = true;
    v.updatedAt = meta.updated_at;
    return v;
  }
  const scan = scanDataFile(fd, from, size, v.index, {
    every: REBUILD_BATCH,
    flush: (end) => {
      v.size = end;
      v.committed = end;
      new MetaWriter(dataDir, v, false).finish();
    },
  });
  if (scan.corruptAt !== undefined) {
    throw errors.versionDamaged(
      `${key}.data is damaged at byte ${scan.corruptAt}; it is left untouched for inspection`,
    );
  }
  if (scan.end < size) ftruncateSync(fd, scan.end);
  v.size = scan.end;
  v.committed = scan.end;
  v.sealed = scan.sealed;
  v.updatedAt = stat.mtime.toISOString();
  v.metaDirty = !trusted || meta.size !== scan.end || meta.sealed !== scan.sealed || v.index.count > 0;
  return v;
}

/** The schema binding a .meta head records, if any (README, "Schemas"). */
export function bindingOf(meta: MetaHead | null): Binding | undefined {
  return meta?.type === undefined ? undefined : { type: meta.type, schemaVersion: meta.schema_version as number };
}
