import { errors } from "../../core/errors.js";
import { SLOT_COUNT } from "./shared-layout.js";

/**
 * Which version each slot of the shared length table is lent to, and how many holders
 * (readers and writers on the main thread) it has. Owned by the storage worker.
 */
export class SlotTable {
  private readonly free: number[] = [];
  private readonly byKey = new Map<string, { slot: number; refs: number }>();
  private readonly keyOf: (string | undefined)[] = new Array(SLOT_COUNT);

  constructor() {
    for (let s = SLOT_COUNT - 1; s >= 0; s--) this.free.push(s);
  }

  /** The slot for `key`, lending a new one if it has none; returns [slot, isNew]. */
  acquire(key: string): [number, boolean] {
    const held = this.byKey.get(key);
    if (held) {
      held.refs++;
      return [held.slot, false];
    }
    const slot = this.free.pop();
    if (slot === undefined) {
      throw errors.internal(`more than ${SLOT_COUNT} versions are open at once`);
    }
    this.byKey.set(key, { slot, refs: 1 });
    this.keyOf[slot] = key;
    return [slot, true];
  }

  /** Drops one holder; returns the key if that was the last, freeing the slot. */
  release(slot: number): string | undefined {
    const key = this.keyOf[slot];
    if (key === undefined) return undefined;
    const held = this.byKey.get(key);
    if (!held || --held.refs > 0) return undefined;
    this.byKey.delete(key);
    this.keyOf[slot] = undefined;
    this.free.push(slot);
    return key;
  }

  slotOf(key: string): number {
    return this.byKey.get(key)?.slot ?? -1;
  }

  get inUse(): number {
    return this.byKey.size;
  }
}
