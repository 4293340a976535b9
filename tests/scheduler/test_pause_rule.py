"""The pause rule lives in the shared reader (leviathan_config.worker_jobs), read from the config the
same way the scheduler's own settings parser reads it, so the control plane can report the same pauses."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from leviathan_config.worker_jobs import PauseRule, pause_rule_from
from leviathan_scheduler.settings import SettingsError, parse_settings
from support.helm import render_chart
from support.paths import values_files
from support.scheduler import SETTINGS_FILE


@pytest.mark.parametrize("values_file", values_files(), ids=lambda path: path.name)
def test_the_control_planes_reading_of_the_rule_is_the_schedulers(values_file: Path):
    """pause_rule_from (control plane) and parse_settings (scheduler) read the same rule from every values file."""
    configmaps = render_chart(values_files=[values_file], show_only=["templates/configmap.yaml"])
    [text] = [configmap["data"][SETTINGS_FILE] for configmap in configmaps if SETTINGS_FILE in configmap["data"]]
    document = yaml.safe_load(text)
    settings = parse_settings(document)
    rule, release_selector = pause_rule_from(document)
    if not settings.tasks:
        assert rule is None
        return
    assert settings.worker is not None
    assert rule == PauseRule(
        tuple(t.name for t in settings.tasks), settings.worker.selector, settings.pause_after_failures
    )
    assert release_selector == settings.worker.release_selector


WORKER = {"selector": {"app": "w"}, "releaseSelector": {"app": "w"}}


@pytest.mark.parametrize(
    ("document", "key"),
    [
        ({"scheduler": {"tasks": "inventory"}, "worker": WORKER}, "scheduler.tasks"),
        ({"scheduler": {"tasks": [{"name": "a"}], "pauseAfterFailures": "3"}, "worker": WORKER}, "pauseAfterFailures"),
        ({"scheduler": {"tasks": [{"name": "a"}], "pauseAfterFailures": True}, "worker": WORKER}, "pauseAfterFailures"),
        ({"scheduler": {"tasks": [{"name": "a"}]}, "worker": {"selector": {}}}, "worker.selector"),
        ({"scheduler": {"tasks": [{"name": "a"}]}}, "worker"),
    ],
)
def test_a_shape_the_scheduler_refuses_is_named(document, key):
    with pytest.raises(ValueError, match=key):
        pause_rule_from(document)
    with pytest.raises(SettingsError):
        parse_settings(document)


def test_no_tasks_no_rule():
    assert pause_rule_from({"autonomy_enabled": True}) == (None, {})
