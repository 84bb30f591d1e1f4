// Turns a kind's zod schemas into a CustomResourceDefinition. The output must be a structural
// openAPIV3Schema (Kubernetes rejects or silently prunes anything else), so every construct that
// would break that fails the generator with the path of the offending node.
import { z } from "zod";
import { GROUP, VERSION } from "./common.ts";
import type { CelRule } from "./rules.ts";

export type JsonSchema = { [key: string]: unknown };

export interface PrinterColumn {
  name: string;
  type: "string" | "integer" | "number" | "boolean" | "date";
  jsonPath: string;
  description?: string;
  priority?: number;
}

export interface KindDefinition {
  kind: string;
  plural: string;
  singular: string;
  shortNames: string[];
  description: string;
  spec: z.ZodType;
  status: z.ZodType;
  printerColumns: PrinterColumn[];
  scale?: { specReplicasPath: string; statusReplicasPath: string; labelSelectorPath: string };
}

export class NonStructuralSchemaError extends Error {}

const SAFE_INT = 9007199254740991;
const FORBIDDEN_KEYWORDS = [
  "oneOf",
  "allOf",
  "not",
  "$ref",
  "nullable",
  "const",
  "patternProperties",
  "if",
  "then",
];

/** Structural, Kubernetes-flavoured JSON Schema for one zod schema. */
export function toStructuralSchema(schema: z.ZodType, rootPath = ""): JsonSchema {
  const raw = z.toJSONSchema(schema, {
    target: "openapi-3.0",
    io: "input",
    unrepresentable: "throw",
    cycles: "throw",
    reused: "inline",
  }) as JsonSchema;
  return normalize(raw, rootPath, true);
}

function fail(path: string, why: string): never {
  throw new NonStructuralSchemaError(`${path || "<root>"}: ${why}`);
}

function normalize(node: JsonSchema, path: string, isRoot = false): JsonSchema {
  const out: JsonSchema = { ...node };
  delete out.$schema;
  for (const k of FORBIDDEN_KEYWORDS) if (k in out) fail(path, `'${k}' makes the CRD non-structural`);

  if (out["x-kubernetes-int-or-string"] === true) return intOrString(out, path);
  if (out.anyOf) fail(path, "unions are not structural: use optional fields and a CEL 'exactly one of' rule");
  if (typeof out.type !== "string") fail(path, "every node needs a type");
  if (!isRoot && typeof out.description !== "string")
    fail(path, "every field needs a description (kubectl explain)");

  if (out.type === "integer") {
    if (out.minimum === -SAFE_INT) delete out.minimum;
    if (out.maximum === SAFE_INT) delete out.maximum;
    out.format ??= "int64";
  }
  if (out.type === "object") {
    if (out.additionalProperties === false) delete out.additionalProperties;
    const ap = out.additionalProperties as JsonSchema | undefined;
    if (ap && Object.keys(ap).length === 0) {
      // z.record(z.string(), z.unknown()): an opaque leaf, validated where it is used (e.g. pod affinity).
      delete out.additionalProperties;
      out["x-kubernetes-preserve-unknown-fields"] = true;
    } else if (ap) {
      out.additionalProperties = normalize({ description: "Value.", ...ap }, `${path}[*]`);
    }
    if (out.properties) {
      const props = out.properties as Record<string, JsonSchema>;
      out.properties = Object.fromEntries(
        Object.entries(props).map(([name, child]) => [name, normalize(child, `${path}.${name}`)]),
      );
    }
  }
  if (out.type === "array") {
    if (!out.items) fail(path, "arrays need items");
    out.items = normalize({ description: "Item.", ...(out.items as JsonSchema) }, `${path}[*]`);
  }
  const rules = out["x-kubernetes-validations"] as CelRule[] | undefined;
  if (rules) out["x-kubernetes-validations"] = rules.map(stripUndefined);
  return out;
}

function intOrString(node: JsonSchema, path: string): JsonSchema {
  const branches = (node.anyOf as JsonSchema[] | undefined) ?? [];
  const stringBranch = branches.find((b) => b.type === "string");
  const types = branches.map((b) => b.type).sort();
  if (types.join() !== "integer,string")
    fail(path, "x-kubernetes-int-or-string needs exactly an integer and a string branch");
  if (typeof node.description !== "string") fail(path, "every field needs a description (kubectl explain)");
  const out: JsonSchema = {
    description: node.description,
    "x-kubernetes-int-or-string": true,
    anyOf: [{ type: "integer" }, { type: "string" }],
  };
  if (stringBranch?.pattern) out.pattern = stringBranch.pattern;
  if ("default" in node) out.default = node.default;
  return out;
}

const stripUndefined = <T extends object>(o: T): T =>
  Object.fromEntries(Object.entries(o).filter(([, v]) => v !== undefined)) as T;

/** The CustomResourceDefinition object for one kind. */
export function buildCrd(def: KindDefinition): JsonSchema {
  const spec = toStructuralSchema(def.spec, ".spec");
  const status = toStructuralSchema(def.status, ".status");
  const openAPIV3Schema: JsonSchema = {
    type: "object",
    description: def.description,
    required: ["spec"],
    properties: {
      apiVersion: { type: "string", description: "APIVersion of this object: specops.dev/v1alpha1." },
      kind: { type: "string", description: `Kind of this object: ${def.kind}.` },
      metadata: { type: "object" },
      spec,
      status,
    },
  };
  const subresources: JsonSchema = { status: {} };
  if (def.scale) subresources.scale = def.scale;
  return {
    apiVersion: "apiextensions.k8s.io/v1",
    kind: "CustomResourceDefinition",
    metadata: { name: `${def.plural}.${GROUP}` },
    spec: {
      group: GROUP,
      names: {
        kind: def.kind,
        listKind: `${def.kind}List`,
        plural: def.plural,
        singular: def.singular,
        shortNames: def.shortNames,
        categories: ["specops"],
      },
      scope: "Namespaced",
      versions: [
        {
          name: VERSION,
          served: true,
          storage: true,
          schema: { openAPIV3Schema },
          subresources,
          additionalPrinterColumns: [
            ...def.printerColumns,
            { name: "Age", type: "date", jsonPath: ".metadata.creationTimestamp" },
          ],
        },
      ],
    },
  };
}
