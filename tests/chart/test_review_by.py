"""autonomy.reviewBy and alerts.staleAfter (issue 14): written into the config, refused when malformed."""

from __future__ import annotations

import pytest
import yaml

from support.helm import HelmError, find, render_chart


def config(values: dict) -> dict:
    configmap = find(render_chart(values, show_only=["templates/configmap.yaml"]), "ConfigMap", "leviathan-autonomy-config")
    return yaml.safe_load(configmap["data"]["dev.yaml"])


def test_no_review_by_writes_no_line():
    assert "review_by" not in config({})


@pytest.mark.parametrize("value", ["2026-12-01T09:00:00Z", "2026-12-01T09:00+02:00", "2026-12-01T09:00:00.5-05:00"])
def test_a_time_with_a_zone_is_written_quoted(value):
    assert config({"autonomy": {"enabled": False, "reviewBy": value}})["review_by"] == value


@pytest.mark.parametrize("value", ["tomorrow", "2026-12-01", "2026-12-01T09:00:00", "2026-12-01 09:00:00Z"])
def test_a_review_by_without_time_or_zone_is_refused(value):
    with pytest.raises(HelmError, match="reviewBy"):
        render_chart({"autonomy": {"reviewBy": value}})


@pytest.mark.parametrize("value", [0, 59, "1d"])
def test_stale_after_is_at_least_a_minute_in_seconds(value):
    with pytest.raises(HelmError, match="staleAfter"):
        render_chart({"alerts": {"staleAfter": value}})
