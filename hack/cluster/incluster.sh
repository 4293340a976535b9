#!/usr/bin/env bash
# incluster.sh [-n NAMESPACE] COMMAND: run a shell command as if from a pod in NAMESPACE
# (default leviathan): Service names resolve (leviathan-control-plane, x.ns.svc...) and
# traffic goes through the cluster network, the way the runbook's curl runs.
set -euo pipefail
cd "$(dirname "$0")/../.."
source hack/cluster/lib.sh
namespace=leviathan
if [[ ${1:-} == -n ]]; then namespace=$2; shift 2; fi
(($# == 1)) || { echo "usage: $0 [-n NAMESPACE] 'COMMAND'" >&2; exit 2; }
ip netns list | grep -q "^$CLIENT_NETNS\b" || { echo "incluster: no local cluster is running (make cluster-up)" >&2; exit 1; }
mkdir -p "/etc/netns/$CLIENT_NETNS"
# Names resolve through the cluster DNS (CoreDNS on the bridge address), as in a pod of NAMESPACE.
echo "127.0.0.1 localhost" >"/etc/netns/$CLIENT_NETNS/hosts"
printf 'search %s.svc.cluster.local svc.cluster.local cluster.local\nnameserver %s\noptions ndots:5 single-request-reopen timeout:2 attempts:3\n' \
  "$namespace" "$BRIDGE_IP" >"/etc/netns/$CLIENT_NETNS/resolv.conf"
exec ip netns exec "$CLIENT_NETNS" bash -c "$1"
