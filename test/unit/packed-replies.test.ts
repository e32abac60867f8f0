import { describe, expect, it } from "vitest";
import { eachReply, packReplies } from "../../dist/store/file/packed-replies.js";
import type { Reply } from "../../dist/store/file/protocol.js";

const settled = (wire: ReturnType<typeof packReplies>) => {
  const out: Reply[] = [];
  eachReply(structuredClone(wire), (r) => out.push(r));
  return out;
};

describe("packed replies", () => {
  it("a group of plain acknowledgements crosses as numbers and comes back the same, in order", () => {
    const replies: Reply[] = [
      { id: 7, ok: true, end: 68 },
      { id: 3, ok: true, end: 2 ** 40 + 5 },
      { id: 9, ok: true, end: 0 },
    ];
    const wire = packReplies(replies);
    expect(wire).toBeInstanceOf(Float64Array);
    expect(settled(wire)).toEqual(replies);
  });

  it("any other reply in the group sends them all as objects, in order", () => {
    const replies: Reply[] = [
      { id: 1, ok: true, end: 68 },
      { id: 2, ok: false, error: { code: "write_failed", message: "EIO", details: {} } },
      { id: 3, ok: true, slot: 4, exists: true, sealed: false, superseded: false, length: 7 },
    ] as Reply[];
    const wire = packReplies(replies);
    expect(Array.isArray(wire)).toBe(true);
    expect(settled(wire)).toEqual(replies);
  });

  it("an empty group stays empty", () => {
    expect(settled(packReplies([]))).toEqual([]);
  });
});
