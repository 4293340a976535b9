# Leviathan autonomy: chart, sidecars and their tests.
#   make run     the control plane and a dry-run scheduler locally, on the chart's dev values
#   make test    every test (bootstraps .venv, helm and checkov on first use)
# `make help` lists the rest.

SHELL := /bin/bash
.SHELLFLAGS := -euo pipefail -c
.DEFAULT_GOAL := help
MAKEFLAGS += --no-print-directory

PYTHON ?= python3
RELEASE ?= leviathan
NAMESPACE ?= leviathan
ENV ?= dev
PORT ?= 8000
PYTEST_ARGS ?=

VENV := .venv
TOOLS := .tools
VENV_STAMP := $(VENV)/.installed
CHECKOV_STAMP := $(TOOLS)/checkov/.installed
PACKAGES := images/config-reader images/control-plane images/scheduler
PIP := PIP_DISABLE_PIP_VERSION_CHECK=1 $(VENV)/bin/pip

# helm: v3.14+ from PATH, else the pinned v4.1.4 unpacked into .tools/bin.
HELM = $(shell hack/ensure-helm.sh)

.PHONY: help
help: ## List the targets
	@grep -hE '^[a-zA-Z_-]+:.*## ' $(MAKEFILE_LIST) | awk -F ':.*## ' '{printf "  make %-16s %s\n", $$1, $$2}'

## ---- Setup -----------------------------------------------------------------

$(VENV_STAMP): requirements-dev.txt images/*/requirements.txt images/*/pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(PIP) install --quiet -r requirements-dev.txt
	$(PIP) install --quiet --no-deps --no-build-isolation $(addprefix -e ,$(PACKAGES))
	touch $@

$(CHECKOV_STAMP): requirements-checkov.txt
	$(PYTHON) -m venv $(TOOLS)/checkov
	PIP_DISABLE_PIP_VERSION_CHECK=1 $(TOOLS)/checkov/bin/pip install --quiet -r requirements-checkov.txt
	touch $@

.PHONY: venv
venv: $(VENV_STAMP) ## Create .venv with the pinned dependencies and the sidecars (editable)

.PHONY: tools
tools: $(VENV_STAMP) $(CHECKOV_STAMP) ## Fetch helm and checkov into .tools/
	@echo "helm: $(HELM)"

## ---- Everyday ----------------------------------------------------------------

.PHONY: run
run: $(VENV_STAMP) ## Run the control plane on 127.0.0.1:$(PORT) and dry-run scheduler ticks, on values/$(ENV).yaml
	HELM="$(HELM)" $(VENV)/bin/python hack/local_run.py serve --env $(ENV) --port $(PORT)

.PHONY: local-disable
local-disable: $(VENV_STAMP) ## Flip the local mount (make run) to autonomy_enabled: false, the way kubelet does
	HELM="$(HELM)" $(VENV)/bin/python hack/local_run.py set --env $(ENV) --enabled false --reason "$(REASON)"

.PHONY: local-enable
local-enable: $(VENV_STAMP) ## Flip the local mount (make run) back to autonomy_enabled: true
	HELM="$(HELM)" $(VENV)/bin/python hack/local_run.py set --env $(ENV) --enabled true

.PHONY: test
test: $(VENV_STAMP) $(CHECKOV_STAMP) ## Run every test: chart, control plane, scheduler (e2e only with LEVIATHAN_E2E=1)
	HELM="$(HELM)" CHECKOV="$(TOOLS)/checkov/bin/checkov" $(VENV)/bin/pytest $(PYTEST_ARGS)

.PHONY: lint
lint: $(VENV_STAMP) ## helm lint --strict on every values file, ruff, hadolint
	$(HELM) lint --strict chart
	for values in values/*.yaml; do $(HELM) lint --strict chart -f "$$values"; done
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/hadolint images/control-plane/Dockerfile images/scheduler/Dockerfile

.PHONY: template
template: ## Render the chart for values/$(ENV).yaml
	@$(HELM) template $(RELEASE) chart --namespace $(NAMESPACE) -f values/$(ENV).yaml

.PHONY: docs
docs: $(VENV_STAMP) ## Regenerate the parameters table in chart/README.md from values.yaml
	$(VENV)/bin/python hack/values_table.py --write chart/README.md

.PHONY: bench
bench: $(VENV_STAMP) ## Benchmarks: status throughput, reload latency, memory, scheduler tick cost
	HELM="$(HELM)" $(VENV)/bin/python tests/bench/run.py

.PHONY: clean
clean: ## Remove .venv, .tools, .run and caches
	rm -rf $(VENV) $(TOOLS) .run .pytest_cache .ruff_cache .hypothesis
	find . -name __pycache__ -type d -prune -exec rm -rf {} +
	find images -name '*.egg-info' -type d -prune -exec rm -rf {} +
