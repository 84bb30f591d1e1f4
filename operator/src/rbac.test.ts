import { describe, expect, it } from "vitest";
import { OPERATOR_RBAC_RULES } from "./rbac.ts";

describe("the generated ClusterRole", () => {
  it("grants no access to Secrets (a GET would return every credential's data)", () => {
    expect(OPERATOR_RBAC_RULES.filter((r) => r.resources.includes("secrets"))).toEqual([]);
  });
});
