// The demo's CPU requests, fitted to the machine it runs on (a laptop): the examples ask for 2 CPUs
// a pod (request and limit), which on a 2-core node lets kube-scheduler place one of the demo's pods
// at a time, though two run side by side (a DraftTraining's stage and the untrained draft's
// AcceptanceEval). The demo asks for at most a share of the node's allocatable CPU so that they fit
// together; the examples and the API's defaults stay as they are.

/** A CPU quantity in millicores ("2" -> 2000, "500m" -> 500, "1.5" -> 1500); undefined when it is none of those. */
export function cpuMillis(quantity: string | number | undefined): number | undefined {
  if (quantity === undefined) return undefined;
  const m = String(quantity)
    .trim()
    .match(/^(\d+(?:\.\d+)?)(m?)$/);
  if (!m) return undefined;
  const n = Number(m[1]);
  return Math.round(m[2] ? n : n * 1000);
}

/** How many of the demo's pods run at once at most: a DraftTraining stage beside an AcceptanceEval. */
export const DEMO_CONCURRENT_PODS = 2;

/**
 * A pod's CPU for the demo: the manifest's request, or less so that DEMO_CONCURRENT_PODS of them fit
 * in allocatableMillis (never under 100m). No request stays none; an unreadable one is left alone.
 */
export function demoCpu(
  requested: string | number | undefined,
  allocatableMillis: number,
  concurrent = DEMO_CONCURRENT_PODS,
): string | number | undefined {
  const want = cpuMillis(requested);
  if (want === undefined) return requested;
  const share = Math.max(100, Math.floor(allocatableMillis / concurrent / 100) * 100);
  if (want <= share) return requested;
  return share % 1000 === 0 ? String(share / 1000) : `${share}m`;
}
