"""The autonomy ConfigMap (the switch file alone, in its grammar), the scheduler's settings ConfigMap,
and how the pods mount them."""

from __future__ import annotations

import re

import jmespath
import pytest
import yaml

from leviathan_config import PATTERNS, read_autonomy_config, read_settings_file
from leviathan_scheduler.settings import parse_settings
from support.helm import HelmError, find, pod_spec, render_chart
from support.paths import VALUES_DIR, values_files

CONFIGMAP = "templates/configmap.yaml"


class KubectlStyleDumper(yaml.SafeDumper):
    """Prints multi-line strings as literal blocks, like `kubectl -o yaml` (when the text allows it)."""

    def represent_str(self, data: str) -> yaml.ScalarNode:
        style = "|" if "\n" in data else None
        return self.represent_scalar("tag:yaml.org,2002:str", data, style=style)


KubectlStyleDumper.add_representer(str, KubectlStyleDumper.represent_str)
WORKLOADS = ["templates/control-plane-deployment.yaml", "templates/scheduler-cronjob.yaml"]


class TestConfigMap:
    def test_runbook_name_and_key(self):
        configmap, settings = render_chart(values_files=[VALUES_DIR / "dev.yaml"], show_only=[CONFIGMAP])
        assert configmap["metadata"]["name"] == "leviathan-autonomy-config"
        assert configmap["metadata"]["namespace"] == "leviathan"
        assert list(configmap["data"]) == ["dev.yaml"]
        assert settings["metadata"]["name"] == "leviathan-scheduler-config"
        assert list(settings["data"]) == ["scheduler.yaml"]
        assert "autonomy_enabled" not in settings["data"]["scheduler.yaml"]

    @pytest.mark.parametrize("values_file", values_files(), ids=lambda p: p.name)
    def test_the_switch_file_is_in_its_grammar_and_holds_nothing_else(self, values_file):
        configmap, _ = render_chart(values_files=[values_file], show_only=[CONFIGMAP])
        (body,) = configmap["data"].values()
        assert re.fullmatch(PATTERNS["grammar"], body), body
        assert [line.split(":")[0] for line in body.splitlines()] == ["autonomy_enabled", "reason"]

    @pytest.mark.parametrize("enabled", [True, False])
    def test_switch_is_the_first_line_exactly_as_the_runbook_shows(self, enabled):
        configmap, _ = render_chart({"autonomy": {"enabled": enabled}}, show_only=[CONFIGMAP])
        body = configmap["data"]["dev.yaml"]
        assert body.splitlines()[0] == f"autonomy_enabled: {str(enabled).lower()}"

    @pytest.mark.parametrize("enabled", [True, False])
    def test_kubectl_grep_finds_exactly_one_line(self, enabled):
        """`kubectl get configmap ... -o yaml | grep autonomy_enabled` must print one line."""
        configmap, _ = render_chart({"autonomy": {"enabled": enabled}}, show_only=[CONFIGMAP])
        dumped = yaml.dump(configmap, Dumper=KubectlStyleDumper, default_flow_style=False)
        assert [line.strip() for line in dumped.splitlines() if "autonomy_enabled" in line] == [
            f"autonomy_enabled: {str(enabled).lower()}"
        ]

    def test_body_has_no_trailing_spaces_so_kubectl_prints_it_as_a_block(self):
        configmap, _ = render_chart(show_only=[CONFIGMAP])
        body = configmap["data"]["dev.yaml"]
        assert all(line == line.rstrip() for line in body.splitlines())
        assert "\t" not in body

    @pytest.mark.parametrize("environment", ["dev", "staging", "prod"])
    def test_key_follows_environment(self, environment):
        docs = render_chart({"environment": environment}, show_only=[CONFIGMAP, *WORKLOADS])
        assert list(docs[0]["data"]) == [f"{environment}.yaml"]
        for kind in ("Deployment", "CronJob"):
            env = pod_spec(find(docs, kind))["containers"][0]["env"]
            assert {"name": "LEVIATHAN_AUTONOMY_CONFIG", "value": f"/etc/leviathan/autonomy/{environment}.yaml"} in env

    @pytest.mark.parametrize("values_file", values_files(), ids=lambda p: p.name)
    def test_shared_reader_and_scheduler_accept_the_rendered_config(self, values_file, tmp_path):
        configmap, settings_map = render_chart(values_files=[values_file], show_only=[CONFIGMAP])
        (key, body), *_ = configmap["data"].items()
        path = tmp_path / key
        path.write_text(body)
        (tmp_path / "scheduler.yaml").write_text(settings_map["data"]["scheduler.yaml"])
        config = read_autonomy_config(path)
        assert config.problem == ""
        rendered_values = yaml.safe_load(values_file.read_text())
        # No live ConfigMap under `helm template`: the install default applies.
        assert config.autonomy_enabled is rendered_values.get("autonomy", {}).get("enabledOnInstall", True)
        settings_file = read_settings_file(tmp_path / "scheduler.yaml")
        assert settings_file.problem == ""
        settings = parse_settings(settings_file.document)
        assert [t.name for t in settings.tasks] == [t["name"] for t in rendered_values["scheduler"]["tasks"]]
        assert settings.worker is not None
        assert settings.worker.selector == {"app": "leviathan-worker", "app.kubernetes.io/instance": "leviathan"}

    @pytest.mark.parametrize("reason", ["", "INC-123: runaway retries", "it's # not a comment: {[x]} & ~"])
    def test_reason_round_trips_into_config(self, reason, tmp_path):
        configmap, _ = render_chart({"autonomy": {"enabled": False, "reason": reason}}, show_only=[CONFIGMAP])
        path = tmp_path / "dev.yaml"
        path.write_text(configmap["data"]["dev.yaml"])
        assert read_autonomy_config(path).reason == reason

    @pytest.mark.parametrize("reason", ['say "why"', "back\\slash", "ünïcode"])
    def test_a_reason_outside_the_grammar_is_refused_naming_the_value(self, reason):
        with pytest.raises(HelmError, match="autonomy.reason"):
            render_chart({"autonomy": {"enabled": False, "reason": reason}}, show_only=[CONFIGMAP])

    def test_no_annotations_that_a_kubectl_edit_would_leave_stale(self):
        """The data is the truth: no state, reason or time annotation beside it (and renders stay identical)."""
        for configmap in render_chart({"autonomy": {"enabled": False, "reason": "INC-1"}}, show_only=[CONFIGMAP]):
            assert "annotations" not in configmap["metadata"]

    def test_tasks_and_guardrails_are_delivered(self, tmp_path):
        task = {"name": "crawl", "image": "example/crawl:1.0", "args": ["--fast"], "activeDeadlineSeconds": 60}
        values = {
            "scheduler": {"tasks": [task], "maxConcurrentWorkers": 7, "maxJobsPerTick": 2, "pauseAfterFailures": 4}
        }
        _, settings = render_chart(values, show_only=[CONFIGMAP])
        document = yaml.safe_load(settings["data"]["scheduler.yaml"])
        assert document["scheduler"] == {
            "maxConcurrentWorkers": 7,
            "maxJobsPerTick": 2,
            "pauseAfterFailures": 4,
            "tasks": [task],
        }

    def test_duplicate_task_names_are_refused(self):
        task = {"name": "crawl", "image": "example/crawl:1.0"}
        with pytest.raises(HelmError, match='task name "crawl" is used twice'):
            render_chart({"scheduler": {"tasks": [task, task]}}, show_only=[CONFIGMAP])


class TestMount:
    @pytest.mark.parametrize("template", WORKLOADS)
    def test_whole_directory_is_mounted_read_only(self, template):
        (doc,) = render_chart(show_only=[template])
        spec = pod_spec(doc)
        mount = jmespath.search("containers[0].volumeMounts[?name=='autonomy-config'] | [0]", spec)
        assert mount == {"name": "autonomy-config", "mountPath": "/etc/leviathan/autonomy", "readOnly": True}
        volume = jmespath.search("volumes[?name=='autonomy-config'] | [0]", spec)
        assert volume["configMap"]["name"] == "leviathan-autonomy-config"
        assert volume["configMap"]["optional"] is True
        assert "items" not in volume["configMap"]

    def test_the_settings_directory_is_mounted_read_only_where_it_is_read(self):
        for template in ("templates/scheduler-cronjob.yaml", "templates/tests/test-scheduler.yaml"):
            (doc,) = render_chart(show_only=[template])
            spec = pod_spec(doc)
            mount = jmespath.search("containers[0].volumeMounts[?name=='scheduler-config'] | [0]", spec)
            assert mount == {"name": "scheduler-config", "mountPath": "/etc/leviathan/scheduler", "readOnly": True}
            volume = jmespath.search("volumes[?name=='scheduler-config'] | [0]", spec)
            assert volume["configMap"]["name"] == "leviathan-scheduler-config"
            env = spec["containers"][0]["env"]
            assert {"name": "LEVIATHAN_SCHEDULER_CONFIG", "value": "/etc/leviathan/scheduler/scheduler.yaml"} in env

    @pytest.mark.parametrize("values_file", values_files(), ids=lambda p: p.name)
    def test_no_subpath_anywhere(self, values_file):
        # A subPath mount never receives ConfigMap or Secret updates.
        docs = render_chart(values_files=[values_file])
        mounts = [
            mount
            for doc in docs
            if doc["kind"] in ("Deployment", "CronJob", "Pod")
            for container in pod_spec(doc)["containers"]
            for mount in container.get("volumeMounts", [])
        ]
        # control plane 4 (with the API token and the settings), scheduler 2, helm test pods 2 + 2
        assert len(mounts) == 10
        assert [m for m in mounts if "subPath" in m or "subPathExpr" in m] == []
