#!/usr/bin/env bash
# make cluster-up: a real Kubernetes control plane on this machine, as plain processes.
#
#   etcd, kube-apiserver, kube-controller-manager, kube-scheduler  (official, built by build.sh)
#   kwok                                                           (nodes; status of pods of other images)
#   podagent.py                                                    (runs pods of our images as local processes)
#
# The API server listens on 127.0.0.1 only. Pods run in network namespaces on a
# bridge of their own (POD_CIDR); Service ClusterIPs are answered by the agent.
# Everything lives under .run/cluster; `make cluster-down` stops it and removes it.
# LEVIATHAN_CLUSTER_MINIMAL=1 (make fleet-up): etcd and kube-apiserver only. No node, no pods, no
# controllers: enough for the switch, the stop and the admission proof, at a fraction of the CPU.
set -euo pipefail
cd "$(dirname "$0")/../.."
source hack/cluster/lib.sh

fail() { echo "cluster-up: $*" >&2; exit 1; }
trap 'status=$?; if ((status != 0)); then hack/cluster/down.sh --quiet || true; fi' EXIT

[[ $(id -u) == 0 ]] || fail "needs root (it creates network namespaces for pods); run as root"
command -v openssl >/dev/null || fail "openssl is not installed (apt-get install openssl)"
command -v ip >/dev/null || fail "the ip command is not installed (apt-get install iproute2)"
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

started=$(date +%s)
rm -rf "$RUN"
mkdir -p "$RUN"/{pki,logs,pids,etcd,pods}
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
  cert apiserver-kubelet-client kube-apiserver-kubelet-client system:masters
  cert kwok-serving "$NODE_NAME" "" "IP:127.0.0.1,DNS:$NODE_NAME"
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

say "network: bridge $BRIDGE ($BRIDGE_IP/16) for pods"
ip link add "$BRIDGE" type bridge
ip addr add "$BRIDGE_IP/16" dev "$BRIDGE"
ip link set "$BRIDGE" up

say "etcd $ETCD_VERSION"
start etcd "$BIN/etcd" --name local --data-dir "$RUN/etcd" --unsafe-no-fsync \
  --listen-client-urls "http://127.0.0.1:$ETCD_PORT" --advertise-client-urls "http://127.0.0.1:$ETCD_PORT" \
  --listen-peer-urls "http://127.0.0.1:$ETCD_PEER_PORT" --initial-advertise-peer-urls "http://127.0.0.1:$ETCD_PEER_PORT" \
  --initial-cluster "local=http://127.0.0.1:$ETCD_PEER_PORT" --log-level warn
wait_for etcd 30 curl -fsS "http://127.0.0.1:$ETCD_PORT/health"

say "kube-apiserver $KUBE_VERSION (Node,RBAC; default admission plugins incl. PodSecurity)"
start kube-apiserver "$BIN/kube-apiserver" \
  --etcd-servers "http://127.0.0.1:$ETCD_PORT" \
  --bind-address 127.0.0.1 --advertise-address "$BRIDGE_IP" --secure-port "$API_PORT" \
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
wait_for kube-apiserver 60 "$BIN/kubectl" get --raw /readyz


if [[ ${LEVIATHAN_CLUSTER_MINIMAL:-} == 1 ]]; then
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

say "kwok $KWOK_VERSION: node $NODE_NAME"
# kwok's CRDs and node stages are read from its module, where build.sh fetched them.
KWOK_MODULE=$(cd /tmp && go mod download -json "sigs.k8s.io/kwok@$KWOK_VERSION" | sed -n 's/.*"Dir": "\(.*\)".*/\1/p')
[[ -d $KWOK_MODULE ]] || fail "cannot find the kwok $KWOK_VERSION module source (go mod download failed)"
kubectl_apply() { "$BIN/kubectl" apply --server-side --force-conflicts -f "$@" >/dev/null; }
kubectl_apply "$KWOK_MODULE/kustomize/crd/bases/kwok.x-k8s.io_logs.yaml"
kubectl_apply "$KWOK_MODULE/kustomize/crd/bases/kwok.x-k8s.io_portforwards.yaml"
sed "s#@AGENT_IMAGES@#$AGENT_IMAGE_PATTERN#g" hack/cluster/pod-stages.yaml >"$RUN/pod-stages.yaml"
start kwok "$BIN/kwok" --kubeconfig "$RUN/kwok.kubeconfig" \
  --manage-nodes-with-annotation-selector kwok.x-k8s.io/node=fake \
  --config "$KWOK_MODULE/kustomize/stage/node/fast/node-initialize.yaml" \
  --config "$KWOK_MODULE/kustomize/stage/node/heartbeat-with-lease/node-heartbeat-with-lease.yaml" \
  --config "$RUN/pod-stages.yaml" \
  --enable-crds Logs,PortForward \
  --node-lease-duration-seconds 40 \
  --node-ip 127.0.0.1 --node-port "$KWOK_PORT" --server-address "127.0.0.1:$KWOK_PORT" \
  --tls-cert-file "$RUN/pki/kwok-serving.crt" --tls-private-key-file "$RUN/pki/kwok-serving.key" \
  --cidr "$KWOK_POD_CIDR"
sed "s|@NODE@|$NODE_NAME|g" hack/cluster/node.yaml | "$BIN/kubectl" apply -f - >/dev/null
wait_for "node $NODE_NAME Ready" 60 "$BIN/kubectl" wait --for=condition=Ready "node/$NODE_NAME" --timeout=5s

say "pod agent: runs pods of $AGENT_IMAGE_PATTERN on $NODE_NAME"
sed "s|@NODE@|$NODE_NAME|g" hack/cluster/agent-rbac.yaml | "$BIN/kubectl" apply -f - >/dev/null
wait_for "the kubernetes Service" 30 "$BIN/kubectl" get service kubernetes -n default
start podagent "$VENV_PYTHON" hack/cluster/podagent.py \
  --kubeconfig "$RUN/node.kubeconfig" --node "$NODE_NAME" --run-dir "$RUN" \
  --bridge "$BRIDGE" --bridge-ip "$BRIDGE_IP" --pod-cidr "$AGENT_POD_CIDR" --netns-prefix "$NETNS_PREFIX" \
  --api-server "127.0.0.1:$API_PORT" --sync-period "$SYNC_PERIOD" --images "$AGENT_IMAGE_PATTERN"
wait_for "pod agent" 30 test -e "$RUN/podagent.ready"
wait_for "the default ServiceAccount" 60 "$BIN/kubectl" get serviceaccount default -n default

say "an in-cluster shell for the runbook's curl (hack/cluster/incluster.sh)"
ip netns add "$CLIENT_NETNS"
ip link add "$CLIENT_VETH" type veth peer name eth0 netns "$CLIENT_NETNS"
ip link set "$CLIENT_VETH" master "$BRIDGE" up
ip -n "$CLIENT_NETNS" addr add "$CLIENT_IP/16" dev eth0
ip -n "$CLIENT_NETNS" link set eth0 up
ip -n "$CLIENT_NETNS" link set lo up
ip -n "$CLIENT_NETNS" route add default via "$BRIDGE_IP"

trap - EXIT
say "ready in $(($(date +%s) - started)) s: export KUBECONFIG=$PWD/$RUN/kubeconfig"
