import { closeSync, existsSync, openSync, readdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { PropertyIndex } from "../../dist/format/property-index.js";
import { MetaWriter } from "../../dist/store/file/meta-writer.js";
import { Version } from "../../dist/store/file/version.js";
import { tempDir } from "../helpers/server.js";

describe("a .meta rewrite", () => {
  it("abandoned while its fsync is on the thread pool, renames nothing; the rewrite that replaces it stands", async () => {
    const dir = tempDir();
    const v = new Version("i", 1, "i_1", new Date().toISOString(), 7, false, new PropertyIndex());
    v.index.add("x", 0, 7, 10);
    const round = new MetaWriter(dir, v, true);
    while (!round.step());
    const installed = round.finishInBackground();
    round.abort(); // as MetaKeeper.write(v) does for a seal or an eviction
    const other = openSync(join(dir, "other"), "w"); // may well take the freed descriptor
    new MetaWriter(dir, v, true).finish();
    expect(await installed).toBe(false);
    closeSync(other);
    expect(readdirSync(dir).filter((n) => n.endsWith(".tmp"))).toEqual([]);
    expect(JSON.parse(readFileSync(join(dir, "i_1.meta"), "utf8")).property_count).toBe(1);
    // The entry is in the file once: out of memory, counted once.
    expect(v.index.count).toBe(0);
    expect(v.metaCount).toBe(1);
    expect(existsSync(join(dir, "i_1.meta.tmp"))).toBe(false);
  });
});
