// Acceptance figures as operator metrics, labelled like the leaderboard (target, method, task set)
// so a dashboard ranks drafts per task set. One series set per AcceptanceEval; it goes when the
// object goes or its figures change shape.
import { Gauge, type Registry } from "prom-client";
import type { AcceptanceEval } from "../../api/kinds.ts";
import { LEADERBOARD_LABELS } from "./plan.ts";

const EVAL_LABELS = ["namespace", "acceptanceeval", "target", "method", "task_set"] as const;
const TASK_LABELS = [...EVAL_LABELS, "task"] as const;
type EvalLabel = (typeof EVAL_LABELS)[number];
type TaskLabel = (typeof TASK_LABELS)[number];
type Labels<K extends string> = Record<K, string>;

export class AcceptanceMetrics {
  readonly #macroTau: Gauge<EvalLabel>;
  readonly #macroSpeedup: Gauge<EvalLabel>;
  readonly #tau: Gauge<TaskLabel>;
  readonly #verifyRate: Gauge<TaskLabel>;
  readonly #speedup: Gauge<TaskLabel>;
  readonly #tokensPerSecond: Gauge<TaskLabel>;
  readonly #baselineTokensPerSecond: Gauge<TaskLabel>;
  readonly #samples: Gauge<TaskLabel>;
  /** What each object exported last, to remove exactly those series. */
  readonly #exported = new Map<string, { evalLabels: Labels<EvalLabel>; tasks: Labels<TaskLabel>[] }>();

  constructor(registry: Registry) {
    const registers = [registry];
    const gauge = <K extends string>(name: string, help: string, labelNames: readonly K[]) =>
      new Gauge<K>({ name, help, labelNames: [...labelNames], registers });
    this.#macroTau = gauge("specops_acceptance_macro_tau", "Mean of the per-task tau", EVAL_LABELS);
    this.#macroSpeedup = gauge(
      "specops_acceptance_macro_speedup",
      "Mean of the per-task speedup (baseline: true)",
      EVAL_LABELS,
    );
    this.#tau = gauge(
      "specops_acceptance_tau",
      "Mean accepted length per verification round, bonus token included",
      TASK_LABELS,
    );
    this.#verifyRate = gauge(
      "specops_acceptance_verify_rate",
      "Accepted tokens over verified tokens",
      TASK_LABELS,
    );
    this.#speedup = gauge(
      "specops_acceptance_speedup",
      "Tokens/s with over without speculation",
      TASK_LABELS,
    );
    this.#tokensPerSecond = gauge(
      "specops_acceptance_tokens_per_second",
      "Decode throughput with speculation",
      TASK_LABELS,
    );
    this.#baselineTokensPerSecond = gauge(
      "specops_acceptance_baseline_tokens_per_second",
      "Decode throughput without speculation",
      TASK_LABELS,
    );
    this.#samples = gauge("specops_acceptance_samples", "Samples evaluated", TASK_LABELS);
  }

  /** Exports a finished evaluation's figures (and removes an unfinished one's). */
  record(ae: AcceptanceEval): void {
    const key = `${ae.metadata.namespace}/${ae.metadata.name}`;
    this.remove(key);
    const s = ae.status;
    if (s?.phase !== "Succeeded" || !s.summary) return;
    const labels = ae.metadata.labels ?? {};
    const evalLabels: Labels<EvalLabel> = {
      namespace: ae.metadata.namespace ?? "",
      acceptanceeval: ae.metadata.name ?? "",
      target: labels[LEADERBOARD_LABELS.target] ?? "",
      method: labels[LEADERBOARD_LABELS.method] ?? "",
      task_set: labels[LEADERBOARD_LABELS.taskSet] ?? "",
    };
    this.#macroTau.set(evalLabels, s.summary.macroTau);
    if (s.summary.macroSpeedup !== undefined) this.#macroSpeedup.set(evalLabels, s.summary.macroSpeedup);
    const tasks: Labels<TaskLabel>[] = [];
    for (const r of s.results ?? []) {
      const l = { ...evalLabels, task: r.name };
      tasks.push(l);
      this.#tau.set(l, r.tau);
      this.#samples.set(l, r.samples);
      if (r.verifyRate !== undefined) this.#verifyRate.set(l, r.verifyRate);
      if (r.speedup !== undefined) this.#speedup.set(l, r.speedup);
      if (r.tokensPerSecond !== undefined) this.#tokensPerSecond.set(l, r.tokensPerSecond);
      if (r.baselineTokensPerSecond !== undefined)
        this.#baselineTokensPerSecond.set(l, r.baselineTokensPerSecond);
    }
    this.#exported.set(key, { evalLabels, tasks });
  }

  remove(key: string): void {
    const last = this.#exported.get(key);
    if (!last) return;
    this.#macroTau.remove(last.evalLabels);
    this.#macroSpeedup.remove(last.evalLabels);
    for (const l of last.tasks) {
      for (const g of [
        this.#tau,
        this.#verifyRate,
        this.#speedup,
        this.#tokensPerSecond,
        this.#baselineTokensPerSecond,
        this.#samples,
      ])
        g.remove(l);
    }
    this.#exported.delete(key);
  }
}
