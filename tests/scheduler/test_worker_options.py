"""Worker options (issue 22): env from Secret and ConfigMap references, placement and volumes, parsed by the
scheduler's settings and applied to the worker Job, with the restricted pod security it always sets."""

from __future__ import annotations

import pytest
import yaml

from leviathan_scheduler.jobs import build_job
from leviathan_scheduler.settings import SettingsError, parse_settings

WORKER = {
    "jobNamePrefix": "leviathan-worker",
    "selector": {"app": "leviathan-worker", "app.kubernetes.io/instance": "leviathan"},
    "releaseSelector": {"app.kubernetes.io/instance": "leviathan"},
    "labels": {"app.kubernetes.io/component": "worker"},
    "backoffLimit": 1,
    "activeDeadlineSeconds": 60,
    "ttlSecondsAfterFinished": 60,
    "runAsUser": 10001,
    "runAsGroup": 10001,
    "resources": {"limits": {"cpu": "1"}},
    "imagePullSecrets": ["regcred"],
}
SECRET_ENV = {"name": "API_TOKEN", "valueFrom": {"secretKeyRef": {"name": "inventory-api", "key": "token"}}}
CONFIG_ENV = {"name": "MODE", "valueFrom": {"configMapKeyRef": {"name": "settings", "key": "mode", "optional": True}}}
ENV_FROM = [{"secretRef": {"name": "db-credentials"}}, {"configMapRef": {"name": "settings"}, "prefix": "APP_"}]
PLACEMENT = {
    "serviceAccountName": "inventory-worker",
    "priorityClassName": "batch-low",
    "nodeSelector": {"pool": "batch"},
    "tolerations": [{"key": "batch", "operator": "Exists", "effect": "NoSchedule"}],
    "affinity": {"nodeAffinity": {"preferredDuringSchedulingIgnoredDuringExecution": []}},
    "volumes": [{"name": "cache", "persistentVolumeClaim": {"claimName": "inventory-cache"}}],
    "volumeMounts": [{"name": "cache", "mountPath": "/var/cache/inventory"}],
}


def settings(task_extra=None, worker_extra=None):
    task = {"name": "inventory", "image": "busybox:1.37.0", **(task_extra or {})}
    return parse_settings(
        {
            "scheduler": {"maxConcurrentWorkers": 1, "maxJobsPerTick": 1, "tasks": [task]},
            "worker": {**WORKER, **(worker_extra or {})},
        }
    )


def job(task_extra=None, worker_extra=None):
    parsed = settings(task_extra, worker_extra)
    return build_job(parsed.tasks[0], parsed.worker, "leviathan", 100, "sha")


def test_env_from_secret_and_configmap_references_reach_the_container_and_no_value_is_copied():
    manifest = job({"env": [{"name": "LITERAL", "value": "x"}, SECRET_ENV, CONFIG_ENV], "envFrom": ENV_FROM})
    [container] = manifest["spec"]["template"]["spec"]["containers"]
    assert container["env"] == [{"name": "LITERAL", "value": "x"}, SECRET_ENV, CONFIG_ENV]
    assert container["envFrom"] == ENV_FROM


def test_placement_and_volumes_reach_the_pod_and_the_restricted_security_stays():
    spec = job(worker_extra=PLACEMENT)["spec"]["template"]["spec"]
    assert spec["serviceAccountName"] == "inventory-worker"
    assert spec["priorityClassName"] == "batch-low"
    assert spec["nodeSelector"] == {"pool": "batch"}
    assert spec["tolerations"] == PLACEMENT["tolerations"]
    assert spec["affinity"] == PLACEMENT["affinity"]
    assert spec["volumes"][1:] == PLACEMENT["volumes"] and spec["volumes"][0]["name"] == "tmp"
    assert spec["containers"][0]["volumeMounts"][1:] == PLACEMENT["volumeMounts"]
    assert spec["automountServiceAccountToken"] is False
    assert spec["imagePullSecrets"] == [{"name": "regcred"}]
    assert spec["securityContext"]["runAsNonRoot"] is True
    security = spec["containers"][0]["securityContext"]
    assert security["readOnlyRootFilesystem"] is True and security["capabilities"] == {"drop": ["ALL"]}


def test_without_options_the_pod_is_as_before():
    spec = job()["spec"]["template"]["spec"]
    assert not {"serviceAccountName", "nodeSelector", "tolerations", "affinity", "priorityClassName"} & spec.keys()
    assert [v["name"] for v in spec["volumes"]] == ["tmp"]


@pytest.mark.parametrize(
    ("task_extra", "worker_extra", "message"),
    [
        ({"env": [{"name": "A", "value": "x", "valueFrom": SECRET_ENV["valueFrom"]}]}, None, "not both"),
        (
            {"env": [{"name": "A", "valueFrom": {"fieldRef": {"fieldPath": "metadata.name"}}}]},
            None,
            "exactly one of configMapKeyRef, secretKeyRef",
        ),
        ({"env": [{"name": "A", "valueFrom": {"secretKeyRef": {"name": "s"}}}]}, None, "secretKeyRef.key: missing"),
        ({"envFrom": [{"secretRef": {"name": "s"}, "configMapRef": {"name": "c"}}]}, None, "exactly one of"),
        (None, {"volumes": [{"name": "root", "hostPath": {"path": "/"}}]}, "exactly one source of"),
        (None, {"volumes": [{"name": "tmp", "emptyDir": {}}]}, "'tmp' is taken"),
        (None, {"volumes": [], "volumeMounts": [{"name": "nope", "mountPath": "/x"}]}, "is not one of worker.volumes"),
        (None, {**PLACEMENT, "volumeMounts": [{"name": "cache", "mountPath": "/tmp"}]}, "other than /tmp"),
        (None, {"tolerations": [{"key": "a", "operatorr": "Exists"}]}, "unknown key operatorr"),
        (None, {"serviceAccountName": "Not_A_Name"}, "is not a Kubernetes object name"),
    ],
    ids=[
        "value-and-valueFrom",
        "fieldRef",
        "no-key",
        "two-sources",
        "hostPath",
        "tmp",
        "mount-unknown",
        "mount-tmp",
        "toleration-typo",
        "sa-name",
    ],
)
def test_bad_worker_options_are_refused_naming_the_value(task_extra, worker_extra, message):
    with pytest.raises(SettingsError, match=message):
        settings(task_extra, worker_extra)


def test_the_chart_passes_the_options_to_the_scheduler():
    from support.helm import find, render_chart

    values = {
        "worker": {k: v for k, v in PLACEMENT.items()},
        "scheduler": {
            "tasks": [{"name": "inventory", "image": "busybox:1.37.0", "env": [SECRET_ENV], "envFrom": ENV_FROM}]
        },
    }
    config = find(render_chart(values), "ConfigMap", "leviathan-scheduler-config")
    document = yaml.safe_load(config["data"]["scheduler.yaml"])
    parsed = parse_settings(document)
    assert parsed.worker.service_account_name == "inventory-worker"
    assert parsed.worker.volume_mounts == tuple(PLACEMENT["volumeMounts"])
    assert parsed.tasks[0].env == (SECRET_ENV,)
    assert "token" not in config["data"]["scheduler.yaml"].replace("key: token", "")
