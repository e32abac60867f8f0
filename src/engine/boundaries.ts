import { errors } from "../core/errors.js";
import { ITEM_OPEN } from "../format/item-file.js";
import type { StoredVersion } from "../store/types.js";

/**
 * Typed reads start at a property boundary: 0 (taken as the end of `<item>\n`), or the
 * byte after a line's newline, within the committed length. Anything else is refused
 * with the boundaries around it, found by reading the bytes on either side: never
 * more than the line the offset falls in, at most --max-property-bytes.
 */

const WINDOW = 64 << 10;

/** The offset a typed read starts at, or offset_not_at_property / range_not_satisfiable. */
export async function propertyBoundary(version: StoredVersion, offset: number, length: number): Promise<number> {
  if (offset === 0 || offset === ITEM_OPEN.length) return ITEM_OPEN.length;
  if (offset > length) throw errors.rangeNotSatisfiable(`offset ${offset}`, length);
  if ((await byteAt(version, offset - 1)) === 0x0a) return offset;
  throw errors.offsetNotAtProperty(offset, await lineStart(version, offset), await lineEnd(version, offset, length));
}

async function byteAt(version: StoredVersion, at: number): Promise<number> {
  const one = Buffer.alloc(1);
  return (await version.read(one, at)) === 1 ? one[0] : -1;
}

/** The boundary at or before `offset`: just after the newline before it. */
async function lineStart(version: StoredVersion, offset: number): Promise<number> {
  const buf = Buffer.allocUnsafe(WINDOW);
  for (let end = offset; end > 0; ) {
    const start = Math.max(0, end - WINDOW);
    const n = await version.read(buf.subarray(0, end - start), start);
    const nl = buf.subarray(0, n).lastIndexOf(0x0a);
    if (nl >= 0) return start + nl + 1;
    end = start;
  }
  return 0;
}

/** The boundary after `offset`: just after the next newline (or the committed end). */
async function lineEnd(version: StoredVersion, offset: number, length: number): Promise<number> {
  const buf = Buffer.allocUnsafe(WINDOW);
  for (let start = offset; start < length; ) {
    const n = await version.read(buf.subarray(0, Math.min(WINDOW, length - start)), start);
    if (n <= 0) break;
    const nl = buf.subarray(0, n).indexOf(0x0a);
    if (nl >= 0) return start + nl + 1;
    start += n;
  }
  return length;
}
