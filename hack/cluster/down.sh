#!/usr/bin/env bash
# make cluster-down: stop every process of the local cluster, its pods included, and
# remove its network namespaces, bridge and state. Safe to run twice.
set -uo pipefail
cd "$(dirname "$0")/../.."
source hack/cluster/lib.sh
quiet=${1:-}
[[ $quiet == --quiet ]] || say "stopping the local cluster"

# The agent first (it stops its pods), then the control plane, newest first.
for name in podagent kwok kube-scheduler kube-controller-manager kube-apiserver etcd; do
  pidfile=$RUN/pids/$name
  [[ -e $pidfile ]] || continue
  pid=$(cat "$pidfile")
  # Each component runs in its own session: signal the whole group.
  kill -TERM -- "-$pid" 2>/dev/null
  for _ in $(seq 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
  kill -KILL -- "-$pid" 2>/dev/null
  rm -f "$pidfile"
done
# Pod processes the agent could not stop (it was killed, say).
for pidfile in "$RUN"/pods/*/pids/*; do
  [[ -e $pidfile ]] && kill -KILL -- "-$(cat "$pidfile")" 2>/dev/null
done
for ns in $(ip netns list 2>/dev/null | awk -v prefix="$NETNS_PREFIX" 'index($1, prefix) == 1 {print $1}'); do
  ip netns pids "$ns" 2>/dev/null | xargs -r kill -KILL 2>/dev/null
  ip netns del "$ns" 2>/dev/null
  rm -rf "/etc/netns/$ns"
done
ip link del "$CLIENT_VETH" 2>/dev/null
ip link del "$BRIDGE" 2>/dev/null
# The empty mount points the agent made on the host for pod volumes (/etc/leviathan/...)
# stay: removing one detaches it in every mount namespace, including the pods of a
# cluster that is still running beside this one.
# Keep the components' logs for a post-mortem; everything else goes.
if [[ -d $RUN/logs ]]; then rm -rf "$RUN-logs" && mv "$RUN/logs" "$RUN-logs"; fi
rm -rf "$RUN"
if running 2>/dev/null; then echo "cluster-down: some processes are still running" >&2; exit 1; fi
[[ $quiet == --quiet ]] || say "stopped; nothing left running"
exit 0
