#!/usr/bin/env bash
# make cluster-down: stop every process of the local cluster, its pods and containers included,
# and remove its mounts, network namespaces, iptables rules, bridge and state. Safe to run twice.
set -uo pipefail
cd "$(dirname "$0")/../.."
source hack/cluster/lib.sh
quiet=${1:-}
[[ $quiet == --quiet ]] || say "stopping the local cluster"

# stop NAME: signal the component's whole session (each runs in its own), then kill it.
stop() {
  local pidfile=$RUN/pids/$1
  [[ -e $pidfile ]] || return 0
  local pid
  pid=$(cat "$pidfile")
  kill -TERM -- "-$pid" 2>/dev/null
  for _ in $(seq 50); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
  kill -KILL -- "-$pid" 2>/dev/null
  rm -f "$pidfile"
}

# Only a cluster with a real node has iptables rules, cgroups and sysctls of its own (the fleet's
# minimal ones have none). up.sh's marker stays until the end, so a second run after an
# interrupted one still cleans up.
had_node=
[[ -e $RUN/real-node ]] && had_node=1
# Every process this cluster started, checked once more at the end.
pids=$(cat "$RUN"/pids/* 2>/dev/null)

# The node first: kubelet (so it starts nothing more), then every pod sandbox through the CRI,
# which stops the containers and tears down their network namespaces, then containerd and
# whatever shim outlived it.
for name in coredns kube-proxy kubelet; do stop "$name"; done
if [[ -S $CONTAINERD_SOCKET ]]; then
  crictl=(timeout 60 "$BIN/crictl" --runtime-endpoint "unix://$PWD/$CONTAINERD_SOCKET" --timeout 20s)
  "${crictl[@]}" stopp $("${crictl[@]}" pods -q 2>/dev/null) >/dev/null 2>&1
  "${crictl[@]}" rmp -a -f >/dev/null 2>&1
fi
stop containerd
pkill -KILL -f "containerd-shim-runc-v2 .*-address $PWD/$CONTAINERD_SOCKET" 2>/dev/null
# kube-proxy's Service rules, then what is left of kubelet's own (KUBE-FIREWALL and its canaries).
if [[ -n $had_node ]]; then
  [[ -x $BIN/kube-proxy ]] && "$BIN/kube-proxy" --cleanup >/dev/null 2>&1
  for ipt in iptables ip6tables; do
    for table in filter nat mangle; do
      # xargs splits each rule as the shell would (quoted comments) without running any of it.
      $ipt -t "$table" -S 2>/dev/null | awk '/^-A / && / -j KUBE-/ {sub(/^-A/, "-D"); print}' | while read -r rule; do
        xargs "$ipt" -t "$table" <<<"$rule" 2>/dev/null
      done
      for chain in $($ipt -t "$table" -S 2>/dev/null | awk '/^-N KUBE-/ {print $2}'); do $ipt -t "$table" -F "$chain" 2>/dev/null; done
      for chain in $($ipt -t "$table" -S 2>/dev/null | awk '/^-N KUBE-/ {print $2}'); do $ipt -t "$table" -X "$chain" 2>/dev/null; done
    done
  done
fi
if iptables -S "$API_FILTER_CHAIN" >/dev/null 2>&1; then
  while iptables -D INPUT -p tcp --dport "$API_PORT" -j "$API_FILTER_CHAIN" 2>/dev/null; do :; done
  iptables -F "$API_FILTER_CHAIN" && iptables -X "$API_FILTER_CHAIN"
fi
# The machine-wide settings kubelet and kube-proxy changed, as they were before up.sh.
if [[ -n $had_node && -s $RUN/sysctls ]]; then
  while IFS= read -r setting; do sysctl -qw "$setting" 2>/dev/null; done <"$RUN/sysctls"
fi

for name in kwok kube-scheduler kube-controller-manager kube-apiserver etcd; do stop "$name"; done

# What kubelet and containerd mounted under the run dir (volumes, rootfs, shm), deepest first.
if [[ -d $RUN ]]; then
  run_dir=$(cd "$RUN" && pwd -P)
  awk -v dir="$run_dir/" 'index($2 "/", dir) == 1 {print $2}' /proc/self/mounts | sort -r | while read -r mount; do
    umount "$mount" 2>/dev/null || umount -l "$mount" 2>/dev/null
  done
fi
# The pods' network namespaces (CNI names them cni-<uuid>) on our bridge, and the client's.
for ns in $(ip netns list 2>/dev/null | awk '{print $1}'); do
  if [[ $ns == "${NETNS_PREFIX}"* ]] || { [[ $ns == cni-* ]] && ip -n "$ns" addr 2>/dev/null | grep -q "inet $POD_NET\."; }; then
    ip netns pids "$ns" 2>/dev/null | xargs -r kill -KILL 2>/dev/null
    ip netns del "$ns" 2>/dev/null
    rm -rf "/etc/netns/$ns"
  fi
done
ip link del "$CLIENT_VETH" 2>/dev/null
ip link del "$BRIDGE" 2>/dev/null
# The cgroups kubelet made for its pods (empty once the containers are gone; v1 and v2), and
# the links to its pods' logs (kubelet keeps those in /var/log/containers whatever podLogsDir says).
if [[ -n $had_node ]]; then
  for root in /sys/fs/cgroup/*/kubepods /sys/fs/cgroup/kubepods; do
    [[ -d $root ]] && find "$root" -depth -type d -exec rmdir {} + 2>/dev/null
  done
  [[ -n ${run_dir:-} && -d /var/log/containers ]] && find /var/log/containers -maxdepth 1 -lname "$run_dir/*" -delete
fi
# Keep the components' logs for a post-mortem; everything else goes.
if [[ -d $RUN/logs ]]; then rm -rf "$RUN-logs" && mv "$RUN/logs" "$RUN-logs"; fi
rm -rf "$RUN"
left=$(for pid in $pids; do kill -0 "$pid" 2>/dev/null && echo "$pid"; done | tr '\n' ' ')
if [[ -n $left ]]; then echo "cluster-down: processes still running: $left" >&2; exit 1; fi
if [[ -n ${run_dir:-} ]] && awk -v dir="$run_dir/" 'index($2 "/", dir) == 1 {found = 1} END {exit !found}' /proc/self/mounts; then
  echo "cluster-down: mounts left under $run_dir:" >&2
  awk -v dir="$run_dir/" 'index($2 "/", dir) == 1 {print "  " $2}' /proc/self/mounts >&2
  exit 1
fi
if pgrep -f "containerd-shim-runc-v2 .*-address $PWD/$CONTAINERD_SOCKET" >/dev/null; then
  echo "cluster-down: container shims still running" >&2
  exit 1
fi
[[ $quiet == --quiet ]] || say "stopped; nothing left running"
exit 0
