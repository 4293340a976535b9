#!/usr/bin/env bash
# Usage: require-token-secret.sh SECRET KEY NAMESPACE
# Fails with one clear line unless the Secret holds a non-empty token under KEY.
set -uo pipefail
secret=$1 key=$2 namespace=$3
if [[ -z $(kubectl get secret "$secret" -n "$namespace" -o jsonpath="{.data.${key//./\\.}}" 2>/dev/null) ]]; then
  echo "Secret $secret in namespace $namespace has no key $key: is the release installed (make deploy)?" \
    "With auth.existingSecret, pass TOKEN_SECRET= and TOKEN_KEY=." >&2
  exit 1
fi
