# Sourced by build.sh and lib.sh after pins.env: the Kubernetes version to build and run, and where.
# shellcheck shell=bash
# KUBE_VERSION from the environment: empty for the default pin, a minor (1.37) for the patch pinned
# for it, or a full version (v1.37.2). Binaries of the default pin live in CLUSTER_BIN (default
# .tools/cluster/bin, which a shared checkout may provide); any other version in .tools/cluster/<version>/bin.
requested=${KUBE_VERSION:-}
if [[ -z $requested ]]; then
  KUBE_VERSION=$KUBE_DEFAULT_VERSION
elif [[ $requested =~ ^v?1\.([0-9]+)\.[0-9]+$ ]]; then
  KUBE_VERSION=v${requested#v}
elif [[ $requested =~ ^v?1\.([0-9]+)$ ]]; then
  pin=KUBE_1_${BASH_REMATCH[1]}
  KUBE_VERSION=${!pin:-}
  if [[ -z $KUBE_VERSION ]]; then
    echo "KUBE_VERSION=$requested: no pin for that minor in hack/cluster/pins.env (pinned: $(compgen -v KUBE_1_ | sed 's/KUBE_1_/1./' | tr '\n' ' '))" >&2
    exit 2
  fi
else
  echo "KUBE_VERSION=$requested: not a Kubernetes version (say 1.37 or v1.37.2)" >&2
  exit 2
fi
if [[ $KUBE_VERSION == "$KUBE_DEFAULT_VERSION" ]]; then
  BIN=${CLUSTER_BIN:-.tools/cluster/bin}
else
  BIN=.tools/cluster/$KUBE_VERSION/bin
fi
export KUBE_VERSION
