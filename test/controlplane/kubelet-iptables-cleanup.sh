#!/usr/bin/env bash
# Removes the iptables chains the kubelet creates for itself (KUBE-FIREWALL, KUBE-KUBELET-CANARY,
# KUBE-IPTABLES-HINT) and never removes; kube-proxy --cleanup removes only kube-proxy's. Run after
# the real node's kubelet has stopped. Idempotent.
set -u
for ipt in iptables ip6tables; do
  command -v "$ipt" >/dev/null || continue
  for chain in INPUT OUTPUT; do
    while "$ipt" -t filter -D "$chain" -j KUBE-FIREWALL 2>/dev/null; do :; done
  done
  for table in filter nat mangle; do
    for chain in KUBE-FIREWALL KUBE-KUBELET-CANARY KUBE-IPTABLES-HINT; do
      "$ipt" -t "$table" -F "$chain" 2>/dev/null && "$ipt" -t "$table" -X "$chain" 2>/dev/null
    done
  done
done
exit 0
