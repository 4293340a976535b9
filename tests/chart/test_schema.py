"""values.schema.json: strict, and bad values fail with the key named before anything is applied."""

from __future__ import annotations

import json

import pytest

from support.helm import NAMESPACE, RELEASE, helm
from support.paths import CHART, values_files

BAD_VALUES = [
    (["--set", "autonomy.enabled=flase"], "/autonomy/enabled"),
    (["--set-string", "autonomy.enabled=false"], "/autonomy/enabled"),
    (["--set", "autonomy.enable=false"], "'enable' not allowed"),
    (["--set", "scheduler.schedule="], "/scheduler/schedule"),
    (["--set", "scheduler.schedule=every five minutes"], "/scheduler/schedule"),
    (["--set", "scheduler.suspend=maybe"], "/scheduler/suspend"),
    (["--set-string", "scheduler.suspend=true"], "/scheduler/suspend"),
    (["--set", "autonomy.confirmEnable=abc"], "/autonomy/confirmEnable"),
    (["--set", "auth.token=short"], "/auth/token"),
    (["--set", "controlPlane.podAntiAffinityPreset=always"], "/controlPlane/podAntiAffinityPreset"),
    (["--set", "controlPlane.image.tag=latest"], "/controlPlane/image/tag"),
    (
        ["--set", "controlPlane.containerSecurityContext.runAsUser=0"],
        "/controlPlane/containerSecurityContext/runAsUser",
    ),
    (["--set", "environment=Prod_1"], "/environment"),
    (["--set", "scheduler.tasks[0].name=crawl"], "missing property 'image'"),
    (["--set-literal", "autonomy.reason=line one\nline two"], "/autonomy/reason"),
    # The runbook's -l app=... and the selectors depend on the chart's own labels.
    (["--set", "controlPlane.podLabels.app=mine"], "invalid propertyName 'app'"),
    (["--set", "scheduler.podLabels.app=mine"], "invalid propertyName 'app'"),
    (["--set", "commonLabels.app\\.kubernetes\\.io/component=x"], "invalid propertyName 'app.kubernetes.io/component'"),
]


@pytest.mark.parametrize("command", ["template", "install"])
@pytest.mark.parametrize(("args", "named"), BAD_VALUES, ids=lambda v: " ".join(v) if isinstance(v, list) else None)
def test_bad_values_fail_naming_the_key(command, args, named):
    """`helm install` validates values before it talks to the cluster, so nothing is applied."""
    extra = ["--dry-run=client"] if command == "install" else []
    result = helm(command, RELEASE, str(CHART), "--namespace", NAMESPACE, *extra, *args)
    assert result.returncode != 0
    assert "values don't meet the specifications of the schema" in result.stderr
    assert named in result.stderr
    assert result.stdout == ""


@pytest.mark.parametrize("values_file", values_files(), ids=lambda p: p.name)
def test_values_files_are_valid(values_file):
    result = helm("lint", "--strict", str(CHART), "--values", str(values_file))
    assert result.returncode == 0, result.stdout + result.stderr


def object_nodes(node, path="#"):
    """Every schema node that describes an object, with its path."""
    if isinstance(node, dict):
        if node.get("type") == "object":
            yield path, node
        for key, child in node.items():
            yield from object_nodes(child, f"{path}/{key}")
    elif isinstance(node, list):
        for index, child in enumerate(node):
            yield from object_nodes(child, f"{path}/{index}")


def test_schema_is_strict_at_every_level():
    schema = json.loads((CHART / "values.schema.json").read_text())
    assert schema["$schema"] == "http://json-schema.org/draft-07/schema#"
    nodes = list(object_nodes(schema))
    assert len(nodes) >= 25
    for path, node in nodes:
        extra = node.get("additionalProperties")
        if "pass-through" in node.get("$comment", ""):
            continue  # affinity terms (validated by the API server and kubernetes-validate) and umbrella globals
        assert extra is False or isinstance(extra, dict), f"{path} accepts unknown keys"
