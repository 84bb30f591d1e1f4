// JSON Schema (draft 2020-12) of the contract's zod schemas, for the Python runtime's `jsonschema`.
// Unlike the CRDs this schema is strict: unknown fields are refused, so a typo in a hand-written
// task fails before any work instead of being silently ignored.
import { z } from "zod";

export type JsonSchema = { [key: string]: unknown };

const SAFE_INT = 9007199254740991;

export function toContractJsonSchema(schema: z.ZodType, id: string): JsonSchema {
  const raw = z.toJSONSchema(schema, {
    target: "draft-2020-12",
    io: "input",
    unrepresentable: "throw",
    cycles: "throw",
    reused: "inline",
  }) as JsonSchema;
  const { $schema, ...rest } = raw;
  return { $schema, $id: id, ...(tidy(rest) as JsonSchema) };
}

function tidy(node: unknown): unknown {
  if (Array.isArray(node)) return node.map(tidy);
  if (node === null || typeof node !== "object") return node;
  const out: JsonSchema = {};
  for (const [k, v] of Object.entries(node as JsonSchema)) out[k] = tidy(v);
  // zod's int() bounds are noise in the schema.
  if (out.minimum === -SAFE_INT) delete out.minimum;
  if (out.maximum === SAFE_INT) delete out.maximum;
  if (out.type === "object" && out.properties && out.additionalProperties === undefined) {
    out.additionalProperties = false;
  }
  return out;
}

/**
 * A parameter a backend needs although the kind leaves it optional: a zod refinement for the
 * operator and an if/then clause in the exported JSON Schema for the runtime.
 */
export function requireForBackends<T extends z.ZodObject>(schema: T, backends: string[], param: string): T {
  const refined = schema.superRefine((value, ctx) => {
    const v = value as { backend?: string; params?: Record<string, unknown> };
    if (v.backend && backends.includes(v.backend) && v.params?.[param] === undefined) {
      ctx.addIssue({
        code: "custom",
        message: `required by backend ${v.backend}`,
        path: ["params", param],
      });
    }
  }) as unknown as T;
  const meta = (schema.meta() ?? {}) as JsonSchema;
  const clause: JsonSchema = {
    if: { properties: { backend: { enum: backends } }, required: ["backend"] },
    // biome-ignore lint/suspicious/noThenProperty: a JSON Schema keyword in plain data, never awaited.
    then: { properties: { params: { required: [param] } } },
  };
  const allOf = [...((meta.allOf as unknown[]) ?? []), clause];
  return refined.meta({ ...meta, allOf }) as T;
}
