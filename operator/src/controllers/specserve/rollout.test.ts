import { describe, expect, it } from "vitest";
import { type SpecServe, specServeResource } from "../../api/kinds.ts";
import { ANNOTATIONS } from "./plan.ts";
import { applyVerdict, planRollout, type ReadyDraft } from "./rollout.ts";

const ss = (annotations: Record<string, string> = {}): SpecServe =>
  specServeResource.parse({
    apiVersion: "specops.dev/v1alpha1",
    kind: "SpecServe",
    metadata: { name: "chat", namespace: "ns", annotations },
    spec: { target: { uri: "hf://o/t" }, draft: { source: { uri: "hf://o/b" } }, method: "eagle3" },
  });
const draft = (uri: string): ReadyDraft => ({ state: "ready", source: { uri }, display: uri });
const now = "2026-12-01T10:00:00Z";

describe("planRollout", () => {
  it("the first server serves the spec's draft directly", () => {
    expect(planRollout(ss(), draft("hf://o/b"), undefined, { hasServer: false, now })).toEqual({
      stable: draft("hf://o/b"),
      rollout: { state: "Stable", currentDraft: "hf://o/b" },
    });
  });
  it("a changed draft starts a canary; the stable pods keep the current draft", () => {
    const p = planRollout(
      ss(),
      draft("hf://o/b"),
      { state: "Stable", currentDraft: "hf://o/a" },
      { hasServer: true, now },
    );
    expect(p.stable.display).toBe("hf://o/a");
    expect(p.canary?.display).toBe("hf://o/b");
    expect(p.rollout).toMatchObject({
      state: "Canary",
      currentDraft: "hf://o/a",
      candidateDraft: "hf://o/b",
      startTime: now,
    });
  });
  it("an operator restart mid-analysis continues the same canary from status (same start, one canary)", () => {
    const previous = {
      state: "Canary" as const,
      currentDraft: "hf://o/a",
      candidateDraft: "hf://o/b",
      startTime: "2026-12-01T09:00:00Z",
    };
    const p = planRollout(ss(), draft("hf://o/b"), previous, { hasServer: true, now });
    expect(p.rollout).toBe(previous);
    expect(p.canary?.display).toBe("hf://o/b");
  });
  it("a rolled-back candidate is not tried again; a new draft is", () => {
    const rolledBack = { state: "RolledBack" as const, currentDraft: "hf://o/a", candidateDraft: "hf://o/b" };
    const again = planRollout(ss(), draft("hf://o/b"), rolledBack, { hasServer: true, now });
    expect(again.canary).toBeUndefined();
    expect(again.stable.display).toBe("hf://o/a");
    expect(planRollout(ss(), draft("hf://o/c"), rolledBack, { hasServer: true, now }).canary?.display).toBe(
      "hf://o/c",
    );
  });
  it("a pinned draft is served directly, without a canary", () => {
    const pinned = ss({ [ANNOTATIONS.pinnedDraft]: "hf://o/p" });
    const p = planRollout(
      pinned,
      draft("hf://o/p"),
      { state: "Stable", currentDraft: "hf://o/a" },
      { hasServer: true, now },
    );
    expect(p.canary).toBeUndefined();
    expect(p.stable.display).toBe("hf://o/p");
    expect(p.rollout.message).toMatch(/pinned by specops.dev\/pinned-draft.*without a canary/);
  });
  it("multi-node replicas (LeaderWorkerSet): no canary, and status.rollout says so, changed draft or not", () => {
    const lws = specServeResource.parse({
      ...ss(),
      spec: { ...ss().spec, resources: { nodesPerReplica: 2, gpusPerReplica: 8 } },
    });
    const changed = planRollout(
      lws,
      draft("hf://o/b"),
      { state: "Stable", currentDraft: "hf://o/a" },
      { hasServer: true, now },
    );
    expect(changed.canary).toBeUndefined();
    expect(changed.stable.display).toBe("hf://o/b");
    expect(changed.rollout).toMatchObject({ state: "Stable", currentDraft: "hf://o/b" });
    expect(changed.rollout.message).toMatch(/canary rollouts are not supported for multi-node replicas/);
    const first = planRollout(lws, draft("hf://o/b"), undefined, { hasServer: false, now });
    expect(first.rollout.message).toMatch(/not supported for multi-node replicas/);
    // A gated SpecServe has no such message.
    expect(
      planRollout(ss(), draft("hf://o/b"), undefined, { hasServer: false, now }).rollout.message,
    ).toBeUndefined();
  });
});

describe("applyVerdict", () => {
  const plan = planRollout(
    ss(),
    draft("hf://o/b"),
    { state: "Stable", currentDraft: "hf://o/a" },
    { hasServer: true, now },
  );
  const c = { tau: 3.1, rounds: 5000, standardError: 0.01 };
  const s = { tau: 3.9, rounds: 9000, standardError: 0.01 };
  it("rolled back: the current draft stays, both taus and rounds are recorded", () => {
    const p = applyVerdict(plan, { verdict: "RollBack", reason: "TauDropped", message: "x" }, c, s);
    expect(p.canary).toBeUndefined();
    expect(p.stable.display).toBe("hf://o/a");
    expect(p.rollout).toMatchObject({
      state: "RolledBack",
      currentDraft: "hf://o/a",
      candidateDraft: "hf://o/b",
      candidateTau: 3.1,
      currentTau: 3.9,
      candidateRounds: 5000,
      currentRounds: 9000,
    });
  });
  it("promoted: the candidate becomes the current draft", () => {
    const p = applyVerdict(plan, { verdict: "Promote", reason: "TauHeld", message: "x" }, s, c);
    expect(p.stable.display).toBe("hf://o/b");
    expect(p.rollout).toMatchObject({ state: "Promoted", currentDraft: "hf://o/b" });
  });
});
