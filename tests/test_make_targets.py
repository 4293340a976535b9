"""The operator targets in the Makefile: the right commands, and a clear stop without a cluster."""

from __future__ import annotations

import os
import subprocess

import pytest

from support.control_plane import free_port
from support.helm import find, render_chart
from support.paths import REPO


def make(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["make", "--no-print-directory", *args],
        cwd=REPO, env={**os.environ, **(env or {})}, capture_output=True, text=True, timeout=120,
    )  # fmt: skip


@pytest.fixture
def unreachable_cluster(tmp_path) -> dict[str, str]:
    kubeconfig = tmp_path / "kubeconfig"
    kubeconfig.write_text(
        f"""apiVersion: v1
kind: Config
clusters: [{{name: gone, cluster: {{server: "https://127.0.0.1:{free_port()}"}}}}]
users: [{{name: u, user: {{token: x}}}}]
contexts: [{{name: gone, context: {{cluster: gone, user: u}}}}]
current-context: gone
"""
    )
    return {"KUBECONFIG": str(kubeconfig)}


CLUSTER_TARGETS = [
    ["deploy"],
    ["status"],
    ["disable", "REASON=INC-1"],
    ["enable"],
    ["emergency-stop"],
    ["resume"],
    ["logs"],
    ["workers"],
    ["e2e"],
]


@pytest.mark.parametrize("target", CLUSTER_TARGETS, ids=lambda t: t[0])
def test_stops_clearly_without_a_cluster(target, unreachable_cluster):
    result = make(*target, env=unreachable_cluster)
    assert result.returncode != 0
    assert "No Kubernetes cluster is reachable (kube context: gone)" in result.stderr
    assert "Traceback" not in result.stderr


@pytest.mark.parametrize(
    ("target", "expected"),
    [
        (["deploy"], "upgrade --install leviathan chart --namespace leviathan --create-namespace -f values/dev.yaml"),
        (
            ["disable", "REASON=INC-123: runaway retries, again"],
            "upgrade leviathan chart --namespace leviathan --reset-then-reuse-values --set autonomy.enabled=false "
            "--set-literal autonomy.reason='INC-123: runaway retries, again'",
        ),
        (["enable"], "--reset-then-reuse-values --set autonomy.enabled=true --set-literal autonomy.reason=''"),
        (["disable", "REASON=x"], "get cronjob leviathan-dev-scheduler -n leviathan -o jsonpath='{.spec.suspend}'"),
        (["disable", "REASON=x"], "--set scheduler.suspend=${suspend:-false}"),
        (["enable"], "--set scheduler.suspend=${suspend:-false}"),
        (["emergency-stop"], """patch cronjob leviathan-dev-scheduler -n leviathan -p '{"spec":{"suspend":true}}'"""),
        (
            ["emergency-stop"],
            "upgrade leviathan chart --namespace leviathan --reset-then-reuse-values --set scheduler.suspend=true",
        ),
        (["resume"], """patch cronjob leviathan-dev-scheduler -n leviathan -p '{"spec":{"suspend":false}}'"""),
        (["resume"], "--reset-then-reuse-values --set scheduler.suspend=false"),
        (["logs"], "logs -n leviathan -l app=leviathan-dev-scheduler --tail=50"),
        (["workers"], "get jobs -n leviathan -l app=leviathan-worker --sort-by=.metadata.creationTimestamp"),
        (["status"], "port-forward -n leviathan svc/leviathan-control-plane 18000:8000"),
    ],
    ids=lambda v: v[0] if isinstance(v, list) else None,
)
def test_prints_the_runbook_commands(target, expected):
    result = make("-n", *target)
    assert result.returncode == 0, result.stderr
    assert expected in result.stdout


@pytest.mark.parametrize(("release", "env"), [("leviathan", "dev"), ("ops", "prod"), ("leviathan-b", "staging")])
def test_names_match_the_chart(release, env):
    docs = render_chart({"environment": env}, name=release)
    cronjob = find(docs, "CronJob")["metadata"]["name"]
    worker_app = "app=" + find(docs, "ConfigMap")["data"][f"{env}.yaml"].split("app: ", 1)[1].split("\n", 1)[0]
    commands = make("-n", "emergency-stop", "workers", f"RELEASE={release}", f"ENV={env}").stdout
    assert f"patch cronjob {cronjob} " in commands
    assert f"-l {worker_app} " in commands


def test_disable_insists_on_a_reason():
    result = make("disable")
    assert result.returncode != 0
    assert 'Say why: make disable REASON="INC-123: runaway retries"' in result.stderr


def test_images_needs_a_container_engine():
    result = make("images", env={"PATH": "/usr/bin:/bin", "CONTAINER_ENGINE": ""})
    assert result.returncode != 0
    assert "needs docker or podman" in result.stderr or "cannot reach its engine" in result.stderr
