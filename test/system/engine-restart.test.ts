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
});
