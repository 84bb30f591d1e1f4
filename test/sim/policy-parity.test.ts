// The bench must measure what the operator runs: the controller's ReplicaPolicy for a default
// SpecServe and the simulator's SpecOps policy agree on every setting that is no spec field (both
// read SPECOPS_TUNING), and on the spec defaults the bench keeps.
import { describe, expect, it } from "vitest";
import { specServeResource } from "../../operator/src/api/kinds.ts";
import { SPECOPS_TUNING } from "../../operator/src/autoscaler/tuning.ts";
import { replicaPolicy } from "../../operator/src/controllers/autoscaler/policy.ts";
import { DEFAULT_PARAMS } from "./params.ts";
import { SPECOPS_DEFAULTS, specopsReplicaPolicy } from "./policies.ts";

const defaultSpecServe = () =>
  specServeResource.parse({
    apiVersion: "specops.dev/v1alpha1",
    kind: "SpecServe",
    metadata: { name: "chat", namespace: "ns" },
    spec: {
      target: { uri: "hf://Qwen/Qwen3-8B" },
      draft: { source: { uri: "hf://org/draft" } },
      method: "eagle3",
      speculative: { numSpeculativeTokens: DEFAULT_PARAMS.numSpeculativeTokens },
      autoscaling: {
        enabled: true,
        minReplicas: DEFAULT_PARAMS.minReplicas,
        maxReplicas: DEFAULT_PARAMS.maxReplicas,
        slo: { ttftP95: "1s", tpotP95: "7ms", minTokensPerSecondPerUser: 150 },
      },
    },
  });

describe("one SpecOps policy for the operator and the fleet simulator", () => {
  const ss = defaultSpecServe();
  const controller = replicaPolicy(ss, ss.spec.autoscaling as never);
  const simulated = specopsReplicaPolicy(DEFAULT_PARAMS);

  it("the tuned settings that are no spec field are the same", () => {
    const tuned = [
      "headroom",
      "backlogDrainSeconds",
      "tauLookaheadSeconds",
      "maxProjectedGrowth",
      "scaleDownIntervalSeconds",
      "defaultWorkload",
    ] as const;
    for (const key of tuned) {
      expect(controller[key], key).toEqual(simulated[key]);
      expect(controller[key], key).toEqual(SPECOPS_TUNING[key]);
    }
  });

  it("the bench's reported setting is the spec's defaults where it is a spec field", () => {
    expect(SPECOPS_DEFAULTS.headroom).toBe(SPECOPS_TUNING.headroom);
    expect(controller.scaleDownStabilizationSeconds).toBe(SPECOPS_DEFAULTS.scaleDownStabilizationSeconds);
    expect(controller).toMatchObject({
      tolerance: simulated.tolerance,
      // The spec's default rate limits are the simulator's (the bench measures what a SpecServe gets).
      maxScaleUpPerMinute: simulated.maxScaleUpPerMinute,
      maxScaleDownPerMinute: simulated.maxScaleDownPerMinute,
      scaleUpStabilizationSeconds: simulated.scaleUpStabilizationSeconds,
      minReplicas: simulated.minReplicas,
      maxReplicas: simulated.maxReplicas,
      numSpeculativeTokens: simulated.numSpeculativeTokens,
      slo: simulated.slo,
    });
  });

  it("both learn SPS(B) online by default (the same learnFromWindow; spsLearning defaults to Online)", () => {
    expect(ss.spec.autoscaling?.spsLearning).toBe("Online");
    expect(SPECOPS_DEFAULTS.learnSps).not.toBe(false);
  });

  it("a grid point of the bench changes only its knobs", () => {
    const varied = specopsReplicaPolicy(DEFAULT_PARAMS, {
      headroom: 0.4,
      scaleDownStabilizationSeconds: 600,
    });
    expect({ ...varied, headroom: simulated.headroom, scaleDownStabilizationSeconds: 300 }).toEqual(
      simulated,
    );
  });
});
