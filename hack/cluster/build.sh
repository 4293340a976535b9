#!/usr/bin/env bash
# Build the pinned cluster toolchain from official Go modules into .tools/cluster/<pins>/bin.
# Rebuilds a binary only when its pin changes; the Go module and build caches
# stay in Go's default (per-user) locations so a fresh clone on the same machine
# links in minutes instead of compiling for tens of minutes.
set -euo pipefail
cd "$(dirname "$0")/../.."
source hack/cluster/pins.env
source hack/cluster/kube-version.sh

WORK=.tools/cluster/modules
mkdir -p "$BIN" "$WORK"
command -v go >/dev/null || { echo "cluster build: Go is not installed (need Go 1.25+ on PATH)" >&2; exit 1; }
# -mod=mod: the wrapper has no go.sum of its own; the proxy checksums (sum.golang.org) verify every module.
export CGO_ENABLED=0 GOFLAGS="-buildvcs=false -mod=mod"

log() { printf '[build %s] %s\n' "$(date +%H:%M:%S)" "$*" >&2; }

# stamp NAME VERSION: true when $BIN/NAME was built from VERSION.
fresh() { [[ -x "$BIN/$1" && "$(cat "$BIN/.$1.pin" 2>/dev/null)" == "$2" ]]; }
mark() { echo "$2" >"$BIN/.$1.pin"; }

# wrapper DIR MODULE VERSION: a module of ours that requires MODULE@VERSION, with
# upstream's relative replace lines turned into versioned ones.
wrapper() {
  local dir=$1 module=$2 version=$3 mapping=$4
  mkdir -p "$dir"
  local gomod
  gomod=$(go mod download -json "$module@$version" | sed -n 's/.*"GoMod": "\(.*\)".*/\1/p')
  {
    echo "module leviathan.local/toolchain"
    echo
    echo "go $(awk '/^go /{print $2; exit}' "$gomod")"
    echo
    echo "require $module $version"
    echo
    # "X => ./staging/src/X" (kubernetes) or "X => ../path" (etcd) become "X => X <mapped version>".
    awk -v mapping="$mapping" -v version="$version" '
      /=> \.\.?\// && !/FORBIDDEN/ {
        name = $1; if (name == "replace") name = $2
        v = version
        if (mapping == "kube") { sub(/^v1\./, "v0.", v) }
        print "replace " name " => " name " " v
      }' "$gomod"
  } >"$dir/go.mod"
  echo 'package toolchain' >"$dir/doc.go"
}

build_kube() {
  local names=(kube-apiserver kube-controller-manager kube-scheduler kubectl kubelet kube-proxy) todo=()
  for n in "${names[@]}"; do fresh "$n" "$KUBE_VERSION" || todo+=("$n"); done
  ((${#todo[@]})) || return 0
  local dir=$WORK/kubernetes-$KUBE_VERSION
  wrapper "$dir" k8s.io/kubernetes "$KUBE_VERSION" kube
  local major minor
  major=$(cut -d. -f1 <<<"${KUBE_VERSION#v}") minor=$(cut -d. -f2 <<<"$KUBE_VERSION")
  local stamp=""
  for pkg in k8s.io/component-base/version k8s.io/client-go/pkg/version; do
    stamp+=" -X $pkg.gitVersion=$KUBE_VERSION -X $pkg.gitMajor=$major -X $pkg.gitMinor=$minor"
    stamp+=" -X $pkg.gitTreeState=clean -X $pkg.buildDate=$KUBE_BUILD_DATE"
  done
  (cd "$dir" && go get "k8s.io/kubernetes@$KUBE_VERSION" >/dev/null)
  for n in "${todo[@]}"; do
    log "building $n $KUBE_VERSION (a cold build takes 10-20 min on 2 cores)"
    (cd "$dir" && go build -trimpath -ldflags "-s -w$stamp" -o "$OLDPWD/$BIN/$n" "k8s.io/kubernetes/cmd/$n")
    mark "$n" "$KUBE_VERSION"
  done
}

build_etcd() {
  fresh etcd "$ETCD_VERSION" && return 0
  local dir=$WORK/etcd-$ETCD_VERSION
  wrapper "$dir" go.etcd.io/etcd/server/v3 "$ETCD_VERSION" etcd
  (cd "$dir" && go get "go.etcd.io/etcd/server/v3@$ETCD_VERSION" >/dev/null)
  log "building etcd $ETCD_VERSION"
  (cd "$dir" && go build -trimpath -ldflags "-s -w" -o "$OLDPWD/$BIN/etcd" go.etcd.io/etcd/server/v3)
  mark etcd "$ETCD_VERSION"
}


# go_install NAME VERSION PACKAGE: a module without relative replace lines, installed as is.
go_install() {
  fresh "$1" "$2" && return 0
  log "building $1 $2"
  GOBIN=$PWD/$BIN go install -trimpath -ldflags "-s -w" "$3@$2"
  mark "$1" "$2"
}
build_kwok() { go_install kwok "$KWOK_VERSION" sigs.k8s.io/kwok/cmd/kwok; }
build_crictl() { go_install crictl "$CRI_TOOLS_VERSION" sigs.k8s.io/cri-tools/cmd/crictl; }
build_coredns() { go_install coredns "$COREDNS_VERSION" github.com/coredns/coredns; }

case "${1:-all}" in
  all) build_etcd; build_kwok; build_crictl; build_coredns; build_kube ;;
  etcd) build_etcd ;;
  kwok) build_kwok ;;
  crictl) build_crictl ;;
  coredns) build_coredns ;;
  kube) build_kube ;;
  *) echo "usage: $0 [all|etcd|kwok|crictl|coredns|kube]" >&2; exit 2 ;;
esac
