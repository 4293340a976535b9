"""The scheduler CronJob."""

from __future__ import annotations

import jmespath
import pytest

from support.helm import render_chart

CRONJOB = "templates/scheduler-cronjob.yaml"


class TestCronJob:
    def test_runbook_name_schedule_and_labels(self):
        (cronjob,) = render_chart(show_only=[CRONJOB])
        assert cronjob["metadata"]["name"] == "leviathan-dev-scheduler"
        assert cronjob["metadata"]["namespace"] == "leviathan"
        spec = cronjob["spec"]
        assert spec["schedule"] == "*/5 * * * *"
        assert spec["suspend"] is False
        assert spec["concurrencyPolicy"] == "Forbid"
        assert spec["startingDeadlineSeconds"] == 120
        assert spec["successfulJobsHistoryLimit"] == 3
        assert spec["failedJobsHistoryLimit"] == 5
        pod = spec["jobTemplate"]["spec"]["template"]
        assert pod["metadata"]["labels"]["app"] == "leviathan-dev-scheduler"
        assert pod["spec"]["restartPolicy"] == "Never"
        assert pod["spec"]["serviceAccountName"] == "leviathan-scheduler"
        assert spec["jobTemplate"]["spec"]["backoffLimit"] == 0

    @pytest.mark.parametrize("suspend", [True, False])
    def test_suspend_is_the_emergency_stop(self, suspend):
        (cronjob,) = render_chart({"scheduler": {"suspend": suspend}}, show_only=[CRONJOB])
        assert cronjob["spec"]["suspend"] is suspend

    @pytest.mark.parametrize(
        ("values", "path", "expected"),
        [
            ({"schedule": "@hourly"}, "spec.schedule", "@hourly"),
            ({"timeZone": "Europe/Berlin"}, "spec.timeZone", "Europe/Berlin"),
            ({}, "spec.timeZone", None),
            ({"startingDeadlineSeconds": 600}, "spec.startingDeadlineSeconds", 600),
            ({"activeDeadlineSeconds": 100}, "spec.jobTemplate.spec.activeDeadlineSeconds", 100),
        ],
    )
    def test_schedule_settings(self, values, path, expected):
        (cronjob,) = render_chart({"scheduler": values}, show_only=[CRONJOB])
        assert jmespath.search(path, cronjob) == expected

    def test_downward_api_tells_the_tick_its_slot_and_account(self):
        (cronjob,) = render_chart(show_only=[CRONJOB])
        env = jmespath.search("spec.jobTemplate.spec.template.spec.containers[0].env", cronjob)
        by_name = {e["name"]: e for e in env}
        assert (
            by_name["LEVIATHAN_SCHEDULER_JOB_NAME"]["valueFrom"]["fieldRef"]["fieldPath"]
            == "metadata.labels['job-name']"
        )
        assert by_name["LEVIATHAN_SERVICE_ACCOUNT"]["valueFrom"]["fieldRef"]["fieldPath"] == "spec.serviceAccountName"

    def test_name_longer_than_a_cronjob_allows_is_shortened(self):
        (cronjob,) = render_chart({"fullnameOverride": "x" * 30, "environment": "y" * 20}, show_only=[CRONJOB])
        assert cronjob["metadata"]["name"] == "x" * 21 + "-" + "y" * 20 + "-scheduler"  # 52 characters
