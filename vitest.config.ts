import { defineConfig } from "vitest/config";

export default defineConfig({
  test: {
    include: ["test/**/*.test.ts"],
    globalSetup: ["test/helpers/global-setup.ts"],
    // Tests start real servers with worker threads; forks keep each file's threads apart.
    pool: "forks",
    testTimeout: 30_000,
    hookTimeout: 30_000,
  },
});
