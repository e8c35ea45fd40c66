import { defineConfig } from "vitest/config";

export default defineConfig({
  test: {
    include: ["test/**/*.test.ts"],
    setupFiles: ["test/setup/yield-to-rpc.ts"],
    testTimeout: 60_000,
    hookTimeout: 180_000,
    // End-to-end tests start podman and registries; two workers fit the 2-core machine.
    pool: "forks",
    poolOptions: { forks: { maxForks: 2, minForks: 1 } },
  },
});
