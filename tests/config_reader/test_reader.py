"""The shared reader on its own: what one read of a kubelet-mounted config file finds, and the runbook's source."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from leviathan_config import ConfigState, read_autonomy_config
from support.config_cases import INVALID
from support.contract import SOURCE_ERROR, SOURCE_NOT_MOUNTED, configmap_source
from support.kubelet_volume import publish


@pytest.fixture
def mount(tmp_path: Path) -> Path:
    return tmp_path / "autonomy"


@pytest.mark.parametrize("enabled", [True, False])
def test_a_valid_file_is_loaded_with_the_configmap_source(mount, enabled):
    publish(mount, {"dev.yaml": f"autonomy_enabled: {str(enabled).lower()}\nreason: INC-1\n"})
    config = read_autonomy_config(mount / "dev.yaml")
    assert (config.state, config.autonomy_enabled, config.reason) == (ConfigState.LOADED, enabled, "INC-1")
    assert config.source == configmap_source(mount / "dev.yaml")


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
