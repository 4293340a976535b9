"""A tick reads its CronJob ($LEVIATHAN_CRONJOB, set by the chart) before the list and before every create.

Suspended, it submits nothing: the emergency stop holds even against a tick made by hand with
`kubectl create job --from=cronjob/leviathan-dev-scheduler`. Not found (deleted, a brake too), or
unreadable, it fails closed.
"""

from __future__ import annotations

import kmock
import pytest

from leviathan_scheduler.exit_codes import EXIT_API_FORBIDDEN, EXIT_API_REJECTED, EXIT_CRONJOB_NOT_FOUND, EXIT_OK
from support.emulator import CRONJOBS, NAMESPACE, Call
from support.scheduler import CRONJOB, assert_no_traceback, cronjob, job_name, lines, worker_jobs

LIST = Call("GET", "LIST", "batch/jobs", NAMESPACE)
CREATE = Call("POST", "CREATE", "batch/jobs", NAMESPACE)
GET_CRONJOB = Call("GET", "FETCH", "batch/cronjobs", NAMESPACE)
WITH_CRONJOB = {"LEVIATHAN_CRONJOB": CRONJOB}
ON_GET_CRONJOB = (kmock.action.FETCH, kmock.resource("batch/v1/cronjobs"))
ON_CREATE = (kmock.action.CREATE, kmock.resource("batch/v1/jobs"))


@pytest.mark.parametrize("suspend", [False, None], ids=["suspend false", "suspend absent"])
def test_a_running_cronjob_lets_the_tick_submit(enabled_config, run_scheduler, emulator, suspend):
    emulator.seed(cronjob(suspend=suspend), resource=CRONJOBS)
    result = run_scheduler(env=WITH_CRONJOB)
    assert result.returncode == EXIT_OK, result.stderr
    assert emulator.requests() == [GET_CRONJOB, LIST, GET_CRONJOB, CREATE, GET_CRONJOB, CREATE]
    assert len(worker_jobs(emulator)) == 2


def test_a_tick_from_a_suspended_cronjob_submits_nothing(enabled_config, run_scheduler, emulator):
    emulator.seed(cronjob(suspend=True), resource=CRONJOBS)
    result = run_scheduler(env=WITH_CRONJOB)
    assert result.returncode == EXIT_OK, result.stderr
    assert lines(result.stderr) == [f"⚠ CronJob {CRONJOB} is suspended (spec.suspend: true): this tick submits nothing"]
    assert emulator.requests() == [GET_CRONJOB]
    assert worker_jobs(emulator) == []


def test_suspended_between_two_creates(enabled_config, run_scheduler, emulator, slot):
    emulator.seed(cronjob(), resource=CRONJOBS)
    suspended = cronjob(suspend=True)

    def install(k: kmock.KubernetesEmulator) -> None:
        def suspend(request: kmock.Request) -> None:
            k.objects[CRONJOBS, NAMESPACE, CRONJOB] = suspended

        k[ON_CREATE][:1] << suspend

    emulator.react(install)
    result = run_scheduler(env=WITH_CRONJOB)
    assert result.returncode == EXIT_OK, result.stderr
    assert lines(result.stderr) == [
        f"✓ Submitted job {job_name('inventory', slot)} (task inventory)",
        f"⚠ CronJob {CRONJOB} is suspended (spec.suspend: true): stopping, 1 of 2 planned jobs submitted",
    ]
    assert [j["metadata"]["name"] for j in worker_jobs(emulator)] == [job_name("inventory", slot)]


def test_a_deleted_cronjob_fails_closed(enabled_config, run_scheduler, emulator):
    result = run_scheduler(env=WITH_CRONJOB)
    assert result.returncode == EXIT_CRONJOB_NOT_FOUND
    assert lines(result.stderr) == [
        f"✗ CronJob {CRONJOB} not found through the API: failing closed, this tick submits nothing"
    ]
    assert emulator.requests() == [GET_CRONJOB]
    assert worker_jobs(emulator) == []
    assert_no_traceback(result)


def test_a_forbidden_read_fails_closed_and_names_the_grant(enabled_config, run_scheduler, emulator):
    emulator.react(lambda k: k[ON_GET_CRONJOB] << 403)
    result = run_scheduler(env=WITH_CRONJOB)
    assert result.returncode == EXIT_API_FORBIDDEN
    line = lines(result.stderr)[0]
    assert line.startswith(f"✗ Kubernetes API refused get batch/cronjobs in namespace {NAMESPACE} (403")
    assert "the scheduler's Role must allow get on cronjobs.batch" in line
    assert worker_jobs(emulator) == []


@pytest.mark.parametrize("spec", [{"suspend": "yes"}, None], ids=["suspend not a boolean", "no spec"])
def test_an_unusable_cronjob_fails_closed(enabled_config, run_scheduler, emulator, spec):
    broken = cronjob()
    broken["spec"] = spec
    emulator.seed(broken, resource=CRONJOBS)
    result = run_scheduler(env=WITH_CRONJOB)
    if spec is None:  # no spec at all reads as not suspended, as the API defaults it
        assert result.returncode == EXIT_OK, result.stderr
        return
    assert result.returncode == EXIT_API_REJECTED
    assert lines(result.stderr)[0] == f"✗ Kubernetes API answered get CronJob {CRONJOB} with no usable spec"
    assert worker_jobs(emulator) == []


def test_without_the_variable_the_cronjob_is_not_read(enabled_config, run_scheduler, emulator):
    """Outside the chart (make run, tests) there is no CronJob to ask: the tick runs as before."""
    result = run_scheduler()
    assert result.returncode == EXIT_OK
    assert GET_CRONJOB not in emulator.requests()
