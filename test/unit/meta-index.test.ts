import { writeFileSync } from "node:fs";
import { join } from "node:path";
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { PROPERTY_TYPES } from "../../dist/format/item-file.js";
import { MetaCorrupt, readMetaIndex } from "../../dist/format/meta-file.js";
import { PropertyIndex } from "../../dist/format/property-index.js";
import { MetaWriter } from "../../dist/store/file/meta-writer.js";
import { Version } from "../../dist/store/file/version.js";
import { tempDir } from "../helpers/server.js";

/**
 * A property read's scan of a .meta file, against the entries it was written from, with
 * chunks of every size down to one byte, so every boundary falls inside a name, an entry
 * and a `]` somewhere.
 */

const names = fc.constantFrom("a", "b", 'q"uote', "ü", "x\\y", "long-name-".repeat(5));
const entries = fc.array(fc.tuple(names, fc.integer({ min: 0, max: 4 }), fc.integer({ min: 1, max: 300 })), {
  maxLength: 40,
});

describe("readMetaIndex", () => {
  it("gives each select's entries, whatever the chunk size", async () => {
    const dir = tempDir();
    let run = 0;
    await fc.assert(
      fc.asyncProperty(entries, fc.integer({ min: 1, max: 97 }), names, async (list, chunk, one) => {
        const key = `i_${++run}`;
        const v = new Version("i", run, key, new Date().toISOString(), 7, false, new PropertyIndex());
        let offset = 7;
        const expected = list.map(([name, type, length]) => {
          v.index.add(name, type, offset, length);
          const e = { name, type: PROPERTY_TYPES[type], offset, length };
          offset += length + 1;
          return e;
        });
        v.committed = v.size = offset;
        new MetaWriter(dir, v, false).finish();
        const path = join(dir, `${key}.meta`);
        const byName = (e: { name: string }) => expected.filter((x) => x.name === e.name);
        const all = await readMetaIndex(path, { latest: false }, chunk);
        expect(all?.size).toBe(offset);
        expect(all?.entries.sort((a, b) => a.offset - b.offset)).toEqual(expected);
        const latest = await readMetaIndex(path, { latest: true }, chunk);
        const newest = expected.filter((e) => byName(e).at(-1) === e);
        expect(latest?.entries.sort((a, b) => a.offset - b.offset)).toEqual(newest);
        expect((await readMetaIndex(path, { name: one, latest: false }, chunk))?.entries).toEqual(
          expected.filter((e) => e.name === one),
        );
        expect((await readMetaIndex(path, { name: one, latest: true }, chunk))?.entries).toEqual(
          newest.filter((e) => e.name === one),
        );
      }),
      { numRuns: 200 },
    );
  });

  it("null for a missing file, MetaCorrupt for one cut short", async () => {
    const dir = tempDir();
    expect(await readMetaIndex(join(dir, "none.meta"), { latest: true })).toBeNull();
    const path = join(dir, "cut.meta");
    writeFileSync(path, '{"size":9,"properties":{"a":[{"type":"string","offset":7');
    await expect(readMetaIndex(path, { latest: true })).rejects.toBeInstanceOf(MetaCorrupt);
  });
});
