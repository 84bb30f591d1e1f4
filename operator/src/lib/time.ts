// Time formats the API uses and the operator's configuration accepts.

/** Go-style durations: "500ms", "30s", "5m", "1h30m". Returns milliseconds, or undefined if s is not one. */
export function parseDuration(s: string): number | undefined {
  const units: Record<string, number> = { ms: 1, s: 1000, m: 60_000, h: 3_600_000 };
  const re = /(\d+(?:\.\d+)?)(ms|s|m|h)/y;
  let total = 0;
  let matched = 0;
  for (let m = re.exec(s); m; m = re.exec(s)) {
    total += Number(m[1]) * (units[m[2] as string] as number);
    matched = re.lastIndex;
  }
  return s.length > 0 && matched === s.length ? total : undefined;
}

/** MicroTime (RFC 3339 with microseconds), as Leases and events.k8s.io/v1 want. */
export function microTime(ms: number): string {
  return new Date(ms).toISOString().replace(/\.(\d{3})Z$/, ".$1000Z");
}
