"""The real `leviathan-scheduler` against a kmock API emulator, reading a config rendered from the chart.

Every tick runs as a subprocess with a clean environment: the config file is
published kubelet-style into tmp_path, KUBECONFIG points at the emulator, and
LEVIATHAN_SCHEDULER_JOB_NAME names the tick the way the CronJob controller
does (`<cronjob>-<scheduled minute>`), so worker Job names are predictable.
"""

from __future__ import annotations

import subprocess
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import pytest

from support.emulator import KubeEmulator
from support.kubelet_volume import publish
from support.scheduler import (
    CONFIG_FILE,
    SETTINGS_FILE,
    chart_config,
    chart_settings,
    current_slot,
    run_tick,
    settings_path_for,
    tick_job,
)


@pytest.fixture
def emulator():
    with KubeEmulator() as running:
        yield running


@pytest.fixture
def mount(tmp_path: Path) -> Path:
    """Where kubelet would mount the ConfigMap; nothing is published until a test does."""
    return tmp_path / "autonomy"


@pytest.fixture
def config_path(mount: Path) -> Path:
    return mount / CONFIG_FILE


@pytest.fixture
def publish_config(mount: Path) -> Callable[..., str | bytes]:
    """publish_config(overrides) publishes the chart-rendered switch file and settings file;
    publish_config(raw=...) any bytes/text as the switch file (with the settings of `overrides`);
    settings=... any text as the settings file."""

    def publish_it(
        overrides: Mapping[str, Any] | None = None,
        *,
        raw: str | bytes | None = None,
        settings: str | bytes | None = None,
    ) -> str | bytes:
        body = chart_config(overrides) if raw is None else raw
        publish(mount, {CONFIG_FILE: body})
        settings_dir = settings_path_for(mount / CONFIG_FILE).parent
        publish(settings_dir, {SETTINGS_FILE: chart_settings(overrides) if settings is None else settings})
        return body

    return publish_it


@pytest.fixture
def enabled_config(publish_config) -> str:
    """The chart's config with autonomy on and the two TASKS."""
    return publish_config()


@pytest.fixture
def slot() -> int:
    return current_slot()


@pytest.fixture
def kubeconfig(emulator: KubeEmulator, tmp_path: Path) -> Path:
    return emulator.kubeconfig(tmp_path / "kubeconfig")


@pytest.fixture
def run_scheduler(
    tmp_path: Path, config_path: Path, kubeconfig: Path, slot: int, emulator: KubeEmulator
) -> Callable[..., subprocess.CompletedProcess[str]]:
    """run_scheduler(*args, env=..., kubeconfig=..., slot=..., command=...): one tick against this test's emulator.

    As in a cluster, the tick's own Job exists (seeding records no request).
    """
    default_kubeconfig, default_slot = kubeconfig, slot

    def run(
        *args: str, kubeconfig: Path | None = None, slot: int | None = None, **options: Any
    ) -> subprocess.CompletedProcess[str]:
        emulator.seed(tick_job(default_slot if slot is None else slot))
        return run_tick(
            *args,
            config_path=config_path,
            kubeconfig=kubeconfig or default_kubeconfig,
            home=tmp_path,
            slot=default_slot if slot is None else slot,
            **options,
        )

    return run
