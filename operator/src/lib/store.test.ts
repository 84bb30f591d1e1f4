import { describe, expect, it } from "vitest";
import { StringInterner } from "./intern.ts";
import { Cache } from "./store.ts";

const child = (name: string, owners: string[], rv = "1") => ({
  apiVersion: "v1",
  kind: "ConfigMap",
  metadata: {
    name,
    namespace: "ns",
    resourceVersion: rv,
    managedFields: [{ manager: "m" }],
    ownerReferences: owners.map((uid) => ({ apiVersion: "v1", kind: "K", name: `o-${uid}`, uid })),
  },
  data: { a: ["x", { b: "y" }] },
});

describe("Cache", () => {
  it("indexes children by owner through updates and deletes, one entry per object", () => {
    const cache = new Cache();
    cache.upsert(child("a", ["u1"]));
    cache.upsert(child("b", ["u1", "u2", "u2"]));
    const names = (uid: string) => cache.byOwner(uid).map((o) => o.metadata?.name);
    expect(names("u1")).toEqual(["a", "b"]);
    expect(names("u2")).toEqual(["b"]);
    // An update replaces the indexed object (and may change owners).
    cache.upsert(child("a", ["u2"], "2"));
    expect(names("u1")).toEqual(["b"]);
    expect(names("u2")).toEqual(["b", "a"]);
    expect(cache.byOwner("u2").find((o) => o.metadata?.name === "a")?.metadata?.resourceVersion).toBe("2");
    cache.remove(child("b", []));
    expect(names("u1")).toEqual([]);
    expect(names("u2")).toEqual(["a"]);
    cache.remove(child("a", []));
    expect(names("u2")).toEqual([]);
    // byOwner hands out a copy: callers cannot corrupt the index.
    cache.upsert(child("c", ["u3"]));
    cache.upsert(child("d", ["u3"]));
    cache.byOwner("u3").pop();
    expect(names("u3")).toEqual(["c", "d"]);
  });

  it("finds objects by a label's value per namespace, built on first use and kept through changes", () => {
    const cache = new Cache();
    const pod = (name: string, ns: string, owner: string | undefined, rv = "1") => ({
      apiVersion: "v1",
      kind: "Pod",
      metadata: {
        name,
        namespace: ns,
        resourceVersion: rv,
        labels: owner ? { owner } : ({} as Record<string, string>),
      },
    });
    cache.upsert(pod("a", "ns", "s1"));
    cache.upsert(pod("b", "ns", "s1"));
    cache.upsert(pod("c", "other", "s1"));
    const names = (ns: string, v: string) =>
      cache
        .withLabel(ns, "owner", v)
        .map((o) => o.metadata?.name)
        .sort();
    // The index is built from what the cache holds when first asked.
    expect(names("ns", "s1")).toEqual(["a", "b"]);
    expect(names("other", "s1")).toEqual(["c"]);
    // Later changes move objects between values, in and out of the index.
    cache.upsert(pod("b", "ns", "s2", "2"));
    cache.upsert(pod("d", "ns", "s1"));
    cache.upsert(pod("e", "ns", undefined));
    expect(names("ns", "s1")).toEqual(["a", "d"]);
    expect(names("ns", "s2")).toEqual(["b"]);
    expect(cache.withLabel("ns", "owner", "s2")[0]?.metadata?.resourceVersion).toBe("2");
    cache.remove(pod("a", "ns", "s1"));
    cache.remove(pod("b", "ns", "s2"));
    expect(names("ns", "s1")).toEqual(["d"]);
    expect(names("ns", "s2")).toEqual([]);
    // A copy each time: callers cannot corrupt the index.
    cache.withLabel("ns", "owner", "s1").pop();
    expect(names("ns", "s1")).toEqual(["d"]);
    // list(namespace) is still every object of that namespace.
    expect(
      cache
        .list("ns")
        .map((o) => o.metadata?.name)
        .sort(),
    ).toEqual(["d", "e"]);
  });

  it("stores objects without managedFields and with their values unchanged", () => {
    const cache = new Cache();
    const obj = child("a", ["u1"]);
    cache.upsert(structuredClone(obj));
    const { managedFields: _, ...metadata } = obj.metadata;
    expect(cache.get("ns", "a")).toEqual({ ...obj, metadata });
    // A frozen object is cached as it is.
    const frozen = Object.freeze({
      apiVersion: "v1",
      kind: "ConfigMap",
      metadata: Object.freeze({ name: "f" }),
    });
    expect(() => cache.upsert(frozen)).not.toThrow();
    expect(cache.get(undefined, "f")).toEqual(frozen);
  });
});

describe("StringInterner", () => {
  it("keeps one entry per distinct short string, skips long strings and resourceVersions", () => {
    const strings = new StringInterner({ maxLength: 10 });
    const parsed = () =>
      JSON.parse(
        '{"kind":"Job","metadata":{"resourceVersion":"123","labels":{"k":"Job"}},"list":["Job","0123456789abc"]}',
      );
    const a = strings.internDeep(parsed());
    const b = strings.internDeep(parsed());
    expect(a).toEqual(parsed());
    expect(b).toEqual(parsed());
    expect(strings.size).toBe(1); // "Job" only
    expect(strings.intern("Job")).toBe("Job");
  });

  it("is bounded: a full table starts over", () => {
    const strings = new StringInterner({ maxEntries: 3 });
    for (const s of ["a", "b", "c"]) strings.intern(s);
    expect(strings.size).toBe(3);
    strings.intern("d");
    expect(strings.size).toBe(1);
    for (let i = 0; i < 100; i++) strings.intern(`s${i}`);
    expect(strings.size).toBeLessThanOrEqual(3);
  });
});
