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
PYTEST_ARGS ?= -n auto
# e2e steps share one release and run in order: never in parallel.
E2E_ARGS ?=
REASON ?=
# The reason, single-quoted for the shell whatever it contains.
QUOTED_REASON = '$(subst ','"'"',$(REASON))'
LOCAL_PORT ?= 18000
IMAGE_REGISTRY ?= ghcr.io/leviathan
VERSION := $(shell awk '/^appVersion:/ {gsub(/"/, "", $$2); print $$2}' chart/Chart.yaml)

VENV := .venv
TOOLS := .tools
VENV_STAMP := $(VENV)/.installed
CHECKOV_STAMP := $(TOOLS)/checkov/.installed
PACKAGES := images/config-reader images/control-plane images/scheduler
PIP := PIP_DISABLE_PIP_VERSION_CHECK=1 $(VENV)/bin/pip

# helm: v3.14+ from PATH, else the pinned v4.1.4 unpacked into .tools/bin.
HELM = $(shell hack/ensure-helm.sh)
KUBECTL ?= $(shell command -v kubectl 2>/dev/null || echo $(CURDIR)/$(TOOLS)/bin/kubectl)
export KUBECTL
CONTAINER_ENGINE ?= $(shell command -v docker 2>/dev/null || command -v podman 2>/dev/null)

# Object names as the chart makes them (see chart/templates/_helpers.tpl).
PREFIX := $(if $(findstring leviathan,$(RELEASE)),$(RELEASE),$(RELEASE)-leviathan)
CRONJOB := $(PREFIX)-$(ENV)-scheduler
SERVICE := $(PREFIX)-control-plane
WORKER_APP := $(PREFIX)-worker
# With auth.existingSecret, name your Secret and key here.
TOKEN_SECRET ?= $(PREFIX)-secrets
TOKEN_KEY ?= LEVIATHAN_CONTROL_PLANE_TOKEN
SERVICE_PORT ?= 8000

.PHONY: help
help: ## List the targets
	@grep -hE '^[a-zA-Z0-9_-]+:.*## ' $(MAKEFILE_LIST) | awk -F ':.*## ' '{printf "  make %-16s %s\n", $$1, $$2}'

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

.PHONY: helm-builds
helm-builds: ## Build the pinned Helm 3, Helm 4 and helm-unittest from Go modules into .tools/ (hack/cluster/pins.env)
	hack/build-helm.sh all

## ---- Everyday ----------------------------------------------------------------

.PHONY: run
run: $(VENV_STAMP) ## Run the control plane on 127.0.0.1:PORT (8000) and dry-run scheduler ticks, on values/ENV.yaml (dev)
	HELM="$(HELM)" $(VENV)/bin/python hack/local_run.py serve --env $(ENV) --port $(PORT)

.PHONY: local-disable
local-disable: $(VENV_STAMP) ## Flip the local mount (make run) to autonomy_enabled: false, the way kubelet does
	HELM="$(HELM)" $(VENV)/bin/python hack/local_run.py set --env $(ENV) --enabled false --reason $(QUOTED_REASON)

.PHONY: local-enable
local-enable: $(VENV_STAMP) ## Flip the local mount (make run) back to autonomy_enabled: true
	HELM="$(HELM)" $(VENV)/bin/python hack/local_run.py set --env $(ENV) --enabled true

.PHONY: test
test: $(VENV_STAMP) $(CHECKOV_STAMP) unittest ## Run every test: chart, control plane, scheduler (e2e only with LEVIATHAN_E2E=1)
	HELM="$(HELM)" CHECKOV="$(TOOLS)/checkov/bin/checkov" $(VENV)/bin/pytest $(PYTEST_ARGS)

# helm-unittest, built from its Go module (hack/build-helm.sh), for what `helm template`
# cannot show: lookup of live objects and renders as an upgrade (chart/tests/*_test.yaml).
.PHONY: unittest
unittest: ## Run the chart's helm-unittest suites (chart/tests)
	@hack/build-helm.sh unittest >/dev/null
	HELM_PLUGINS="$(CURDIR)/$(TOOLS)/helm-plugins" $(HELM) unittest chart

.PHONY: lint
lint: $(VENV_STAMP) ## helm lint --strict on every values file, ruff, hadolint
	$(HELM) lint --strict chart
	for values in values/*.yaml; do $(HELM) lint --strict chart -f "$$values"; done
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/hadolint images/control-plane/Dockerfile images/scheduler/Dockerfile

.PHONY: template
template: ## Render the chart for values/ENV.yaml (dev)
	@$(HELM) template $(RELEASE) chart --namespace $(NAMESPACE) -f values/$(ENV).yaml

.PHONY: docs
docs: $(VENV_STAMP) ## Regenerate the parameters table in chart/README.md from values.yaml
	$(VENV)/bin/python hack/values_table.py --write chart/README.md

.PHONY: package
package: ## helm package the chart into dist/, with the docs its README and NOTES point to
	HELM="$(HELM)" hack/package-chart.sh dist

.PHONY: bench
bench: $(VENV_STAMP) ## Benchmarks: status throughput, reload latency, memory, scheduler tick cost
	@command -v wrk >/dev/null || { echo "make bench needs wrk; installing it with apt-get" >&2; \
	  apt-get update -qq && apt-get install -y -qq wrk >/dev/null; }
	HELM="$(HELM)" $(VENV)/bin/python tests/bench/run.py

## ---- Operating a cluster (each prints its commands; each needs a reachable cluster) ----

.PHONY: cluster
cluster:
	@hack/require-cluster.sh

.PHONY: deploy
deploy: cluster ## Install or upgrade the chart with values/ENV.yaml (dev)
	$(HELM) upgrade --install $(RELEASE) chart --namespace $(NAMESPACE) --create-namespace -f values/$(ENV).yaml

.PHONY: status
status: cluster ## Query /v1/autonomy/status through kubectl port-forward, with the token from the Secret
	@echo '+ CONTROL_PLANE_TOKEN=$$(kubectl get secret $(TOKEN_SECRET) -n $(NAMESPACE) -o jsonpath='"'"'{.data.$(subst .,\.,$(TOKEN_KEY))}'"'"' | base64 -d)'
	@echo '+ kubectl port-forward -n $(NAMESPACE) svc/$(SERVICE) $(LOCAL_PORT):$(SERVICE_PORT) &'
	@echo '+ curl -H "Authorization: Bearer $$CONTROL_PLANE_TOKEN" http://127.0.0.1:$(LOCAL_PORT)/v1/autonomy/status'
	@token=$$($(KUBECTL) get secret $(TOKEN_SECRET) -n $(NAMESPACE) -o jsonpath='{.data.$(subst .,\.,$(TOKEN_KEY))}' | base64 -d); \
	test -n "$$token" || { echo "Secret $(TOKEN_SECRET) in $(NAMESPACE) has no key $(TOKEN_KEY): is the release installed (make deploy)? With auth.existingSecret, pass TOKEN_SECRET= and TOKEN_KEY=" >&2; exit 1; }; \
	$(KUBECTL) port-forward -n $(NAMESPACE) svc/$(SERVICE) $(LOCAL_PORT):$(SERVICE_PORT) >/dev/null & forward=$$!; \
	trap 'kill $$forward 2>/dev/null' EXIT; \
	for attempt in $$(seq 50); do \
	  curl -fsS -H "Authorization: Bearer $$token" http://127.0.0.1:$(LOCAL_PORT)/v1/autonomy/status && echo && exit 0; \
	  sleep 0.2; \
	done; \
	echo "The control plane did not answer through port-forward (kubectl get pods -n $(NAMESPACE) -l app=$(SERVICE))" >&2; exit 1

.PHONY: require-reason
require-reason:
	@test -n $(QUOTED_REASON) || { echo 'Say why: make disable REASON="INC-123: runaway retries"' >&2; exit 1; }

# disable and enable pass the CronJob's live suspend state through, so they never
# resume a stopped scheduler (Helm 3) nor conflict with a kubectl patch (Helm 4).
LIVE_SUSPEND = suspend=$$($(KUBECTL) get cronjob $(CRONJOB) -n $(NAMESPACE) -o jsonpath='{.spec.suspend}' 2>/dev/null)

.PHONY: disable
disable: require-reason cluster ## Switch autonomy off via helm, keeping every other value: make disable REASON="INC-123: why"
	$(LIVE_SUSPEND); \
	$(HELM) upgrade $(RELEASE) chart --namespace $(NAMESPACE) --reset-then-reuse-values --set autonomy.enabled=false --set-literal autonomy.reason=$(QUOTED_REASON) --set scheduler.suspend=$${suspend:-false}

.PHONY: enable
enable: cluster ## Switch autonomy back on via helm (REASON optional; a suspended CronJob stays suspended: make resume)
	$(LIVE_SUSPEND); \
	$(HELM) upgrade $(RELEASE) chart --namespace $(NAMESPACE) --reset-then-reuse-values --set autonomy.enabled=true --set-literal autonomy.reason=$(QUOTED_REASON) --set scheduler.suspend=$${suspend:-false}

.PHONY: emergency-stop
emergency-stop: cluster ## Suspend the scheduler CronJob now, then record it in the release
	$(KUBECTL) patch cronjob $(CRONJOB) -n $(NAMESPACE) -p '{"spec":{"suspend":true}}'
	$(KUBECTL) get cronjob $(CRONJOB) -n $(NAMESPACE)
	$(HELM) upgrade $(RELEASE) chart --namespace $(NAMESPACE) --reset-then-reuse-values --set scheduler.suspend=true \
	  || { echo "The CronJob IS suspended, but the release does not record it yet: fix the error above and run this helm upgrade again" >&2; exit 1; }

.PHONY: resume
resume: cluster ## Un-suspend the scheduler CronJob, and record it in the release
	$(KUBECTL) patch cronjob $(CRONJOB) -n $(NAMESPACE) -p '{"spec":{"suspend":false}}'
	$(HELM) upgrade $(RELEASE) chart --namespace $(NAMESPACE) --reset-then-reuse-values --set scheduler.suspend=false
	$(KUBECTL) get cronjob $(CRONJOB) -n $(NAMESPACE)

.PHONY: logs
logs: cluster ## The scheduler's recent log lines
	$(KUBECTL) logs -n $(NAMESPACE) -l app=$(CRONJOB) --tail=50

.PHONY: workers
workers: cluster ## Worker Jobs, oldest first
	$(KUBECTL) get jobs -n $(NAMESPACE) -l app=$(WORKER_APP) --sort-by=.metadata.creationTimestamp

.PHONY: images
images: ## Build both images with docker or podman
	@test -n "$(CONTAINER_ENGINE)" || { echo "make images needs docker or podman; neither is installed" >&2; exit 1; }
	@$(CONTAINER_ENGINE) info >/dev/null 2>&1 || { echo "$(CONTAINER_ENGINE) is installed but cannot reach its engine (is the daemon running?)" >&2; exit 1; }
	$(CONTAINER_ENGINE) build -f images/control-plane/Dockerfile -t $(IMAGE_REGISTRY)/control-plane:$(VERSION) images
	$(CONTAINER_ENGINE) build -f images/scheduler/Dockerfile -t $(IMAGE_REGISTRY)/scheduler:$(VERSION) images

.PHONY: e2e
e2e: $(VENV_STAMP) cluster ## The real-cluster end-to-end test (tests/e2e) against the current kube context
	LEVIATHAN_E2E=1 HELM="$(HELM)" CONTAINER_ENGINE="$(CONTAINER_ENGINE)" $(VENV)/bin/pytest tests/e2e -v -n 0 $(E2E_ARGS)

.PHONY: clean
clean: ## Remove .venv, .tools, .run and caches
	rm -rf $(VENV) $(TOOLS) .run dist .pytest_cache .ruff_cache .hypothesis
	find . -name __pycache__ -type d -prune -exec rm -rf {} +
	find images -name '*.egg-info' -type d -prune -exec rm -rf {} +
