import { describe, expect, it } from "vitest";
import { z } from "zod";
import { buildCrd, type JsonSchema, NonStructuralSchemaError, toStructuralSchema } from "./crd.ts";
import { KINDS } from "./kinds.ts";

type Visit = (node: JsonSchema, path: string) => void;
function walk(node: JsonSchema, path: string, visit: Visit): void {
  visit(node, path);
  for (const [name, child] of Object.entries((node.properties as Record<string, JsonSchema>) ?? {})) {
    walk(child, `${path}.${name}`, visit);
  }
  if (node.items) walk(node.items as JsonSchema, `${path}[*]`, visit);
  if (node.additionalProperties && typeof node.additionalProperties === "object") {
    walk(node.additionalProperties as JsonSchema, `${path}{*}`, visit);
  }
}

const openApi = (def: (typeof KINDS)[number]) =>
  (buildCrd(def) as any).spec.versions[0].schema.openAPIV3Schema as JsonSchema;

describe.each(KINDS.map((k) => [k.kind, k] as const))("generated CRD of %s", (_kind, def) => {
  const schema = openApi(def);

  it("is structural: typed nodes, no unions except int-or-string, no additionalProperties: false", () => {
    const problems: string[] = [];
    walk(schema, "", (node, path) => {
      const intOrString = node["x-kubernetes-int-or-string"] === true;
      if (!intOrString && typeof node.type !== "string") problems.push(`${path}: no type`);
      if (node.anyOf && !intOrString) problems.push(`${path}: anyOf`);
      for (const k of ["oneOf", "allOf", "not", "nullable", "$ref"])
        if (k in node) problems.push(`${path}: ${k}`);
      if (node.additionalProperties === false) problems.push(`${path}: additionalProperties false`);
    });
    expect(problems).toEqual([]);
  });

  it("describes every field under spec and status", () => {
    const missing: string[] = [];
    for (const part of ["spec", "status"]) {
      walk((schema.properties as any)[part], `.${part}`, (node, path) => {
        if (typeof node.description !== "string" || node.description.length < 3) missing.push(path);
      });
    }
    expect(missing).toEqual([]);
  });

  it("has printer columns whose paths exist in the schema", () => {
    const columns = (buildCrd(def) as any).spec.versions[0].additionalPrinterColumns as {
      jsonPath: string;
    }[];
    expect(columns.at(-1)).toMatchObject({ name: "Age", jsonPath: ".metadata.creationTimestamp" });
    for (const { jsonPath } of columns.slice(0, -1)) {
      const segments = jsonPath
        .replace(/\[\?.*$/, "")
        .split(".")
        .filter(Boolean);
      let node: JsonSchema | undefined = schema;
      for (const s of segments) {
        node = node?.type === "array" ? (node.items as JsonSchema) : node;
        node = (node?.properties as Record<string, JsonSchema> | undefined)?.[s];
      }
      expect(node, jsonPath).toBeDefined();
    }
  });

  it("has the status subresource, the specops category and short names", () => {
    const crd = buildCrd(def) as any;
    expect(crd.spec.versions[0].subresources.status).toEqual({});
    expect(crd.spec.names.categories).toEqual(["specops"]);
    expect(crd.spec.names.shortNames.length).toBeGreaterThan(0);
    expect(crd.spec.scope).toBe("Namespaced");
  });

  it("marks target and method immutable with transition rules", () => {
    const rules = ((schema.properties as any).spec["x-kubernetes-validations"] ?? []) as { rule: string }[];
    const transition = rules.filter((r) => r.rule.includes("oldSelf")).map((r) => r.rule);
    expect(transition.some((r) => r.includes("self.target"))).toBe(true);
    expect(transition.some((r) => r.includes("self.method"))).toBe(true);
  });
});

describe("SpecServe scale subresource", () => {
  it("maps spec.replicas, status.replicas and status.selector", () => {
    const serve = KINDS.find((k) => k.kind === "SpecServe");
    if (!serve) throw new Error("no SpecServe kind");
    expect((buildCrd(serve) as any).spec.versions[0].subresources.scale).toEqual({
      specReplicasPath: ".spec.replicas",
      statusReplicasPath: ".status.replicas",
      labelSelectorPath: ".status.selector",
    });
  });
  it("is absent on the other kinds", () => {
    for (const def of KINDS.filter((k) => k.kind !== "SpecServe")) {
      expect((buildCrd(def) as any).spec.versions[0].subresources.scale).toBeUndefined();
    }
  });
});

describe("toStructuralSchema", () => {
  it("refuses unions", () => {
    const s = z.object({ x: z.union([z.string(), z.number()]).describe("x") });
    expect(() => toStructuralSchema(s)).toThrow(NonStructuralSchemaError);
    expect(() => toStructuralSchema(s)).toThrow(/\.x: unions are not structural/);
  });
  it("refuses a field without description", () => {
    expect(() => toStructuralSchema(z.object({ undocumented: z.string() }))).toThrow(
      /\.undocumented: every field needs a description/,
    );
  });
  it("refuses nullable fields", () => {
    expect(() => toStructuralSchema(z.object({ n: z.string().nullable().describe("n") }))).toThrow(
      NonStructuralSchemaError,
    );
  });
  it("turns int-or-string quantities into the Kubernetes form", () => {
    const s = z.object({
      q: z
        .union([z.int(), z.string().regex(/^[0-9]+Gi$/)])
        .meta({ description: "q", "x-kubernetes-int-or-string": true }),
    });
    expect((toStructuralSchema(s).properties as any).q).toEqual({
      description: "q",
      "x-kubernetes-int-or-string": true,
      anyOf: [{ type: "integer" }, { type: "string" }],
      pattern: "^[0-9]+Gi$",
    });
  });
  it("turns a record of unknown values into an opaque preserved leaf", () => {
    const s = z.object({ a: z.record(z.string(), z.unknown()).describe("a") });
    expect((toStructuralSchema(s).properties as any).a).toEqual({
      type: "object",
      description: "a",
      "x-kubernetes-preserve-unknown-fields": true,
    });
  });
  it("drops zod's safe-integer bounds but keeps real ones", () => {
    const s = z.object({ n: z.int().min(1).describe("n") });
    expect((toStructuralSchema(s).properties as any).n).toEqual({
      type: "integer",
      format: "int64",
      minimum: 1,
      description: "n",
    });
  });
});
