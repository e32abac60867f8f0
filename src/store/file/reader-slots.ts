import { parseVersionKey } from "../../core/names.js";
import { ABSENT, encodeSlot, GONE } from "./shared-layout.js";
import { SlotTable } from "./slot-table.js";
import type { Version } from "./version.js";

/**
 * The slots of the shared length table that readers on the main thread hold: lent per
 * version (existing or not yet), published to after each group's sync, and for versions
 * that do not exist yet, the waits that a newer version's creation ends.
 */
export class ReaderSlots {
  private readonly slots = new SlotTable();
  /** Slots lent to versions that do not exist yet, by item: readers waiting for them. */
  private readonly waiting = new Map<string, Map<string, number>>();

  constructor(private readonly lengths: BigInt64Array) {}

  get inUse(): number {
    return this.slots.inUse;
  }

  slotOf(key: string): number {
    return this.slots.slotOf(key);
  }

  /** Lends the slot for `key`: the loaded version's state, or a wait for it to exist. */
  lend(key: string, itemId: string, v: Version | undefined): number {
    const [slot, isNew] = this.slots.acquire(key);
    if (v) {
      v.slot = slot;
      if (isNew && v.committed > 0) Atomics.store(this.lengths, slot, encodeSlot(v.committed, sealedCommitted(v)));
      else if (isNew) Atomics.store(this.lengths, slot, ABSENT);
      return slot;
    }
    Atomics.store(this.lengths, slot, ABSENT);
    let waiters = this.waiting.get(itemId);
    if (!waiters) {
      waiters = new Map();
      this.waiting.set(itemId, waiters);
    }
    waiters.set(key, slot);
    return slot;
  }

  /** Drops one holder; returns the version key if that was the last. */
  release(slot: number): string | undefined {
    return this.slots.release(slot);
  }

  /** The last reader of a version that does not exist left. */
  stopWaiting(key: string): void {
    const parsed = parseVersionKey(key);
    const waiters = parsed && this.waiting.get(parsed.itemId);
    if (!waiters) return;
    waiters.delete(key);
    if (waiters.size === 0) this.waiting.delete((parsed as { itemId: string }).itemId);
  }

  /** Step 3 of a group: the committed length, then the wake-up. */
  publish(v: Version): void {
    if (v.slot < 0) return;
    Atomics.store(this.lengths, v.slot, encodeSlot(v.committed, v.sealed));
    Atomics.notify(this.lengths, v.slot);
  }

  /**
   * Version `v` of `itemId` was created: a reader waiting for it keeps its slot; readers
   * waiting for older versions learn those can never exist.
   */
  created(itemId: string, v: Version): void {
    const waiters = this.waiting.get(itemId);
    if (!waiters) return;
    for (const [waitingKey, slot] of waiters) {
      const waitingVersion = parseVersionKey(waitingKey)?.version ?? 0;
      if (waitingVersion > v.version) continue;
      if (waitingKey === v.key) {
        v.slot = slot;
      } else {
        Atomics.store(this.lengths, slot, GONE);
        Atomics.notify(this.lengths, slot);
      }
      waiters.delete(waitingKey);
    }
    if (waiters.size === 0) this.waiting.delete(itemId);
  }
}

/** Sealed, and the seal is synced: what a reader may be told. */
export function sealedCommitted(v: Version): boolean {
  return v.sealed && v.committed === v.size;
}
