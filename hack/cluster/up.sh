#!/usr/bin/env bash
# make cluster-up: a real Kubernetes control plane on this machine, as plain processes.
#
#   etcd, kube-apiserver, kube-controller-manager, kube-scheduler  (official, built by build.sh)
#   kubelet, kube-proxy (iptables), containerd + runc, CNI bridge   (the real node: our images' pods)
#   CoreDNS on the host                                             (cluster DNS for those pods)
#   kwok                                                            (a second node: fakes other pods)
#
# The API server takes connections from this machine and the pods' bridge only. Pods run on a
# bridge of their own (POD_SUBNET), from the images `make images` built, loaded into containerd.
# Everything lives under .run/cluster; `make cluster-down` stops it and removes it.
# LEVIATHAN_CLUSTER_MINIMAL=1 (make fleet-up): etcd and kube-apiserver only. No node, no pods, no
# controllers: enough for the switch, the stop and the admission proof, at a fraction of the CPU.
set -euo pipefail
cd "$(dirname "$0")/../.."
source hack/cluster/lib.sh

fail() { echo "cluster-up: $*" >&2; exit 1; }

[[ $(id -u) == 0 ]] || fail "needs root (it creates network namespaces for pods); run as root"
command -v openssl >/dev/null || fail "openssl is not installed (apt-get install openssl)"
command -v ip >/dev/null || fail "the ip command is not installed (apt-get install iproute2)"
minimal=${LEVIATHAN_CLUSTER_MINIMAL:-}
[[ -x $VENV_PYTHON ]] || fail "no $VENV_PYTHON: run 'make venv' first"
if running; then fail "a cluster is already running (pids in $RUN/pids): make cluster-down first"; fi

for port in "${ALL_PORTS[@]}"; do
  if (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then
    fail "port $port on 127.0.0.1 is in use; free it or move the cluster with LEVIATHAN_CLUSTER_INDEX (now $INDEX)"
  fi
done
ip link show "$BRIDGE" >/dev/null 2>&1 && fail "network bridge $BRIDGE already exists (a cluster not stopped?): make cluster-down"

say "building the pinned binaries if needed (first build: about 15 min on 2 cores)"
hack/cluster/build.sh all || fail "building the cluster binaries failed (see the output above)"
if [[ $minimal != 1 ]]; then
  # The real node's Debian parts: installed here when missing, as make images installs podman.
  packages=()
  command -v containerd >/dev/null || packages+=(containerd)
  command -v runc >/dev/null || packages+=(runc)
  [[ -x $CNI_BIN/bridge ]] || packages+=(containernetworking-plugins)
  command -v iptables >/dev/null || packages+=(iptables)
  if ((${#packages[@]})); then
    command -v apt-get >/dev/null || fail "the real node needs ${packages[*]}, and there is no apt-get to install them"
    say "installing ${packages[*]} with apt-get (the real node's container runtime)"
    { DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends "${packages[@]}" >/dev/null 2>&1 ||
      { apt-get update -q >/dev/null 2>&1 &&
        DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends "${packages[@]}" >/dev/null; }; } ||
      fail "apt-get install ${packages[*]} failed"
  fi
  # cluster-down removes every KUBE-* chain (kubelet's and kube-proxy's): so none may exist before.
  foreign=$(for table in filter nat mangle; do iptables -t "$table" -S 2>/dev/null | awk '/^-N KUBE-/ {print $2}'; done | sort -u | tr '\n' ' ')
  if [[ -n $foreign ]]; then
    fail "this machine already has KUBE-* iptables chains ($foreign): another kubelet or kube-proxy runs here (one real node per machine); make cluster-down where it runs"
  fi
fi

# From here on a failed start takes down what it started (not before: a refused start must
# leave a running cluster alone).
trap 'status=$?; if ((status != 0)); then hack/cluster/down.sh --quiet || true; fi' EXIT
started=$(date +%s)
rm -rf "$RUN"
mkdir -p "$RUN"/{pki,logs,pids,etcd}
# The binaries of this KUBE_VERSION, for make e2e's PATH (kubectl of the same version).
ln -s "$(cd "$BIN" && pwd)" "$RUN/bin"

say "certificates and service-account keys"
pki() {
  local dir=$RUN/pki
  openssl req -x509 -newkey rsa:2048 -nodes -days 30 -subj "/CN=leviathan-local-ca" \
    -keyout "$dir/ca.key" -out "$dir/ca.crt" 2>/dev/null
  openssl genrsa -out "$dir/sa.key" 2048 2>/dev/null
  openssl rsa -in "$dir/sa.key" -pubout -out "$dir/sa.pub" 2>/dev/null
  # name CN O SANS
  cert() {
    openssl req -newkey rsa:2048 -nodes -subj "/CN=$2${3:+/O=$3}" -keyout "$dir/$1.key" -out "$dir/$1.csr" 2>/dev/null
    local ext=$dir/$1.ext
    echo "basicConstraints=CA:FALSE" >"$ext"
    if [[ -n ${4:-} ]]; then echo "subjectAltName=$4" >>"$ext"; fi
    openssl x509 -req -in "$dir/$1.csr" -CA "$dir/ca.crt" -CAkey "$dir/ca.key" -CAcreateserial -days 30 \
      -extfile "$ext" -out "$dir/$1.crt" 2>/dev/null
  }
  cert apiserver kube-apiserver "" "IP:127.0.0.1,IP:$SERVICE_API_IP,IP:$BRIDGE_IP,DNS:localhost,DNS:kubernetes,DNS:kubernetes.default,DNS:kubernetes.default.svc,DNS:kubernetes.default.svc.cluster.local"
  cert admin kubernetes-admin system:masters
  cert controller-manager system:kube-controller-manager
  cert scheduler system:kube-scheduler
  cert kwok kwok-controller system:masters
  cert node "system:node:$NODE_NAME" system:nodes
  cert kube-proxy system:kube-proxy
  cert coredns leviathan-local-coredns
  cert apiserver-kubelet-client kube-apiserver-kubelet-client system:masters
  cert kubelet-serving "$NODE_NAME" "" "IP:$BRIDGE_IP,DNS:$NODE_NAME"
  cert kwok-serving "$KWOK_NODE_NAME" "" "IP:127.0.0.1,DNS:$KWOK_NODE_NAME"
}
pki

kubeconfig() { # file user
  cat >"$RUN/$1" <<EOF
apiVersion: v1
kind: Config
clusters:
  - name: local
    cluster:
      server: https://127.0.0.1:$API_PORT
      certificate-authority: $PWD/$RUN/pki/ca.crt
users:
  - name: $2
    user:
      client-certificate: $PWD/$RUN/pki/$2.crt
      client-key: $PWD/$RUN/pki/$2.key
contexts:
  - name: leviathan-local
    context: {cluster: local, user: $2}
current-context: leviathan-local
EOF
}
kubeconfig kubeconfig admin
kubeconfig controller-manager.kubeconfig controller-manager
kubeconfig scheduler.kubeconfig scheduler
kubeconfig kwok.kubeconfig kwok
kubeconfig node.kubeconfig node
kubeconfig kube-proxy.kubeconfig kube-proxy
kubeconfig coredns.kubeconfig coredns

say "network: bridge $BRIDGE ($BRIDGE_IP/16) for pods"
ip link add "$BRIDGE" address "$BRIDGE_MAC" type bridge
ip addr add "$BRIDGE_IP/16" dev "$BRIDGE"
ip link set "$BRIDGE" up

say "etcd $ETCD_VERSION"
start etcd "$BIN/etcd" --name local --data-dir "$RUN/etcd" --unsafe-no-fsync \
  --listen-client-urls "http://127.0.0.1:$ETCD_PORT" --advertise-client-urls "http://127.0.0.1:$ETCD_PORT" \
  --listen-peer-urls "http://127.0.0.1:$ETCD_PEER_PORT" --initial-advertise-peer-urls "http://127.0.0.1:$ETCD_PEER_PORT" \
  --initial-cluster "local=http://127.0.0.1:$ETCD_PEER_PORT" --log-level warn
wait_for "etcd: its health" 30 curl -fsS "http://127.0.0.1:$ETCD_PORT/health"

# Pods reach the API server through the kubernetes Service, at the bridge address: with a real
# node it listens on every address, and a filter chain drops what comes from elsewhere.
API_BIND=127.0.0.1
if [[ $minimal != 1 ]]; then
  API_BIND=0.0.0.0
  iptables -N "$API_FILTER_CHAIN"
  iptables -A "$API_FILTER_CHAIN" -i lo -j RETURN
  iptables -A "$API_FILTER_CHAIN" -i "$BRIDGE" -j RETURN
  iptables -A "$API_FILTER_CHAIN" -j DROP
  iptables -I INPUT -p tcp --dport "$API_PORT" -j "$API_FILTER_CHAIN"
fi
say "kube-apiserver $KUBE_VERSION (Node,RBAC; default admission plugins incl. PodSecurity)"
start kube-apiserver "$BIN/kube-apiserver" \
  --etcd-servers "http://127.0.0.1:$ETCD_PORT" \
  --bind-address "$API_BIND" --advertise-address "$BRIDGE_IP" --secure-port "$API_PORT" \
  --tls-cert-file "$RUN/pki/apiserver.crt" --tls-private-key-file "$RUN/pki/apiserver.key" \
  --client-ca-file "$RUN/pki/ca.crt" \
  --service-account-issuer https://kubernetes.default.svc.cluster.local \
  --service-account-key-file "$RUN/pki/sa.pub" --service-account-signing-key-file "$RUN/pki/sa.key" \
  --service-cluster-ip-range "$SERVICE_CIDR" \
  --authorization-mode Node,RBAC \
  --kubelet-preferred-address-types InternalIP \
  --kubelet-client-certificate "$RUN/pki/apiserver-kubelet-client.crt" \
  --kubelet-client-key "$RUN/pki/apiserver-kubelet-client.key" \
  --feature-gates MutatingAdmissionPolicy=true \
  --runtime-config admissionregistration.k8s.io/v1beta1=true \
  --profiling=false
export KUBECONFIG=$PWD/$RUN/kubeconfig
wait_for "kube-apiserver: /readyz" 60 "$BIN/kubectl" get --raw /readyz


if [[ $minimal == 1 ]]; then
  trap - EXIT
  say "ready (minimal: etcd and kube-apiserver) in $(($(date +%s) - started)) s: export KUBECONFIG=$PWD/$RUN/kubeconfig"
  exit 0
fi

say "kube-controller-manager and kube-scheduler"
start kube-controller-manager "$BIN/kube-controller-manager" \
  --kubeconfig "$RUN/controller-manager.kubeconfig" \
  --authentication-kubeconfig "$RUN/controller-manager.kubeconfig" \
  --authorization-kubeconfig "$RUN/controller-manager.kubeconfig" \
  --bind-address 127.0.0.1 --secure-port "$KCM_PORT" --leader-elect=false \
  --service-account-private-key-file "$RUN/pki/sa.key" --root-ca-file "$RUN/pki/ca.crt" \
  --use-service-account-credentials=true \
  --cluster-signing-cert-file "$RUN/pki/ca.crt" --cluster-signing-key-file "$RUN/pki/ca.key" \
  --service-cluster-ip-range "$SERVICE_CIDR" --profiling=false
start kube-scheduler "$BIN/kube-scheduler" \
  --kubeconfig "$RUN/scheduler.kubeconfig" \
  --authentication-kubeconfig "$RUN/scheduler.kubeconfig" \
  --authorization-kubeconfig "$RUN/scheduler.kubeconfig" \
  --bind-address 127.0.0.1 --secure-port "$SCHEDULER_PORT" --leader-elect=false --profiling=false

say "kwok $KWOK_VERSION: node $KWOK_NODE_NAME (fakes the pods of other images)"
# kwok's node stages are read from its module, where build.sh fetched them.
KWOK_MODULE=$(cd /tmp && go mod download -json "sigs.k8s.io/kwok@$KWOK_VERSION" | sed -n 's/.*"Dir": "\(.*\)".*/\1/p')
[[ -d $KWOK_MODULE ]] || fail "cannot find the kwok $KWOK_VERSION module source (go mod download failed)"
kubectl_apply() { "$BIN/kubectl" apply --server-side --force-conflicts -f "$@" >/dev/null; }
start kwok "$BIN/kwok" --kubeconfig "$RUN/kwok.kubeconfig" \
  --manage-nodes-with-annotation-selector kwok.x-k8s.io/node=fake \
  --config "$KWOK_MODULE/kustomize/stage/node/fast/node-initialize.yaml" \
  --config "$KWOK_MODULE/kustomize/stage/node/heartbeat-with-lease/node-heartbeat-with-lease.yaml" \
  --config hack/cluster/pod-stages.yaml \
  --node-lease-duration-seconds 40 \
  --node-ip 127.0.0.1 --node-port "$KWOK_PORT" --server-address "127.0.0.1:$KWOK_PORT" \
  --tls-cert-file "$RUN/pki/kwok-serving.crt" --tls-private-key-file "$RUN/pki/kwok-serving.key" \
  --cidr "$KWOK_POD_CIDR"
sed "s|@NODE@|$KWOK_NODE_NAME|g" hack/cluster/node.yaml | "$BIN/kubectl" apply -f - >/dev/null
sed -e "s|@KWOK_NODE@|$KWOK_NODE_NAME|g" -e "s#@OUR_IMAGES@#$OUR_IMAGES#g" hack/cluster/placement.yaml | kubectl_apply -
wait_for "kwok: node $KWOK_NODE_NAME Ready" 60 "$BIN/kubectl" wait --for=condition=Ready "node/$KWOK_NODE_NAME" --timeout=5s

# render FILE: the template with the cluster's values.
render() {
  sed -e "s|@RUN@|$PWD/$RUN|g" -e "s|@BRIDGE@|$BRIDGE|g" -e "s|@BRIDGE_IP@|$BRIDGE_IP|g" \
    -e "s|@POD_SUBNET@|$POD_SUBNET|g" -e "s|@RANGE_START@|$POD_NET.0.2|g" -e "s|@RANGE_END@|$POD_NET.126.255|g" \
    -e "s|@NODE@|$NODE_NAME|g" -e "s|@KUBELET_PORT@|$KUBELET_PORT|g" -e "s|@KUBELET_HEALTHZ_PORT@|$KUBELET_HEALTHZ_PORT|g" \
    -e "s|@PROXY_HEALTHZ_PORT@|$PROXY_HEALTHZ_PORT|g" -e "s|@PROXY_METRICS_PORT@|$PROXY_METRICS_PORT|g" \
    -e "s|@SYNC_PERIOD@|$SYNC_PERIOD|g" -e "s|@PAUSE_IMAGE@|$PAUSE_IMAGE|g" -e "s|@RUNC@|$(command -v runc)|g" \
    -e "s|@CNI_BIN@|$CNI_BIN|g" "hack/cluster/$1"
}

say "real node $NODE_NAME: containerd $(containerd --version | awk '{print $3}'), runc $(runc --version | awk 'NR==1 {print $3}')"
mkdir -p "$RUN/containerd" "$RUN/cni/net.d" "$RUN/kubelet"
render containerd.toml >"$RUN/containerd/config.toml"
render cni.conflist >"$RUN/cni/net.d/10-leviathan.conflist"
# containerd's default runtime spec, with the open-files limit this machine allows.
ctr oci spec | "$VENV_PYTHON" -c '
import json, sys
spec = json.load(sys.stdin)
spec["process"]["rlimits"] = [{"type": "RLIMIT_NOFILE", "hard": 4096, "soft": 4096}]
json.dump(spec, sys.stdout, indent=1)' >"$RUN/containerd/base-spec.json"
start containerd containerd --config "$RUN/containerd/config.toml"
wait_for "containerd: its socket" 30 ctr --address "$CONTAINERD_SOCKET" version
say "loading the images into containerd (make images builds them)"
"$VENV_PYTHON" hack/container_images.py load --containerd "$CONTAINERD_SOCKET" --version "$IMAGE_VERSION" --pause-image "$PAUSE_IMAGE" ||
  fail "loading the images into containerd failed (see above)"

say "kubelet $KUBE_VERSION, kube-proxy, CoreDNS $COREDNS_VERSION"
# kubelet sets kernel tunables (vm.overcommit_memory, kernel.panic, kernel.panic_on_oops) and
# kube-proxy route_localnet, as on a node; cluster-down puts back what this machine had.
for key in "${NODE_SYSCTLS[@]}"; do echo "$key=$(sysctl -n "$key")"; done >"$RUN/sysctls"
touch "$RUN/real-node"  # cluster-down removes the KUBE-* chains while this marker is there
sysctl -qw net.ipv4.ip_forward=1
render kubelet.yaml >"$RUN/kubelet/config.yaml"
echo "nameserver $BRIDGE_IP" >"$RUN/host-resolv.conf"
start kubelet "$BIN/kubelet" --config "$RUN/kubelet/config.yaml" --kubeconfig "$RUN/node.kubeconfig" \
  --hostname-override "$NODE_NAME" --node-ip "$BRIDGE_IP" --root-dir "$PWD/$RUN/kubelet" \
  --cert-dir "$RUN/kubelet/pki" --node-labels type=real
render kube-proxy.yaml >"$RUN/kube-proxy.yaml"
start kube-proxy "$BIN/kube-proxy" --config "$RUN/kube-proxy.yaml"
kubectl_apply hack/cluster/coredns-rbac.yaml
render Corefile >"$RUN/Corefile"
start coredns "$BIN/coredns" -conf "$RUN/Corefile"
wait_for "kubelet: node $NODE_NAME Ready" 120 "$BIN/kubectl" wait --for=condition=Ready "node/$NODE_NAME" --timeout=5s
wait_for "kube-apiserver: the kubernetes Service" 30 "$BIN/kubectl" get service kubernetes -n default
wait_for "kube-controller-manager: the default ServiceAccount" 60 "$BIN/kubectl" get serviceaccount default -n default

say "an in-cluster shell for the runbook's curl (hack/cluster/incluster.sh)"
ip netns add "$CLIENT_NETNS"
ip link add "$CLIENT_VETH" type veth peer name eth0 netns "$CLIENT_NETNS"
ip link set "$CLIENT_VETH" master "$BRIDGE" up
ip -n "$CLIENT_NETNS" addr add "$CLIENT_IP/16" dev eth0
ip -n "$CLIENT_NETNS" link set eth0 up
ip -n "$CLIENT_NETNS" link set lo up
ip -n "$CLIENT_NETNS" route add default via "$BRIDGE_IP"
wait_for "kube-proxy: its healthz" 30 curl -fsS "http://127.0.0.1:$PROXY_HEALTHZ_PORT/healthz"
wait_for "coredns: kubernetes.default from a pod's network" 30 hack/cluster/incluster.sh "getent hosts kubernetes.default"

trap - EXIT
say "ready in $(($(date +%s) - started)) s: export KUBECONFIG=$PWD/$RUN/kubeconfig"
