"""Opt-in Prometheus Operator objects: a ServiceMonitor and the runbook's alerts as a PrometheusRule."""

from __future__ import annotations

import re

import pytest

from leviathan_control_plane.metrics import ControlPlaneMetrics
from support.helm import HelmError, find, render_chart

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
        "LeviathanControlPlaneMetricsAbsent",
        "LeviathanConfigFileReadFailing",
        "LeviathanTasksPaused",
        "LeviathanKubernetesApiReadFailing",
        "LeviathanAutonomyDisabledTooLong",
        "LeviathanAutonomyConfigUnavailable",
        "LeviathanAutonomyReviewOverdue",
        "LeviathanAutonomyPausedWithoutReview",
        "LeviathanAutonomyReviewByInvalid",
    }
    for alert in alerts.values():
        used = set(re.findall(r"\b(leviathan_[a-z_]+)\{", alert["expr"]))
        assert used <= exported, alert["expr"]
        assert used or alert["alert"] == "LeviathanControlPlaneMetricsAbsent"
        assert 'namespace="leviathan", service="leviathan-control-plane"' in alert["expr"]
        assert alert["annotations"]["runbook_url"].startswith("https://github.com/leviathan/leviathan-autonomy/")


def test_the_runbook_thresholds():
    values = {"metrics": {"prometheusRule": {"enabled": True, "disabledFor": 7200}}}
    rule = find(render_chart(values, extra_args=APIS), "PrometheusRule")
    alerts = {r["alert"]: r for group in rule["spec"]["groups"] for r in group["rules"]}
    disabled = alerts["LeviathanAutonomyDisabledTooLong"]["expr"]
    assert "(leviathan_autonomy_enabled{" in disabled and "}) == 0" in disabled
    assert disabled.endswith("> 7200")
    unavailable = alerts["LeviathanAutonomyConfigUnavailable"]["expr"]
    assert 'source!~"configmap:.*"}) == 1' in unavailable


def test_review_alerts_issue_14():
    values = {"metrics": {"prometheusRule": {"enabled": True}}, "alerts": {"staleAfter": 43200}}
    rule = find(render_chart(values, extra_args=APIS), "PrometheusRule")
    alerts = {r["alert"]: r["expr"] for group in rule["spec"]["groups"] for r in group["rules"]}
    assert alerts["LeviathanAutonomyReviewOverdue"].endswith("(leviathan_autonomy_review_overdue{" + SCOPE + "}) == 1")
    stale = alerts["LeviathanAutonomyPausedWithoutReview"]
    assert "(leviathan_autonomy_review_by_timestamp_seconds{" + SCOPE + "}) == 0" in stale
    assert stale.endswith("(leviathan_autonomy_disabled_since_timestamp_seconds{" + SCOPE + "}) > 43200")
    assert alerts["LeviathanAutonomyReviewByInvalid"].endswith(
        "(leviathan_autonomy_review_by_invalid{" + SCOPE + "}) == 1"
    )


# ---- issue 22: scraping admitted, aggregated alerts, user rules, monitor options, NOTES without the CRD ----


def rules_of(values: dict) -> dict[str, dict]:
    rule = find(render_chart(values, extra_args=APIS), "PrometheusRule")
    return {r.get("alert", r.get("record")): r for group in rule["spec"]["groups"] for r in group["rules"]}


def test_every_alert_is_aggregated_across_replicas():
    for alert in rules_of({"metrics": {"prometheusRule": {"enabled": True}}}).values():
        expr = alert["expr"]
        if alert["alert"] == "LeviathanControlPlaneMetricsAbsent":
            assert expr.startswith("absent(up{")
            assert {"namespace", "service"} <= alert["labels"].keys()
        else:
            series = re.findall(r"\bleviathan_[a-z_]+\{", expr)
            aggregated = re.findall(r"max by \(namespace, service(?:, file)?\) \(leviathan_[a-z_]+\{", expr)
            assert series and len(series) == len(aggregated), expr


def test_rules_can_be_dropped_and_added():
    extra = {"alert": "MyLeviathanAlert", "expr": "vector(1)", "labels": {"severity": "info"}}
    values = {
        "metrics": {
            "prometheusRule": {
                "enabled": True,
                "disabled": {"LeviathanTasksPaused": True, "LeviathanAutonomyReviewOverdue": False},
                "additionalRules": [extra],
                "additionalLabels": {"team": "platform"},
                "runbookUrl": "https://wiki.example.com/leviathan",
                "namespace": "monitoring",
            }
        }
    }
    rule = find(render_chart(values, extra_args=APIS), "PrometheusRule")
    assert rule["metadata"]["namespace"] == "monitoring"
    alerts = rules_of(values)
    assert "LeviathanTasksPaused" not in alerts and "LeviathanAutonomyReviewOverdue" in alerts
    assert alerts["MyLeviathanAlert"] == extra
    assert alerts["LeviathanAutonomyReviewOverdue"]["labels"]["team"] == "platform"
    assert alerts["LeviathanAutonomyReviewOverdue"]["annotations"]["runbook_url"] == (
        "https://wiki.example.com/leviathan#review-a-disable-review_by-stale-pauses"
    )


def test_an_unknown_alert_name_to_drop_is_refused():
    values = {"metrics": {"prometheusRule": {"enabled": True, "disabled": {"LeviathanTypo": True}}}}
    with pytest.raises(HelmError, match=r'metrics\.prometheusRule\.disabled: the chart has no alert "LeviathanTypo"'):
        render_chart(values, extra_args=APIS)


def test_monitor_options():
    options = {
        "enabled": True,
        "namespace": "monitoring",
        "scrapeTimeout": "10s",
        "honorLabels": True,
        "relabelings": [{"action": "replace", "targetLabel": "cluster", "replacement": "prod-1"}],
        "metricRelabelings": [{"action": "drop", "sourceLabels": ["__name__"], "regex": "leviathan_http_.*"}],
    }
    docs = render_chart(
        {"metrics": {"serviceMonitor": options, "podMonitor": options}},
        extra_args=[*APIS, "--api-versions", "monitoring.coreos.com/v1/PodMonitor"],
    )
    for kind, key in (("ServiceMonitor", "endpoints"), ("PodMonitor", "podMetricsEndpoints")):
        monitor = find(docs, kind)
        assert monitor["metadata"]["namespace"] == "monitoring"
        assert monitor["spec"]["namespaceSelector"] == {"matchNames": ["leviathan"]}
        [endpoint] = monitor["spec"][key]
        assert endpoint["scrapeTimeout"] == "10s" and endpoint["honorLabels"] is True
        assert endpoint["relabelings"] == options["relabelings"]
        assert endpoint["metricRelabelings"] == options["metricRelabelings"]


@pytest.mark.parametrize("monitor", ["serviceMonitor", "podMonitor"])
def test_the_network_policy_admits_the_scrape_only_with_a_monitor(monitor):
    def peers(values):
        policy = find(render_chart(values), "NetworkPolicy")
        [rule] = policy["spec"]["ingress"]
        return rule["from"]

    assert len(peers({})) == 1  # the helm test pod only
    values = {
        "metrics": {
            monitor: {"enabled": True},
            "scrapeFrom": {
                "namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "observability"}},
                # Helm merges maps with the defaults: null removes the default label.
                "podSelector": {"matchLabels": {"app": "prometheus", "app.kubernetes.io/name": None}},
            },
        }
    }
    assert peers(values)[1] == {
        "namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "observability"}},
        "podSelector": {"matchLabels": {"app": "prometheus"}},
    }
    default = peers({"metrics": {monitor: {"enabled": True}}})[1]
    assert default["namespaceSelector"] == {"matchLabels": {"kubernetes.io/metadata.name": "monitoring"}}
