import { describe, expect, it } from "vitest";
import { PACK_BYTES, packBatch, unpackBatch } from "../../dist/store/file/packed-writes.js";
import type { ToStorage } from "../../dist/store/file/protocol.js";

const enc = new TextEncoder();

function write(id: number, extra: Record<string, unknown> = {}): ToStorage {
  return { type: "write", id, writer: 100 + id, itemId: "sensor-1", version: 3, seal: false, ...extra } as ToStorage;
}

function body(text: string, names: string[], nameIds: number[], types: number[], lengths: number[]) {
  return { bytes: enc.encode(text), props: { count: nameIds.length, names, nameIds, types, lengths } };
}

/** What the worker rebuilds, compared field by field with plain arrays and bytes. */
function plain(msgs: ToStorage[]): unknown[] {
  return msgs.map((m) => {
    if (m.type !== "write" && m.type !== "append") return m;
    const out: Record<string, unknown> = { ...m };
    if (m.bytes) out.bytes = [...m.bytes];
    if (m.props) {
      out.props = {
        ...m.props,
        nameIds: [...m.props.nameIds],
        types: [...m.props.types],
        lengths: [...m.props.lengths],
      };
    }
    if (m.type === "write" && m.expectedOffset === undefined) delete out.expectedOffset;
    return out;
  });
}

describe("packed small writes", () => {
  it("reach the worker as the same messages, in the same order, among the others", () => {
    const big = new Uint8Array(PACK_BYTES + 1).fill(0x61);
    const batch: ToStorage[] = [
      write(1, body("<a/>\n", ["t"], [0], [1], [5])),
      write(2, { itemId: "späť/名", version: 2 ** 40, expectedOffset: 0, seal: true }),
      write(6, { binding: { type: "person", schemaVersion: 3 }, ...body("<c/>\n", ["person"], [0], [1], [5]) }),
      { type: "release", slot: 7 },
      write(3, {
        expectedOffset: 2 ** 52,
        ...body("<x/>\n<y/>\n<x/>\n", ["x", "y"], new Uint32Array([0, 1, 0]) as never, [2, 3, 2], [5, 5, 5]),
      }),
      write(4, { bytes: big, props: { count: 1, names: ["t"], nameIds: [0], types: [1], lengths: [big.length] } }),
      write(5, body("<b/>\n", ["t"], [0], [1], [5])),
      { type: "drop", writer: 9 },
    ];
    const { wire, extra } = packBatch(batch);
    expect(wire.map((m) => m.type)).toEqual(["writes", "release", "writes", "write", "writes", "drop"]);
    expect(extra).toHaveLength(3);
    // Across a real structured clone, as postMessage sends it.
    const received = structuredClone(wire);
    const rebuilt: ToStorage[] = [];
    unpackBatch(received, rebuilt);
    expect(plain(rebuilt)).toEqual(plain(batch));
  });

  it("a batch without small writes is sent as it is", () => {
    const batch: ToStorage[] = [
      { type: "stats", id: 1 },
      { type: "close", id: 2 },
    ];
    const { wire, extra } = packBatch(batch);
    expect(wire).toEqual(batch);
    expect(extra).toEqual([]);
  });
});
