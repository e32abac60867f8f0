/**
 * The one shared-memory table between the storage worker (sole writer) and the main
 * thread (readers). One 64-bit word per slot; a slot is lent to a version while anyone
 * on the main thread holds it open.
 *
 *   SharedArrayBuffer (SLOT_COUNT * 8 bytes)
 *   +----------------+----------------+-----+----------------+
 *   | slot 0 (i64)   | slot 1 (i64)   | ... | slot N-1 (i64) |
 *   +----------------+----------------+-----+----------------+
 *
 *   word value                         meaning
 *   ABSENT  (-1)                       the version does not exist yet; readers wait
 *   GONE    (-2)                       it can never exist (a newer version of the item exists)
 *   bit 62 clear, >= 0                 open; the value is the committed byte length
 *   bit 62 set                         sealed; the low bits are the final byte length
 *
 * Length and seal live in one word so a single Atomics.load sees a consistent pair: a
 * reader can never see "sealed" with a stale length and end the stream short.
 * The storage worker publishes only after the bytes are as durable as the fsync mode
 * promises (append -> fsync -> Atomics.store -> Atomics.notify); readers only load.
 * Lengths past 2 GiB fit: the word is a BigInt64.
 */

export const SLOT_COUNT = 65_536;
export const SLOT_BYTES = 8;

export const ABSENT = -1n;
export const GONE = -2n;
export const SEALED_BIT = 1n << 62n;

export type SlotState =
  | { kind: "absent" }
  | { kind: "gone" }
  | { kind: "open"; length: number }
  | { kind: "sealed"; length: number };

export function createLengthTable(): BigInt64Array {
  return new BigInt64Array(new SharedArrayBuffer(SLOT_COUNT * SLOT_BYTES));
}

export function encodeSlot(length: number, sealed: boolean): bigint {
  const n = BigInt(length);
  return sealed ? n | SEALED_BIT : n;
}

export function decodeSlot(word: bigint): SlotState {
  if (word === ABSENT) return { kind: "absent" };
  if (word < 0n) return { kind: "gone" };
  if (word & SEALED_BIT) return { kind: "sealed", length: Number(word & ~SEALED_BIT) };
  return { kind: "open", length: Number(word) };
}
