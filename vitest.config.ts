import { defineConfig } from "vitest/config";

export default defineConfig({
  test: {
    projects: [
      {
        test: {
          name: "unit",
          include: ["operator/**/*.test.ts", "test/unit/**/*.test.ts", "test/sim/**/*.test.ts"],
        },
      },
      {
        test: {
          name: "integration",
          // test/images: the project's images run with podman (skipped, saying why, where they cannot be).
          include: ["test/integration/**/*.test.ts", "test/images/**/*.test.ts"],
          globalSetup: ["test/controlplane/globalSetup.ts"],
          testTimeout: 60_000,
          hookTimeout: 120_000,
          // One control plane for all files; files run one at a time so they don't starve 2 cores.
          fileParallelism: false,
        },
      },
    ],
  },
});
