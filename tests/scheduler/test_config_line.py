"""Every tick that read its config starts by naming it: the runbook's "check scheduler logs for config read"."""

from __future__ import annotations

import pytest

from support.contract import configmap_source, load_contract
from support.scheduler import DISABLED_LINES


def config_line(config_path, enabled: bool) -> str:
    return f"Config: {configmap_source(config_path)} autonomy_enabled={'true' if enabled else 'false'}"


@pytest.mark.parametrize(
    ("overrides", "args", "enabled"),
    [
        ({"autonomy": {"enabled": False}}, (), False),
        ({"autonomy": {"enabled": False, "reason": "INC-7"}}, ("--dry-run",), False),
        ({}, (), True),
        ({}, ("--dry-run",), True),
        ({"scheduler": {"tasks": []}}, (), True),
    ],
    ids=["disabled", "disabled dry run", "enabled", "enabled dry run", "enabled without tasks"],
)
def test_the_first_line_names_the_config_read(publish_config, run_scheduler, config_path, overrides, args, enabled):
    publish_config(overrides)
    result = run_scheduler(*args)
    assert result.returncode == 0, result.stderr
    logged = result.stderr.splitlines()
    assert logged[0] == config_line(config_path, enabled)
    assert sum(line.startswith("Config: ") for line in logged) == 1


def test_a_disabled_tick_still_logs_the_contract_lines_right_after(publish_config, run_scheduler, config_path):
    publish_config({"autonomy": {"enabled": False}})
    assert run_scheduler().stderr.splitlines() == [config_line(config_path, False), *DISABLED_LINES]


@pytest.mark.parametrize("body", [None, "autonomy_enabled: maybe\n"], ids=["not mounted", "invalid"])
def test_a_tick_that_cannot_use_its_config_says_so_in_one_line_instead(publish_config, run_scheduler, body):
    if body is not None:
        publish_config(raw=body)
    [line] = run_scheduler().stderr.splitlines()
    assert line.startswith("✗ ")


def test_the_line_names_the_contract_source_for_the_chart_path(publish_config, run_scheduler, config_path):
    """With the chart's mount path, the line carries the contract's `source` and path verbatim."""
    contract = load_contract()
    expected_source = contract.status_api["sources"]["loaded"].replace("<path>", contract.names["config_path"])
    publish_config()
    first = run_scheduler().stderr.splitlines()[0].replace(str(config_path), contract.names["config_path"])
    assert first == f"Config: {expected_source} autonomy_enabled=true"
