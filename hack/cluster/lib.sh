# Shared by up.sh and down.sh: where the local cluster lives and how it is reached.
# shellcheck shell=bash
source hack/cluster/pins.env
source hack/cluster/kube-version.sh

RUN=${LEVIATHAN_CLUSTER_DIR:-.run/cluster}
VENV_PYTHON=${VENV_PYTHON:-.venv/bin/python}

# LEVIATHAN_CLUSTER_INDEX (0-9) moves every port, name and address range, so a second
# cluster (another checkout) can run beside the first.
INDEX=${LEVIATHAN_CLUSTER_INDEX:-0}
[[ $INDEX =~ ^[0-9]$ ]] || { echo "LEVIATHAN_CLUSTER_INDEX must be a digit, not '$INDEX'" >&2; exit 2; }
PORT_BASE=$((16400 + 100 * INDEX))
API_PORT=$((PORT_BASE + 43))
ETCD_PORT=$((PORT_BASE + 79))
ETCD_PEER_PORT=$((PORT_BASE + 80))
KCM_PORT=$((PORT_BASE + 57))
SCHEDULER_PORT=$((PORT_BASE + 59))
KWOK_PORT=$((PORT_BASE + 50))
KUBELET_PORT=$((PORT_BASE + 51))
KUBELET_HEALTHZ_PORT=$((PORT_BASE + 52))
PROXY_HEALTHZ_PORT=$((PORT_BASE + 53))
PROXY_METRICS_PORT=$((PORT_BASE + 54))
ALL_PORTS=("$API_PORT" "$ETCD_PORT" "$ETCD_PEER_PORT" "$KCM_PORT" "$SCHEDULER_PORT" "$KWOK_PORT"
  "$KUBELET_PORT" "$KUBELET_HEALTHZ_PORT" "$PROXY_HEALTHZ_PORT" "$PROXY_METRICS_PORT")

# Two nodes: the real one (kubelet, containerd, runc) runs the pods of our images; kwok fakes
# the pods of every other image (worker tasks), which a placement policy sends to its node.
NODE_NAME=local-node-$INDEX
KWOK_NODE_NAME=kwok-node-$INDEX
# Pods live on their own bridge and address ranges, inside network namespaces of this machine.
BRIDGE=lev$INDEX
# A fixed, locally administered MAC: a Linux bridge otherwise takes the lowest MAC of its ports,
# so it changes as pods come and go, and a pod (or the client namespace) that still has the old
# one in its ARP cache loses the gateway for seconds (measured: a DNS lookup took 10 s).
BRIDGE_MAC=$(printf '02:6c:76:00:00:%02x' "$INDEX")
NETNS_PREFIX=lev${INDEX}pod-
POD_NET=10.$((200 + 2 * INDEX))
BRIDGE_IP=$POD_NET.0.1
POD_SUBNET=$POD_NET.0.0/16         # the bridge's network: the real node's pods from the lower half
KWOK_POD_CIDR=$POD_NET.128.0/17     # pods kwok fakes (worker tasks)
# A network namespace standing in for a pod, to run commands "from inside the cluster".
CLIENT_NETNS=${NETNS_PREFIX}client
CLIENT_VETH=lev${INDEX}client
CLIENT_IP=$POD_NET.127.254
# The machine-wide settings the real node changes (up.sh saves them, down.sh restores them).
NODE_SYSCTLS=(net.ipv4.ip_forward net.ipv4.conf.all.route_localnet vm.overcommit_memory kernel.panic kernel.panic_on_oops)
SERVICE_CIDR=10.$((201 + 2 * INDEX)).0.0/16
SERVICE_API_IP=10.$((201 + 2 * INDEX)).0.1   # the `kubernetes` Service: the first address of the range
# Pods whose every container uses one of these images run on the real node; kwok fakes the rest.
OUR_IMAGES='^ghcr[.]io/leviathan/(control-plane|scheduler)[:@]'
# kubelet's sync period: how soon a ConfigMap edit reaches a pod's volume.
SYNC_PERIOD=${LEVIATHAN_CLUSTER_SYNC_PERIOD:-5}
CONTAINERD_SOCKET=$RUN/containerd/containerd.sock
CNI_BIN=/usr/lib/cni   # Debian's containernetworking-plugins
# The images up.sh loads into containerd: the chart's defaults (make images), and a pod sandbox
# image built on their base (nothing can be pulled).
IMAGE_VERSION=$(awk '/^appVersion:/ {gsub(/"/, "", $2); print $2}' chart/Chart.yaml)
PAUSE_IMAGE=localhost/leviathan/pause:$IMAGE_VERSION
# Only one cluster with a real node runs on a machine: kube-proxy's iptables chains are global.
API_FILTER_CHAIN=LEVIATHAN-API-$INDEX

say() { printf '[cluster %s] %s\n' "$(date +%H:%M:%S)" "$*" >&2; }

# start NAME COMMAND...: run in its own session, output to $RUN/logs/NAME.log.
start() {
  local name=$1
  shift
  setsid "$@" >"$RUN/logs/$name.log" 2>&1 </dev/null &
  echo $! >"$RUN/pids/$name"
}

# The last lines a component wrote, for error messages.
last_lines() { tail -n "${2:-15}" "$RUN/logs/$1.log" 2>/dev/null | sed "s/^/  $1| /" >&2; }

# wait_for WHAT SECONDS COMMAND...: poll until COMMAND succeeds; on a dead component or
# a timeout, say which, with its last log lines. WHAT starts with the component's name
# ("kubelet: node ... Ready"), whose log a timeout shows.
wait_for() {
  local what=$1 seconds=$2
  shift 2
  local deadline=$((SECONDS + seconds))
  until "$@" >/dev/null 2>&1; do
    for pidfile in "$RUN"/pids/*; do
      local name=${pidfile##*/}
      if ! kill -0 "$(cat "$pidfile")" 2>/dev/null; then
        echo "cluster-up: $name exited while waiting for $what; its last lines:" >&2
        last_lines "$name"
        return 1
      fi
    done
    if ((SECONDS >= deadline)); then
      local component=${what%%:*}
      echo "cluster-up: timed out after ${seconds}s waiting for $what; the last lines of $component:" >&2
      last_lines "$component"
      return 1
    fi
    sleep 0.5
  done
}

running() {
  local pidfile
  for pidfile in "$RUN"/pids/*; do
    [[ -e $pidfile ]] && kill -0 "$(cat "$pidfile")" 2>/dev/null && return 0
  done
  return 1
}
