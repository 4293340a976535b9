#!/usr/bin/env bash
# Build the pinned Helm 3, Helm 4 and helm-unittest from their Go modules:
#   .tools/helm3/helm, .tools/helm4/helm, and the unittest plugin in .tools/helm-plugins/unittest
# (point HELM_PLUGINS at .tools/helm-plugins). Each is rebuilt only when its pin in
# hack/cluster/pins.env changes; Go's module and build caches stay in their default
# (per-user) locations, so a fresh clone on the same machine only links.
# Also tests/support/helm-values/v3 and v4 (Helm's own upgrade code, no cluster: which values each
# upgrade flag renders with) into .tools/helm-values/v3 and v4, rebuilt when their source changes.
# Usage: hack/build-helm.sh [all|helm3|helm4|unittest|values]; prints the paths it built or found.
set -euo pipefail
cd "$(dirname "$0")/.."
source hack/cluster/pins.env

TOOLS=$PWD/.tools
command -v go >/dev/null || { echo "build-helm: Go is not installed (need Go 1.25+ on PATH)" >&2; exit 1; }
# -mod=mod: the wrapper module has no go.sum of its own; sum.golang.org verifies every module.
export CGO_ENABLED=0 GOFLAGS="-buildvcs=false -mod=mod"

log() { printf '[build-helm %s] %s\n' "$(date +%H:%M:%S)" "$*" >&2; }
fresh() { [[ -x "$1" && "$(cat "$(dirname "$1")/.pin" 2>/dev/null)" == "$2" ]]; }
mark() { echo "$2" >"$(dirname "$1")/.pin"; }

# The Kubernetes version helm 3 assumes without a cluster (`helm template`'s
# .Capabilities.KubeVersion): upstream's Makefile stamps it from the client-go the
# module requires, and without it the default (v1.20) fails the chart's kubeVersion.
kube_stamp() {
  local module=$1 version=$2 gomod minor
  gomod=$(go mod download -json "$module@$version" | sed -n 's/.*"GoMod": "\(.*\)".*/\1/p')
  minor=$(awk '$1 == "k8s.io/client-go" {split($2, v, "."); print v[2]; exit}' "$gomod")
  local flags=""
  for pkg in helm.sh/helm/v3/pkg/chartutil helm.sh/helm/v3/pkg/lint/rules; do
    flags+=" -X $pkg.k8sVersionMajor=1 -X $pkg.k8sVersionMinor=$minor"
  done
  echo "$flags"
}

build_helm() {
  local major=$1 version=$2 bin=$TOOLS/helm$1/helm
  if ! fresh "$bin" "$version"; then
    log "building helm $version (cold: several minutes on 2 cores)"
    local flags="-s -w -X helm.sh/helm/v$major/internal/version.version=$version -X helm.sh/helm/v$major/internal/version.gitTreeState=clean"
    [[ $major == 3 ]] && flags+=$(kube_stamp helm.sh/helm/v3 "$version")
    mkdir -p "$(dirname "$bin")"
    GOBIN=$(dirname "$bin") go install -trimpath -ldflags "$flags" "helm.sh/helm/v$major/cmd/helm@$version"
    mark "$bin" "$version"
  fi
  echo "$bin"
}

# helm-unittest's go.mod replaces yaml-jsonpath with helm-unittest's fork, which
# `go install pkg@version` refuses: build it from a wrapper module with the same replace.
build_unittest() {
  local version=$HELM_UNITTEST_VERSION plugin=$TOOLS/helm-plugins/unittest
  local bin=$plugin/untt
  if ! fresh "$bin" "$version"; then
    log "building helm-unittest $version"
    local module=github.com/helm-unittest/helm-unittest dir=$TOOLS/helm-unittest-module
    local gomod helm_version
    gomod=$(go mod download -json "$module@$version" | sed -n 's/.*"GoMod": "\(.*\)".*/\1/p')
    helm_version=$(awk '$1 == "helm.sh/helm/v3" {print $2; exit}' "$gomod")
    mkdir -p "$dir" "$plugin"
    {
      echo "module leviathan.local/helm-unittest"
      echo
      echo "go $(awk '/^go /{print $2; exit}' "$gomod")"
      echo
      echo "require $module $version"
      echo
      grep '^replace ' "$gomod"
    } >"$dir/go.mod"
    echo 'package wrapper' >"$dir/doc.go"
    (cd "$dir" && go get "$module@$version" >/dev/null)
    (cd "$dir" && go build -trimpath -ldflags "-s -w$(kube_stamp helm.sh/helm/v3 "$helm_version")" -o "$bin" "$module/cmd/helm-unittest")
    # Our own plugin.yaml: upstream's runs an install hook that downloads from the internet.
    cat >"$plugin/plugin.yaml" <<YAML
name: unittest
version: "${version#v}"
usage: unittest for helm charts
description: helm-unittest $version, built from its Go module by hack/build-helm.sh
ignoreFlags: false
platformCommand:
  - command: \$HELM_PLUGIN_DIR/untt
YAML
    mark "$bin" "$version"
  fi
  echo "$bin"
}

build_values() {
  local major
  for major in 3 4; do
    local src=tests/support/helm-values/v$major bin=$TOOLS/helm-values/v$major/helm-values stamp
    stamp=$(cat "$src/go.mod" "$src/go.sum" "$src/main.go" | sha256sum | cut -d' ' -f1)
    if ! fresh "$bin" "$stamp"; then
      log "building the Helm $major values harness"
      mkdir -p "$(dirname "$bin")"
      (cd "$src" && go build -trimpath -o "$bin" .)
      mark "$bin" "$stamp"
    fi
    echo "$bin"
  done
}

case "${1:-all}" in
  all) build_helm 3 "$HELM3_VERSION"; build_helm 4 "$HELM4_VERSION"; build_unittest; build_values ;;
  values) build_values ;;
  helm3) build_helm 3 "$HELM3_VERSION" ;;
  helm4) build_helm 4 "$HELM4_VERSION" ;;
  unittest) build_unittest ;;
  *) echo "usage: $0 [all|helm3|helm4|unittest|values]" >&2; exit 2 ;;
esac
