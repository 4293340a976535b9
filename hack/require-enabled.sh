#!/usr/bin/env bash
# Usage: require-enabled.sh CONFIGMAP KEY NAMESPACE
# Fails with one clear line unless the live ConfigMap's KEY is "on" as the shared reader reads it
# (python -m leviathan_config): worker Jobs are resumed only while autonomy is on (the admission
# policy refuses it otherwise, and on a cluster without the policy this check is the only guard).
set -uo pipefail
configmap=$1 key=$2 namespace=$3
python=${VENV_PYTHON:-.venv/bin/python}
if ! text=$(kubectl get configmap "$configmap" -n "$namespace" -o jsonpath="{.data.${key//./\\.}}" 2>&1); then
  echo "Cannot read ConfigMap $configmap in namespace $namespace: ${text##*$'\n'}" >&2
  exit 1
fi
if ! verdict=$(printf '%s' "$text" | "$python" -m leviathan_config); then
  echo "Autonomy is not enabled in ConfigMap $configmap ($key: $verdict): worker Jobs stay suspended. Re-enable first (docs/RUNBOOK.md)." >&2
  exit 1
fi
