import { describe, expect, it } from "vitest";
import { RELEASE_BYTES, releaseBuffers } from "../../dist/core/release.js";

describe("releaseBuffers", () => {
  it("frees large buffers at once (detached, memory returned) and leaves small ones", () => {
    const rss = () => process.memoryUsage().rss;
    const big = Array.from({ length: 32 }, () => new Uint8Array(4 << 20).fill(1));
    const small = new Uint8Array(RELEASE_BYTES - 1);
    const before = rss();
    releaseBuffers([...big.map((b) => b.buffer), big[0].buffer, small.buffer]);
    expect(big.every((b) => b.byteLength === 0)).toBe(true);
    expect(small.byteLength).toBe(RELEASE_BYTES - 1);
    // 128 MiB were touched; at least half of it must be gone, with every view still reachable.
    expect(before - rss()).toBeGreaterThan(64 << 20);
  });
});
