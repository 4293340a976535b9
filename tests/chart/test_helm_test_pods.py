"""`helm test`: two pods that prove the runbook on the live release.

The status pod compares the control plane's answer with the ConfigMap file it
mounts itself (the rendered switch may be null: sticky); the scheduler pod runs
the scheduler's own checks as the scheduler's ServiceAccount. What each command
does is tested in tests/control_plane and tests/scheduler/test_check.py.
"""

from __future__ import annotations

import jmespath
import pytest

from support.contract import configmap_source
from support.helm import find, notes, render_chart
from support.paths import VALUES_DIR

STATUS = "templates/tests/test-status.yaml"
SCHEDULER = "templates/tests/test-scheduler.yaml"


def helm_test_pod(template: str, values: dict | None = None, values_file: str = "dev.yaml") -> dict:
    (pod,) = render_chart(values, show_only=[template], values_files=[VALUES_DIR / values_file])
    assert pod["kind"] == "Pod"
    assert pod["metadata"]["annotations"]["helm.sh/hook"] == "test"
    return pod


@pytest.mark.parametrize("environment", ["dev", "prod"])
def test_status_pod_expects_the_exact_source_and_the_mounted_switch(environment):
    pod = helm_test_pod(STATUS, values_file=f"{environment}.yaml")
    path = f"/etc/leviathan/autonomy/{environment}.yaml"
    args = pod["spec"]["containers"][0]["args"]
    assert args[:3] == ["check", "--url", "http://leviathan-control-plane:8000/v1/autonomy/status"]
    assert args[args.index("--expect-source") + 1] == configmap_source(path)
    assert args[args.index("--expect-enabled-from") + 1] == path
    assert "--expect-enabled" not in args  # never a rendered literal
    mount = jmespath.search("spec.containers[0].volumeMounts[?name=='autonomy-config'] | [0]", pod)
    assert mount["mountPath"] == "/etc/leviathan/autonomy"
    volume = jmespath.search("spec.volumes[?name=='autonomy-config'] | [0].configMap", pod)
    assert volume["name"] == "leviathan-autonomy-config"


def test_status_pod_is_the_same_whatever_the_switch():
    """The expectation comes from the live ConfigMap, so the hook rendered at upgrade time never goes stale."""
    enabled, disabled = ({"autonomy": {"enabled": value}} for value in (True, False))
    assert helm_test_pod(STATUS, enabled) == helm_test_pod(STATUS, disabled)


def test_scheduler_pod_runs_the_check_as_the_scheduler_with_its_mount():
    docs = render_chart(values_files=[VALUES_DIR / "dev.yaml"])
    pod = find(docs, "Pod", "leviathan-test-scheduler")
    cronjob = find(docs, "CronJob")
    tick = cronjob["spec"]["jobTemplate"]["spec"]["template"]["spec"]
    assert pod["spec"]["serviceAccountName"] == tick["serviceAccountName"] == "leviathan-scheduler"
    assert pod["spec"]["automountServiceAccountToken"] is True
    container, tick_container = pod["spec"]["containers"][0], tick["containers"][0]
    assert container["image"] == tick_container["image"]
    assert container["args"] == ["check"]
    assert container["volumeMounts"] == tick_container["volumeMounts"]
    assert pod["spec"]["volumes"] == tick["volumes"]
    config_env = {"name": "LEVIATHAN_AUTONOMY_CONFIG", "value": "/etc/leviathan/autonomy/dev.yaml"}
    assert config_env in container["env"] and config_env in tick_container["env"]
    assert container["securityContext"] == tick_container["securityContext"]


def test_scheduler_pod_follows_a_brought_service_account():
    values = {"scheduler": {"serviceAccount": {"create": False, "name": "ops-scheduler"}}}
    assert helm_test_pod(SCHEDULER, values)["spec"]["serviceAccountName"] == "ops-scheduler"


def test_test_pods_carry_no_runbook_app_label():
    """`kubectl logs -l app=leviathan-dev-scheduler` must show ticks only."""
    for template in (STATUS, SCHEDULER):
        assert "app" not in helm_test_pod(template)["metadata"]["labels"]


# ---- the release restriction's check (autonomy.releasers set) ------------------------------------

RELEASE_POLICY = "templates/tests/test-release-policy.yaml"
RELEASERS = {"autonomy": {"releasers": {"groups": ["release-owners"]}}}
POLICY = "leviathan-leviathan-release"


def test_no_releasers_no_release_policy_check_and_the_notes_say_the_restriction_is_off():
    docs = render_chart(values_files=[VALUES_DIR / "dev.yaml"])
    assert [d["metadata"]["name"] for d in docs if "test-release-policy" in d["metadata"]["name"]] == []
    assert "The release restriction is OFF" in notes()
    assert "fails while that policy" not in notes()


def test_releasers_add_a_check_that_gets_exactly_the_policy_and_its_binding():
    docs = render_chart(RELEASERS, show_only=[RELEASE_POLICY], values_files=[VALUES_DIR / "dev.yaml"])
    assert sorted(d["kind"] for d in docs) == ["ClusterRole", "ClusterRoleBinding", "Pod", "ServiceAccount"]
    for doc in docs:
        assert doc["metadata"]["annotations"]["helm.sh/hook"] == "test"
        assert doc["metadata"]["annotations"]["helm.sh/hook-delete-policy"] == "before-hook-creation,hook-succeeded"
        assert "app" not in doc["metadata"]["labels"]
    # The account and its rights exist before the pod starts (Helm runs hooks by weight, then name).
    weights = {d["kind"]: int(d["metadata"]["annotations"].get("helm.sh/hook-weight", "0")) for d in docs}
    assert max(weights[k] for k in ("ServiceAccount", "ClusterRole", "ClusterRoleBinding")) < weights["Pod"]

    account = find(docs, "ServiceAccount")
    role = find(docs, "ClusterRole")
    assert role["metadata"]["name"] == f"{POLICY}-test"  # cluster-scoped: named after the release and namespace
    assert role["rules"] == [
        {
            "apiGroups": ["admissionregistration.k8s.io"],
            "resources": ["validatingadmissionpolicies", "validatingadmissionpolicybindings"],
            "resourceNames": [POLICY],
            "verbs": ["get"],
        }
    ]
    binding = find(docs, "ClusterRoleBinding")
    assert binding["roleRef"] == {
        "apiGroup": "rbac.authorization.k8s.io",
        "kind": "ClusterRole",
        "name": f"{POLICY}-test",
    }
    assert binding["subjects"] == [
        {"kind": "ServiceAccount", "name": account["metadata"]["name"], "namespace": "leviathan"}
    ]

    pod = find(docs, "Pod")
    assert pod["spec"]["serviceAccountName"] == account["metadata"]["name"]
    assert pod["spec"]["automountServiceAccountToken"] is True
    [container] = pod["spec"]["containers"]
    assert container["image"] == "ghcr.io/leviathan/scheduler:0.1.0"
    assert container["args"] == [
        "check-release-policy",
        POLICY,
        "--restore",
        'helm upgrade leviathan "$LEVIATHAN_CHART" -n leviathan --reset-then-reuse-values',
    ]


def test_the_check_names_the_policy_the_chart_renders():
    docs = render_chart(RELEASERS, values_files=[VALUES_DIR / "dev.yaml"])
    policy = find(docs, "ValidatingAdmissionPolicy", POLICY)
    pod = find(docs, "Pod", "leviathan-test-release-policy")
    assert pod["spec"]["containers"][0]["args"][1] == policy["metadata"]["name"]
    assert find(docs, "ValidatingAdmissionPolicyBinding", POLICY)["spec"]["policyName"] == POLICY
    assert "fails while that policy or its binding is missing" in notes("--set", "autonomy.releasers.groups={ops}")


def test_the_check_follows_the_release_name_and_namespace():
    [pod] = [
        d
        for d in render_chart(RELEASERS, show_only=[RELEASE_POLICY], name="blue", namespace="ops")
        if d["kind"] == "Pod"
    ]
    assert pod["spec"]["containers"][0]["args"][1] == "blue-leviathan-ops-release"
    assert "helm upgrade blue" in pod["spec"]["containers"][0]["args"][3]
