"""The PrometheusRule's alerts, evaluated by Prometheus' own `promtool test rules` on synthetic series.

Two control-plane replicas report the same state, as with `controlPlane.replicaCount: 2`: every alert must
fire once per release, not once per pod. promtool comes from PATH or $PROMTOOL (`make test` installs
Debian's `prometheus` package when it can); without it these tests skip and say so.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml

from support.helm import find, render_chart

PROMTOOL = os.environ.get("PROMTOOL") or shutil.which("promtool")
pytestmark = pytest.mark.skipif(
    PROMTOOL is None, reason="promtool not found (apt-get install prometheus, or set PROMTOOL): rules not evaluated"
)
APIS = ["--api-versions", "monitoring.coreos.com/v1/PrometheusRule"]
SERVICE = {"namespace": "leviathan", "service": "leviathan-control-plane"}


def series(metric: str, values: str, pod: str, **labels: str) -> dict[str, str]:
    target = {**SERVICE, "job": "leviathan-control-plane", "pod": pod, "instance": f"{pod}:8000", **labels}
    matchers = ", ".join(f'{k}="{v}"' for k, v in sorted(target.items()))
    return {"series": f"{metric}{{{matchers}}}", "values": values}


def both(metric: str, values: str, **labels: str) -> list[dict[str, str]]:
    return [series(metric, values, pod, **labels) for pod in ("leviathan-control-plane-a", "leviathan-control-plane-b")]


def healthy(enabled: str = "1x180") -> list[dict[str, str]]:
    """Two replicas scraped, autonomy as `enabled`, nothing else wrong (times in minutes)."""
    return [
        *both("up", "1x180"),
        *both("leviathan_autonomy_enabled", enabled),
        *both("leviathan_autonomy_state_changed_timestamp_seconds", "0x180"),
        *both("leviathan_autonomy_disabled_since_timestamp_seconds", "0x180"),
        *both("leviathan_autonomy_review_by_timestamp_seconds", "0x180"),
        *both("leviathan_autonomy_review_overdue", "0x180"),
        *both("leviathan_autonomy_review_by_invalid", "0x180"),
        *both("leviathan_autonomy_config_source", "1x180", source="configmap:dev.yaml"),
        *both("leviathan_file_read_failing", "0x180", file="config"),
        *both("leviathan_tasks_paused", "0x180"),
        *both("leviathan_kubernetes_api_read_failing", "0x180"),
    ]


def replace(base: list[dict[str, str]], metric: str, values: str, **labels: str) -> list[dict[str, str]]:
    return [s for s in base if not s["series"].startswith(metric + "{")] + both(metric, values, **labels)


def alert(severity: str, **labels: str) -> dict[str, Any]:
    return {"exp_labels": {**SERVICE, "severity": severity, **labels}}


def promtool_test(tmp_path: Path, values: dict, tests: list[dict[str, Any]]) -> subprocess.CompletedProcess[str]:
    rule = find(render_chart(values, extra_args=APIS), "PrometheusRule")
    annotations = {r["alert"]: r["annotations"] for group in rule["spec"]["groups"] for r in group["rules"]}
    for test in tests:
        for check in test["alert_rule_test"]:
            for expected in check["exp_alerts"]:
                expected["exp_annotations"] = annotations[check["alertname"]]
    (tmp_path / "rules.yaml").write_text(yaml.safe_dump(rule["spec"]))
    (tmp_path / "test.yaml").write_text(
        yaml.safe_dump({"rule_files": ["rules.yaml"], "evaluation_interval": "1m", "tests": tests})
    )
    return subprocess.run(
        [PROMTOOL, "test", "rules", "test.yaml"], cwd=tmp_path, capture_output=True, text=True, timeout=60
    )


def case(input_series, name, at, expected):
    return {
        "interval": "1m",
        "input_series": input_series,
        "alert_rule_test": [{"eval_time": at, "alertname": name, "exp_alerts": expected}],
    }


RULE = {"metrics": {"prometheusRule": {"enabled": True}}}


def test_promtool_checks_the_rules(tmp_path):
    rule = find(render_chart(RULE, extra_args=APIS), "PrometheusRule")
    (tmp_path / "rules.yaml").write_text(yaml.safe_dump(rule["spec"]))
    result = subprocess.run([PROMTOOL, "check", "rules", "rules.yaml"], cwd=tmp_path, capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "SUCCESS: 9 rules found" in result.stdout


def test_each_alert_fires_once_for_two_replicas_and_not_when_healthy(tmp_path):
    off = healthy("0x180")
    tests = [
        # Healthy: nothing fires.
        *(
            case(healthy(), name, "170m", [])
            for name in (
                "LeviathanControlPlaneMetricsAbsent",
                "LeviathanAutonomyDisabledTooLong",
                "LeviathanAutonomyReviewOverdue",
                "LeviathanAutonomyPausedWithoutReview",
                "LeviathanAutonomyReviewByInvalid",
                "LeviathanAutonomyConfigUnavailable",
                "LeviathanConfigFileReadFailing",
                "LeviathanTasksPaused",
                "LeviathanKubernetesApiReadFailing",
            )
        ),
        # Off since t=0: after an hour (disabledFor 3600) one alert, not two.
        case(off, "LeviathanAutonomyDisabledTooLong", "59m", []),
        case(off, "LeviathanAutonomyDisabledTooLong", "62m", [alert("warning")]),
        case(
            replace(off, "leviathan_autonomy_review_overdue", "1x180"),
            "LeviathanAutonomyReviewOverdue",
            "5m",
            [alert("warning")],
        ),
        case(
            replace(healthy(), "leviathan_autonomy_review_by_invalid", "1x180"),
            "LeviathanAutonomyReviewByInvalid",
            "10m",
            [alert("warning")],
        ),
        case(
            replace(healthy(), "leviathan_autonomy_config_source", "1x180", source="error"),
            "LeviathanAutonomyConfigUnavailable",
            "10m",
            [alert("critical")],
        ),
        case(
            replace(healthy(), "leviathan_file_read_failing", "1x180", file="config"),
            "LeviathanConfigFileReadFailing",
            "10m",
            [alert("warning", file="config")],
        ),
        case(replace(healthy(), "leviathan_tasks_paused", "2x180"), "LeviathanTasksPaused", "5m", [alert("warning")]),
        case(
            replace(healthy(), "leviathan_kubernetes_api_read_failing", "1x180"),
            "LeviathanKubernetesApiReadFailing",
            "10m",
            [alert("warning")],
        ),
    ]
    result = promtool_test(tmp_path, RULE, tests)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "SUCCESS" in result.stdout


def test_paused_without_review_needs_a_day_off_with_no_review_by(tmp_path):
    values = {**RULE, "alerts": {"staleAfter": 7200}}
    off = healthy("0x180")
    reviewed = replace(off, "leviathan_autonomy_review_by_timestamp_seconds", "99999x180")
    tests = [
        case(off, "LeviathanAutonomyPausedWithoutReview", "119m", []),
        case(off, "LeviathanAutonomyPausedWithoutReview", "125m", [alert("warning")]),
        case(reviewed, "LeviathanAutonomyPausedWithoutReview", "125m", []),
    ]
    result = promtool_test(tmp_path, values, tests)
    assert result.returncode == 0, result.stdout + result.stderr


def test_absent_fires_when_nothing_is_scraped_or_every_target_is_down(tmp_path):
    down = replace(healthy(), "up", "0x180")
    tests = [
        case([], "LeviathanControlPlaneMetricsAbsent", "9m", []),
        case([], "LeviathanControlPlaneMetricsAbsent", "11m", [alert("critical")]),
        case(down, "LeviathanControlPlaneMetricsAbsent", "11m", [alert("critical")]),
        # One replica of two down: the other still reports, so the alerts still see the switch.
        case(
            [s for s in healthy() if "-b" not in s["series"] or not s["series"].startswith("up{")]
            + [series("up", "0x180", "leviathan-control-plane-b")],
            "LeviathanControlPlaneMetricsAbsent",
            "11m",
            [],
        ),
    ]
    result = promtool_test(tmp_path, RULE, tests)
    assert result.returncode == 0, result.stdout + result.stderr


def test_a_podmonitor_scope_selects_by_job(tmp_path):
    values = {"metrics": {"prometheusRule": {"enabled": True}, "podMonitor": {"enabled": True}}}
    rule = find(render_chart(values, extra_args=APIS), "PrometheusRule")
    exprs = [r["expr"] for g in rule["spec"]["groups"] for r in g["rules"]]
    assert all('job="leviathan/leviathan-control-plane", namespace="leviathan"' in e for e in exprs), exprs
    pod_series = [
        {"series": 'up{job="leviathan/leviathan-control-plane", namespace="leviathan", pod="a"}', "values": "1x30"}
    ]
    tests = [
        {
            "interval": "1m",
            "input_series": pod_series,
            "alert_rule_test": [
                {"eval_time": "20m", "alertname": "LeviathanControlPlaneMetricsAbsent", "exp_alerts": []}
            ],
        }
    ]
    result = promtool_test(tmp_path, values, tests)
    assert result.returncode == 0, result.stdout + result.stderr


def test_the_failing_case_is_reported(tmp_path):
    """A wrong expectation makes promtool fail: these tests can fail."""
    result = promtool_test(tmp_path, RULE, [case(healthy("0x180"), "LeviathanAutonomyDisabledTooLong", "62m", [])])
    assert result.returncode != 0
    assert "LeviathanAutonomyDisabledTooLong" in result.stdout + result.stderr
