import { copyFileSync, readdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { MetaReader, readMetaHead } from "../../dist/format/meta-file.js";
import { CommitLog } from "../../dist/store/file/commit-log.js";
import { ROOT, tempDir } from "../helpers/server.js";
import { startStorage } from "../helpers/storage.js";

/**
 * Files of every on-disk format stream-db has written, checked in (test/fixtures/formats,
 * made by make.mjs there): a change that can no longer read one fails here, not for a
 * user with such a file.
 */

const FIXTURES = join(ROOT, "test/fixtures/formats");

function copyInto(dir: string, from: string, names = readdirSync(from).filter((n) => n !== "expected")): void {
  for (const name of names) copyFileSync(join(from, name), join(dir, name));
}

describe("on-disk formats", () => {
  it.each([
    ["wal1", "the first format (records from byte 0, checksums unseeded)", 3],
    ["wal2", "the current format (WAL2 header, generation-seeded checksums)", 3],
  ])("a commit log of %s, %s, is replayed into its data files", (name, _what, records) => {
    const dir = tempDir();
    copyInto(dir, join(FIXTURES, name));
    const { log, replayed } = CommitLog.open(dir, true);
    log?.close();
    expect(replayed).toBe(records);
    for (const file of readdirSync(join(FIXTURES, name, "expected"))) {
      expect(readFileSync(join(dir, file), "utf8")).toBe(readFileSync(join(FIXTURES, name, "expected", file), "utf8"));
    }
  });

  it("a .meta file is read as written: its head, and every name's entries in file order", () => {
    const dir = join(FIXTURES, "meta");
    expect(readMetaHead(dir, "doc_1")).toMatchObject({
      item_id: "doc",
      version: 1,
      size: 407,
      sealed: true,
      property_count: 6,
    });
    const reader = new MetaReader(join(dir, "doc_1.meta"));
    const names: [string, string][] = [];
    for (let name = reader.nextName(); name !== null; name = reader.nextName()) {
      names.push([name, Buffer.concat([...reader.entries()]).toString()]);
    }
    reader.close();
    expect(names.map(([n]) => n)).toEqual(["name", "age", "active", "seen", "avatar"]);
    expect(names[0][1]).toBe('{"type":"string","offset":7,"length":80},{"type":"string","offset":343,"length":55}');
    // Each entry points at exactly its property's element.
    const data = readFileSync(join(dir, "doc_1.data"), "utf8");
    expect(data.slice(88, 88 + 53)).toBe('<property for="age"><number>36.50</number></property>');
  });

  it("a data directory of .data and .meta files needs no repair, and a clean stop leaves them as they were", async () => {
    const dir = tempDir();
    copyInto(dir, join(FIXTURES, "meta"));
    const storage = startStorage(dir);
    expect(storage.recovered).toMatchObject({ versions: 2, repaired: 0, damaged: [] });
    await storage.close();
    for (const name of readdirSync(join(FIXTURES, "meta"))) {
      expect(readFileSync(join(dir, name)), name).toEqual(readFileSync(join(FIXTURES, "meta", name)));
    }
  });
});
