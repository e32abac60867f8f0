import type { PackedWrites, ToStorage, ToStorageWire, WriteRequest } from "./protocol.js";

/**
 * Small `write` messages cross to the storage worker packed: each run of them in a batch
 * becomes one message of numbers, strings and one byte buffer. Structured clone builds
 * and reads every object property by property, with its keys spelled out, so a batch
 * of 24 one-property writes costs 85-105 µs of CPU across the two threads as objects,
 * and 30-45 µs packed (`node bench/micro/storage-messages.mjs`). Larger bodies keep their own
 * message and move without a copy. Runs keep their place among the other messages, so
 * the worker sees everything in the order it was posted.
 *
 * Per write, in `nums`:
 *   id, writer, itemId (index into strings), version, expectedOffset (-1: none),
 *   seal (0/1), binding type (index into strings; -1: none), its schema version,
 *   byte length (-1: no body), and with a body:
 *   count, number of names, each name (index into strings), then per property
 *   nameId, type, length
 * Bodies follow one another in `bytes`.
 */

/** Bodies up to this size are copied into the packed buffer; larger ones are transferred. */
export const PACK_BYTES = 64 << 10;

/** Whether a `write` with this body travels packed. */
export function isPackable(bytes: Uint8Array | undefined): boolean {
  return bytes === undefined || bytes.length <= PACK_BYTES;
}

/** The batch as it goes on the wire; the transfer list needs only `extra` added. */
export function packBatch(batch: ToStorage[]): { wire: ToStorageWire[]; extra: ArrayBuffer[] } {
  const wire: ToStorageWire[] = [];
  const extra: ArrayBuffer[] = [];
  let run: WriteRequest[] = [];
  const endRun = () => {
    if (run.length === 0) return;
    const packed = pack(run);
    wire.push(packed);
    extra.push(packed.bytes.buffer as ArrayBuffer);
    run = [];
  };
  for (const msg of batch) {
    if (msg.type === "write" && isPackable(msg.bytes)) run.push(msg);
    else {
      endRun();
      wire.push(msg);
    }
  }
  endRun();
  return { wire, extra };
}

function pack(run: WriteRequest[]): PackedWrites {
  const strings: string[] = [];
  const index = new Map<string, number>();
  const str = (s: string): number => {
    let i = index.get(s);
    if (i === undefined) {
      i = strings.push(s) - 1;
      index.set(s, i);
    }
    return i;
  };
  let size = 0;
  for (const m of run) if (m.bytes && m.props) size += m.bytes.length;
  const bytes = new Uint8Array(size);
  const nums: number[] = [];
  let at = 0;
  for (const m of run) {
    const body = m.bytes && m.props ? m.bytes : null;
    nums.push(
      m.id,
      m.writer,
      str(m.itemId),
      m.version,
      m.expectedOffset ?? -1,
      m.seal ? 1 : 0,
      m.binding ? str(m.binding.type) : -1,
      m.binding ? m.binding.schemaVersion : 0,
      body ? body.length : -1,
    );
    if (!body || !m.props) continue;
    bytes.set(body, at);
    at += body.length;
    const p = m.props;
    nums.push(p.count, p.names.length);
    for (const name of p.names) nums.push(str(name));
    for (let k = 0; k < p.count; k++) nums.push(p.nameIds[k], p.types[k], p.lengths[k]);
  }
  return { type: "writes", strings, nums, bytes };
}

/** The worker's side: the messages again, in order. */
export function unpackBatch(wire: ToStorageWire[], into: ToStorage[]): void {
  for (const msg of wire) {
    if (msg.type === "writes") unpack(msg, into);
    else into.push(msg);
  }
}

function unpack(p: PackedWrites, into: ToStorage[]): void {
  const { strings, nums, bytes } = p;
  let i = 0;
  let at = 0;
  while (i < nums.length) {
    const id = nums[i++];
    const writer = nums[i++];
    const itemId = strings[nums[i++]];
    const version = nums[i++];
    const expected = nums[i++];
    const seal = nums[i++] === 1;
    const type = nums[i++];
    const schemaVersion = nums[i++];
    const length = nums[i++];
    const msg: WriteRequest = {
      type: "write",
      id,
      writer,
      itemId,
      version,
      expectedOffset: expected < 0 ? undefined : expected,
      seal,
    };
    if (type >= 0) msg.binding = { type: strings[type], schemaVersion };
    if (length >= 0) {
      const count = nums[i++];
      const nameCount = nums[i++];
      const names: string[] = [];
      for (let k = 0; k < nameCount; k++) names.push(strings[nums[i++]]);
      const nameIds: number[] = [];
      const types: number[] = [];
      const lengths: number[] = [];
      for (let k = 0; k < count; k++) {
        nameIds.push(nums[i++]);
        types.push(nums[i++]);
        lengths.push(nums[i++]);
      }
      msg.bytes = bytes.subarray(at, at + length);
      msg.props = { count, names, nameIds, types, lengths };
      at += length;
    }
    into.push(msg);
  }
}
