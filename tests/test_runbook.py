"""docs/RUNBOOK.md cannot drift: every name, selector, path, port and flag its commands use
is checked against the rendered chart, the control plane's routes and the scheduler's log lines."""

from __future__ import annotations

import re
import shlex
from functools import cache

import pytest
import yaml

from support.helm import find, helm, pod_spec, render_chart
from support.paths import CHART, REPO, VALUES_DIR

RUNBOOK = (REPO / "docs" / "RUNBOOK.md").read_text()
KINDS = {
    "configmap": "ConfigMap",
    "cronjob": "CronJob",
    "deployment": "Deployment",
    "secret": "Secret",
    "svc": "Service",
}


def commands(tool: str) -> list[str]:
    """Command lines for `tool`, from shell blocks and from inline code."""
    found = []
    for block in re.findall(r"```bash\n(.*?)```", RUNBOOK, flags=re.S):
        for line in block.splitlines():
            line = line.split(" # ")[0].strip()
            if line.startswith("# or: "):
                line = line[len("# or: ") :]
            if line.startswith(tool + " "):
                found.append(line.rstrip("&").strip())
    for inline in re.findall(r"`([^`\n]+)`", RUNBOOK):
        # Inline mentions such as `kubectl edit` are prose; commands name the namespace.
        if inline.startswith(tool + " ") and (" -n " in inline or tool == "curl"):
            found.append(inline)
    return sorted(set(found))


@cache
def chart() -> dict:
    docs = render_chart(values_files=[VALUES_DIR / "dev.yaml"])
    objects = {(d["kind"], d["metadata"]["name"]): d for d in docs}
    config = yaml.safe_load(find(docs, "ConfigMap")["data"]["dev.yaml"])
    pod_labels = [pod_spec_labels(d) for d in docs if d["kind"] in ("Deployment", "CronJob")]
    pod_labels.append(config["worker"]["selector"])
    return {"docs": docs, "objects": objects, "pod_labels": pod_labels, "config": config}


def pod_spec_labels(doc: dict) -> dict:
    if doc["kind"] == "CronJob":
        return doc["spec"]["jobTemplate"]["spec"]["template"]["metadata"]["labels"]
    return doc["spec"]["template"]["metadata"]["labels"]


def flag(tokens: list[str], *names: str) -> str | None:
    for index, token in enumerate(tokens):
        if token in names:
            return tokens[index + 1]
    return None


KUBECTL = commands("kubectl")


def test_the_runbook_has_commands_to_check():
    assert len(KUBECTL) >= 15
    assert len(commands("helm")) >= 5
    assert len(commands("curl")) >= 3


@pytest.mark.parametrize("command", KUBECTL)
def test_kubectl_command_matches_the_chart(command):
    tokens = shlex.split(command.replace("$(", "").replace("<job-name>", "JOBNAME"))
    state = chart()
    assert flag(tokens, "-n") == "leviathan", "every command names the release namespace"
    selector = flag(tokens, "-l")
    if selector:
        key, _, value = selector.partition("=")
        assert any(labels.get(key) == value for labels in state["pod_labels"]), f"no pods labelled {selector}"
    verb = tokens[1]
    target = tokens[3:5] if verb == "rollout" else tokens[2:4]
    if verb == "port-forward":
        kind, name = flag(tokens, "-n") and tokens[-2].split("/")
        service = state["objects"][(KINDS[kind], name)]
        assert int(tokens[-1].split(":")[1]) == service["spec"]["ports"][0]["port"]
    elif target and target[0] in KINDS and not target[1].startswith("-"):
        assert (KINDS[target[0]], target[1]) in state["objects"], f"no {target[0]} {target[1]} in the chart"
    jsonpath = re.search(r"\{\.data\.([A-Za-z_]+)\}", command)
    if jsonpath:
        assert jsonpath.group(1) in state["objects"][("Secret", "leviathan-secrets")]["data"]
    patch = flag(tokens, "-p")
    if patch:
        assert yaml.safe_load(patch) in ({"spec": {"suspend": True}}, {"spec": {"suspend": False}})


@pytest.mark.parametrize("command", commands("curl"))
def test_curl_targets_the_service_and_a_real_route(command):
    from leviathan_control_plane.app import Settings, create_app

    url = re.search(r"http://([^:/]+):(\d+)(/\S*)", command)
    host, port, path = url.group(1), int(url.group(2)), url.group(3)
    service = chart()["objects"][("Service", "leviathan-control-plane")]
    if host != "127.0.0.1":  # through port-forward the local port is the operator's choice
        assert host == service["metadata"]["name"]
        assert port == service["spec"]["ports"][0]["port"]
    routes = {route.path for route in create_app(Settings(config_path="/nonexistent")).routes}
    assert path in routes
    assert "Authorization: Bearer $" in command


@pytest.mark.parametrize("command", commands("helm"))
def test_helm_command_is_valid_for_the_chart(command):
    tokens = shlex.split(command)
    if tokens[1] in ("test", "uninstall"):
        assert tokens[2:] == ["leviathan", "-n", "leviathan"]
        return
    assert tokens[1:4] == ["upgrade", "leviathan", "chart"]
    assert flag(tokens, "-n") == "leviathan"
    assert "--reset-then-reuse-values" in tokens
    # Every value the runbook sets must pass the chart's schema.
    values = []
    for index, token in enumerate(tokens):
        if token in ("--set", "--set-literal"):
            values += [token, tokens[index + 1]]
    result = helm("template", "leviathan", str(CHART), "-n", "leviathan", *values)
    assert result.returncode == 0, result.stderr


def test_config_path_is_the_one_the_pods_use():
    deployment = chart()["objects"][("Deployment", "leviathan-control-plane")]
    env = {e["name"]: e.get("value") for e in pod_spec(deployment)["containers"][0]["env"]}
    assert env["LEVIATHAN_AUTONOMY_CONFIG"] == "/etc/leviathan/autonomy/dev.yaml"
    assert RUNBOOK.count("/etc/leviathan/autonomy/dev.yaml") >= 3


def test_quoted_log_lines_are_what_the_scheduler_prints():
    source = "\n".join(p.read_text() for p in (REPO / "images" / "scheduler" / "src").rglob("*.py"))
    quoted = re.findall(r"^\s*([⚠✓✗] [^`\n]+?)\s*$", RUNBOOK, flags=re.M)
    quoted += re.findall(r"`([⚠✓✗] [^`]+)`", RUNBOOK)
    assert len(quoted) >= 4
    for line in quoted:
        head = line.split("...")[0].split("<")[0].rstrip()
        assert head in source, f"the scheduler never prints {head!r}"


def test_make_targets_exist():
    makefile = (REPO / "Makefile").read_text()
    for target in set(re.findall(r"make ([a-z][a-z-]+)", RUNBOOK)):
        assert re.search(rf"^{target}:", makefile, flags=re.M), f"make {target} does not exist"
