#!/usr/bin/env bash
# Usage: helm-upgrade.sh RELEASE CHART [helm upgrade flags...]
# `helm upgrade` for make disable / make enable. Under Helm 4's server-side apply, an upgrade that
# changes the switch file after a `kubectl edit` of it fails on a field conflict over
# data.<env>.yaml (docs/DECISIONS.md, "One switch, one grammar"). The brake must not fail: on that
# one error, say so and repeat the same upgrade with --server-side=true --force-conflicts, the one
# command that works (the chart still checks every value as before).
set -uo pipefail
output=$(helm upgrade "$@" 2>&1)
status=$?
if [[ $status -eq 0 ]]; then
  printf '%s\n' "$output"
  exit 0
fi
if [[ $output == *"conflict"* && $output == *".data."* ]] && helm version --short 2>/dev/null | grep -q '^v4'; then
  printf '%s\n' "$output" >&2
  echo "⚠ Helm 4's server-side apply conflicts with an earlier kubectl edit of the switch file; repeating it as the one command that works:" >&2
  echo "  helm upgrade $* --server-side=true --force-conflicts" >&2
  exec helm upgrade "$@" --server-side=true --force-conflicts
fi
printf '%s\n' "$output" >&2
exit "$status"
