"""The operations targets run exactly the runbook's commands, print them first, and stop clearly without a cluster.

A target that calls the plugin (`kubectl leviathan stop ...`) is held to its row by the runbook commands the
plugin says it stands for (its --show-runbook output for the same flags); tests/e2e/test_plugin.py shows on a
real cluster that it does what they do.
"""

from __future__ import annotations

import json
import os
import re
import shlex
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from support.control_plane import TOKEN, ControlPlaneServer, free_port
from support.helm import find, render_chart
from support.kubelet_volume import publish
from support.make import PLUGIN_LINE, expand_plugin_lines, make
from support.paths import REPO, helm_binary
from support.runbook_docs import code_spans, table_rows

RUNBOOK = (REPO / "docs" / "RUNBOOK.md").read_text()
COMMAND_WORDS = ("kubectl", "helm", "curl", "export")
# A command line: one of those words, or a shell variable set from one (`rv=$(kubectl ...)`).
COMMAND_LINE = re.compile(rf"^(?:[a-z_]+=\$\()?(?:{'|'.join(COMMAND_WORDS)}) ")
# What may run before a target's commands: checks that stop with one clear line.
CHECKS = ("hack/require-", "test -n ")


def runbook_rows() -> list[tuple[list[str], list[str]]]:
    """(make command line, the commands of its row) for each quick-reference row with a make target."""
    rows = []
    for _action, command, target in table_rows(RUNBOOK, "## Quick reference"):
        [make_line] = code_spans(target) or [""]
        if make_line:
            commands = [span for span in code_spans(command) if COMMAND_LINE.match(span)]
            rows.append((shlex.split(make_line), commands))
    return rows


ROWS = runbook_rows()
OPERATIONS = ["deploy", "status", "disable", "enable", "emergency-stop", "resume", "logs", "workers"]


def test_every_operations_target_has_its_runbook_row():
    assert sorted(args[1] for args, _ in ROWS) == sorted(OPERATIONS)
    assert all(commands for _, commands in ROWS)


@pytest.mark.parametrize(("make_line", "commands"), ROWS, ids=[args[1] for args, _ in ROWS])
def test_runs_exactly_the_commands_of_its_runbook_row(make_line, commands):
    result = make("-n", *make_line[1:])
    assert result.returncode == 0, result.stderr
    printed = expand_plugin_lines(result.stdout.splitlines())
    assert [line for line in printed if COMMAND_LINE.match(line)] == commands
    # Nothing else runs: no hidden read of the cluster whose failure would end in a bare "Error 1".
    assert [line for line in printed if not COMMAND_LINE.match(line) and not line.startswith(CHECKS)] == []


def test_disable_reads_nothing_that_could_fail_silently():
    """Item 7: `make disable`/`enable` used to read the CronJob first and die with a bare "Error 1"."""
    makefile = (REPO / "Makefile").read_text()
    recipe = makefile.split("\ndisable:", 1)[1].split("\n\n", 1)[0]
    assert "$$(" not in recipe and "LIVE_SUSPEND" not in recipe


def test_enable_stops_with_kubectls_message_when_it_cannot_read_the_resource_version(unreachable_cluster):
    """The runbook's `rv=$(kubectl get configmap ...)` line: a failed read stops the recipe, so no
    `helm upgrade` runs with an empty confirmation. (`-o` skips the cluster checks that stop earlier.)"""
    result = make("-o", "cluster", "-o", "require-release", "enable", env=unreachable_cluster)
    assert result.returncode != 0
    assert "The connection to the server 127.0.0.1:" in result.stderr  # kubectl's own line
    assert "Error:" not in result.stderr  # every helm failure starts with it


def test_the_emergency_stop_is_the_patch_and_nothing_from_helm():
    recipe = make("-n", "emergency-stop").stdout.splitlines()
    assert [line for line in recipe if line.startswith(PLUGIN_LINE)] == [
        "kubectl leviathan stop --namespace leviathan --release leviathan --env dev"
    ]
    printed = "\n".join(expand_plugin_lines(recipe))
    assert "helm" not in printed
    assert """kubectl patch cronjob leviathan-dev-scheduler -n leviathan -p '{"spec":{"suspend":true}}'""" in printed


def test_helm_commands_name_the_chart_by_absolute_path(tmp_path):
    """The targets upgrade $LEVIATHAN_CHART, this checkout's chart unless set: valid from any directory."""
    chart = make("--eval", 'show-chart: ; @echo "$$LEVIATHAN_CHART"', "show-chart")
    assert chart.returncode == 0, chart.stderr
    assert Path(chart.stdout.splitlines()[-1]) == REPO / "chart"
    for target in (["deploy"], ["disable", "REASON=x"], ["enable"]):
        assert ' "$LEVIATHAN_CHART" ' in make("-n", *target).stdout


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
    ["bench-cluster"],
]


@pytest.mark.parametrize("target", CLUSTER_TARGETS, ids=lambda t: t[0])
def test_stops_clearly_without_a_cluster(target, unreachable_cluster):
    result = make(*target, env=unreachable_cluster)
    assert result.returncode != 0
    assert "No Kubernetes cluster is reachable (kube context: gone)" in result.stderr
    assert "Traceback" not in result.stderr


def test_bench_cluster_without_a_local_cluster_says_how_to_start_one(tmp_path):
    result = make("bench-cluster", env={"KUBECONFIG": str(tmp_path / "no-such-kubeconfig")})
    assert result.returncode != 0
    assert "bench-cluster needs a cluster: run make cluster-up first, or set KUBECONFIG" in result.stderr
    assert "Traceback" not in result.stderr


def run_check(script: str, *args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    path = f"{Path(helm_binary()).parent}:{os.environ['PATH']}"  # the helm make puts first on PATH
    return subprocess.run(
        [str(REPO / "hack" / script), *args],
        env={**os.environ, "PATH": path, **env}, capture_output=True, text=True, timeout=60,
    )  # fmt: skip


def test_release_check_refuses_a_directory_that_is_no_chart(tmp_path, unreachable_cluster):
    result = run_check("require-release.sh", "leviathan", "leviathan", env={"LEVIATHAN_CHART": str(tmp_path)})
    assert result.returncode == 1
    assert (
        result.stderr.strip()
        == f"LEVIATHAN_CHART={tmp_path} is not a chart directory (no Chart.yaml with a name and a version)."
    )


def test_release_check_says_why_it_cannot_list_releases(unreachable_cluster):
    env = {**unreachable_cluster, "LEVIATHAN_CHART": str(REPO / "chart")}
    result = run_check("require-release.sh", "leviathan", "leviathan", env=env)
    assert result.returncode == 1
    [line] = result.stderr.splitlines()
    assert line.startswith("Cannot list the Helm releases in namespace leviathan: ")


def helm_memory_release(tmp_path: Path, chart_version: str | None) -> dict[str, str]:
    """Helm's own memory storage driver, holding one release `leviathan` of the given chart version (or none)."""
    releases = []
    if chart_version:
        metadata = {"name": "leviathan", "version": chart_version, "appVersion": chart_version}
        releases.append(
            {"name": "leviathan", "namespace": "leviathan", "version": 1, "info": {"status": "deployed"},
             "chart": {"metadata": metadata}}
        )  # fmt: skip
    data = tmp_path / "releases.yaml"
    data.write_text(yaml.safe_dump(releases))
    return {"HELM_DRIVER": "memory", "HELM_MEMORY_DRIVER_DATA": str(data), "LEVIATHAN_CHART": str(REPO / "chart")}


def test_release_check_accepts_the_same_chart_version(tmp_path, unreachable_cluster):
    version = yaml.safe_load((REPO / "chart" / "Chart.yaml").read_text())["version"]
    env = {**unreachable_cluster, **helm_memory_release(tmp_path, version)}
    result = run_check("require-release.sh", "leviathan", "leviathan", env=env)
    assert (result.returncode, result.stderr) == (0, "")


def test_release_check_refuses_another_chart_version(tmp_path, unreachable_cluster):
    env = {**unreachable_cluster, **helm_memory_release(tmp_path, "0.0.9")}
    result = run_check("require-release.sh", "leviathan", "leviathan", env=env)
    assert result.returncode == 1
    assert result.stderr.splitlines()[0].startswith("Release leviathan runs leviathan-0.0.9, but LEVIATHAN_CHART=")
    assert "an upgrade from it would change the images too" in result.stderr


def test_release_check_says_when_nothing_is_installed(tmp_path, unreachable_cluster):
    env = {**unreachable_cluster, **helm_memory_release(tmp_path, None)}
    result = run_check("require-release.sh", "leviathan", "leviathan", env=env)
    assert result.returncode == 1
    assert (
        result.stderr == "Release leviathan is not installed in namespace leviathan: install it first (make deploy).\n"
    )


def test_token_check_says_what_to_pass(unreachable_cluster):
    result = run_check("require-token-secret.sh", "ops-token", "token", "leviathan", env=unreachable_cluster)
    assert result.returncode == 1
    assert result.stderr.startswith(
        "Secret ops-token in namespace leviathan has no key token: is the release installed"
    )


def find_name(docs: list[dict], suffix: str) -> str:
    [name] = [d["metadata"]["name"] for d in docs if d["kind"] == "ConfigMap" and d["metadata"]["name"].endswith(suffix)]
    return name


@pytest.mark.parametrize(("release", "env"), [("leviathan", "dev"), ("ops", "prod"), ("leviathan-b", "staging")])
def test_names_match_the_chart(release, env):
    docs = render_chart({"environment": env}, name=release)
    cronjob = find(docs, "CronJob")["metadata"]["name"]
    configmap = find(docs, "ConfigMap", find_name(docs, "-autonomy-config"))
    settings = find(docs, "ConfigMap", find_name(docs, "-scheduler-config"))
    worker_app = "app=" + settings["data"]["scheduler.yaml"].split("app: ", 1)[1].split("\n", 1)[0]
    recipe = make("-n", "emergency-stop", "workers", "enable", f"RELEASE={release}", f"ENV={env}").stdout
    commands = "\n".join(expand_plugin_lines(recipe.splitlines())) + "\n"
    assert f"patch cronjob {cronjob} " in commands
    assert f"-l {worker_app}\n" in commands
    assert f"kubectl get configmap {configmap['metadata']['name']} " in commands


def test_disable_insists_on_a_reason():
    result = make("disable")
    assert result.returncode != 0
    assert 'Say why: make disable REASON="INC-123: runaway retries"' in result.stderr


def test_a_reason_survives_quotes_and_commas():
    printed = make("-n", "disable", "REASON=INC-9: it's back, again").stdout
    assert """--set-literal autonomy.reason='INC-9: it'"'"'s back, again'""" in printed


def make_images_with_only(tmp_path, tools: dict[str, str], env: dict[str, str] | None = None):
    """`make images` with a PATH of python3, awk and grep (the Makefile's needs) plus `tools`: name -> script."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    # The interpreter itself (a python3 on PATH may be a shim that needs a shell).
    (bin_dir / "python3").symlink_to(Path(sys.executable).resolve())
    for name in ("awk", "grep"):
        (bin_dir / name).symlink_to(shutil.which(name))
    for name, script in tools.items():
        (bin_dir / name).write_text(f"#!/bin/sh\n{script}\n")
        (bin_dir / name).chmod(0o755)
    environment = {**os.environ, "PATH": str(bin_dir), "CONTAINER_ENGINE": "", **(env or {})}
    command = [shutil.which("make"), "--no-print-directory", "images"]
    return subprocess.run(command, cwd=REPO, env=environment, capture_output=True, text=True, timeout=60)


def test_images_with_no_engine_and_no_apt_says_what_is_missing_in_one_line(tmp_path):
    result = make_images_with_only(tmp_path, {})
    assert result.returncode != 0
    ours = [line for line in result.stderr.splitlines() if line.startswith("make images:")]
    assert ours == [
        "make images: make images needs docker or podman, but neither docker nor podman is installed, "
        "and there is no apt-get here to install podman and runc: install podman and runc yourself"
    ]


def test_images_names_a_docker_that_cannot_reach_its_daemon(tmp_path):
    daemon_down = "echo 'Cannot connect to the Docker daemon at unix:///var/run/docker.sock.' >&2; exit 1"
    result = make_images_with_only(tmp_path, {"docker": daemon_down})
    assert result.returncode != 0
    assert (
        "make images: make images needs docker or podman, but docker is installed but cannot reach its engine "
        "(Cannot connect to the Docker daemon at unix:///var/run/docker.sock.), and there is no apt-get here"
    ) in result.stderr


def test_images_refuses_a_container_engine_that_is_not_installed(tmp_path):
    result = make_images_with_only(tmp_path, {}, env={"CONTAINER_ENGINE": "nerdctl"})
    assert result.returncode != 0
    assert "make images: CONTAINER_ENGINE=nerdctl is not installed" in result.stderr


def test_the_status_curl_line_gets_the_answer(tmp_path):
    """make status's curl, as the runbook shows it, against the real control plane on the forwarded port."""
    [(_, commands)] = [row for row in ROWS if row[0][1] == "status"]
    curl = commands[-1]
    publish(tmp_path / "autonomy", {"dev.yaml": "autonomy_enabled: true\n"})
    publish(tmp_path / "token", {"control-plane-token": TOKEN})
    server = ControlPlaneServer(
        tmp_path / "autonomy/dev.yaml", tmp_path / "token/control-plane-token", tmp_path / "log"
    )
    try:
        local = curl.replace("http://127.0.0.1:18000", server.url)
        env = {"PATH": os.environ["PATH"], "CONTROL_PLANE_TOKEN": TOKEN}
        result = subprocess.run(["bash", "-c", local], env=env, capture_output=True, text=True, timeout=30)
        wrong = subprocess.run(["bash", "-c", local], env={**env, "CONTROL_PLANE_TOKEN": "x"}, capture_output=True)
    finally:
        server.stop()
    assert result.returncode == 0, result.stderr
    assert result.stdout.endswith("}\n")
    assert json.loads(result.stdout)["autonomy_enabled"] is True
    assert wrong.returncode == 22  # curl -f: a 401 fails the target
