#!/usr/bin/env bash
# Usage: require-release.sh RELEASE NAMESPACE
# Fails with one clear line unless RELEASE is installed in NAMESPACE from the same chart
# version as $LEVIATHAN_CHART, so an upgrade from there changes only the values it sets
# (never the images by accident, as a checkout of another version would).
set -uo pipefail
release=$1 namespace=$2
chart=${LEVIATHAN_CHART:-}
wanted=$(awk '$1 == "name:" && !name {name = $2} $1 == "version:" && !version {version = $2}
  END {if (name && version) print name "-" version}' "$chart/Chart.yaml" 2>/dev/null | tr -d '"')
if [[ -z $wanted ]]; then
  echo "LEVIATHAN_CHART=$chart is not a chart directory (no Chart.yaml with a name and a version)." >&2
  exit 1
fi
if ! listed=$(helm list -n "$namespace" --filter "^${release}\$" -o yaml 2>&1); then
  echo "Cannot list the Helm releases in namespace $namespace: ${listed##*$'\n'}" >&2
  exit 1
fi
installed=$(awk '$1 == "chart:" {print $2}' <<<"$listed")
if [[ -z $installed ]]; then
  echo "Release $release is not installed in namespace $namespace: install it first (make deploy)." >&2
  exit 1
fi
if [[ $installed != "$wanted" ]]; then
  echo "Release $release runs $installed, but LEVIATHAN_CHART=$chart is $wanted: an upgrade from it would change the images too." >&2
  echo "Point LEVIATHAN_CHART at a checkout of $installed, or upgrade on purpose with make deploy." >&2
  exit 1
fi
