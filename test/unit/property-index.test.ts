import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { Column } from "../../dist/format/property-index.js";

/**
 * The pending index packs entries as varints in chained blocks; whatever the mix of
 * pushes, reads and drops, it must read back exactly what a plain array would hold.
 */
describe("the pending index column", () => {
  it("reads back what was pushed, across block growth, chaining and drops", () => {
    const op = fc.oneof(
      fc.record({
        push: fc.array(fc.tuple(fc.nat(4), fc.oneof(fc.nat(300), fc.nat(70_000_000)), fc.nat(2_000_000)), {
          maxLength: 400,
        }),
      }),
      fc.record({ drop: fc.double({ min: 0, max: 1, noNaN: true }) }),
    );
    fc.assert(
      fc.property(fc.nat(2 ** 40), fc.array(op, { maxLength: 40 }), (start, ops) => {
        const col = new Column();
        const model: [number, number, number][] = [];
        let offset = start;
        for (const o of ops) {
          if ("push" in o) {
            for (const [type, length, gap] of o.push) {
              col.push(type, offset, length);
              model.push([type, offset, length]);
              offset += length + 1 + gap;
            }
          } else {
            const k = Math.floor(o.drop * model.length);
            col.dropFirst(k);
            model.splice(0, k);
          }
          expect(col.n).toBe(model.length);
          expect([...col.read(col.n)].length).toBe(model.length);
          let i = 0;
          for (const e of col.read(model.length)) {
            expect([e.type, e.offset, e.length]).toEqual(model[i++]);
          }
        }
      }),
      { numRuns: 200 },
    );
  });

  it("costs about 4 bytes a 100-byte property", () => {
    const col = new Column();
    for (let i = 0; i < 1_000_000; i++) col.push(0, 7 + i * 100, 99);
    // The blocks are private; the test weighs them.
    const bytes = (col as unknown as { blocks: Uint8Array[] }).blocks.reduce((a, b) => a + b.length, 0);
    expect(bytes).toBeLessThan(5_000_000);
  });
});
