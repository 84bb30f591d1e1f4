// Reads a runtime pod's progress endpoint (contract: GET /progress on the progress port) and turns
// it into the status.progress of a resource. A missing or malformed report is a value, not an error:
// the caller records it as a condition and an Event and carries on.
import { fetch } from "undici";
import { type Progress, progress as progressSchema } from "../../contract/progress.ts";
import { formatTime } from "../../lib/conditions.ts";
import { dropUndefined } from "../../lib/objects.ts";

export type ProgressRead = { ok: true; progress: Progress } | { ok: false; problem: string };

export async function readProgress(podIP: string, port: number, timeoutMs = 2000): Promise<ProgressRead> {
  const url = `http://${podIP.includes(":") ? `[${podIP}]` : podIP}:${port}/progress`;
  let body: unknown;
  try {
    const res = await fetch(url, { signal: AbortSignal.timeout(timeoutMs) });
    if (!res.ok) return { ok: false, problem: `${url} answered HTTP ${res.status}` };
    body = await res.json();
  } catch (err) {
    return { ok: false, problem: `${url}: ${(err as Error).message}` };
  }
  const parsed = progressSchema.safeParse(body);
  if (!parsed.success) {
    const issue = parsed.error.issues[0];
    return {
      ok: false,
      problem: `${url} sent an invalid report: ${issue?.path.join(".") || "body"}: ${issue?.message}`,
    };
  }
  return { ok: true, progress: parsed.data };
}

export interface StatusProgress {
  step?: number;
  totalSteps?: number;
  percent?: number;
  epoch?: number;
  loss?: number;
  acceptanceByPosition?: number[];
  tauEstimate?: number;
  throughput?: number;
  eta?: string;
  message?: string;
  lastUpdateTime?: string;
}

/** status.progress from a report; ETA from the runtime's estimate, else from step rate. */
export function statusProgress(p: Progress, now: number): StatusProgress {
  const percent = percentOf(p.step, p.total);
  let etaSeconds = p.etaSeconds;
  if (etaSeconds === undefined && p.step && p.total && p.step <= p.total) {
    const elapsed = (Date.parse(p.time) - Date.parse(p.startTime)) / 1000;
    if (elapsed > 0) etaSeconds = ((p.total - p.step) * elapsed) / p.step;
  }
  const out: StatusProgress = {
    step: p.step,
    totalSteps: p.total,
    percent,
    epoch: round(p.epoch),
    loss: round(p.loss),
    acceptanceByPosition: p.acceptanceByPosition?.map((a) => round(a) as number),
    tauEstimate: round(p.tauEstimate),
    throughput: round(p.throughput),
    eta: etaSeconds !== undefined ? formatTime(now + etaSeconds * 1000) : undefined,
    message: p.message,
    lastUpdateTime: formatTime(now),
  };
  return dropUndefined(out);
}

/** step of total in whole percent, at most 100; undefined without both. */
export const percentOf = (step: number | undefined, total: number | undefined) =>
  step !== undefined && total ? Math.min(100, Math.floor((100 * step) / total)) : undefined;

/** Four significant decimals: enough for humans, and status does not churn on float noise. */
export const round = (x: number | undefined) => (x === undefined ? undefined : Math.round(x * 1e4) / 1e4);
