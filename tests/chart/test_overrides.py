"""The overrides users expect of a chart (issue 22): common annotations, a global registry and pull
secrets in both forms, extra env/volumes for both sidecars, long release names shortened, never refused."""

from __future__ import annotations

import pytest
import yaml

from kubectl_leviathan.names import Names
from support.helm import HelmError, find, pod_spec, render_chart

IMAGES = ("ghcr.io/leviathan/control-plane", "ghcr.io/leviathan/scheduler")


def containers(docs, kind):
    return pod_spec(find(docs, kind))["containers"][0]


def test_common_annotations_reach_every_object_the_chart_owns():
    values = {
        "commonAnnotations": {"team": "platform"},
        "controlPlane": {"service": {"annotations": {"team": "service-owner", "x": "z"}}},
        "metrics": {k: {"enabled": True, "force": True} for k in ("serviceMonitor", "podMonitor", "prometheusRule")},
    }
    apis = ["--api-versions", "admissionregistration.k8s.io/v1/ValidatingAdmissionPolicy"]
    apis += ["--api-versions", "admissionregistration.k8s.io/v1beta1/MutatingAdmissionPolicy"]
    docs = render_chart(values, extra_args=apis)
    assert {"ConfigMap", "ValidatingAdmissionPolicy", "MutatingAdmissionPolicy"} <= {d["kind"] for d in docs}
    annotated = [d for d in docs if "helm.sh/hook" not in d["metadata"].get("annotations", {})]
    assert {d["kind"] for d in annotated} >= {
        "Deployment",
        "CronJob",
        "Service",
        "ServiceAccount",
        "Role",
        "RoleBinding",
        "NetworkPolicy",
        "Secret",
        "ServiceMonitor",
        "PodMonitor",
        "PrometheusRule",
    }
    for doc in annotated:
        expected = "service-owner" if doc["kind"] == "Service" else "platform"
        assert doc["metadata"]["annotations"]["team"] == expected, doc["kind"]
    assert find(docs, "Service")["metadata"]["annotations"]["x"] == "z"
    assert "annotations" not in find(render_chart(), "Deployment")["metadata"]


@pytest.mark.parametrize(
    "secrets",
    [["regcred"], [{"name": "regcred"}]],
    ids=["string", "name-object"],
)
def test_image_pull_secrets_in_both_forms_and_global(secrets):
    docs = render_chart({"imagePullSecrets": secrets, "global": {"imagePullSecrets": ["shared", {"name": "regcred"}]}})
    for kind in ("Deployment", "CronJob"):
        assert pod_spec(find(docs, kind))["imagePullSecrets"] == [{"name": "regcred"}, {"name": "shared"}]
    # The workers get the same, through the scheduler's settings.
    config = find(docs, "ConfigMap", "leviathan-scheduler-config")
    assert "imagePullSecrets:\n    - regcred\n    - shared" in "\n".join(config["data"].values())


def test_a_pull_secret_without_a_name_is_refused():
    with pytest.raises(HelmError, match="imagePullSecrets"):
        render_chart({"imagePullSecrets": [{"nam": "typo"}]})


@pytest.mark.parametrize(
    ("registry", "repository", "expected"),
    [
        ("", IMAGES[0], "ghcr.io/leviathan/control-plane:0.1.0"),
        ("registry.example.com", IMAGES[0], "registry.example.com/leviathan/control-plane:0.1.0"),
        ("localhost:5000/mirror", IMAGES[0], "localhost:5000/mirror/leviathan/control-plane:0.1.0"),
        ("registry.example.com", "leviathan/control-plane", "registry.example.com/leviathan/control-plane:0.1.0"),
    ],
)
def test_global_image_registry_is_honoured(registry, repository, expected):
    docs = render_chart({"global": {"imageRegistry": registry}, "controlPlane": {"image": {"repository": repository}}})
    assert containers(docs, "Deployment")["image"] == expected
    assert containers(docs, "CronJob")["image"].startswith(
        expected.rsplit("/leviathan/", 1)[0] + "/leviathan/scheduler:"
    )


@pytest.mark.parametrize("component", ["controlPlane", "scheduler"])
def test_extra_env_and_volumes(component):
    extra = {
        "extraEnv": [
            {"name": "HTTPS_PROXY", "value": "http://proxy:3128"},
            {"name": "API_KEY", "valueFrom": {"secretKeyRef": {"name": "keys", "key": "api"}}},
        ],
        "extraEnvFrom": [{"secretRef": {"name": "proxy-env"}}, {"configMapRef": {"name": "settings"}}],
        "extraVolumes": [{"name": "corp-ca", "configMap": {"name": "corp-ca"}}],
        "extraVolumeMounts": [{"name": "corp-ca", "mountPath": "/etc/ssl/corp", "readOnly": True}],
    }
    docs = render_chart({component: extra})
    kind = "Deployment" if component == "controlPlane" else "CronJob"
    container = containers(docs, kind)
    env = {e["name"]: e for e in container["env"]}
    assert env["HTTPS_PROXY"]["value"] == "http://proxy:3128"
    assert env["API_KEY"]["valueFrom"]["secretKeyRef"] == {"name": "keys", "key": "api"}
    assert "LEVIATHAN_AUTONOMY_CONFIG" in env  # the chart's own stay
    assert container["envFrom"] == extra["extraEnvFrom"]
    assert extra["extraVolumeMounts"][0] in container["volumeMounts"]
    assert extra["extraVolumes"][0] in pod_spec(find(docs, kind))["volumes"]
    # The pod security the chart sets is untouched.
    assert container["securityContext"]["readOnlyRootFilesystem"] is True


@pytest.mark.parametrize(
    ("values", "message"),
    [
        ({"extraEnv": [{"name": "LEVIATHAN_AUTONOMY_CONFIG", "value": "/tmp/x"}]}, "is set by the chart"),
        ({"extraVolumes": [{"name": "autonomy-config", "emptyDir": {}}]}, "already has a volume named autonomy-config"),
        ({"extraVolumeMounts": [{"name": "x", "mountPath": "/etc/leviathan/autonomy"}]}, "would shadow"),
        ({"extraVolumes": [{"name": "host", "hostPath": {"path": "/"}}]}, "hostPath|not"),
    ],
    ids=["env", "volume", "mount", "hostPath"],
)
@pytest.mark.parametrize("component", ["controlPlane", "scheduler"])
def test_extras_cannot_replace_the_switch_or_weaken_the_pod(component, values, message):
    with pytest.raises(HelmError, match=message):
        render_chart({component: values})


RELEASE_37 = "payments-platform-autonomy-production"  # 37 characters, no "leviathan" in it


def test_a_long_release_name_is_shortened_not_refused():
    docs = render_chart(name=RELEASE_37)
    cronjob = find(docs, "CronJob")["metadata"]["name"]
    assert cronjob == "payments-platform-autonomy-production-dev-scheduler" or len(cronjob) <= 52
    assert len(cronjob) <= 52 and cronjob.endswith("-dev-scheduler")
    for doc in docs:
        assert len(doc["metadata"]["name"]) <= (52 if doc["kind"] == "CronJob" else 253)
        for value in doc["metadata"].get("labels", {}).values():
            assert len(value) <= 63
    worker = Names(release=RELEASE_37)
    assert worker.cronjob == cronjob  # the plugin derives the same names
    [settings] = [d for d in docs if d["kind"] == "ConfigMap" and d["metadata"]["name"].endswith("-scheduler-config")]
    assert f"app: {worker.worker_app}" in "\n".join(settings["data"].values())


def test_release_leviathan_keeps_the_runbook_names():
    docs = render_chart(values={"environment": "prod"})
    assert find(docs, "CronJob")["metadata"]["name"] == "leviathan-prod-scheduler"
    assert find(docs, "Service")["metadata"]["name"] == "leviathan-control-plane"
    assert find(docs, "ConfigMap", "leviathan-autonomy-config")
    assert pod_spec(find(docs, "CronJob")) and Names(env="prod").worker_app == "leviathan-worker"


def test_common_labels_reach_the_worker_jobs():
    from leviathan_scheduler.jobs import build_job
    from leviathan_scheduler.settings import parse_settings

    task = {"name": "crawl", "image": "example/crawl:1.0"}
    docs = render_chart({"commonLabels": {"owner": "payments"}, "scheduler": {"tasks": [task]}})
    settings = find(docs, "ConfigMap", "leviathan-scheduler-config")["data"]["scheduler.yaml"]
    parsed = parse_settings(yaml.safe_load(settings))
    job = build_job(parsed.tasks[0], parsed.worker, "leviathan", 29937986, "")
    assert job["metadata"]["labels"]["owner"] == "payments"
    assert job["spec"]["template"]["metadata"]["labels"]["owner"] == "payments"
