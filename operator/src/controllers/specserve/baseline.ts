// The start of a canary's analysis window, kept where a restarted operator finds it: a ConfigMap
// NAME-rollout-baseline (owned by the SpecServe) holding, per pod uid and side, the counter totals
// the gate differences (the engine's round, accepted-token, per-position and generated-token
// counters with their _created), as exposition text the one signal parser reads back. Only those
// few series are kept, so a pod costs about a kilobyte, not its whole /metrics page. Pure.

import type { SpecServe } from "../../api/kinds.ts";
import { detectEngine } from "../../autoscaler/engines.ts";
import { parseExposition, type Sample } from "../../autoscaler/exposition.ts";
import type { Scrape } from "../../autoscaler/signals.ts";
import { type DesiredObject, meta } from "./desired.ts";
import { childNames } from "./plan.ts";

export interface RolloutBaseline {
  candidate: string;
  /** When the window began (ms). */
  timeMs: number;
  canary: Scrape[];
  stable: Scrape[];
}

const escapeLabel = (v: string) => v.replace(/\\/g, "\\\\").replace(/"/g, '\\"').replace(/\n/g, "\\n");
const line = (s: Sample) => {
  const labels = Object.entries(s.labels)
    .map(([k, v]) => `${k}="${escapeLabel(v)}"`)
    .join(",");
  return `${s.name}${labels ? `{${labels}}` : ""} ${s.value}`;
};

/** The series of a scrape the gate differences, as exposition text (empty when no engine's names). */
export function counterTotals(text: string): string {
  const { samples } = parseExposition(text);
  const engine = detectEngine(samples);
  if (!engine) return "";
  const { drafts, acceptedTokens, acceptedTokensPerPosition, generationTokens } = engine.counters;
  const families = [drafts, acceptedTokens, acceptedTokensPerPosition, generationTokens].flatMap((f) =>
    f ? [engine.prefix + f] : [],
  );
  const wanted = new Set(families.flatMap((f) => [`${f}_total`, `${f}_created`]));
  return samples
    .filter((s) => wanted.has(s.name))
    .map(line)
    .join("\n")
    .concat("\n");
}

/** A ConfigMap data key per pod: side and uid (uids are [-0-9a-f], valid in keys). */
const podKey = (side: "canary" | "stable", pod: string) => `${side}.${pod.replace(/[^-._a-zA-Z0-9]/g, "_")}`;

export function baselineConfigMap(
  ss: SpecServe,
  b: RolloutBaseline,
): DesiredObject & { data: Record<string, string> } {
  const data: Record<string, string> = { candidate: b.candidate, time: String(b.timeMs) };
  for (const side of ["canary", "stable"] as const)
    for (const s of b[side]) data[podKey(side, s.pod)] = counterTotals(s.text ?? "");
  return { apiVersion: "v1", kind: "ConfigMap", metadata: meta(ss, childNames(ss).rolloutBaseline), data };
}

/** The baseline a ConfigMap holds, when it is the given candidate's; undefined otherwise. */
export function baselineFromConfigMap(
  data: Record<string, string> | undefined,
  candidate: string,
): RolloutBaseline | undefined {
  const timeMs = Number(data?.time);
  if (!data || data.candidate !== candidate || !Number.isFinite(timeMs)) return undefined;
  const base: RolloutBaseline = { candidate, timeMs, canary: [], stable: [] };
  for (const [key, text] of Object.entries(data)) {
    const side = key.startsWith("canary.") ? "canary" : key.startsWith("stable.") ? "stable" : undefined;
    if (side) base[side].push({ pod: key.slice(side.length + 1), text, time: timeMs / 1000 });
  }
  return base;
}
