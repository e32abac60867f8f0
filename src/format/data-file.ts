import { readSync } from "node:fs";
import { ITEM_CLOSE } from "../store/file/version.js";
import { PROPERTY_TYPES } from "./canonical.js";
import type { PropertyIndex } from "./property-index.js";

/**
 * Reading a data file back: used to rebuild the index past the .meta file's `size` and to
 * find where a crash tore the last property. The file is the truth; this only reads.
 */

const LINE = /^<property for="([^"]*)"><(string|number|boolean|datetime|binary)>[^<]*<\/\2><\/property>$/;
const CHUNK = 1 << 20;

export interface ScanResult {
  /** End of the last whole, valid line: where a torn tail gets cut. */
  end: number;
  sealed: boolean;
  /** Offset of a line that is whole but not a property: damage we must not "repair". */
  corruptAt?: number;
}

function unescapeName(s: string): string {
  return s.includes("&")
    ? s.replace(/&(amp|lt|gt|quot|#10|#13);/g, (_, e: string) =>
        e === "amp" ? "&" : e === "lt" ? "<" : e === "gt" ? ">" : e === "quot" ? '"' : e === "#10" ? "\n" : "\r",
      )
    : s;
}

/**
 * Scans whole lines in [from, size) of an open file, adding each property to `index`.
 * A final line without its newline is a torn write and is not counted.
 */
export function scanDataFile(
  fd: number,
  from: number,
  size: number,
  index: PropertyIndex,
  /** Called with the end of the last whole line when the index holds this many entries. */
  onFull?: { every: number; flush: (end: number) => void },
): ScanResult {
  const buf = Buffer.allocUnsafe(CHUNK);
  let pos = from;
  let carry = "";
  let carryStart = from;
  let sealed = false;
  while (pos < size) {
    const n = readSync(fd, buf, 0, Math.min(CHUNK, size - pos), pos);
    if (n <= 0) break;
    pos += n;
    const text = carry + buf.toString("latin1", 0, n);
    let lineStart = 0;
    for (let nl = text.indexOf("\n"); nl >= 0; nl = text.indexOf("\n", lineStart)) {
      const offset = carryStart + lineStart;
      const line = text.slice(lineStart, nl);
      lineStart = nl + 1;
      if (sealed) return { end: offset - ITEM_CLOSE.length, sealed: false, corruptAt: offset };
      if (`${line}\n` === ITEM_CLOSE) {
        sealed = true;
        continue;
      }
      const m = LINE.exec(line);
      if (!m) return { end: offset, sealed: false, corruptAt: offset };
      // latin1 keeps offsets byte-exact; names are decoded as UTF-8 only for the index.
      const name = unescapeName(Buffer.from(m[1], "latin1").toString("utf8"));
      index.add(name, PROPERTY_TYPES.indexOf(m[2] as never), offset, line.length);
      if (onFull && index.count >= onFull.every) onFull.flush(carryStart + lineStart);
    }
    carryStart += lineStart;
    carry = text.slice(lineStart);
  }
  return { end: carryStart, sealed };
}
