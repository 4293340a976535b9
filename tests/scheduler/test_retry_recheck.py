"""A retry of a create is a new create: the switch is checked again before it, as before the first attempt.

The first create is answered 503 (kmock stores it anyway: "committed, reply lost"); while it is
served the switch flips. The retry must not be sent.
"""

from __future__ import annotations

import kmock
import pytest

from leviathan_scheduler.exit_codes import EXIT_CONFIG_ERROR, EXIT_CONFIG_NOT_MOUNTED, EXIT_OK
from support.emulator import CONFIGMAPS, CRONJOBS, NAMESPACE, Call
from support.kubelet_volume import publish, remove
from support.scheduler import (
    CONFIG_FILE,
    CRONJOB,
    LIVE_CONFIGMAP,
    assert_no_traceback,
    chart_config,
    config_map,
    cronjob,
    job_name,
    lines,
)

LIST = Call("GET", "LIST", "batch/jobs", NAMESPACE)
CREATE = Call("POST", "CREATE", "batch/jobs", NAMESPACE)
GET = Call("GET", "FETCH", "configmaps", NAMESPACE)
GET_CRONJOB = Call("GET", "FETCH", "batch/cronjobs", NAMESPACE)
ON_CREATE = (kmock.action.CREATE, kmock.resource("batch/v1/jobs"))
RETRY = "… create batch/jobs failed (503 Service Unavailable); retrying in 0.5s"
OFF = "autonomy_enabled: false\n"


def first_create_fails_while(emulator, change) -> None:
    """The first create runs `change(k)`, then is answered 503."""

    def install(k: kmock.KubernetesEmulator) -> None:
        k[ON_CREATE][:1] << (lambda request: change(k))
        k[ON_CREATE][:1] << 503

    emulator.react(install)


def test_the_control_a_503_is_retried_while_the_switch_stays_on(enabled_config, run_scheduler, emulator, slot):
    first_create_fails_while(emulator, lambda k: None)
    result = run_scheduler()
    assert result.returncode == EXIT_OK, result.stderr
    assert lines(result.stderr)[:2] == [
        RETRY,
        f"✓ Job {job_name('inventory', slot)} already exists (task inventory): this slot was already submitted",
    ]
    assert emulator.requests() == [LIST, CREATE, CREATE, CREATE]


def test_file_turned_off_during_a_failed_create_stops_before_the_retry(enabled_config, run_scheduler, emulator, mount):
    first_create_fails_while(emulator, lambda k: publish(mount, {CONFIG_FILE: OFF}))
    result = run_scheduler()
    assert result.returncode == EXIT_OK, result.stderr
    assert lines(result.stderr) == [
        RETRY,
        "⚠ Autonomy disabled in configuration mid-tick (autonomy_enabled: false): "
        "stopping, 0 of 2 planned jobs submitted",
    ]
    assert emulator.requests() == [LIST, CREATE]


def test_file_removed_during_a_failed_create_fails_closed(enabled_config, run_scheduler, emulator, mount, config_path):
    first_create_fails_while(emulator, lambda k: remove(mount))
    result = run_scheduler()
    assert result.returncode == EXIT_CONFIG_NOT_MOUNTED
    assert lines(result.stderr)[-1] == (
        f"✗ Config became unusable mid-tick ({config_path} does not exist): "
        "failing closed, 0 of 2 planned jobs submitted"
    )
    assert emulator.requests() == [LIST, CREATE]


@pytest.mark.parametrize(
    ("body", "exit_code", "line"),
    [
        (
            chart_config({"autonomy": {"enabled": False}}),
            EXIT_OK,
            f"⚠ Autonomy disabled in the live ConfigMap {LIVE_CONFIGMAP} (autonomy_enabled: false): "
            "stopping, 0 of 2 planned jobs submitted",
        ),
        ("autonomy_enabled: yes\n", EXIT_CONFIG_ERROR, None),
    ],
    ids=["off", "unusable"],
)
def test_live_configmap_changed_during_a_failed_create_stops_before_the_retry(
    enabled_config, run_scheduler, emulator, body, exit_code, line
):
    emulator.seed(config_map(enabled_config), resource=CONFIGMAPS)
    changed = config_map(body)

    def edit(k: kmock.KubernetesEmulator) -> None:
        k.objects[CONFIGMAPS, NAMESPACE, LIVE_CONFIGMAP] = changed

    first_create_fails_while(emulator, edit)
    result = run_scheduler(env={"LEVIATHAN_CONFIGMAP": LIVE_CONFIGMAP})
    assert result.returncode == exit_code, result.stderr
    output = lines(result.stderr)
    assert output[0] == RETRY
    if line:
        assert output[1:] == [line]
    else:
        [unusable] = output[1:]
        assert unusable.startswith(f"✗ The live ConfigMap {LIVE_CONFIGMAP} is unusable (")
        assert unusable.endswith("): failing closed, 0 of 2 planned jobs submitted")
    assert emulator.requests() == [LIST, GET, CREATE, GET]
    assert_no_traceback(result)


def test_cronjob_suspended_during_a_failed_create_stops_before_the_retry(enabled_config, run_scheduler, emulator):
    emulator.seed(cronjob(), resource=CRONJOBS)
    suspended = cronjob(suspend=True)

    def suspend(k: kmock.KubernetesEmulator) -> None:
        k.objects[CRONJOBS, NAMESPACE, CRONJOB] = suspended

    first_create_fails_while(emulator, suspend)
    result = run_scheduler(env={"LEVIATHAN_CRONJOB": CRONJOB})
    assert result.returncode == EXIT_OK, result.stderr
    assert lines(result.stderr) == [
        RETRY,
        f"⚠ CronJob {CRONJOB} is suspended (spec.suspend: true): stopping, 0 of 2 planned jobs submitted",
    ]
    assert emulator.requests() == [GET_CRONJOB, LIST, GET_CRONJOB, CREATE, GET_CRONJOB]
