"""Render the chart with the real helm binary, in the style of Airflow's chart tests.

Every render is checked against the Kubernetes schemas (kubernetes-validate, offline, strict)
before a test sees it, as Airflow's render_chart does; a test that renders something invalid on
purpose says so with `validate=False`.
"""

from __future__ import annotations

import json
import subprocess
import tempfile
from collections.abc import Iterable, Sequence
from functools import cache
from pathlib import Path
from typing import Any

import kubernetes_validate
import kubernetes_validate.utils
import yaml

from support.paths import CHART, helm_binary

RELEASE = "leviathan"
NAMESPACE = "leviathan"
# The oldest Kubernetes the chart supports and the newest kubernetes-validate knows.
KUBERNETES_VERSIONS = ("1.27.0", "1.37.0")
# Custom resources (the Prometheus operator's): no Kubernetes version has their schema.
CUSTOM_API_VERSIONS = frozenset({"monitoring.coreos.com/v1"})


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
    validate: bool = True,
) -> str:
    """`helm template` output as text, every object schema-checked; HelmError with helm's stderr on failure."""
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
    if validate:
        for doc in yaml.safe_load_all(result.stdout):
            if doc:
                validate_object(doc)
    return result.stdout


def render_chart(
    values: dict[str, Any] | None = None, show_only: Iterable[str] = (), **options: Any
) -> list[dict[str, Any]]:
    """The rendered objects, parsed and schema-checked, with empty documents dropped (options: render_manifest's)."""
    text = render_manifest(values, show_only, **options)
    return [doc for doc in yaml.safe_load_all(text) if doc]


# kubernetes-validate re-reads its 1 MB definitions file on every call (about 10 ms); the schema files never
# change during a run, so each is read once. The pinned version (requirements-dev.txt) calls it by this name.
kubernetes_validate.utils.schema_contents = cache(kubernetes_validate.utils.schema_contents)
# Objects already found valid, by their canonical JSON: most renders repeat most objects.
_VALID: set[str] = set()


def validate_object(doc: dict[str, Any]) -> None:
    """Raise kubernetes_validate.ValidationError unless `doc` is valid for every supported version that serves
    its kind. A kind a version does not serve (e.g. ValidatingAdmissionPolicy v1 before 1.30) is not checked
    against it, since the chart renders it only where the API server serves it; every kind must be known to one
    version, except custom resources."""
    key = json.dumps(doc, sort_keys=True, default=str)
    if key in _VALID:
        return
    known = doc.get("apiVersion") in CUSTOM_API_VERSIONS
    for version in KUBERNETES_VERSIONS:
        try:
            kubernetes_validate.validate(doc, version, strict=True)
        except kubernetes_validate.SchemaNotFoundError:
            continue
        known = True
    assert known, (
        f"no Kubernetes version in {KUBERNETES_VERSIONS} has a schema for {doc.get('apiVersion')} {doc.get('kind')}"
    )
    _VALID.add(key)


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


def notes(*args: str) -> str:
    """The chart's NOTES as `helm install --dry-run=client` prints them, with these flags."""
    result = helm("install", RELEASE, str(CHART), "--namespace", NAMESPACE, "--dry-run=client", *args)
    assert result.returncode == 0, result.stderr
    return result.stdout.split("NOTES:", 1)[1]
