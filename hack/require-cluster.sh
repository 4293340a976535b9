#!/usr/bin/env bash
# Fails with one clear line unless the current kube context answers.
set -uo pipefail
kubectl=${KUBECTL:-kubectl}
if ! command -v "$kubectl" >/dev/null 2>&1; then
  echo "No kubectl found: install it, or run 'make tools' (it unpacks kubectl into .tools/bin)." >&2
  exit 1
fi
context=$("$kubectl" config current-context 2>/dev/null || echo "none")
if ! error=$("$kubectl" version --request-timeout=5s -o json 2>&1 >/dev/null); then
  echo "No Kubernetes cluster is reachable (kube context: $context): ${error##*$'\n'}" >&2
  echo "Point KUBECONFIG or 'kubectl config use-context' at a cluster (kind, k3d or real) and retry." >&2
  exit 1
fi
