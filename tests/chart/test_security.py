"""Pod Security Standards "restricted" on every pod the chart renders, and on worker Jobs."""

from __future__ import annotations

import pytest

from support.helm import pod_spec, render_chart
from support.paths import values_files

WORKLOADS = ["Deployment", "CronJob", "Pod"]


def pods(values_file) -> list[tuple[str, dict]]:
    docs = render_chart(values_files=[values_file])
    found = [(doc["kind"], pod_spec(doc)) for doc in docs if doc["kind"] in WORKLOADS]
    # Two `helm test` pods: the status check and the scheduler check.
    assert sorted(kind for kind, _ in found) == ["CronJob", "Deployment", "Pod", "Pod"]
    return found


def assert_restricted(spec: dict) -> None:
    pod_context = spec["securityContext"]
    assert pod_context["runAsNonRoot"] is True
    assert pod_context["seccompProfile"] == {"type": "RuntimeDefault"}
    assert spec["containers"]
    for container in spec["containers"]:
        context = container["securityContext"]
        assert context["runAsNonRoot"] is True
        assert context.get("runAsUser", pod_context.get("runAsUser")) >= 10000
        assert context["readOnlyRootFilesystem"] is True
        assert context["allowPrivilegeEscalation"] is False
        assert context.get("privileged", False) is False
        assert context["capabilities"] == {"drop": ["ALL"]}
        assert context["seccompProfile"] == {"type": "RuntimeDefault"}
        assert set(container["resources"]) == {"requests", "limits"}
        for section in ("requests", "limits"):
            assert {"cpu", "memory"} <= set(container["resources"][section])
    assert spec.get("hostNetwork", False) is False
    assert spec.get("hostPID", False) is False
    assert not [v for v in spec.get("volumes", []) if "hostPath" in v]


@pytest.mark.parametrize("values_file", values_files(), ids=lambda p: p.name)
def test_every_pod_is_restricted(values_file):
    for _kind, spec in pods(values_file):
        assert_restricted(spec)


@pytest.mark.parametrize("component", ["controlPlane", "scheduler"])
def test_hardening_blocks_can_be_switched_off(component):
    """Like Bitnami: on by default, off for platforms that inject their own (e.g. OpenShift SCCs)."""
    values = {component: {"podSecurityContext": {"enabled": False}, "containerSecurityContext": {"enabled": False}}}
    kind = "Deployment" if component == "controlPlane" else "CronJob"
    (doc,) = [d for d in render_chart(values) if d["kind"] == kind]
    spec = pod_spec(doc)
    assert "securityContext" not in spec
    assert "securityContext" not in spec["containers"][0]
