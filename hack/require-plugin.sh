#!/usr/bin/env bash
# Fails with one clear line unless the plugin `kubectl leviathan` (kubectl-leviathan/) is installed in .venv.
set -uo pipefail
plugin=${1:-.venv/bin/kubectl-leviathan}
if [[ ! -x $plugin ]]; then
  echo "The kubectl plugin is not installed ($plugin): run 'make venv' (or pip install ./kubectl-leviathan)." >&2
  exit 1
fi
