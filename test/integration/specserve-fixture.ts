// The SpecServe the integration tests serve: Qwen3-8B with an EAGLE-3 draft on vLLM, its engines
// played by the test's scripted /metrics servers on `port`. Each test adds what it is about.
import { expect } from "vitest";
import { until } from "./operator-harness.ts";

export interface SpecServeManifest {
  apiVersion: "specops.dev/v1alpha1";
  kind: "SpecServe";
  metadata: { name: string; namespace: string };
  spec: Record<string, unknown>;
}

export function vllmSpecServe(
  name: string,
  namespace: string,
  port: number,
  spec: Record<string, unknown>,
): SpecServeManifest {
  return {
    apiVersion: "specops.dev/v1alpha1",
    kind: "SpecServe",
    metadata: { name, namespace },
    spec: {
      target: { uri: "hf://Qwen/Qwen3-8B" },
      draft: { source: { uri: "hf://org/Qwen3-8B-eagle3" } },
      method: "eagle3",
      engine: "vllm",
      port,
      speculative: { numSpeculativeTokens: 4 },
      ...spec,
    },
  };
}

/**
 * Waits until the autoscaler has learned SPS(B) online over at least two windows of a bucket, and
 * checks that engines stepping as fast as the first-principles model left it uncorrected.
 */
export async function expectSpsLearnedAsModel(
  getSpecServe: () => Promise<{ status?: { autoscaling?: any } } | undefined>,
  what: string,
): Promise<void> {
  const learned = await until(what, async () => {
    const a = (await getSpecServe())?.status?.autoscaling;
    return a?.spsLearned?.buckets?.some((b: { windows: number }) => b.windows >= 2) ? a : undefined;
  });
  expect(learned.spsSource).toMatch(
    /first-principles.*; corrected online from \d+ windows \(factor 1\.00 at B/,
  );
  for (const b of learned.spsLearned.buckets) expect(b.factor).toBeCloseTo(1, 1);
}
