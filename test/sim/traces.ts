// Traces: JSON, either a list of per-minute records or an object of named lists. A record:
// {"minute": int, "rate": requests/s, "out_tokens": mean output tokens, "prompt_tokens": mean prompt
// tokens, "mix": {"math": share, "code": share, "chat": share}}. Minutes between records hold the
// previous record.
import { DOMAINS, type Domain } from "./params.ts";

export interface TraceMinute {
  minute: number;
  rate: number;
  out_tokens: number;
  prompt_tokens: number;
  mix: Record<Domain, number>;
}

export interface Trace {
  name: string;
  minutes: TraceMinute[];
}

function record(v: unknown, where: string): TraceMinute {
  if (typeof v !== "object" || v === null) throw new Error(`${where}: must be an object`);
  const r = v as Record<string, unknown>;
  const num = (k: string, min: number) => {
    const x = r[k];
    if (typeof x !== "number" || !Number.isFinite(x) || x < min)
      throw new Error(`${where}.${k}: must be a number >= ${min}`);
    return x;
  };
  const minute = num("minute", 0);
  if (!Number.isInteger(minute)) throw new Error(`${where}.minute: must be an integer`);
  const mixIn = r.mix;
  if (typeof mixIn !== "object" || mixIn === null) throw new Error(`${where}.mix: must be an object`);
  const mix = {} as Record<Domain, number>;
  let total = 0;
  for (const d of DOMAINS) {
    const share = (mixIn as Record<string, unknown>)[d] ?? 0;
    if (typeof share !== "number" || share < 0) throw new Error(`${where}.mix.${d}: must be a share >= 0`);
    mix[d] = share;
    total += share;
  }
  for (const k of Object.keys(mixIn))
    if (!DOMAINS.includes(k as Domain)) throw new Error(`${where}.mix.${k}: unknown domain`);
  if (total <= 0) throw new Error(`${where}.mix: shares must not all be zero`);
  for (const d of DOMAINS) mix[d] /= total;
  return {
    minute,
    rate: num("rate", 0),
    out_tokens: num("out_tokens", 1),
    prompt_tokens: num("prompt_tokens", 0),
    mix,
  };
}

function list(v: unknown, name: string): Trace {
  if (!Array.isArray(v) || v.length === 0)
    throw new Error(`trace ${name}: must be a non-empty list of minutes`);
  const minutes = v.map((x, i) => record(x, `trace ${name}[${i}]`)).sort((a, b) => a.minute - b.minute);
  // Expand to one record per minute.
  const out: TraceMinute[] = [];
  const last = minutes[minutes.length - 1] as TraceMinute;
  let j = 0;
  for (let m = 0; m <= last.minute; m++) {
    while (j + 1 < minutes.length && (minutes[j + 1] as TraceMinute).minute <= m) j++;
    out.push({ ...(minutes[j] as TraceMinute), minute: m });
  }
  return { name, minutes: out };
}

export function parseTraces(json: unknown, fileName = "trace"): Trace[] {
  if (Array.isArray(json)) return [list(json, fileName)];
  if (typeof json === "object" && json !== null)
    return Object.entries(json).map(([name, v]) => list(v, name));
  throw new Error(`${fileName}: must be a list of minutes or an object of named lists`);
}

const at = (
  minute: number,
  rate: number,
  mix: Record<Domain, number>,
  prompt = 300,
  out = 500,
): TraceMinute => ({
  minute,
  rate: Number(rate.toFixed(2)),
  out_tokens: out,
  prompt_tokens: prompt,
  mix,
});
const MIXED = { math: 0.2, code: 0.4, chat: 0.4 };
/** Minute at which the code-to-chat trace starts moving to chat. */
export const SHIFT_MINUTE = 60;

/** The default traces (written to test/sim/traces/default.json by `node test/sim/traces.ts`). */
export function defaultTraces(): Record<string, TraceMinute[]> {
  const diurnal: TraceMinute[] = [];
  // A day's shape compressed into 12 hours (ramps twice as steep as a real day's): trough at the
  // start, peak in the middle; the mix leans to code at the peak (working hours).
  for (let m = 0; m < 720; m += 5) {
    const day = 0.5 - 0.5 * Math.cos((m / 720) * 2 * Math.PI);
    const code = 0.25 + 0.35 * day;
    diurnal.push(at(m, 25 + 275 * day, { math: 0.1, code, chat: 0.9 - code }));
  }
  const burst: TraceMinute[] = [];
  for (let m = 0; m < 150; m++) burst.push(at(m, m >= 45 && m < 85 ? 300 : 100, MIXED));
  const shift: TraceMinute[] = [];
  // Constant rate; at minute SHIFT_MINUTE the traffic moves from code to chat over 10 minutes.
  for (let m = 0; m < 150; m++) {
    const f = Math.min(1, Math.max(0, (m - SHIFT_MINUTE) / 10));
    shift.push(at(m, 200, { math: 0.15 * (1 - f), code: 0.85 - 0.7 * f, chat: 0.85 * f }));
  }
  const night: TraceMinute[] = [];
  for (let m = 0; m < 240; m += 5)
    night.push(at(m, 12 + 6 * Math.sin(m / 40), { math: 0.1, code: 0.2, chat: 0.7 }));
  return { diurnal, burst: burst, "code-to-chat": shift, "quiet-night": night };
}

if (import.meta.main) {
  const { writeFileSync } = await import("node:fs");
  writeFileSync(new URL("./traces/default.json", import.meta.url), `${JSON.stringify(defaultTraces())}\n`);
}
