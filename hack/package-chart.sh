#!/usr/bin/env bash
# Package the chart with the docs its README and NOTES point to:
#   hack/package-chart.sh [DEST]   (default dist/) -> DEST/leviathan-<version>.tgz
# docs/RUNBOOK.md and docs/DECISIONS.md are copied into the package's docs/, and
# the README's ../docs/ links are pointed there, so they resolve in the
# repository and in the package alike.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
dest=$(mkdir -p "${1:-$root/dist}" && cd "${1:-$root/dist}" && pwd)
helm=${HELM:-$("$root/hack/ensure-helm.sh")}
stage=$(mktemp -d)
trap 'rm -rf "$stage"' EXIT
cp -R "$root/chart" "$stage/leviathan"
mkdir -p "$stage/leviathan/docs"
cp "$root/docs/RUNBOOK.md" "$root/docs/DECISIONS.md" "$stage/leviathan/docs/"
sed -i 's#](\.\./docs/#](docs/#g' "$stage/leviathan/README.md"
"$helm" package "$stage/leviathan" --destination "$dest"
