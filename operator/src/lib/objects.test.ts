import { describe, expect, it } from "vitest";
import { dropUndefined } from "./objects.ts";

describe("dropUndefined", () => {
  it("drops only undefined keys, keeping null, 0, false and empty strings", () => {
    const out = dropUndefined({ a: undefined, b: null, c: 0, d: false, e: "", f: { g: undefined } });
    expect(Object.keys(out)).toEqual(["b", "c", "d", "e", "f"]);
    expect(out.f).toEqual({ g: undefined }); // shallow by design
  });
});
