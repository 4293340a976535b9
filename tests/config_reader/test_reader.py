"""The shared reader on its own: what one read of a kubelet-mounted config file finds, and the runbook's source.

The switch file is read by the switch grammar (tests/config_reader/test_switch_grammar.py holds its
properties); the scheduler's settings file is strict YAML.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from leviathan_config import (
    MAX_SWITCH_BYTES,
    SETTINGS_ENV,
    ConfigState,
    parse_autonomy_config,
    read_autonomy_config,
    read_settings_file,
    settings_path_from_env,
)
from support.config_cases import INVALID, INVALID_SETTINGS
from support.contract import SOURCE_ERROR, SOURCE_NOT_MOUNTED, configmap_source
from support.kubelet_volume import publish


@pytest.fixture
def mount(tmp_path: Path) -> Path:
    return tmp_path / "autonomy"


@pytest.mark.parametrize("enabled", [True, False])
def test_a_valid_file_is_loaded_with_the_configmap_source(mount, enabled):
    publish(mount, {"dev.yaml": f'autonomy_enabled: {str(enabled).lower()}\nreason: "INC-1"\n'})
    config = read_autonomy_config(mount / "dev.yaml")
    assert (config.state, config.autonomy_enabled, config.reason) == (ConfigState.LOADED, enabled, "INC-1")
    assert config.document == {"autonomy_enabled": enabled, "reason": "INC-1"}
    assert (config.problem, config.source) == ("", configmap_source(mount / "dev.yaml"))


@pytest.mark.parametrize(
    ("body", "document"),
    [
        ("autonomy_enabled: true", {"autonomy_enabled": True}),
        ("autonomy_enabled: false\n", {"autonomy_enabled": False}),
        ('autonomy_enabled: false\nreason: ""\n', {"autonomy_enabled": False, "reason": ""}),
        (
            'autonomy_enabled: true\nreason: "INC-9: it\'s back # not a comment"\nreview_by: "2026-12-01T09:00:00Z"',
            {
                "autonomy_enabled": True,
                "reason": "INC-9: it's back # not a comment",
                "review_by": "2026-12-01T09:00:00Z",
            },
        ),
        (
            'autonomy_enabled: false\nreview_by: "2026-12-01T09:00+01:00"\n',
            {"autonomy_enabled": False, "review_by": "2026-12-01T09:00+01:00"},
        ),
    ],
)
def test_each_line_of_the_grammar_is_read(mount, body, document):
    publish(mount, {"dev.yaml": body})
    config = read_autonomy_config(mount / "dev.yaml")
    assert (config.state, config.document, config.autonomy_enabled) == (
        ConfigState.LOADED,
        document,
        document["autonomy_enabled"],
    )


def test_the_size_limit_is_exact():
    head = b'autonomy_enabled: true\nreason: "'
    at_limit = head + b"x" * (MAX_SWITCH_BYTES - len(head) - 2) + b'"\n'
    assert len(at_limit) == MAX_SWITCH_BYTES
    assert parse_autonomy_config(at_limit, "dev.yaml").state is ConfigState.LOADED
    over = parse_autonomy_config(at_limit.replace(b'"\n', b'x"\n'), "dev.yaml")
    assert (over.state, over.problem) == (
        ConfigState.ERROR,
        f"dev.yaml is larger than {MAX_SWITCH_BYTES} bytes (it holds only the switch and its reason)",
    )


def test_a_wrong_line_is_named_with_what_it_should_be():
    config = parse_autonomy_config(b"autonomy_enabled: true\nreason: INC-1\n", "/etc/leviathan/autonomy/dev.yaml")
    assert config.problem == (
        "/etc/leviathan/autonomy/dev.yaml: line 2 ('reason: INC-1') is outside the switch file's form: "
        'expected reason: "..." (printable ASCII in double quotes, no " or \\) or review_by: "2026-12-01T09:00:00Z" '
        "(the file holds only autonomy_enabled, reason and review_by, one line each, in that order; no comments)"
    )


@pytest.mark.parametrize(
    "line",
    ["autonomy_enabled: false\r", 'reason: "caf\\u00e9"', "autonomy_enabled:\tfalse"],
    ids=["CR", "backslash", "tab"],
)
def test_a_wrong_line_is_shown_once_escaped(line):
    text = line + "\n" if line.startswith("autonomy_enabled") else "autonomy_enabled: true\n" + line + "\n"
    number = 1 if line.startswith("autonomy_enabled") else 2
    problem = parse_autonomy_config(text.encode(), "dev.yaml").problem
    # As Python shows it: one backslash per escape, so the operator can type the line back.
    assert f"line {number} ({line!r}) is outside" in problem, problem


def test_a_missing_file_is_not_mounted(mount):
    publish(mount, {"prod.yaml": "autonomy_enabled: true\n"})
    config = read_autonomy_config(mount / "dev.yaml")
    assert config.state is ConfigState.NOT_MOUNTED
    assert config.source == SOURCE_NOT_MOUNTED
    assert config.problem == f"{mount / 'dev.yaml'} does not exist"


@pytest.mark.parametrize(("body", "problem"), INVALID.values(), ids=INVALID.keys())
def test_an_unusable_file_is_an_error_that_says_why(mount, body, problem):
    publish(mount, {"dev.yaml": body})
    config = read_autonomy_config(mount / "dev.yaml")
    assert config.state is ConfigState.ERROR
    assert config.source == SOURCE_ERROR
    assert config.autonomy_enabled is None
    assert problem in config.problem


def test_a_settings_file_is_strict_yaml(tmp_path, monkeypatch):
    path = tmp_path / "scheduler.yaml"
    path.write_text("scheduler:\n  enabled: true\n  note: off\n  tasks: []\n")
    settings = read_settings_file(path)
    # YAML 1.2 booleans: `off` is a word here, not false.
    assert (settings.state, settings.document, settings.problem) == (
        ConfigState.LOADED,
        {"scheduler": {"enabled": True, "note": "off", "tasks": []}},
        "",
    )
    assert read_settings_file(tmp_path / "missing.yaml").state is ConfigState.NOT_MOUNTED
    monkeypatch.setenv(SETTINGS_ENV, str(path))
    assert settings_path_from_env() == str(path)
    monkeypatch.delenv(SETTINGS_ENV)
    assert settings_path_from_env() == "/etc/leviathan/scheduler/scheduler.yaml"


def test_a_settings_reread_parses_only_what_changed(mount):
    publish(mount, {"scheduler.yaml": "scheduler:\n  tasks: [a]\n"})
    first = read_settings_file(mount / "scheduler.yaml")
    # The same bytes: the earlier read comes back, not a new parse of them; not for another path.
    assert read_settings_file(mount / "scheduler.yaml", previous=first) is first
    publish(mount, {"scheduler.yaml": "scheduler:\n  tasks: [a]\n", "other.yaml": "scheduler:\n  tasks: [a]\n"})
    other = read_settings_file(mount / "other.yaml", previous=first)
    assert other is not first and other.path == str(mount / "other.yaml")
    # A kubelet swap to other bytes, or the file gone: read as new, whatever came before.
    publish(mount, {"scheduler.yaml": "scheduler:\n  tasks: [b]\n"})
    second = read_settings_file(mount / "scheduler.yaml", previous=first)
    assert second.document == {"scheduler": {"tasks": ["b"]}}
    publish(mount, {"scheduler.yaml": "scheduler: [\n"})
    broken = read_settings_file(mount / "scheduler.yaml", previous=second)
    assert broken.state is ConfigState.ERROR
    assert read_settings_file(mount / "scheduler.yaml", previous=broken) is broken
    publish(mount, {})
    gone = read_settings_file(mount / "scheduler.yaml", previous=broken)
    assert gone.state is ConfigState.NOT_MOUNTED
    # An empty file after a failed read (whose bytes are empty too) is read as what it is.
    publish(mount, {"scheduler.yaml": ""})
    empty = read_settings_file(mount / "scheduler.yaml", previous=gone)
    assert empty.state is ConfigState.ERROR and "mapping" in empty.problem


@pytest.mark.parametrize(("body", "problem"), INVALID_SETTINGS.values(), ids=INVALID_SETTINGS.keys())
def test_an_unusable_settings_file_is_an_error_that_says_why(tmp_path, body, problem):
    path = tmp_path / "scheduler.yaml"
    path.write_bytes(body)
    settings = read_settings_file(path)
    assert (settings.state, settings.document) == (ConfigState.ERROR, None)
    assert problem in settings.problem
    assert str(path) in settings.problem


def test_a_fifo_is_refused_without_waiting_for_a_writer(mount):
    (mount / "..data").mkdir(parents=True)
    os.mkfifo(mount / "..data" / "dev.yaml")
    (mount / "dev.yaml").symlink_to("..data/dev.yaml")
    config = read_autonomy_config(mount / "dev.yaml")
    assert (config.state, config.problem) == (ConfigState.ERROR, f"{mount / 'dev.yaml'} is a FIFO, not a regular file")


def test_the_same_bytes_return_the_previous_snapshot(mount):
    publish(mount, {"dev.yaml": "autonomy_enabled: true\n"})
    first = read_autonomy_config(mount / "dev.yaml")
    publish(mount, {"dev.yaml": "autonomy_enabled: true\n"})
    assert read_autonomy_config(mount / "dev.yaml", previous=first) is first
    publish(mount, {"dev.yaml": "autonomy_enabled: false\n"})
    assert read_autonomy_config(mount / "dev.yaml", previous=first).autonomy_enabled is False
