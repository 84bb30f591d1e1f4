// SPS(B): verification steps per second at B tokens verified per step (the DSpark paper's cost
// table), from a measured table or the first-principles model of a memory-bound decode step.
//
// Table JSON (docs/benchmarks.md#sps-table), one of:
//   {"gpuProduct": "NVIDIA-H200", "model": "...", "rows": [{"batch": 64, "context": 2048, "steps_per_second": 85.2}, ...]}
//   [{"batch": 64, "steps_per_second": 85.2}, ...]
//   the runtime's profile result: {"profile": {"points": [{"batchSize": 64, "stepsPerSecond": 85.2}]},
//                                  "details": {"contextLength": 64}}
// `batch` is tokens verified in the step (sum over requests of 1 + draft length), `context` the
// mean cached context per request the row was measured at (optional).
import { z } from "zod";

export interface SpsRow {
  batch: number;
  context?: number;
  stepsPerSecond: number;
}

export interface SpsTable {
  gpuProduct?: string;
  model?: string;
  rows: SpsRow[];
}

/** Steps per second at `batch` tokens per step, `requests` requests of mean `context` cached tokens. */
export type SpsFunction = (batch: number, context: number, requests: number) => number;

const row = z
  .object({
    batch: z.number().int().min(1),
    context: z.number().int().min(0).optional(),
    steps_per_second: z.number().positive(),
  })
  .strict();
const tableFile = z.union([
  z.array(row).min(1),
  z
    .object({ gpuProduct: z.string().optional(), model: z.string().optional(), rows: z.array(row).min(1) })
    .loose(),
  z
    .object({
      profile: z.object({
        points: z
          .array(z.object({ batchSize: z.number().int().min(1), stepsPerSecond: z.number().positive() }))
          .min(1),
      }),
      details: z
        .object({ contextLength: z.number().int().min(0).optional() })
        .loose()
        .optional(),
    })
    .loose(),
]);

export class SpsTableError extends Error {
  override name = "SpsTableError";
}

/** Validates a parsed JSON table; the error names the offending field (e.g. rows[2].steps_per_second). */
export function loadSpsTable(json: unknown): SpsTable {
  const parsed = tableFile.safeParse(json);
  if (!parsed.success) {
    // The union's issues are per branch; report the branch the input looks like.
    const issue = parsed.error.issues[0];
    const detail =
      issue?.code === "invalid_union"
        ? (issue.errors.find((e) => e.length > 0 && e[0]?.path.length) ?? issue.errors[0] ?? [])[0]
        : issue;
    const path = (detail?.path ?? [])
      .map((p, i) => (typeof p === "number" ? `[${p}]` : i === 0 ? String(p) : `.${String(p)}`))
      .join("");
    throw new SpsTableError(`SPS table ${path || "(root)"}: ${detail?.message ?? "invalid"}`);
  }
  const v = parsed.data;
  if (Array.isArray(v)) return { rows: v.map(toRow) };
  if (Array.isArray(v.rows)) {
    const t = v as { gpuProduct?: string; model?: string; rows: z.infer<typeof row>[] };
    return { gpuProduct: t.gpuProduct, model: t.model, rows: t.rows.map(toRow) };
  }
  const p = v as {
    profile: { points: { batchSize: number; stepsPerSecond: number }[] };
    details?: { contextLength?: number };
  };
  const context = p.details?.contextLength;
  return {
    rows: p.profile.points.map((pt) => ({
      batch: pt.batchSize,
      stepsPerSecond: pt.stepsPerSecond,
      ...(context === undefined ? {} : { context }),
    })),
  };
}

function toRow(r: z.infer<typeof row>): SpsRow {
  return {
    batch: r.batch,
    stepsPerSecond: r.steps_per_second,
    ...(r.context === undefined ? {} : { context: r.context }),
  };
}

/** Step time interpolated linearly in batch; beyond the last row, extended along the last segment. */
function stepTimeAt(rows: SpsRow[], batch: number): number {
  const first = rows[0] as SpsRow;
  if (rows.length === 1 || batch <= first.batch) return 1 / first.stepsPerSecond;
  for (let i = 1; i < rows.length; i++) {
    const hi = rows[i] as SpsRow;
    const lo = rows[i - 1] as SpsRow;
    if (batch <= hi.batch || i === rows.length - 1) {
      const tLo = 1 / lo.stepsPerSecond;
      const tHi = 1 / hi.stepsPerSecond;
      const slope = (tHi - tLo) / (hi.batch - lo.batch);
      return Math.max(tLo, tLo + slope * (batch - lo.batch));
    }
  }
  return 1 / first.stepsPerSecond;
}

/** SPS(B, context) from a table: linear in step time along batch, then along context. */
export function spsFromTable(table: SpsTable): SpsFunction {
  const byContext = new Map<number, SpsRow[]>();
  for (const r of table.rows) {
    const c = r.context ?? 0;
    byContext.set(c, [...(byContext.get(c) ?? []), r]);
  }
  for (const rows of byContext.values()) rows.sort((a, b) => a.batch - b.batch);
  const contexts = [...byContext.keys()].sort((a, b) => a - b);
  return (batch, context) => {
    if (contexts.length === 1) return 1 / stepTimeAt(byContext.get(contexts[0] as number) as SpsRow[], batch);
    let hi = contexts.findIndex((c) => c >= context);
    if (hi <= 0) hi = hi === 0 ? 1 : contexts.length - 1;
    const cLo = contexts[hi - 1] as number;
    const cHi = contexts[hi] as number;
    const tLo = stepTimeAt(byContext.get(cLo) as SpsRow[], batch);
    const tHi = stepTimeAt(byContext.get(cHi) as SpsRow[], batch);
    const w = (Math.min(Math.max(context, cLo), cHi) - cLo) / (cHi - cLo);
    return 1 / (tLo + (tHi - tLo) * w);
  };
}

/** A dense target in bf16 on one accelerator (dspark-paper.md, "Calibrating SPS(B) without a GPU"). */
export interface FirstPrinciplesModel {
  parameters: number;
  kvBytesPerToken: number;
  hbmBytesPerSecond: number;
  matrixFlopsPerSecond: number;
  overheadSeconds: number;
}

/** Qwen3-8B on an H200 with the rates measured on such a machine (4.3 TB/s, 790 TFLOP/s). */
export const QWEN3_8B_H200: FirstPrinciplesModel = {
  parameters: 8.2e9,
  kvBytesPerToken: 2 * 36 * 8 * 128 * 2,
  hbmBytesPerSecond: 4.3e12,
  matrixFlopsPerSecond: 790e12,
  overheadSeconds: 0.001,
};

export function firstPrinciplesStepSeconds(
  m: FirstPrinciplesModel,
  batch: number,
  context: number,
  requests: number,
) {
  const memory = (2 * m.parameters + requests * context * m.kvBytesPerToken) / m.hbmBytesPerSecond;
  const compute = (2 * m.parameters * batch) / m.matrixFlopsPerSecond;
  return m.overheadSeconds + Math.max(memory, compute);
}

export function spsFromModel(m: FirstPrinciplesModel): SpsFunction {
  return (batch, context, requests) => 1 / firstPrinciplesStepSeconds(m, batch, context, requests);
}

/** A table sampled from an SPS function (what a profile of it would measure), for tests and the simulator. */
export function tableFrom(
  sps: SpsFunction,
  batches: number[],
  contexts: number[],
  requestsPerBatch: (b: number) => number,
) {
  const rows: SpsRow[] = [];
  for (const context of contexts)
    for (const batch of batches)
      rows.push({ batch, context, stepsPerSecond: sps(batch, context, requestsPerBatch(batch)) });
  return { rows } satisfies SpsTable;
}
