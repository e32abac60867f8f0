import { readFileSync } from "node:fs";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { INITIAL_STATE, parseSlice } from "../../dist/parse/property-parser.js";
import { decodeSlot } from "../../dist/store/file/shared-layout.js";
import { line, prop } from "../helpers/http.js";
import { tempDir } from "../helpers/server.js";
import { startStorage } from "../helpers/storage.js";

/** The storage worker's work without its thread: Storage built from plain arguments. */

function parsed(body: string) {
  const out = parseSlice({ bytes: Buffer.from(body), state: INITIAL_STATE, final: true, maxPropertyBytes: 1 << 20 });
  return { bytes: out.out, props: out.props };
}

describe("Storage, built directly", () => {
  it("writes, publishes the committed length to a reader's slot, seals, and refuses what follows", async () => {
    const dir = tempDir();
    const s = startStorage(dir);
    expect(s.recovered).toMatchObject({ versions: 0, repaired: 0 });
    // A reader comes first: its slot says the version does not exist yet.
    const open = await s.request<{ slot: number; exists: boolean }>({ type: "open", itemId: "u", version: 1 });
    expect(open.exists).toBe(false);
    expect(decodeSlot(Atomics.load(s.lengths, open.slot))).toEqual({ kind: "absent" });

    const first = await s.request({
      type: "write",
      writer: 1,
      itemId: "u",
      version: 1,
      seal: false,
      ...parsed(prop("a", "string", "1")),
    });
    const after = `<item>\n${line("a", "string", "1")}`;
    expect(first).toMatchObject({ ok: true, end: after.length });
    expect(decodeSlot(Atomics.load(s.lengths, open.slot))).toEqual({ kind: "open", length: after.length });

    const sealed = await s.request({ type: "write", writer: 2, itemId: "u", version: 1, seal: true });
    expect(sealed).toMatchObject({ ok: true, end: after.length });
    expect(decodeSlot(Atomics.load(s.lengths, open.slot))).toEqual({ kind: "sealed", length: after.length + 8 });
    const refused = await s.request<{ ok: boolean; error: { code: string; details: { offset: number } } }>({
      type: "write",
      writer: 3,
      itemId: "u",
      version: 1,
      seal: false,
      ...parsed(prop("b", "string", "2")),
    });
    expect(refused).toMatchObject({
      ok: false,
      error: { code: "version_sealed", details: { offset: after.length + 8 } },
    });
    await s.close();
    expect(readFileSync(join(dir, "u_1.data"), "utf8")).toBe(`${after}</item>\n`);
    expect(JSON.parse(readFileSync(join(dir, "u_1.meta"), "utf8"))).toMatchObject({ sealed: true, property_count: 1 });
  });

  it("X-Expected-Offset: a begin at the wrong length is refused with the current one", async () => {
    const s = startStorage(tempDir());
    await s.request({
      type: "write",
      writer: 1,
      itemId: "e",
      version: 1,
      seal: false,
      ...parsed(prop("a", "number", "1")),
    });
    const refused = await s.request({ type: "begin", writer: 2, itemId: "e", version: 1, expectedOffset: 0 });
    expect(refused).toMatchObject({ ok: false, error: { code: "offset_mismatch" } });
    await s.close();
  });
});
