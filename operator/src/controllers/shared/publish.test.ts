import { describe, expect, it } from "vitest";
import { inSpecTerms, isObjectStoreOutput, publishTarget } from "./publish.ts";

describe("runtime messages in the spec's terms", () => {
  it("names spec.output for the publish target and the mapped spec fields for inputs, whole segments only", () => {
    const fields = { "params.target": "spec.target", "params.tasks": "spec.tasks" };
    expect(inSpecTerms("publish.uri: listing s3://b/x: not found", fields)).toBe(
      "spec.output.uri: listing s3://b/x: not found",
    );
    expect(inSpecTerms("params.tasks[1].source.uri: reading s3://b/t.jsonl: refused", fields)).toBe(
      "spec.tasks[1].source.uri: reading s3://b/t.jsonl: refused",
    );
    expect(inSpecTerms("params.target.uri: store unreachable", fields)).toBe(
      "spec.target.uri: store unreachable",
    );
    // Not a field of the map: left as the runtime said it.
    expect(inSpecTerms("params.targetCache: x; workDir.params.target: y", fields)).toBe(
      "params.targetCache: x; workDir.params.target: y",
    );
    expect(inSpecTerms(undefined, fields)).toBeUndefined();
  });

  it("publishes s3:// and gs:// outputs only, with the store's options and never its credentials", () => {
    expect(isObjectStoreOutput({ uri: "pvc://results/x" })).toBe(false);
    expect(isObjectStoreOutput(undefined)).toBe(false);
    const output = {
      uri: "s3://ml-evals/x",
      endpoint: "http://minio:9000",
      pathStyle: true,
      credentialsSecretRef: { name: "s3-writer" },
    };
    expect(isObjectStoreOutput(output)).toBe(true);
    expect(publishTarget(output)).toEqual({
      uri: "s3://ml-evals/x",
      endpoint: "http://minio:9000",
      pathStyle: true,
    });
  });
});
