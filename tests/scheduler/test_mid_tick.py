"""The switch is read again before every create: flipping it mid-tick stops the tick."""

from __future__ import annotations

import kmock
import pytest

from support.emulator import NAMESPACE, Call
from support.kubelet_volume import publish, remove
from support.scheduler import CONFIG_FILE, assert_no_traceback, chart_config, job_name, lines, worker_jobs

LIST = Call("GET", "LIST", "batch/jobs", NAMESPACE)
CREATE = Call("POST", "CREATE", "batch/jobs", NAMESPACE)
JOBS = kmock.resource("batch/v1/jobs")


def flip_during(emulator, action, index: int, change) -> list[int]:
    """Run `change()` while the API serves the `index`-th request of `action`, before answering it normally."""
    calls: list[int] = []

    def observe(request):
        calls.append(request.id)
        change()  # returning None lets the emulator answer as usual

    emulator.react(lambda k: k[action, JOBS][index : index + 1] << observe)
    return calls


def test_disabled_between_list_and_first_create(enabled_config, run_scheduler, emulator, mount):
    disabled = chart_config({"autonomy": {"enabled": False}})
    calls = flip_during(emulator, kmock.action.LIST, 0, lambda: publish(mount, {CONFIG_FILE: disabled}))
    result = run_scheduler()
    assert len(calls) == 1
    assert result.returncode == 0
    assert lines(result.stderr) == [
        "⚠ Autonomy disabled in configuration mid-tick (autonomy_enabled: false): "
        "stopping, 0 of 2 planned jobs submitted"
    ]
    assert emulator.requests() == [LIST]
    assert worker_jobs(emulator) == []


def test_disabled_between_two_creates(enabled_config, run_scheduler, emulator, mount, slot):
    off = "autonomy_enabled: false\n"
    calls = flip_during(emulator, kmock.action.CREATE, 0, lambda: publish(mount, {CONFIG_FILE: off}))
    result = run_scheduler()
    assert len(calls) == 1
    assert result.returncode == 0
    assert lines(result.stderr) == [
        f"✓ Submitted job {job_name('inventory', slot)} (task inventory)",
        "⚠ Autonomy disabled in configuration mid-tick (autonomy_enabled: false): "
        "stopping, 1 of 2 planned jobs submitted",
    ]
    assert emulator.requests() == [LIST, CREATE]
    assert [j["metadata"]["name"] for j in worker_jobs(emulator)] == [job_name("inventory", slot)]


@pytest.mark.parametrize(
    ("body", "problem"),
    [
        (b"autonomy_enabled: maybe\n", "line 1 ('autonomy_enabled: maybe') is outside the switch file's form"),
        (b"autonomy_enabled: [\n", "line 1 ('autonomy_enabled: [') is outside the switch file's form"),
        (b"autonomy_enabled: true\nscheduler: {}\n", "line 2 ('scheduler: {}') is outside the switch file's form"),
        (b"\xff\xfe", "has a byte outside printable ASCII at offset 0"),
    ],
    ids=["not a boolean", "invalid YAML", "a settings key in the switch file", "not ASCII"],
)
def test_config_turning_invalid_mid_tick_exits_4(enabled_config, run_scheduler, emulator, mount, body, problem):
    flip_during(emulator, kmock.action.LIST, 0, lambda: publish(mount, {CONFIG_FILE: body}))
    result = run_scheduler()
    assert result.returncode == 4
    [line] = lines(result.stderr)
    assert line.startswith("✗ Config became unusable mid-tick (")
    assert problem in line
    assert line.endswith("failing closed, 0 of 2 planned jobs submitted")
    assert_no_traceback(result)
    assert emulator.requests() == [LIST]
    assert worker_jobs(emulator) == []


def test_config_removed_mid_tick_exits_3(enabled_config, run_scheduler, emulator, mount, config_path):
    flip_during(emulator, kmock.action.LIST, 0, lambda: remove(mount))
    result = run_scheduler()
    assert result.returncode == 3
    assert lines(result.stderr) == [
        f"✗ Config became unusable mid-tick ({config_path} does not exist): "
        "failing closed, 0 of 2 planned jobs submitted"
    ]
    assert emulator.requests() == [LIST]
    assert worker_jobs(emulator) == []


def test_an_unrelated_edit_mid_tick_does_not_stop_it(enabled_config, run_scheduler, emulator, mount, slot):
    """The control: re-publishing an enabled config mid-tick lets the tick finish."""
    edited = chart_config({"autonomy": {"reason": "INC-9 resolved"}})
    flip_during(emulator, kmock.action.LIST, 0, lambda: publish(mount, {CONFIG_FILE: edited}))
    result = run_scheduler()
    assert result.returncode == 0
    assert emulator.requests() == [LIST, CREATE, CREATE]
    assert len(worker_jobs(emulator)) == 2
