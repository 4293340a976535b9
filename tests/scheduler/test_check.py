"""`leviathan-scheduler check`, the scheduler's `helm test` pod: config and RBAC, nothing submitted.

The emulator answers each SelfSubjectAccessReview the way RBAC would for a
Role: the chart's own Role, or a broken one.
"""

from __future__ import annotations

from typing import Any

import kmock
import pytest

from support.emulator import KubeEmulator
from support.helm import find, render_chart
from support.kubelet_volume import publish
from support.scheduler import CONFIG_FILE, assert_no_traceback, chart_config, lines, settings_path_for, worker_jobs

REVIEWS = kmock.resource("authorization.k8s.io", "v1", "selfsubjectaccessreviews")


def chart_role_rules() -> list[dict[str, Any]]:
    return find(render_chart(), "Role", "leviathan-scheduler")["rules"]


def authorize_as(emulator: KubeEmulator, rules: list[dict[str, Any]]) -> None:
    """Answer access reviews from these Role rules."""

    def answer(k: kmock.KubernetesEmulator, request: kmock.Request) -> dict[str, Any]:
        # kmock stores every create; reviews are not objects, so forget them.
        for key in [key for key in k.objects if key[0].plural == "selfsubjectaccessreviews"]:
            del k.objects[key]
        asked = request.data["spec"]["resourceAttributes"]
        allowed = asked["namespace"] == "leviathan" and any(
            asked["group"] in rule["apiGroups"]
            and asked["resource"] in rule["resources"]
            and asked["verb"] in rule["verbs"]
            and ("resourceNames" not in rule or asked.get("name") in rule["resourceNames"])
            for rule in rules
        )
        return {**request.data, "status": {"allowed": allowed}}

    emulator.react(lambda k: k[REVIEWS] << (lambda request: answer(k, request)))


def test_the_chart_role_passes_and_every_check_is_printed(emulator, run_scheduler, enabled_config, config_path):
    authorize_as(emulator, chart_role_rules())
    result = run_scheduler("check")
    assert_no_traceback(result)
    assert result.returncode == 0, result.stderr
    output = lines(result.stderr)
    settings = settings_path_for(config_path)
    assert output[0] == (
        f"✓ Config {config_path} is usable: autonomy_enabled: true; "
        f"settings {settings}: 2 task(s), at most 3 Job(s) per tick"
    )
    assert output[1:4] == [
        "✓ may list jobs.batch in namespace leviathan",
        "✓ may create jobs.batch in namespace leviathan",
        "✓ may create events in namespace leviathan",
    ]
    assert "✓ may not delete jobs.batch in namespace leviathan" in output
    assert "✓ may not get secrets in namespace leviathan" in output
    # Nothing listed or submitted: only access reviews.
    assert {call.resource for call in emulator.requests()} == {"authorization.k8s.io/selfsubjectaccessreviews"}
    assert worker_jobs(emulator) == []


def test_the_chart_role_may_read_its_own_configmap_and_cronjob_only(emulator, run_scheduler, enabled_config):
    """As the helm test pod runs it: both names set."""
    authorize_as(emulator, chart_role_rules())
    env = {"LEVIATHAN_CONFIGMAP": "leviathan-autonomy-config", "LEVIATHAN_CRONJOB": "leviathan-dev-scheduler"}
    result = run_scheduler("check", env=env)
    assert result.returncode == 0, result.stderr
    output = lines(result.stderr)
    assert "✓ may get cronjobs.batch leviathan-dev-scheduler in namespace leviathan" in output
    assert "✓ may not get cronjobs.batch in namespace leviathan" in output
    assert "✓ may get configmaps leviathan-autonomy-config in namespace leviathan" in output


def test_a_role_without_the_cronjob_grant_fails_the_check(emulator, run_scheduler, enabled_config):
    authorize_as(emulator, [rule for rule in chart_role_rules() if "cronjobs" not in rule["resources"]])
    result = run_scheduler("check", env={"LEVIATHAN_CRONJOB": "leviathan-dev-scheduler"})
    assert result.returncode == 6
    assert "✗ may not get cronjobs.batch leviathan-dev-scheduler in namespace leviathan: a tick needs to" in lines(
        result.stderr
    )


@pytest.mark.parametrize(
    ("verbs", "wrong_line"),
    [
        (["list"], "✗ may not create jobs.batch in namespace leviathan: a tick needs to"),
        (["list", "create", "delete"], "✗ may delete jobs.batch in namespace leviathan: a tick must not"),
    ],
)
def test_a_role_that_is_not_exactly_right_fails(emulator, run_scheduler, enabled_config, verbs, wrong_line):
    events = {"apiGroups": [""], "resources": ["events"], "verbs": ["create"]}
    authorize_as(emulator, [{"apiGroups": ["batch"], "resources": ["jobs"], "verbs": verbs}, events])
    result = run_scheduler("check")
    assert_no_traceback(result)
    assert result.returncode == 6
    assert wrong_line in lines(result.stderr)
    assert lines(result.stderr)[-1] == "✗ RBAC is not what a tick needs (1 wrong): see the scheduler Role (rbac.create)"


def test_a_role_without_events_fails(emulator, run_scheduler, enabled_config):
    """A pause would go unrecorded: the check says so."""
    authorize_as(emulator, [{"apiGroups": ["batch"], "resources": ["jobs"], "verbs": ["list", "create"]}])
    result = run_scheduler("check")
    assert result.returncode == 6
    assert "✗ may not create events in namespace leviathan: a tick needs to" in lines(result.stderr)


def test_settings_the_scheduler_would_refuse_fail_before_any_api_call(
    emulator, run_scheduler, publish_config, config_path
):
    publish_config(settings="scheduler:\n  tasks: [{name: Bad_Name, image: x}]\n")
    result = run_scheduler("check")
    assert_no_traceback(result)
    assert result.returncode == 4
    assert lines(result.stderr) == [
        f"✗ Settings are not usable by the scheduler: {settings_path_for(config_path)}: "
        "scheduler.tasks[0].name: 'Bad_Name' is not a DNS label of at most 30 characters"
    ]
    assert emulator.requests() == []


def test_a_missing_settings_file_fails_before_any_api_call(emulator, run_scheduler, mount, config_path):
    """The switch ConfigMap is mounted, the settings ConfigMap is not: check fails as a tick would."""
    publish(mount, {CONFIG_FILE: chart_config()})
    result = run_scheduler("check")
    assert_no_traceback(result)
    assert result.returncode == 4
    assert lines(result.stderr) == [
        f"✗ Settings are not usable by the scheduler: settings file {settings_path_for(config_path)} does not exist"
    ]
    assert emulator.requests() == []


def test_a_switch_file_outside_the_grammar_fails_before_any_api_call(emulator, run_scheduler, publish_config):
    """Settings written into the switch file, as the old layout had them: unusable, and check says which line."""
    publish_config(raw="autonomy_enabled: true\nscheduler:\n  tasks: [{name: inventory, image: x}]\n")
    result = run_scheduler("check")
    assert_no_traceback(result)
    assert result.returncode == 4
    [line] = lines(result.stderr)
    assert line.startswith("✗ Error reading config")
    assert "line 2 ('scheduler:') is outside the switch file's form" in line
    assert emulator.requests() == []


def test_an_unmounted_config_fails_closed(emulator, run_scheduler):
    result = run_scheduler("check")
    assert result.returncode == 3
    assert result.stderr.startswith("✗ Config not mounted")
    assert emulator.requests() == []


def test_an_api_that_cannot_answer_is_a_failure_not_a_traceback(emulator, run_scheduler, enabled_config):
    emulator.react(lambda k: k[REVIEWS] << 500)
    result = run_scheduler("check")
    assert_no_traceback(result)
    assert result.returncode == 5
    assert "✗ Cannot ask the API whether this account may list jobs.batch (500" in result.stderr
