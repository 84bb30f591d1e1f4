// Reading where kube-proxy (iptables mode) sends a ClusterIP's port, from the nat table kube-proxy
// v1.36.3 wrote on the real node (fixture names its source).
import { readFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { expect, it } from "vitest";
import { clusterIPDestinations } from "../controlplane/kube-proxy-rules.ts";

const nat = readFileSync(
  join(dirname(fileURLToPath(import.meta.url)), "../fixtures/kube-proxy/iptables-nat-v1.36.3.txt"),
  "utf8",
);

it("follows KUBE-SERVICES to the Service's chain and its endpoints' DNAT", () => {
  expect(clusterIPDestinations(nat, "10.0.0.200", 80)).toEqual(["10.214.165.2:8080"]);
  expect(clusterIPDestinations(nat, "10.0.0.27", 53, "udp")).toEqual(["192.0.2.2:34343"]);
  expect(clusterIPDestinations(nat, "10.0.0.27", 53, "tcp")).toEqual(["192.0.2.2:34343"]);
});

it("finds no destination for a port, protocol or ClusterIP kube-proxy has not routed", () => {
  expect(clusterIPDestinations(nat, "10.0.0.200", 8000)).toEqual([]);
  expect(clusterIPDestinations(nat, "10.0.0.200", 80, "udp")).toEqual([]);
  // 10.0.0.2 is a prefix of 10.0.0.200 and 10.0.0.27: only the whole address matches.
  expect(clusterIPDestinations(nat, "10.0.0.2", 80)).toEqual([]);
  // A Service kube-proxy knows but whose endpoints are gone: its chain jumps to no KUBE-SEP.
  const noEndpoints = nat
    .split("\n")
    .filter((l) => !l.includes("-j KUBE-SEP-YV5L3MRCRMNUBKCW"))
    .join("\n");
  expect(clusterIPDestinations(noEndpoints, "10.0.0.200", 80)).toEqual([]);
});

it("lists every ready endpoint of a Service with two", () => {
  const two = `${nat}
-A KUBE-SVC-UBBNLUXVXXV7DDPN -m comment --comment "repro/web -> 10.214.165.3:8080" -j KUBE-SEP-ZZZZZZZZZZZZZZZZ
-A KUBE-SEP-ZZZZZZZZZZZZZZZZ -p tcp -m comment --comment "repro/web" -m tcp -j DNAT --to-destination 10.214.165.3:8080
`;
  expect(clusterIPDestinations(two, "10.0.0.200", 80)).toEqual(["10.214.165.2:8080", "10.214.165.3:8080"]);
});
