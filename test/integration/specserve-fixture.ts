// The SpecServe the integration tests serve: Qwen3-8B with an EAGLE-3 draft on vLLM, its engines
// played by the test's scripted /metrics servers on `port`. Each test adds what it is about.
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
