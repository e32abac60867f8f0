import { closeSync, fstatSync, ftruncateSync, openSync, readSync } from "node:fs";
import { ITEM_CLOSE } from "../../format/item-file.js";
import { dataPath, readMetaHead } from "../../format/meta-file.js";
import type { Binding } from "../types.js";
import { bindingOf } from "./version-loader.js";

/**
 * The cheap start-up look at one version: three small reads, no index parsing. A version
 * whose data file ends with a whole line and whose .meta agrees on size and seal needs
 * nothing; anything else gets the full repair (version-loader.ts). Meta files are written
 * with their scalar fields before `properties` (readMetaHead reads only those).
 */

export interface QuickState {
  size: number;
  sealed: boolean;
  /** The file ends with a newline (or is empty): no torn line at the end. */
  wholeTail: boolean;
  /** What the .meta file claims, if it could be read. */
  meta: { size: number; sealed: boolean; binding: Binding | undefined } | null;
}

export function quickState(dataDir: string, key: string): QuickState {
  const fd = openSync(dataPath(dataDir, key), "r");
  let size: number;
  let tail: string;
  try {
    size = fstatSync(fd).size;
    const n = Math.min(size, ITEM_CLOSE.length);
    const buf = Buffer.alloc(n);
    readSync(fd, buf, 0, n, size - n);
    tail = buf.toString("latin1");
  } finally {
    closeSync(fd);
  }
  const head = readMetaHead(dataDir, key);
  return {
    size,
    sealed: tail === ITEM_CLOSE,
    wholeTail: size === 0 || tail.endsWith("\n"),
    meta: head && { size: head.size, sealed: head.sealed, binding: bindingOf(head) },
  };
}

/** True when nothing needs repair: a whole last line and a .meta that agrees. */
export function isConsistent(q: QuickState): boolean {
  return q.wholeTail && q.size >= 7 && q.meta !== null && q.meta.size === q.size && q.meta.sealed === q.sealed;
}

/**
 * Cuts an unfinished last line without reading the rest of the file: a crash tears only
 * the line being appended, so everything up to the last newline is whole. Returns the
 * new size. (Damage elsewhere is found when the index is rebuilt.)
 */
export function cutTornTail(dataDir: string, key: string, size: number): number {
  const fd = openSync(dataPath(dataDir, key), "r+");
  try {
    const chunk = Buffer.alloc(64 << 10);
    let end = size;
    while (end > 0) {
      const start = Math.max(0, end - chunk.length);
      const n = readSync(fd, chunk, 0, end - start, start);
      const nl = chunk.subarray(0, n).lastIndexOf(0x0a);
      if (nl >= 0) {
        const whole = start + nl + 1;
        if (whole < size) ftruncateSync(fd, whole);
        return whole;
      }
      end = start;
    }
    ftruncateSync(fd, 0);
    return 0;
  } finally {
    closeSync(fd);
  }
}
