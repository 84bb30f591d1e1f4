// The API server's own count of the requests it served (apiserver_request_total on its /metrics),
// summed by verb, resource and subresource: how the integration tests and the benches count the
// writes a controller makes (e.g. "APPLY configmaps", "APPLY specserves/status"). The counts are the
// whole server's; a caller counts over a period in which only the operator writes those resources.

/** Counts by "VERB resource[/subresource]" from the text of the API server's /metrics. */
export function apiServerRequests(metricsText: string, resources?: readonly string[]): Map<string, number> {
  const counts = new Map<string, number>();
  for (const line of metricsText.split("\n")) {
    if (!line.startsWith("apiserver_request_total{")) continue;
    const label = (k: string) => line.match(new RegExp(`[{,]${k}="([^"]*)"`))?.[1] ?? "";
    const resource = label("resource");
    if (resources && !resources.includes(resource)) continue;
    const sub = label("subresource");
    const key = `${label("verb")} ${resource}${sub ? `/${sub}` : ""}`;
    counts.set(key, (counts.get(key) ?? 0) + Number(line.slice(line.lastIndexOf(" ") + 1)));
  }
  return counts;
}

/** after − before, per key, for the keys that grew. */
export function requestsBetween(
  before: Map<string, number>,
  after: Map<string, number>,
): Map<string, number> {
  const grown = new Map<string, number>();
  for (const [k, n] of after) if (n > (before.get(k) ?? 0)) grown.set(k, n - (before.get(k) ?? 0));
  return grown;
}
