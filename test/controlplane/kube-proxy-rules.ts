// Where kube-proxy (iptables mode) sends a Service's ClusterIP port, read from `iptables-save -t nat`:
// KUBE-SERVICES jumps from the ClusterIP:port to the Service's KUBE-SVC-* chain, which jumps to one
// KUBE-SEP-* chain per ready endpoint, each DNATing to the endpoint's address. A Service without
// ready endpoints has no KUBE-SERVICES nat rule (its packets are rejected in the filter table), and a
// Service kube-proxy has not synced yet has no rule at all: its ClusterIP then leaves by the host's
// default route. A client that connects in that moment keeps that path for the connection's life
// (conntrack has already decided it is not NATed), so tests wait for a destination here first.
import { spawnSync } from "node:child_process";

/** The endpoints (ip:port) kube-proxy's nat rules send clusterIP:port to; empty when unrouted. */
export function clusterIPDestinations(
  natRules: string,
  clusterIP: string,
  port: number,
  protocol: "tcp" | "udp" = "tcp",
): string[] {
  const lines = natRules.split("\n");
  const rulesOf = (chain: string) => lines.filter((l) => l.startsWith(`-A ${chain} `));
  const jump = (rule: string, prefix: string) => rule.match(new RegExp(`-j (${prefix}[A-Z0-9]+)\\b`))?.[1];
  const entry = rulesOf("KUBE-SERVICES").find(
    (r) =>
      r.includes(` -d ${clusterIP}/32 `) && r.includes(` -p ${protocol} `) && r.includes(` --dport ${port} `),
  );
  const svc = entry && jump(entry, "KUBE-SVC-");
  if (!svc) return [];
  const destinations: string[] = [];
  for (const rule of rulesOf(svc)) {
    const sep = jump(rule, "KUBE-SEP-");
    if (!sep) continue;
    for (const r of rulesOf(sep)) {
      const to = r.match(/-j DNAT .*--to-destination (\S+)/)?.[1];
      if (to) destinations.push(to);
    }
  }
  return destinations;
}

/** clusterIPDestinations on this host's nat table now (root: iptables-save). */
export function clusterIPRoutes(clusterIP: string, port: number, protocol: "tcp" | "udp" = "tcp"): string[] {
  const out = spawnSync("iptables-save", ["-t", "nat"], { encoding: "utf8", timeout: 30_000 });
  if (out.status !== 0) throw new Error(`iptables-save -t nat failed: ${out.stderr || out.error}`);
  return clusterIPDestinations(out.stdout, clusterIP, port, protocol);
}
