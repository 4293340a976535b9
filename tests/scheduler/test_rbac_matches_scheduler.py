"""The chart's scheduler Role grants exactly the calls a tick makes: recorded against the emulator."""

from __future__ import annotations

import pytest

from support.emulator import job, job_list
from support.helm import find, render_chart

from .conftest import worker_labels

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
def recorded(enabled_config, run_scheduler, emulator):
    """The requests of ticks that take every path a tick can take against the API."""
    emulator.seed(job("running-elsewhere", worker_labels("retired")))
    assert run_scheduler().returncode == 0  # list, then create both tasks
    emulator.react(lambda k: k["list"][1:] << job_list())
    assert run_scheduler().returncode == 0  # a stale list: the creates answer 409
    return emulator.requests()


def test_every_request_is_granted(role, recorded):
    assert used(recorded) <= granted(role)


def test_every_grant_is_used(role, recorded):
    assert granted(role) == used(recorded)


def test_the_recording_saw_both_calls(recorded):
    """The control: the recording is not empty, so the two checks above compare something."""
    assert {call.action for call in recorded} == {"LIST", "CREATE"}
    assert {call.resource for call in recorded} == {"batch/jobs"}
