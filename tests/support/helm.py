"""Render the chart with the real helm binary, in the style of Airflow's chart tests."""

from __future__ import annotations

import subprocess
import tempfile
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

import yaml

from support.paths import CHART, helm_binary

RELEASE = "leviathan"
NAMESPACE = "leviathan"
# The oldest Kubernetes the chart supports and the newest kubernetes-validate knows.
KUBERNETES_VERSIONS = ("1.27.0", "1.37.0")


class HelmError(Exception):
    def __init__(self, command: Sequence[str], stderr: str) -> None:
        super().__init__(f"{' '.join(command)} failed:\n{stderr}")
        self.stderr = stderr


def helm(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([helm_binary(), *args], capture_output=True, text=True, timeout=120)


def render_manifest(
    values: dict[str, Any] | None = None,
    show_only: Iterable[str] = (),
    values_files: Iterable[Path] = (),
    name: str = RELEASE,
    namespace: str = NAMESPACE,
    extra_args: Sequence[str] = (),
) -> str:
    """`helm template` output as text; HelmError with helm's stderr on failure."""
    with tempfile.NamedTemporaryFile("w", suffix=".yaml") as values_file:
        yaml.safe_dump(values or {}, values_file)
        values_file.flush()
        command = ["template", name, str(CHART), "--namespace", namespace]
        for path in values_files:
            command += ["--values", str(path)]
        command += ["--values", values_file.name]
        for template in show_only:
            command += ["--show-only", template]
        command += list(extra_args)
        result = helm(*command)
    if result.returncode != 0:
        raise HelmError(command, result.stderr)
    return result.stdout


def render_chart(
    values: dict[str, Any] | None = None,
    show_only: Iterable[str] = (),
    values_files: Iterable[Path] = (),
    name: str = RELEASE,
    namespace: str = NAMESPACE,
    extra_args: Sequence[str] = (),
) -> list[dict[str, Any]]:
    """The rendered objects, parsed, with empty documents dropped."""
    text = render_manifest(values, show_only, values_files, name, namespace, extra_args)
    return [doc for doc in yaml.safe_load_all(text) if doc]


def find(docs: list[dict[str, Any]], kind: str, name: str | None = None) -> dict[str, Any]:
    matches = [d for d in docs if d["kind"] == kind and (name is None or d["metadata"]["name"] == name)]
    assert len(matches) == 1, f"expected one {kind} {name or ''}, found {len(matches)}"
    return matches[0]


def pod_spec(doc: dict[str, Any]) -> dict[str, Any]:
    """The pod spec inside a Deployment, CronJob, Job or Pod."""
    kind = doc["kind"]
    if kind == "Pod":
        return doc["spec"]
    if kind == "CronJob":
        return doc["spec"]["jobTemplate"]["spec"]["template"]["spec"]
    return doc["spec"]["template"]["spec"]
