import { describe, expect, it } from "vitest";
import { Engine } from "../../dist/engine/index.js";
import { fileBackend } from "../../dist/store/file/index.js";
import { prop } from "../helpers/http.js";
import { tempDir } from "../helpers/server.js";

describe("a store that dies", () => {
  it("is not replaced after the engine closed, so nothing touches the directory once its lock is let go", async () => {
    const inner = fileBackend({ dataDir: tempDir(), fsync: "batch", faults: { storageCrash: "boom" } });
    let opens = 0;
    const backend = {
      open: () => {
        opens++;
        return inner.open();
      },
      close: () => inner.close(),
    };
    const engine = await Engine.open({ backend, maxPropertyBytes: 1 << 20 });
    // The storage worker exits on this append; the engine schedules a new store.
    await expect(engine.writeWhole("boom", 1, {}, Buffer.from(prop("a", "string", "x")))).rejects.toThrow();
    await new Promise((r) => setImmediate(r));
    await engine.close();
    await new Promise((r) => setTimeout(r, 400));
    expect(opens).toBe(1);
  });

  it("requests waiting on a restart that a shutdown ends are answered shutting_down", async () => {
    const backend = fileBackend({ dataDir: tempDir(), fsync: "batch", faults: { storageCrash: "boom" } });
    const engine = await Engine.open({ backend, maxPropertyBytes: 1 << 20 });
    await expect(engine.writeWhole("boom", 1, {}, Buffer.from(prop("a", "string", "x")))).rejects.toThrow();
    await new Promise((r) => setImmediate(r));
    // Both wait for the new store, which the shutdown stops from ever starting.
    const read = engine.openReader("a", 1, { offset: 0, follow: true, wait: true });
    const write = engine.openWriter("a", 1);
    for (const p of [read, write]) p.catch(() => undefined);
    await engine.close();
    await expect(read).rejects.toMatchObject({ code: "shutting_down" });
    await expect(write).rejects.toMatchObject({ code: "shutting_down" });
  });
});
