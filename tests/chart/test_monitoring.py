"""Opt-in Prometheus Operator objects: a ServiceMonitor and the runbook's alerts as a PrometheusRule."""

from __future__ import annotations

import re

import pytest

from leviathan_control_plane.metrics import ControlPlaneMetrics
from support.helm import find, render_chart

MONITORING = "templates/monitoring.yaml"
APIS = [
    "--api-versions",
    "monitoring.coreos.com/v1/ServiceMonitor",
    "--api-versions",
    "monitoring.coreos.com/v1/PrometheusRule",
]
SCOPE = 'namespace="leviathan", service="leviathan-control-plane"'
BOTH = {"metrics": {"serviceMonitor": {"enabled": True}, "prometheusRule": {"enabled": True}}}


def kinds(values: dict, extra_args: list[str]) -> list[str]:
    return sorted(d["kind"] for d in render_chart(values, extra_args=extra_args))


@pytest.mark.parametrize(
    ("values", "extra_args", "expected"),
    [
        ({}, APIS, []),  # off by default, even where the API exists
        (BOTH, [], []),  # on, but no Prometheus Operator: nothing that would fail the install
        (BOTH, APIS, ["PrometheusRule", "ServiceMonitor"]),
        (
            {
                "metrics": {
                    "serviceMonitor": {"enabled": True, "force": True},
                    "prometheusRule": {"enabled": True, "force": True},
                }
            },
            [],
            ["PrometheusRule", "ServiceMonitor"],
        ),
    ],
    ids=["default", "no-api", "api", "forced"],
)
def test_rendered_only_when_enabled_and_the_api_exists_or_forced(values, extra_args, expected):
    monitoring = [k for k in kinds(values, extra_args) if k in ("PrometheusRule", "ServiceMonitor")]
    assert monitoring == expected


def test_service_monitor_scrapes_the_control_plane_service():
    docs = render_chart(
        {
            **BOTH,
            "metrics": {**BOTH["metrics"], "serviceMonitor": {"enabled": True, "labels": {"release": "kube-prom"}}},
        },
        extra_args=APIS,
    )
    monitor, service = find(docs, "ServiceMonitor"), find(docs, "Service")
    assert monitor["spec"]["selector"]["matchLabels"].items() <= service["metadata"]["labels"].items()
    assert monitor["spec"]["namespaceSelector"] == {"matchNames": ["leviathan"]}
    [endpoint] = monitor["spec"]["endpoints"]
    assert endpoint["port"] == service["spec"]["ports"][0]["name"] == "http"
    assert endpoint["path"] == "/metrics"
    assert monitor["metadata"]["labels"]["release"] == "kube-prom"


def test_alerts_use_only_metrics_the_control_plane_exports():
    rule = find(render_chart(BOTH, extra_args=APIS), "PrometheusRule")
    exported = {metric.name for metric in ControlPlaneMetrics("/etc/leviathan/autonomy/dev.yaml").registry.collect()}
    alerts = {r["alert"]: r for group in rule["spec"]["groups"] for r in group["rules"]}
    assert set(alerts) == {
        "LeviathanAutonomyDisabledTooLong",
        "LeviathanAutonomyConfigUnavailable",
        "LeviathanAutonomyReviewOverdue",
        "LeviathanAutonomyPausedWithoutReview",
        "LeviathanAutonomyReviewByInvalid",
    }
    for alert in alerts.values():
        used = set(re.findall(r"\b(leviathan_[a-z_]+)\{", alert["expr"]))
        assert used and used <= exported, alert["expr"]
        assert 'namespace="leviathan", service="leviathan-control-plane"' in alert["expr"]


def test_the_runbook_thresholds():
    values = {"metrics": {"prometheusRule": {"enabled": True, "disabledFor": 7200}}}
    rule = find(render_chart(values, extra_args=APIS), "PrometheusRule")
    alerts = {r["alert"]: r for group in rule["spec"]["groups"] for r in group["rules"]}
    disabled = alerts["LeviathanAutonomyDisabledTooLong"]["expr"]
    assert "leviathan_autonomy_enabled{" in disabled and "} == 0" in disabled
    assert disabled.endswith("> 7200")
    unavailable = alerts["LeviathanAutonomyConfigUnavailable"]["expr"]
    assert 'source!~"configmap:.*"} == 1' in unavailable


def test_review_alerts_issue_14():
    values = {"metrics": {"prometheusRule": {"enabled": True}}, "alerts": {"staleAfter": 43200}}
    rule = find(render_chart(values, extra_args=APIS), "PrometheusRule")
    alerts = {r["alert"]: r["expr"] for group in rule["spec"]["groups"] for r in group["rules"]}
    assert alerts["LeviathanAutonomyReviewOverdue"].endswith("leviathan_autonomy_review_overdue{" + SCOPE + "} == 1")
    stale = alerts["LeviathanAutonomyPausedWithoutReview"]
    assert "leviathan_autonomy_review_by_timestamp_seconds{" + SCOPE + "} == 0" in stale
    assert stale.endswith("time() - leviathan_autonomy_disabled_since_timestamp_seconds{" + SCOPE + "} > 43200")
    assert alerts["LeviathanAutonomyReviewByInvalid"].endswith(
        "leviathan_autonomy_review_by_invalid{" + SCOPE + "} == 1"
    )
