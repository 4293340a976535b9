"""Before every create the tick also reads the live ConfigMap through the API; the most restrictive answer wins.

kubelet delivers a ConfigMap edit to the mounted file a minute or more late: here the file
still says enabled while the API already says otherwise.
"""

from __future__ import annotations

import kmock
import pytest

from leviathan_scheduler.exit_codes import EXIT_CONFIG_ERROR, EXIT_CONFIG_NOT_MOUNTED, EXIT_OK, EXIT_POLICY_REFUSED
from support.emulator import CONFIGMAPS, NAMESPACE, Call
from support.scheduler import (
    LIVE_CONFIGMAP,
    assert_no_traceback,
    chart_config,
    config_map,
    job_name,
    lines,
    worker_jobs,
)

LIST = Call("GET", "LIST", "batch/jobs", NAMESPACE)
CREATE = Call("POST", "CREATE", "batch/jobs", NAMESPACE)
GET = Call("GET", "FETCH", "configmaps", NAMESPACE)
LIVE = {"LEVIATHAN_CONFIGMAP": LIVE_CONFIGMAP}
ON_CREATE = (kmock.action.CREATE, kmock.resource("batch/v1/jobs"))


def test_reads_the_live_configmap_before_every_create(enabled_config, run_scheduler, emulator, slot):
    emulator.seed(config_map(enabled_config), resource=CONFIGMAPS)
    result = run_scheduler(env=LIVE)
    assert result.returncode == EXIT_OK
    assert emulator.requests() == [LIST, GET, CREATE, GET, CREATE]
    assert len(worker_jobs(emulator)) == 2


def test_live_disable_stops_the_tick_while_the_file_still_says_enabled(enabled_config, run_scheduler, emulator):
    emulator.seed(config_map(chart_config({"autonomy": {"enabled": False}})), resource=CONFIGMAPS)
    result = run_scheduler(env=LIVE)
    assert result.returncode == EXIT_OK
    assert lines(result.stderr) == [
        f"⚠ Autonomy disabled in the live ConfigMap {LIVE_CONFIGMAP} (autonomy_enabled: false): "
        "stopping, 0 of 2 planned jobs submitted"
    ]
    assert emulator.requests() == [LIST, GET]
    assert worker_jobs(emulator) == []


def test_live_disable_between_two_creates(enabled_config, run_scheduler, emulator, slot):
    emulator.seed(config_map(enabled_config), resource=CONFIGMAPS)
    disabled = config_map(chart_config({"autonomy": {"enabled": False}}))

    def install(k: kmock.KubernetesEmulator) -> None:
        def disable(request: kmock.Request) -> None:
            # While the first create is served, the ConfigMap is edited to off.
            k.objects[CONFIGMAPS, NAMESPACE, LIVE_CONFIGMAP] = disabled

        k[ON_CREATE][:1] << disable

    emulator.react(install)
    result = run_scheduler(env=LIVE)
    assert result.returncode == EXIT_OK, result.stderr
    assert lines(result.stderr) == [
        f"✓ Submitted job {job_name('inventory', slot)} (task inventory)",
        f"⚠ Autonomy disabled in the live ConfigMap {LIVE_CONFIGMAP} (autonomy_enabled: false): "
        "stopping, 1 of 2 planned jobs submitted",
    ]
    assert emulator.requests() == [LIST, GET, CREATE, GET]
    assert [j["metadata"]["name"] for j in worker_jobs(emulator)] == [job_name("inventory", slot)]


def test_a_missing_live_configmap_fails_closed(enabled_config, run_scheduler, emulator):
    result = run_scheduler(env=LIVE)
    assert result.returncode == EXIT_CONFIG_NOT_MOUNTED
    assert lines(result.stderr) == [
        f"✗ ConfigMap {LIVE_CONFIGMAP} not found through the API: failing closed, 0 of 2 planned jobs submitted"
    ]
    assert worker_jobs(emulator) == []
    assert_no_traceback(result)


@pytest.mark.parametrize("body", ["autonomy_enabled: yes\n", "autonomy_enabled: true\nautonomy_enabled: true\n", ""])
def test_an_unusable_live_configmap_fails_closed(enabled_config, run_scheduler, emulator, body):
    emulator.seed(config_map(body), resource=CONFIGMAPS)
    result = run_scheduler(env=LIVE)
    assert result.returncode == EXIT_CONFIG_ERROR
    [line] = lines(result.stderr)
    assert line.startswith(f"✗ The live ConfigMap {LIVE_CONFIGMAP} is unusable (")
    assert line.endswith("): failing closed, 0 of 2 planned jobs submitted")
    assert worker_jobs(emulator) == []
    assert_no_traceback(result)


def test_a_refusal_by_the_admission_policy_ends_the_tick_with_one_line(enabled_config, run_scheduler, emulator, slot):
    emulator.seed(config_map(enabled_config), resource=CONFIGMAPS)
    denial = {
        "apiVersion": "v1",
        "kind": "Status",
        "status": "Failure",
        "code": 403,
        "reason": "Forbidden",
        "message": f'jobs.batch "{job_name("inventory", slot)}" is forbidden: ValidatingAdmissionPolicy '
        "'leviathan-worker-switch.leviathan' with binding 'leviathan-worker-switch.leviathan' denied request: "
        "worker Jobs of release leviathan are refused: autonomy is not enabled in ConfigMap "
        "leviathan/leviathan-autonomy-config (key dev.yaml)",
    }
    emulator.react(lambda k: k[ON_CREATE] << 403 << denial)
    result = run_scheduler(env=LIVE)
    assert result.returncode == EXIT_POLICY_REFUSED
    assert lines(result.stderr) == [
        f"✗ The API server's admission policy refused worker Job {job_name('inventory', slot)}: autonomy is off "
        "(or unusable) in the live ConfigMap; stopping, 0 of 2 planned jobs submitted"
    ]
    assert emulator.requests() == [LIST, GET, CREATE]
    assert_no_traceback(result)


def test_a_refusal_for_a_missing_configmap_is_a_policy_refusal_too(enabled_config, run_scheduler, emulator):
    """Without the live check (an older scheduler), the API server still refuses: 422, no params found."""
    denial = {
        "apiVersion": "v1",
        "kind": "Status",
        "status": "Failure",
        "code": 422,
        "reason": "Invalid",
        "message": "jobs.batch \"x\" is forbidden: ValidatingAdmissionPolicy 'leviathan-worker-switch.leviathan' with "
        "binding 'leviathan-worker-switch.leviathan' denied request: failed to configure binding: no params found "
        "for policy binding with `Deny` parameterNotFoundAction",
    }
    emulator.react(lambda k: k[ON_CREATE] << 422 << denial)
    result = run_scheduler()
    assert result.returncode == EXIT_POLICY_REFUSED
    assert "✗ The API server's admission policy refused worker Job" in result.stderr


def test_an_rbac_403_is_still_an_rbac_failure(enabled_config, run_scheduler, emulator):
    emulator.seed(config_map(enabled_config), resource=CONFIGMAPS)
    emulator.react(lambda k: k[ON_CREATE] << 403)
    result = run_scheduler(env=LIVE)
    assert result.returncode == 6
    assert "the scheduler's Role must allow create on jobs.batch" in result.stderr
