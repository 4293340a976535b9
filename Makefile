# Leviathan autonomy: chart, sidecars and their tests.
#   make run     the control plane and a dry-run scheduler locally, on the chart's dev values
#   make test    every test (bootstraps .venv, helm and checkov on first use)
# `make help` lists the rest.

SHELL := /bin/bash
comma := ,
.SHELLFLAGS := -euo pipefail -c
# A recipe runs in one shell (the operations targets' lines are the runbook's, pasted together).
.ONESHELL:
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
PACKAGES := images/config-reader images/control-plane images/scheduler kubectl-leviathan
PIP := PIP_DISABLE_PIP_VERSION_CHECK=1 $(VENV)/bin/pip

# helm: v3.14+ from PATH, else the pinned v4.1.4 unpacked into .tools/bin.
HELM = $(shell hack/ensure-helm.sh)
KUBECTL ?= $(shell command -v kubectl 2>/dev/null || echo $(CURDIR)/$(TOOLS)/bin/kubectl)
export KUBECTL
# Empty: hack/container_images.py takes docker if its daemon answers, else podman (installed where neither works).
CONTAINER_ENGINE ?=
export CONTAINER_ENGINE

# Object names as the chart makes them (see chart/templates/_helpers.tpl); the plugin derives them
# from the same three (kubectl-leviathan/src/kubectl_leviathan/names.py).
PREFIX := $(if $(findstring leviathan,$(RELEASE)),$(RELEASE),$(RELEASE)-leviathan)
CRONJOB := $(PREFIX)-$(ENV)-scheduler
CONFIGMAP := $(PREFIX)-autonomy-config
SERVICE := $(PREFIX)-control-plane
WORKER_APP := $(PREFIX)-worker
# With auth.existingSecret, name your Secret and key here.
TOKEN_SECRET ?= $(PREFIX)-secrets
TOKEN_KEY ?= LEVIATHAN_CONTROL_PLANE_TOKEN
TOKEN_KEY_JSONPATH = $(subst .,\.,$(TOKEN_KEY))
SERVICE_PORT ?= 8000
# The chart the Helm commands upgrade, by absolute path (the runbook's $LEVIATHAN_CHART):
# this checkout's, unless set. hack/require-release.sh refuses a release of another chart version.
LEVIATHAN_CHART ?= $(CURDIR)/chart
export LEVIATHAN_CHART
ORIGINAL_PATH := $(PATH)

.PHONY: help
help: ## List the targets
	@grep -hE '^[a-zA-Z0-9_-]+:.*## ' $(MAKEFILE_LIST) | awk -F ':.*## ' '{printf "  make %-16s %s\n", $$1, $$2}'

## ---- Setup -----------------------------------------------------------------

# Every pin installs on Python 3.11.0 and later (Debian 12 ships 3.11.2); see docs/DECISIONS.md.
PYTHON_MIN := 3.11

.PHONY: check-python
check-python:
	@: $(if $(shell $(PYTHON) -c 'import sys; print(sys.version_info >= ($(subst .,$(comma),$(PYTHON_MIN)),))' 2>/dev/null | grep -x True),,$(error \
	  needs Python $(PYTHON_MIN) or later, but $(PYTHON) is $(or $(shell $(PYTHON) -c 'import platform; print(platform.python_version())' 2>/dev/null),not found): \
	  run make PYTHON=/path/to/python3.11 or newer))

$(VENV_STAMP): requirements-dev.txt images/*/requirements.txt images/*/pyproject.toml kubectl-leviathan/pyproject.toml | check-python
	$(PYTHON) -m venv $(VENV)
	$(PIP) install --quiet -r requirements-dev.txt
	$(PIP) install --quiet --no-deps --no-build-isolation $(addprefix -e ,$(PACKAGES))
	touch $@

$(CHECKOV_STAMP): requirements-checkov.txt | check-python
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
test: $(VENV_STAMP) $(CHECKOV_STAMP) unittest test-tools ## Run every test: chart, control plane, scheduler (e2e only with LEVIATHAN_E2E=1)
	HELM="$(HELM)" CHECKOV="$(TOOLS)/checkov/bin/checkov" $(VENV)/bin/pytest $(PYTEST_ARGS)

# Test tools from Debian, as command:package: promtool evaluates the PrometheusRule's alerts
# (tests/chart/test_promtool.py); docker-registry serves the chart as an OCI artifact
# (tests/chart/test_oci.py, tests/e2e/test_oci_install.py). Installed with apt-get where that is
# allowed; elsewhere the tests that need one skip and say why.
APT_TEST_TOOLS := promtool:prometheus docker-registry:docker-registry
.PHONY: test-tools
test-tools:
	@missing=; for tool in $(APT_TEST_TOOLS); do command -v $${tool%%:*} >/dev/null || missing="$$missing $${tool#*:}"; done; \
	[ -z "$$missing" ] || { echo "make test-tools: installing$$missing with apt-get" >&2; \
	  { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $$missing >/dev/null; } \
	  || echo "make test-tools: could not install$$missing: the tests that need it skip and say why" >&2; }

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

.PHONY: release
release: $(VENV_STAMP) ## Bump the chart version, appVersion, image tags and package versions together, and date the CHANGELOG: make release VERSION=x.y.z
	$(VENV)/bin/python hack/release.py $(if $(filter command line,$(origin VERSION)),$(VERSION),$(error make release needs VERSION=x.y.z (now $(VERSION))))

.PHONY: bench
bench: $(VENV_STAMP) ## Benchmarks: status throughput, reload latency, memory, scheduler tick cost
	@command -v wrk >/dev/null || { echo "make bench needs wrk; installing it with apt-get" >&2; \
	  apt-get update -qq && apt-get install -y -qq wrk >/dev/null; }
	HELM="$(HELM)" $(VENV)/bin/python tests/bench/run.py

.PHONY: bench-cluster
bench-cluster: $(VENV_STAMP) ## Time-to-safe on a real control plane ($$KUBECONFIG, else the local one): policy vs scheduler re-check
	@export KUBECONFIG="$${KUBECONFIG:-$(CURDIR)/.run/cluster/kubeconfig}"; \
	test -f "$$KUBECONFIG" || { echo "bench-cluster needs a cluster: run make cluster-up first, or set KUBECONFIG" >&2; exit 1; }; \
	hack/require-cluster.sh && HELM="$(HELM)" $(VENV)/bin/python tests/bench/cluster.py

## ---- Operating a cluster ---------------------------------------------------
# Each target prints, then runs, exactly the commands of its row in docs/RUNBOOK.md's
# quick reference (tests/test_make_targets.py holds the two together): make echoes each
# recipe line as written, and .ONESHELL runs a recipe in one shell, as an operator's paste
# would. kubectl and helm are called by name, as in the runbook: the helm that
# hack/ensure-helm.sh picks, and kubectl, come first on PATH. The checks before them
# (hack/require-*.sh) stop with one clear line.

.PHONY: cluster
cluster:
	@hack/require-cluster.sh

.PHONY: require-release
require-release:
	@hack/require-release.sh $(RELEASE) $(NAMESPACE)

.PHONY: token-secret
token-secret:
	@hack/require-token-secret.sh $(TOKEN_SECRET) $(TOKEN_KEY) $(NAMESPACE)

.PHONY: require-reason
require-reason:
	@test -n $(QUOTED_REASON) || { echo 'Say why: make disable REASON="INC-123: runaway retries"' >&2; exit 1; }

KUBECTL_TARGETS := cluster token-secret status emergency-stop resume logs workers \
  halt-workers resume-workers require-enabled resume-task paused-tasks kubectl-disable kubectl-enable who
HELM_TARGETS := require-release deploy disable enable
# kubectl finds the plugin `kubectl leviathan` (kubectl-leviathan/, installed into .venv) on PATH.
$(KUBECTL_TARGETS): export PATH = $(CURDIR)/$(VENV)/bin:$(dir $(KUBECTL)):$(ORIGINAL_PATH)
$(HELM_TARGETS): export PATH = $(dir $(HELM)):$(dir $(KUBECTL)):$(ORIGINAL_PATH)

.PHONY: deploy
deploy: cluster ## Install or upgrade this checkout's chart (LEVIATHAN_CHART) with values/ENV.yaml (dev)
	helm upgrade --install $(RELEASE) "$$LEVIATHAN_CHART" -n $(NAMESPACE) --create-namespace -f "$$LEVIATHAN_CHART/../values/$(ENV).yaml"

.PHONY: status
status: cluster token-secret ## Who last flipped the switch, GET /v1/autonomy (state, reason, since when, review, who, paused tasks) and /v1/autonomy/status, through a port-forward
	export CONTROL_PLANE_TOKEN=$$(kubectl get secret $(TOKEN_SECRET) -n $(NAMESPACE) -o jsonpath='{.data.$(TOKEN_KEY_JSONPATH)}' | base64 -d)
	kubectl get configmap $(CONFIGMAP) -n $(NAMESPACE) -o jsonpath='{"switched by: "}{.metadata.annotations.autonomy\.leviathan\.io/switched-by}{"\n"}'
	kubectl port-forward -n $(NAMESPACE) svc/$(SERVICE) $(LOCAL_PORT):$(SERVICE_PORT) >/dev/null & trap "kill $$! 2>/dev/null" EXIT
	curl -fsS -w '\n' --retry 10 --retry-connrefused --retry-delay 1 -H "Authorization: Bearer $$CONTROL_PLANE_TOKEN" http://127.0.0.1:$(LOCAL_PORT)/v1/autonomy
	curl -fsS -w '\n' --retry 10 --retry-connrefused --retry-delay 1 -H "Authorization: Bearer $$CONTROL_PLANE_TOKEN" http://127.0.0.1:$(LOCAL_PORT)/v1/autonomy/status

.PHONY: disable
disable: require-reason cluster require-release ## Switch autonomy off via helm, with a reason: make disable REASON='INC-123: why'
	hack/helm-upgrade.sh $(RELEASE) "$$LEVIATHAN_CHART" -n $(NAMESPACE) --reset-then-reuse-values --set autonomy.enabled=false --set-literal autonomy.reason=$(QUOTED_REASON)

# The chart turns autonomy on over a live false only with the ConfigMap's current
# resourceVersion (autonomy.confirmEnable), read here just before; over a live true it
# ignores it. A read that fails stops the recipe (-e) with kubectl's own message.
.PHONY: enable
enable: cluster require-release ## Switch autonomy back on via helm, confirming the live ConfigMap (REASON optional); a suspended CronJob stays suspended: make resume
	rv=$$(kubectl get configmap $(CONFIGMAP) -n $(NAMESPACE) -o jsonpath='{.metadata.resourceVersion}')
	hack/helm-upgrade.sh $(RELEASE) "$$LEVIATHAN_CHART" -n $(NAMESPACE) --reset-then-reuse-values --set autonomy.enabled=true --set autonomy.confirmEnable="$$rv" --set-literal autonomy.reason=$(QUOTED_REASON)

# The kubectl operations run through the plugin `kubectl leviathan` (kubectl-leviathan/): it prints the
# runbook commands it stands for (from tests/contract/runbook.yaml), does exactly that through the API
# and, for a brake, proves it with the API server's refusal of a dry-run worker Job.
PLUGIN_FLAGS = --namespace $(NAMESPACE) --release $(RELEASE) --env $(ENV)

.PHONY: plugin
plugin:
	@hack/require-plugin.sh $(VENV)/bin/kubectl-leviathan

.PHONY: emergency-stop
emergency-stop: plugin cluster ## Suspend the scheduler CronJob (the runbook's kubectl patch, nothing else), show it, prove it
	kubectl leviathan stop $(PLUGIN_FLAGS)

.PHONY: resume
resume: plugin cluster ## Unsuspend the scheduler CronJob and show it
	kubectl leviathan resume $(PLUGIN_FLAGS)

.PHONY: kubectl-disable
kubectl-disable: plugin require-reason cluster ## Switch autonomy off like the runbook's kubectl edit, with a reason, and prove it: make kubectl-disable REASON='INC-123: why'
	kubectl leviathan disable $(PLUGIN_FLAGS) --reason $(QUOTED_REASON)

.PHONY: kubectl-enable
kubectl-enable: plugin require-reason cluster ## Switch autonomy on like the runbook's kubectl edit, with a reason (a suspended CronJob stays so: make resume)
	kubectl leviathan enable $(PLUGIN_FLAGS) --reason $(QUOTED_REASON)

.PHONY: who
who: plugin cluster ## Who last flipped the switch (the API server's stamp on the ConfigMap)
	kubectl leviathan who $(PLUGIN_FLAGS)

# Halting running work (docs/RUNBOOK.md, "Halt and resume running workers"): operator RBAC,
# patch on jobs.batch in the namespace; the scheduler's Role has no such right.
CONFIGMAP := $(PREFIX)-autonomy-config
TASK ?=

.PHONY: require-enabled
require-enabled:
	@hack/require-enabled.sh $(CONFIGMAP) $(ENV).yaml $(NAMESPACE)

.PHONY: require-task
require-task:
	@test -n "$(TASK)" || { echo 'Name the task: make resume-task TASK=reconcile-inventory' >&2; exit 1; }

.PHONY: halt-workers
halt-workers: plugin cluster ## Suspend every worker Job (Kubernetes stops their pods and keeps the Jobs), show them, prove no new one starts
	kubectl leviathan halt-workers $(PLUGIN_FLAGS)

.PHONY: resume-workers
resume-workers: $(VENV_STAMP) cluster require-enabled ## Resume the suspended worker Jobs, only while autonomy is enabled
	kubectl leviathan resume-workers $(PLUGIN_FLAGS)

.PHONY: resume-task
resume-task: require-task cluster ## Resume a task paused after failures: make resume-task TASK=<name>
	kubectl annotate jobs -n $(NAMESPACE) -l app=$(WORKER_APP),leviathan.io/task=$(TASK) leviathan.io/resumed=true --overwrite

.PHONY: paused-tasks
paused-tasks: plugin cluster ## The pause lines of the scheduler's last tick
	kubectl leviathan paused-tasks $(PLUGIN_FLAGS)

.PHONY: logs
logs: cluster ## The scheduler's recent log lines
	kubectl logs -n $(NAMESPACE) -l app=$(CRONJOB) --tail=50

.PHONY: workers
workers: cluster ## Worker Jobs
	kubectl get jobs -n $(NAMESPACE) -l app=$(WORKER_APP)

# The Dockerfiles' python base when it can be pulled, else one from Debian packages (which base, it says);
# then each image's size, build time and cold start as the chart runs it (hack/container_images.py).
.PHONY: images
images: check-python ## Build both images with docker or podman (installs podman where neither works); sizes and cold starts
	$(PYTHON) hack/container_images.py build --registry $(IMAGE_REGISTRY) --version $(VERSION)

.PHONY: cluster-up
cluster-up: $(VENV_STAMP) images ## Start a local cluster: real control plane and a real node running our images (builds it on first use); kubeconfig in .run/cluster/kubeconfig
	hack/cluster/up.sh

.PHONY: cluster-down
cluster-down: ## Stop the local cluster, its pods and containers; no process, mount, netns or iptables rule is left
	hack/cluster/down.sh

# e2e: against LEVIATHAN_E2E_CONTEXT or KUBECONFIG when one is set; otherwise on the local
# control plane, brought up before and down after (even when a test fails).
LOCAL_KUBECONFIG := $(CURDIR)/.run/cluster/kubeconfig
# The local cluster's Kubernetes: empty for the default pin, or a minor pinned in hack/cluster/pins.env
# (make e2e KUBE_VERSION=1.37), or a full version; cluster-up links its binaries at .run/cluster/bin.
KUBE_VERSION ?=
export KUBE_VERSION
E2E_PYTEST = LEVIATHAN_E2E=1 HELM="$(HELM)" $(VENV)/bin/pytest tests/e2e -v -n 0 $(E2E_ARGS)

.PHONY: e2e
e2e: $(VENV_STAMP) test-tools ## tests/e2e on the local cluster, our images on its real node (KUBE_VERSION=1.34..1.37), or on LEVIATHAN_E2E_CONTEXT / KUBECONFIG if set
	@if [ -n "$${LEVIATHAN_E2E_CONTEXT:-}" ]; then \
	  mkdir -p .run && $(KUBECTL) config view --minify --flatten --context "$$LEVIATHAN_E2E_CONTEXT" >.run/e2e-kubeconfig; \
	  export KUBECONFIG=$(CURDIR)/.run/e2e-kubeconfig; \
	fi; \
	if [ -n "$${KUBECONFIG:-}" ]; then \
	  hack/require-cluster.sh && $(E2E_PYTEST); \
	else \
	  $(MAKE) --no-print-directory images && hack/cluster/up.sh || exit 1; \
	  trap 'hack/cluster/down.sh' EXIT; \
	  KUBECONFIG=$(LOCAL_KUBECONFIG) PATH="$(CURDIR)/.run/cluster/bin:$$PATH" LEVIATHAN_E2E_LOCAL=1 $(E2E_PYTEST); \
	fi

# A simulated fleet for kubectl leviathan's fleet mode: N (1-5) control planes with LEVIATHAN_CLUSTER_INDEX
# FLEET_FIRST (5) and up, etcd and kube-apiserver only, the chart on each in a mix of states (hack/fleet.sh).
N ?= 5
FLEET_FIRST ?= 5
FLEET_KUBECONFIG := $(CURDIR)/.run/fleet/kubeconfig
FLEET_SH = HELM="$(HELM)" FLEET_FIRST=$(FLEET_FIRST) PATH="$(CURDIR)/$(VENV)/bin:$$PATH" hack/fleet.sh

.PHONY: fleet-up
fleet-up: $(VENV_STAMP) ## Start a local fleet of N (5) control planes with the chart, some on, some off; kubeconfig .run/fleet/kubeconfig
	$(FLEET_SH) up $(N)

.PHONY: fleet-down
fleet-down: ## Stop the local fleet; nothing is left running
	$(FLEET_SH) down

# e2e-fleet and bench-fleet bring up their own fleet (and take it down after), unless one is up.
FLEET_RUN = if [ -e .run/fleet/kubeconfig ]; then :; else $(FLEET_SH) up 5; trap '$(FLEET_SH) down' EXIT; fi

.PHONY: e2e-fleet
e2e-fleet: $(VENV_STAMP) ## The fleet e2e: brake 5 clusters (one frozen mid-run), prove, restore each one's own state
	$(FLEET_RUN); LEVIATHAN_FLEET_KUBECONFIG=$(FLEET_KUBECONFIG) PATH="$(CURDIR)/$(VENV)/bin:$$PATH" $(VENV)/bin/pytest tests/fleet -v -n 0 $(E2E_ARGS)

.PHONY: bench-fleet
bench-fleet: $(VENV_STAMP) ## Fleet time-to-safe p50/p99 over 20 trials for N = 1, 3, 5, with the ratio to N = 1
	$(FLEET_RUN); LEVIATHAN_FLEET_KUBECONFIG=$(FLEET_KUBECONFIG) $(VENV)/bin/python tests/bench/fleet.py

.PHONY: clean
clean: ## Remove .venv, .tools, .run and caches
	rm -rf $(VENV) $(TOOLS) .run dist .pytest_cache .ruff_cache .hypothesis
	find . -name __pycache__ -type d -prune -exec rm -rf {} +
	find images -name '*.egg-info' -type d -prune -exec rm -rf {} +
