import { describe, expect, it } from "vitest";
import { statusUnchanged } from "./apply.ts";
import { formatTime, getCondition, isConditionTrue, removeCondition, setCondition } from "./conditions.ts";
import { semanticEqual } from "./equality.ts";

const T0 = Date.parse("2026-01-01T00:00:00Z");
const T1 = T0 + 60_000;

describe("setCondition", () => {
  it("adds a condition stamped with now and the generation", () => {
    const out = setCondition(undefined, { type: "Ready", status: "False", reason: "Pending" }, 3, T0);
    expect(out).toEqual([
      {
        type: "Ready",
        status: "False",
        reason: "Pending",
        message: "",
        lastTransitionTime: "2026-01-01T00:00:00Z",
        observedGeneration: 3,
      },
    ]);
  });

  it("keeps lastTransitionTime while the status holds, even if reason and message change", () => {
    const a = setCondition([], { type: "Ready", status: "False", reason: "Pending" }, 1, T0);
    const b = setCondition(
      a,
      { type: "Ready", status: "False", reason: "Pulling", message: "pulling image" },
      2,
      T1,
    );
    expect(b[0]).toMatchObject({
      reason: "Pulling",
      lastTransitionTime: formatTime(T0),
      observedGeneration: 2,
    });
  });

  it("moves lastTransitionTime when the status flips", () => {
    const a = setCondition([], { type: "Ready", status: "False", reason: "Pending" }, 1, T0);
    const b = setCondition(a, { type: "Ready", status: "True", reason: "Running" }, 1, T1);
    expect(b[0]?.lastTransitionTime).toBe(formatTime(T1));
  });

  it("does not mutate its input and leaves other conditions alone", () => {
    const a = setCondition([], { type: "A", status: "True", reason: "x" }, 1, T0);
    const frozen = structuredClone(a);
    const b = setCondition(a, { type: "B", status: "False", reason: "y" }, 1, T1);
    expect(a).toEqual(frozen);
    expect(b.map((c) => c.type)).toEqual(["A", "B"]);
    expect(getCondition(b, "B")?.status).toBe("False");
    expect(isConditionTrue(b, "A")).toBe(true);
    expect(removeCondition(b, "A").map((c) => c.type)).toEqual(["B"]);
  });

  it("re-setting the same condition later yields a status equal to the old one (no write)", () => {
    const status = { conditions: setCondition([], { type: "Ready", status: "True", reason: "Ok" }, 1, T0) };
    const next = {
      conditions: setCondition(status.conditions, { type: "Ready", status: "True", reason: "Ok" }, 1, T1),
    };
    expect(statusUnchanged(status, next)).toBe(true);
    const changed = {
      conditions: setCondition(status.conditions, { type: "Ready", status: "False", reason: "Ok" }, 1, T1),
    };
    expect(statusUnchanged(status, changed)).toBe(false);
  });
});

describe("semanticEqual / statusUnchanged", () => {
  it.each([
    [{ a: 1, b: { c: [1, 2] } }, { b: { c: [1, 2] }, a: 1 }, true],
    [{ a: 1, b: undefined }, { a: 1 }, true],
    [{ a: [1, 2] }, { a: [2, 1] }, false],
    [{ a: 1 }, { a: "1" }, false],
    [{ a: null }, { a: undefined }, false],
    [[], {}, false],
  ])("%j vs %j → %s", (a, b, want) => {
    expect(semanticEqual(a, b)).toBe(want);
  });

  it("treats a missing status as empty", () => {
    expect(statusUnchanged(undefined, {})).toBe(true);
    expect(statusUnchanged(undefined, { phase: "x" })).toBe(false);
  });
});
