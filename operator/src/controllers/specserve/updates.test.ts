import { describe, expect, it } from "vitest";
import { autoscalerUpdateMatters, specServeUpdateMatters } from "./updates.ts";

const base = () => ({
  apiVersion: "specops.dev/v1alpha1",
  kind: "SpecServe",
  metadata: {
    name: "s",
    namespace: "ns",
    uid: "u1",
    generation: 3,
    resourceVersion: "10",
    labels: { a: "1" },
  },
  spec: { replicas: 2 },
  status: {
    state: "Serving",
    conditions: [{ type: "Ready", status: "True" }],
    signals: { tau: 3.1 },
    rollout: { phase: "Stable" },
    autoscaling: { desiredReplicas: 2, speculationLength: { action: "recommend", schedule: [4] } },
    decisions: [{ desiredReplicas: 2 }],
  },
});
type Obj = ReturnType<typeof base>;
const edited = (edit: (o: Obj) => void) => {
  const o = structuredClone(base());
  o.metadata.resourceVersion = "11";
  edit(o);
  return o;
};

describe("SpecServe update predicates", () => {
  it("a status write of the other controller, or of its own outputs, wakes neither", () => {
    const decision = edited((o) => {
      o.status.autoscaling.desiredReplicas = 3;
      o.status.decisions.unshift({ desiredReplicas: 3 });
    });
    expect(specServeUpdateMatters(base(), decision)).toBe(false);
    expect(autoscalerUpdateMatters(base(), decision)).toBe(false);
    const signals = edited((o) => {
      o.status.signals.tau = 2.4;
      o.status.conditions = [{ type: "Ready", status: "False" }];
    });
    expect(specServeUpdateMatters(base(), signals)).toBe(false);
    expect(autoscalerUpdateMatters(base(), signals)).toBe(false);
  });

  it("spec and metadata changes wake both", () => {
    for (const edit of [
      (o: Obj) => {
        o.metadata.generation = 4;
      },
      (o: Obj) => {
        o.metadata.labels.a = "2";
      },
      (o: Obj) => {
        (o.metadata as Record<string, unknown>).annotations = { "specops.dev/paused": "true" };
      },
      (o: Obj) => {
        (o.metadata as Record<string, unknown>).deletionTimestamp = "2026-12-02T00:00:00Z";
      },
      (o: Obj) => {
        o.metadata.uid = "u2";
      },
    ]) {
      expect(specServeUpdateMatters(base(), edited(edit))).toBe(true);
      expect(autoscalerUpdateMatters(base(), edited(edit))).toBe(true);
    }
  });

  it("the status the SpecServe controller reads as input wakes it: the rollout and the length proposal", () => {
    const rollout = edited((o) => {
      o.status.rollout.phase = "Canary";
    });
    expect(specServeUpdateMatters(base(), rollout)).toBe(true);
    const proposal = edited((o) => {
      o.status.autoscaling.speculationLength = { action: "apply", schedule: [3] };
    });
    expect(specServeUpdateMatters(base(), proposal)).toBe(true);
    expect(autoscalerUpdateMatters(base(), proposal)).toBe(false);
    // A recommendation whose figures move is not acted on: no pass.
    const recommended = edited((o) => {
      o.status.autoscaling.speculationLength = { action: "recommend", schedule: [5] };
    });
    expect(specServeUpdateMatters(base(), recommended)).toBe(false);
    // Applied, then back to a recommendation: the change of action is read.
    expect(specServeUpdateMatters(proposal, recommended)).toBe(true);
  });
});
