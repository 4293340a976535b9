"""The chart's scheduler Role grants exactly the calls a tick makes: recorded against the emulator."""

from __future__ import annotations

import pytest

from support.emulator import CONFIGMAPS, CRONJOBS, job, job_list
from support.helm import find, render_chart
from support.scheduler import CRONJOB, LIVE_CONFIGMAP, config_map, cronjob, failed_job, worker_labels

# kmock's request actions, as RBAC verbs; UPDATE is a PATCH or a PUT.
VERBS = {"LIST": "list", "CREATE": "create", "FETCH": "get", "WATCH": "watch", "DELETE": "delete"}


def verb_of(call) -> str:
    if call.action == "UPDATE":
        return "update" if call.method == "PUT" else "patch"
    return VERBS[call.action]


def granted(role: dict) -> set[tuple[str, str, str]]:
    return {
        (group, resource, verb)
        for rule in role["rules"]
        for group in rule.get("apiGroups", [])
        for resource in rule.get("resources", [])
        for verb in rule.get("verbs", [])
    }


def used(calls) -> set[tuple[str, str, str]]:
    """(apiGroup, resource, verb) of every recorded request."""
    result = set()
    for call in calls:
        assert call.resource is not None and call.action is not None, call  # only Kubernetes API calls
        group, _, resource = call.resource.rpartition("/")
        result.add((group, resource, verb_of(call)))
    return result


@pytest.fixture(scope="module")
def role() -> dict:
    return find(render_chart(show_only=["templates/scheduler-rbac.yaml"]), "Role")


@pytest.fixture
def recorded(enabled_config, run_scheduler, emulator, slot):
    """The requests of ticks that take every path a tick can take against the API, as the chart runs them."""
    emulator.seed(job("running-elsewhere", worker_labels("retired")))
    emulator.seed(*(failed_job("inventory", slot - 5 * n) for n in (1, 2, 3)))  # a paused task: one Event
    emulator.seed(config_map(enabled_config), resource=CONFIGMAPS)
    emulator.seed(cronjob(), resource=CRONJOBS)
    env = {"LEVIATHAN_CONFIGMAP": LIVE_CONFIGMAP, "LEVIATHAN_CRONJOB": CRONJOB}
    # get the CronJob, list, an Event, then get the ConfigMap and the CronJob and create
    assert run_scheduler(env=env).returncode == 0
    emulator.react(lambda k: k["list"][1:] << job_list())
    assert run_scheduler(env=env).returncode == 0  # a stale list: the creates answer 409
    return emulator.requests()


def test_every_request_is_granted(role, recorded):
    assert used(recorded) <= granted(role)


def test_every_grant_is_used(role, recorded):
    assert granted(role) == used(recorded)


def test_the_recording_saw_every_call(recorded):
    """The control: the recording is not empty, so the two checks above compare something."""
    assert {call.action for call in recorded} == {"LIST", "CREATE", "FETCH"}
    assert {call.resource for call in recorded} == {"batch/jobs", "batch/cronjobs", "configmaps", "events"}


def test_the_configmap_grant_names_only_the_autonomy_configmap(role):
    [rule] = [rule for rule in role["rules"] if "configmaps" in rule["resources"]]
    assert rule["resourceNames"] == [LIVE_CONFIGMAP]


def test_the_cronjob_grant_names_only_the_scheduler_cronjob(role):
    [rule] = [rule for rule in role["rules"] if "cronjobs" in rule["resources"]]
    assert rule == {"apiGroups": ["batch"], "resources": ["cronjobs"], "resourceNames": [CRONJOB], "verbs": ["get"]}


def test_the_cronjob_it_reads_is_the_one_the_chart_renders():
    [cron] = [d for d in render_chart(show_only=["templates/scheduler-cronjob.yaml"]) if d["kind"] == "CronJob"]
    [container] = cron["spec"]["jobTemplate"]["spec"]["template"]["spec"]["containers"]
    env = {e["name"]: e.get("value") for e in container["env"]}
    assert env["LEVIATHAN_CRONJOB"] == cron["metadata"]["name"] == CRONJOB
