// The autoscaler's decisions as operator metrics (the operator's /metrics), one series set per
// SpecServe: desired and current replicas, tau, predicted and measured per-user speed, the decision's
// reason and whether acceptance is healthy (for alerting). Series go when the SpecServe goes or
// stops autoscaling.
import { Counter, Gauge, type Registry } from "prom-client";
import type { StepOutput } from "./decide.ts";

const LABELS = ["namespace", "specserve"] as const;
type Labels = Record<(typeof LABELS)[number], string>;

export class AutoscalerMetrics {
  readonly #desired: Gauge<"namespace" | "specserve">;
  readonly #current: Gauge<"namespace" | "specserve">;
  readonly #tau: Gauge<"namespace" | "specserve">;
  readonly #projectedTau: Gauge<"namespace" | "specserve">;
  readonly #predicted: Gauge<"namespace" | "specserve">;
  readonly #measured: Gauge<"namespace" | "specserve">;
  readonly #healthy: Gauge<"namespace" | "specserve">;
  readonly #decision: Gauge<"namespace" | "specserve" | "reason">;
  readonly #scaleEvents: Counter<"namespace" | "specserve" | "direction">;
  readonly #reasons = new Map<string, string>();
  readonly #gauges: Gauge<"namespace" | "specserve">[];

  constructor(registry: Registry) {
    const registers = [registry];
    const gauge = (name: string, help: string) =>
      new Gauge({ name, help, labelNames: [...LABELS], registers });
    this.#desired = gauge("specops_autoscaler_desired_replicas", "Replicas the autoscaler decided on");
    this.#current = gauge("specops_autoscaler_current_replicas", "spec.replicas when the decision was taken");
    this.#tau = gauge("specops_autoscaler_tau", "Live acceptance length per round (bonus token counted)");
    this.#projectedTau = gauge(
      "specops_autoscaler_projected_tau",
      "Tau the capacity was planned for (lower than the live tau while it falls)",
    );
    this.#predicted = gauge(
      "specops_autoscaler_predicted_tokens_per_second_per_user",
      "Per-user speed the capacity model predicts at the highest concurrency that keeps the SLOs",
    );
    this.#measured = gauge(
      "specops_autoscaler_measured_tokens_per_second_per_user",
      "Per-user speed measured over the window",
    );
    this.#healthy = gauge(
      "specops_autoscaler_acceptance_healthy",
      "1 while live tau holds against its baseline and slo.minTau, 0 on drift",
    );
    this.#decision = new Gauge({
      name: "specops_autoscaler_decision",
      help: "1 for the reason of the last decision (ScaleUp, Steady, MetricsMissing, ...)",
      labelNames: [...LABELS, "reason"],
      registers,
    });
    this.#scaleEvents = new Counter({
      name: "specops_autoscaler_scale_events_total",
      help: "Changes of spec.replicas the autoscaler wrote",
      labelNames: [...LABELS, "direction"],
      registers,
    });
    this.#gauges = [
      this.#desired,
      this.#current,
      this.#tau,
      this.#projectedTau,
      this.#predicted,
      this.#measured,
      this.#healthy,
    ];
  }

  record(namespace: string, specserve: string, out: StepOutput): void {
    const l: Labels = { namespace, specserve };
    const key = `${namespace}/${specserve}`;
    const d = out.decision;
    this.#desired.set(l, d.desiredReplicas);
    this.#current.set(l, d.currentReplicas);
    const setOrRemove = (g: Gauge<"namespace" | "specserve">, v: number | undefined) =>
      v === undefined ? g.remove(l) : g.set(l, v);
    setOrRemove(this.#tau, d.figures.tau);
    setOrRemove(this.#projectedTau, d.figures.projectedTau);
    setOrRemove(this.#predicted, d.figures.predictedTokensPerSecondPerUser);
    setOrRemove(this.#measured, d.figures.measuredTokensPerSecondPerUser);
    setOrRemove(
      this.#healthy,
      out.drift.reason === "NoAcceptanceData" ? undefined : out.drift.healthy ? 1 : 0,
    );
    const before = this.#reasons.get(key);
    if (before !== undefined && before !== d.reason) this.#decision.remove({ ...l, reason: before });
    this.#decision.set({ ...l, reason: d.reason }, 1);
    this.#reasons.set(key, d.reason);
    if (out.write !== undefined && out.write !== d.currentReplicas)
      this.#scaleEvents.inc({ ...l, direction: out.write > d.currentReplicas ? "up" : "down" });
  }

  remove(namespace: string, specserve: string): void {
    const l: Labels = { namespace, specserve };
    const key = `${namespace}/${specserve}`;
    for (const g of this.#gauges) g.remove(l);
    const reason = this.#reasons.get(key);
    if (reason !== undefined) this.#decision.remove({ ...l, reason });
    this.#reasons.delete(key);
    for (const direction of ["up", "down"]) this.#scaleEvents.remove({ ...l, direction });
  }
}
