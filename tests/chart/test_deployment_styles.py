"""The ways people deploy the chart: as a subchart, through GitOps renders, with their own RBAC, spread out."""

from __future__ import annotations

import base64
import shutil
from pathlib import Path

import pytest
import yaml

from support.helm import HelmError, find, helm, pod_spec, render_chart, render_manifest
from support.paths import CHART, VALUES_DIR

TOKEN = "gitops-token-0123456789-abcdefghijklmnop"
GITOPS = {"gitops": True, "auth": {"token": TOKEN}, "autonomy": {"enabled": True}, "scheduler": {"suspend": False}}


class TestSubchart:
    @pytest.fixture
    def umbrella(self, tmp_path: Path) -> Path:
        """An umbrella chart that depends on this one, the way a platform team vendors it."""
        root = tmp_path / "platform"
        shutil.copytree(CHART, root / "charts" / "leviathan", ignore=shutil.ignore_patterns("tests"))
        chart = {
            "apiVersion": "v2",
            "name": "platform",
            "version": "1.0.0",
            "dependencies": [
                {
                    "name": "leviathan",
                    "version": "0.1.0",
                    "repository": f"file://{CHART}",
                    "condition": "leviathan.enabled",
                }
            ],
        }
        (root / "Chart.yaml").write_text(yaml.safe_dump(chart))
        values = {"global": {"imageRegistry": "registry.example", "team": "platform"}, "leviathan": {"enabled": True}}
        (root / "values.yaml").write_text(yaml.safe_dump(values))
        return root

    def render(self, umbrella: Path, *args: str) -> list[dict]:
        result = helm("template", "platform", str(umbrella), "--namespace", "leviathan", *args)
        assert result.returncode == 0, result.stderr
        return [doc for doc in yaml.safe_load_all(result.stdout) if doc]

    def test_renders_with_globals_under_the_strict_schema(self, umbrella):
        docs = self.render(umbrella)
        assert find(docs, "CronJob")["metadata"]["name"] == "platform-leviathan-dev-scheduler"
        assert find(docs, "ConfigMap", "platform-leviathan-autonomy-config")["metadata"]["name"] == "platform-leviathan-autonomy-config"
        assert find(docs, "ConfigMap", "platform-leviathan-autonomy-config")["data"]["dev.yaml"].startswith("autonomy_enabled: true\n")

    def test_parent_values_reach_the_subchart(self, umbrella):
        docs = self.render(umbrella, "--set", "leviathan.environment=prod", "--set", "leviathan.autonomy.enabled=false")
        assert find(docs, "CronJob")["metadata"]["name"] == "platform-leviathan-prod-scheduler"
        assert find(docs, "ConfigMap", "platform-leviathan-autonomy-config")["data"]["prod.yaml"].startswith("autonomy_enabled: false\n")

    def test_condition_switches_it_off(self, umbrella):
        assert self.render(umbrella, "--set", "leviathan.enabled=false") == []

    def test_schema_still_refuses_unknown_keys(self, umbrella):
        result = helm("template", "platform", str(umbrella), "--set", "leviathan.autonomy.enable=false")
        assert result.returncode != 0
        assert "'enable' not allowed" in result.stderr


class TestGitOps:
    @pytest.mark.parametrize("values_file", ["dev.yaml", "prod.yaml"])
    def test_two_renders_are_byte_identical(self, values_file):
        files = [VALUES_DIR / values_file]
        assert render_manifest(GITOPS, values_files=files) == render_manifest(GITOPS, values_files=files)

    def test_the_token_is_the_one_given(self):
        secret = find(render_chart(GITOPS), "Secret")
        assert base64.b64decode(secret["data"]["LEVIATHAN_CONTROL_PLANE_TOKEN"]).decode() == TOKEN

    def test_an_existing_secret_needs_no_token(self):
        values = {
            "gitops": True,
            "autonomy": {"enabled": False},
            "scheduler": {"suspend": False},
            "auth": {"existingSecret": "vault-token"},
        }
        assert render_manifest(values) == render_manifest(values)

    def test_refuses_to_generate_a_token(self):
        with pytest.raises(HelmError, match=r"gitops: set auth\.token .* or auth\.existingSecret"):
            render_chart({"gitops": True, "autonomy": {"enabled": True}, "scheduler": {"suspend": False}})

    def test_refuses_to_guess_the_switch(self):
        with pytest.raises(HelmError, match=r"gitops: set autonomy\.enabled to true or false"):
            render_chart({"gitops": True, "auth": {"token": TOKEN}, "scheduler": {"suspend": False}})

    def test_refuses_to_guess_the_emergency_stop(self):
        """Issue 22: `suspend: false` rendered by default would let Argo CD's self-heal undo a kubectl stop."""
        with pytest.raises(HelmError, match=r"gitops: set scheduler\.suspend to true or false"):
            render_chart({"gitops": True, "auth": {"token": TOKEN}, "autonomy": {"enabled": True}})

    @pytest.mark.parametrize("suspend", [True, False])
    def test_the_stop_in_git_is_rendered(self, suspend):
        values = {**GITOPS, "scheduler": {"suspend": suspend}}
        assert find(render_chart(values), "CronJob")["spec"]["suspend"] is suspend

    def test_without_gitops_a_generated_token_differs_per_render(self):
        """Documented: `helm template` cannot keep a generated token; a live upgrade keeps it (lookup)."""
        first, second = (find(render_chart(), "Secret")["data"] for _ in range(2))
        assert first != second


class TestSpreading:
    @pytest.mark.parametrize(
        ("name", "values"),
        [("leviathan", {}), ("leviathan-blue", {"nameOverride": "autonomy"}), ("ops", {"fullnameOverride": "ops-x"})],
    )
    def test_prod_spreading_selects_this_releases_control_plane_pods(self, name, values):
        deployment = find(render_chart(values, values_files=[VALUES_DIR / "prod.yaml"], name=name), "Deployment")
        pod_labels = deployment["spec"]["template"]["metadata"]["labels"]
        spec = pod_spec(deployment)
        [term] = spec["affinity"]["podAntiAffinity"]["preferredDuringSchedulingIgnoredDuringExecution"]
        selectors = [term["podAffinityTerm"]["labelSelector"]["matchLabels"]]
        selectors += [c["labelSelector"]["matchLabels"] for c in spec["topologySpreadConstraints"]]
        for selector in selectors:
            assert selector == deployment["spec"]["selector"]["matchLabels"]
            assert selector.items() <= pod_labels.items()
            assert selector["app.kubernetes.io/instance"] == name

    def test_hard_preset_is_required(self):
        values = {"controlPlane": {"podAntiAffinityPreset": "hard"}}
        anti = pod_spec(find(render_chart(values), "Deployment"))["affinity"]["podAntiAffinity"]
        assert list(anti) == ["requiredDuringSchedulingIgnoredDuringExecution"]

    def test_explicit_affinity_wins_over_the_preset(self):
        affinity = {"nodeAffinity": {"requiredDuringSchedulingIgnoredDuringExecution": {"nodeSelectorTerms": []}}}
        values = {"controlPlane": {"podAntiAffinityPreset": "soft", "affinity": affinity}}
        assert pod_spec(find(render_chart(values), "Deployment"))["affinity"] == affinity

    def test_prod_values_hard_code_no_labels(self):
        assert "app.kubernetes.io" not in (VALUES_DIR / "prod.yaml").read_text()

    def test_none_by_default(self):
        spec = pod_spec(find(render_chart(), "Deployment"))
        assert "affinity" not in spec and "topologySpreadConstraints" not in spec


def test_gitops_notes_say_what_holds_under_argo_cd_and_flux():
    from support.helm import notes

    text = notes("--set", "gitops=true", "--set", "auth.token=" + TOKEN, "--set", "autonomy.enabled=false",
                 "--set", "scheduler.suspend=true")  # fmt: skip
    assert "this render sets autonomy_enabled: false and suspend: true from Git" in text
    assert "ignoreDifferences" in text and "RespectIgnoreDifferences=true of docs/GITOPS.md" in text
    assert "ignoreDifferences" not in notes()


def test_the_gitops_doc_names_the_exact_fields():
    from support.paths import REPO

    doc = (REPO / "docs" / "GITOPS.md").read_text()
    docs = render_chart(GITOPS)
    configmap = find(docs, "ConfigMap", "leviathan-autonomy-config")
    assert "dev.yaml" in configmap["data"]
    assert "name: leviathan-autonomy-config\n      jqPathExpressions:\n        - '.data[\"dev.yaml\"]'" in doc
    assert "name: leviathan-dev-scheduler\n      jsonPointers:\n        - /spec/suspend" in doc
    assert '- paths: ["/data/dev.yaml"]' in doc and '- paths: ["/spec/suspend"]' in doc
    assert "RespectIgnoreDifferences=true" in doc
