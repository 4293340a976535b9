"""Every object: in the release namespace, with the standard labels; selectors only on stable labels."""

from __future__ import annotations

import pytest

from support.helm import render_chart
from support.paths import values_files

STANDARD = {
    "helm.sh/chart": "leviathan-0.1.0",
    "app.kubernetes.io/name": "leviathan",
    "app.kubernetes.io/version": "0.1.0",
    "app.kubernetes.io/managed-by": "Helm",
    "app.kubernetes.io/part-of": "leviathan",
}
STABLE = {"app.kubernetes.io/name", "app.kubernetes.io/instance", "app.kubernetes.io/component"}


@pytest.mark.parametrize(("release", "namespace"), [("leviathan", "leviathan"), ("other", "ops-autonomy")])
@pytest.mark.parametrize("values_file", values_files(), ids=lambda p: p.name)
def test_namespace_and_standard_labels_everywhere(values_file, release, namespace):
    docs = render_chart(values_files=[values_file], name=release, namespace=namespace)
    assert len(docs) >= 10
    for doc in docs:
        where = f"{doc['kind']}/{doc['metadata']['name']}"
        assert doc["metadata"]["namespace"] == namespace, where
        labels = doc["metadata"]["labels"]
        assert labels.items() >= {**STANDARD, "app.kubernetes.io/instance": release}.items(), where
        assert labels["app.kubernetes.io/component"], where


def test_common_labels_reach_every_object():
    for doc in render_chart({"commonLabels": {"team": "sre"}}):
        assert doc["metadata"]["labels"]["team"] == "sre"


@pytest.mark.parametrize("values", [{}, {"controlPlane": {"replicaCount": 2}, "fullnameOverride": "renamed"}])
def test_selectors_use_only_stable_labels(values):
    """Immutable selectors must not change with the chart version, the app version or the names."""
    selectors = []
    for doc in render_chart(values):
        spec = doc.get("spec", {})
        if doc["kind"] in ("Deployment", "PodDisruptionBudget"):
            selectors.append(spec["selector"]["matchLabels"])
        elif doc["kind"] == "Service":
            selectors.append(spec["selector"])
        elif doc["kind"] == "NetworkPolicy":
            selectors.append(spec["podSelector"]["matchLabels"])
    assert len(selectors) >= 3
    for selector in selectors:
        assert set(selector) == STABLE
