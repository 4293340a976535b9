"""`review_by` (issue 14): past it the switch stays off and the review is reported overdue;
a review_by that does not read as a time is a reported problem, never a reason to switch."""

from __future__ import annotations

import datetime as dt

import pytest

from support.contract import SOURCE_ERROR
from support.control_plane import bearer, eventually
from support.kubelet_volume import publish


def detail(client) -> dict:
    return client.get("/v1/autonomy", headers=bearer()).json()


def metric(client, name: str) -> float:
    for line in client.get("/metrics").text.splitlines():
        if line.startswith(name + " "):
            return float(line.split()[1])
    raise AssertionError(f"no metric {name}")


def publish_config(mount, body: str) -> None:
    publish(mount, {"dev.yaml": body})


def iso(moment: dt.datetime) -> str:
    return moment.isoformat().replace("+00:00", "Z")


def test_a_past_review_by_is_overdue_and_the_switch_stays_off(client, mount):
    past = dt.datetime.now(dt.UTC).replace(microsecond=0) - dt.timedelta(minutes=5)
    publish_config(mount, f'autonomy_enabled: false\nreason: "INC-9"\nreview_by: "{iso(past)}"\n')
    eventually(lambda: detail(client)["review_by"] is not None)
    answer = detail(client)
    assert answer["autonomy_enabled"] is False
    assert answer["review_by"] == iso(past)
    assert answer["review_overdue"] is True
    assert answer["disabled_since"].endswith("Z")
    assert client.get("/v1/autonomy/status", headers=bearer()).json()["autonomy_enabled"] is False
    assert metric(client, "leviathan_autonomy_review_overdue") == 1
    assert metric(client, "leviathan_autonomy_review_by_timestamp_seconds") == past.timestamp()
    assert metric(client, "leviathan_autonomy_enabled") == 0


def test_a_future_review_by_becomes_overdue_when_its_time_comes(client, mount):
    soon = dt.datetime.now(dt.UTC) + dt.timedelta(seconds=1)
    publish_config(mount, f'autonomy_enabled: false\nreview_by: "{soon.isoformat()}"\n')
    eventually(lambda: detail(client)["review_by"] is not None)
    assert detail(client)["review_overdue"] is False
    assert metric(client, "leviathan_autonomy_review_overdue") == 0
    eventually(lambda: metric(client, "leviathan_autonomy_review_overdue") == 1, timeout=3)
    assert detail(client)["review_overdue"] is True and detail(client)["autonomy_enabled"] is False


def test_review_by_means_nothing_while_autonomy_is_on(client, mount):
    publish_config(mount, 'autonomy_enabled: true\nreview_by: "2020-01-01T00:00:00Z"\n')
    eventually(lambda: detail(client)["review_by"] is not None)
    assert detail(client)["review_overdue"] is False and detail(client)["disabled_since"] is None
    assert metric(client, "leviathan_autonomy_review_overdue") == 0
    assert metric(client, "leviathan_autonomy_disabled_since_timestamp_seconds") == 0


@pytest.mark.parametrize(
    ("value", "problem"),
    [
        ("2026-02-30T09:00:00Z", "'2026-02-30T09:00:00Z' is not a time"),
        ("2026-13-01T09:00:00Z", "'2026-13-01T09:00:00Z' is not a time"),
        ("2026-12-01T24:00:00Z", "'2026-12-01T24:00:00Z' is not a time"),
        ("2026-12-01T09:60+01:00", "'2026-12-01T09:60+01:00' is not a time"),
    ],
)
@pytest.mark.parametrize("enabled", [False, True])
def test_a_review_by_that_is_no_time_is_reported_and_never_fails_open(client, mount, caplog, value, problem, enabled):
    """In the grammar's form (so the file is usable), but no real time."""
    publish_config(mount, f'autonomy_enabled: {str(enabled).lower()}\nreview_by: "{value}"\n')
    eventually(lambda: detail(client)["review_problem"] is not None)
    answer = detail(client)
    assert problem in answer["review_problem"]
    assert answer["autonomy_enabled"] is enabled, "the switch is what the file says, whatever review_by holds"
    assert answer["review_by"] is None and answer["review_overdue"] is False
    assert answer["problem"] is None
    assert metric(client, "leviathan_autonomy_review_by_invalid") == 1
    assert metric(client, "leviathan_autonomy_enabled") == (1 if enabled else 0)
    assert any("no review time is known; the switch is unaffected" in r.getMessage() for r in caplog.records)


@pytest.mark.parametrize(
    "value", ["tomorrow", "2026-12-01", '"2026-12-01"', '"2026-12-01T09:00:00"', "42", "2026-12-01T09:00:00Z", "''"]
)
def test_a_review_by_outside_the_grammar_makes_the_file_unusable(client, mount, config_path, value):
    """Unquoted, without a zone, not a date and time: the file is outside the switch grammar. The
    control plane answers the default (error reading config); the scheduler fails closed on it."""
    publish_config(mount, f"autonomy_enabled: false\nreview_by: {value}\n")
    eventually(lambda: detail(client)["problem"] is not None)
    answer = detail(client)
    assert (answer["autonomy_enabled"], answer["source"]) == (True, SOURCE_ERROR)
    assert answer["problem"].startswith(f"{config_path}: line 2 ({f'review_by: {value}'!r}) is outside")
    assert answer["review_by"] is None and answer["review_problem"] is None
    assert metric(client, "leviathan_autonomy_review_by_invalid") == 0


def test_disabled_since_without_review_feeds_the_stale_pause_alert(client, mount):
    publish_config(mount, "autonomy_enabled: false\n")
    eventually(lambda: metric(client, "leviathan_autonomy_disabled_since_timestamp_seconds") > 0)
    assert metric(client, "leviathan_autonomy_review_by_timestamp_seconds") == 0
    assert detail(client)["review_by"] is None and detail(client)["review_problem"] is None
    since = metric(client, "leviathan_autonomy_disabled_since_timestamp_seconds")
    # Another edit while off (a new reason) does not restart the pause.
    publish_config(mount, 'autonomy_enabled: false\nreason: "still INC-9"\n')
    eventually(lambda: detail(client)["reason"] == "still INC-9")
    assert metric(client, "leviathan_autonomy_disabled_since_timestamp_seconds") == since
