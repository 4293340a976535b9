#!/usr/bin/env bash
# make fleet-up N=5 / make fleet-down: a simulated fleet of N local control planes for kubectl leviathan.
#
#   up N     clusters LEVIATHAN_CLUSTER_INDEX=FIRST..FIRST+N-1 (FLEET_FIRST, default 5), each etcd and
#            kube-apiserver only (LEVIATHAN_CLUSTER_MINIMAL=1: the admission proof needs no pods), in
#            .run/fleet/c<index>; one kubeconfig with a context leviathan-fleet-<index> per cluster
#            (.run/fleet/kubeconfig); the chart installed on each with values/dev.yaml, in a mix of
#            states (the "prior states" a fleet brake must give back):
#              1st  on                                   4th  on, with releasers (group release-owners)
#              2nd  off, reason "off before the brake"   5th  off, stopped
#              3rd  on, stopped                          and so on, round again
#   down     stop every fleet cluster (whatever N was)
#
# Group release-owners (the releasers) gets cluster-admin on every cluster, so a test or a bench can act
# as a releaser with --as bob --as-group release-owners.
set -euo pipefail
cd "$(dirname "$0")/.."
FLEET=.run/fleet
FIRST=${FLEET_FIRST:-5}
HELM=${HELM:-$(hack/ensure-helm.sh)}
say() { printf '[fleet %s] %s\n' "$(date +%H:%M:%S)" "$*" >&2; }

cluster_env() { # index
  echo "LEVIATHAN_CLUSTER_INDEX=$1 LEVIATHAN_CLUSTER_DIR=$FLEET/c$1 LEVIATHAN_CLUSTER_MINIMAL=1"
}

down() {
  local dir
  for dir in "$FLEET"/c*; do
    [[ -d $dir ]] || continue
    env $(cluster_env "${dir##*/c}") hack/cluster/down.sh --quiet || true
  done
  rm -rf "$FLEET"
  say "fleet stopped; nothing left running"
}

# The state the index-th cluster (0-based) starts in: helm flags.
state_flags() {
  case $(($1 % 5)) in
    0) echo "--set autonomy.enabled=true" ;;
    1) echo "--set autonomy.enabled=false --set-literal autonomy.reason=off-before-the-brake" ;;
    2) echo "--set autonomy.enabled=true --set scheduler.suspend=true" ;;
    3) echo "--set autonomy.enabled=true --set-literal autonomy.reason=on-with-releasers --set autonomy.releasers.groups={release-owners}" ;;
    4) echo "--set autonomy.enabled=false --set scheduler.suspend=true" ;;
  esac
}

up() {
  local n=$1 i index
  [[ $n =~ ^[1-9]$ ]] && ((FIRST + n <= 10)) || { echo "fleet-up: N must be 1..$((10 - FIRST)) (indexes $FIRST..9)" >&2; exit 2; }
  [[ -d $FLEET ]] && { echo "fleet-up: a fleet is already up ($FLEET): make fleet-down first" >&2; exit 1; }
  hack/cluster/build.sh all >/dev/null
  mkdir -p "$FLEET"
  say "starting $n control planes (indexes $FIRST..$((FIRST + n - 1)))"
  local pids=()
  for ((i = 0; i < n; i++)); do
    index=$((FIRST + i))
    env $(cluster_env "$index") hack/cluster/up.sh >"$FLEET/up-$index.log" 2>&1 &
    pids+=($!)
  done
  local failed=0
  for ((i = 0; i < n; i++)); do
    wait "${pids[$i]}" || { failed=1; echo "fleet-up: cluster $((FIRST + i)) failed:" >&2; tail -n 5 "$FLEET/up-$((FIRST + i)).log" >&2; }
  done
  ((failed == 0)) || { down; exit 1; }

  # One kubeconfig, a context per cluster (cluster, user and context renamed after the index).
  local configs=()
  for ((i = 0; i < n; i++)); do
    index=$((FIRST + i))
    sed -e "s/name: local$/name: fleet-$index/" -e "s/cluster: local,/cluster: fleet-$index,/" \
      -e "s/name: admin$/name: fleet-$index-admin/" -e "s/user: admin}/user: fleet-$index-admin}/" \
      -e "s/leviathan-local/leviathan-fleet-$index/" "$FLEET/c$index/kubeconfig" >"$FLEET/c$index/fleet.kubeconfig"
    configs+=("$PWD/$FLEET/c$index/fleet.kubeconfig")
  done
  KUBECONFIG=$(IFS=:; echo "${configs[*]}") .tools/cluster/bin/kubectl config view --flatten >"$FLEET/kubeconfig"
  export KUBECONFIG=$PWD/$FLEET/kubeconfig

  say "installing the chart on each (helm $("$HELM" version --short))"
  pids=()
  for ((i = 0; i < n; i++)); do
    index=$((FIRST + i))
    (
      context=leviathan-fleet-$index
      .tools/cluster/bin/kubectl --context "$context" create clusterrolebinding fleet-release-owners \
        --clusterrole cluster-admin --group release-owners >/dev/null
      # shellcheck disable=SC2046
      "$HELM" upgrade --install leviathan chart -n leviathan --create-namespace -f values/dev.yaml \
        --kube-context "$context" $(state_flags "$i") >/dev/null
    ) >"$FLEET/install-$index.log" 2>&1 &
    pids+=($!)
  done
  for ((i = 0; i < n; i++)); do
    wait "${pids[$i]}" || { failed=1; echo "fleet-up: installing on cluster $((FIRST + i)) failed:" >&2; tail -n 5 "$FLEET/install-$((FIRST + i)).log" >&2; }
  done
  ((failed == 0)) || { down; exit 1; }
  say "ready: export KUBECONFIG=$PWD/$FLEET/kubeconfig; kubectl leviathan status --all-contexts"
}

case ${1:-} in
  up) up "${2:-5}" ;;
  down) down ;;
  *) echo "usage: hack/fleet.sh up N | down" >&2; exit 2 ;;
esac
