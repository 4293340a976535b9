"""The worker admission policy: rendered where the API server serves it, scoped to this release's workers."""

from __future__ import annotations

import re

from support.helm import NAMESPACE, RELEASE, find, helm, render_chart
from support.paths import CHART

POLICY = "templates/worker-admission-policy.yaml"
API = ["--api-versions", "admissionregistration.k8s.io/v1/ValidatingAdmissionPolicy"]
SKIPPED = "The worker admission policy is skipped"


def render_notes(*args: str) -> str:
    result = helm("install", RELEASE, str(CHART), "--namespace", NAMESPACE, "--dry-run=client", *args)
    assert result.returncode == 0, result.stderr
    return result.stdout.split("NOTES:", 1)[1]


def test_rendered_where_the_api_exists_and_skipped_with_a_notes_line_elsewhere():
    assert sorted((d["kind"], d["metadata"]["name"]) for d in render_chart(show_only=[POLICY], extra_args=API)) == [
        ("ValidatingAdmissionPolicy", "leviathan-worker-shape.leviathan"),
        ("ValidatingAdmissionPolicy", "leviathan-worker-switch.leviathan"),
        ("ValidatingAdmissionPolicyBinding", "leviathan-worker-shape.leviathan"),
        ("ValidatingAdmissionPolicyBinding", "leviathan-worker-switch.leviathan"),
    ]
    assert not [d for d in render_chart() if "ValidatingAdmissionPolicy" in d["kind"]]
    # `helm install --dry-run` knows no such API: NOTES says so (chart/tests/admission_notes_test.yaml
    # shows the other case, with the API served).
    assert SKIPPED in render_notes()


def test_off_by_value():
    docs = render_chart({"admissionPolicy": {"enabled": False}}, extra_args=API)
    assert not [d for d in docs if "ValidatingAdmissionPolicy" in d["kind"]]
    assert SKIPPED not in render_notes("--set", "admissionPolicy.enabled=false")


def test_binding_takes_this_release_configmap_and_matches_only_its_workers():
    docs = render_chart(name="ops", namespace="team-a", show_only=[POLICY], extra_args=API)
    policy = find(docs, "ValidatingAdmissionPolicy", "ops-leviathan-worker-switch.team-a")
    binding = find(docs, "ValidatingAdmissionPolicyBinding", "ops-leviathan-worker-switch.team-a")
    # Cluster-scoped: the namespace is in the name, so two releases never share a policy.
    assert policy["metadata"]["name"] == "ops-leviathan-worker-switch.team-a"
    assert binding["spec"]["policyName"] == policy["metadata"]["name"]
    assert binding["spec"]["paramRef"] == {
        "name": "ops-leviathan-autonomy-config",
        "namespace": "team-a",
        "parameterNotFoundAction": "Deny",
    }
    assert binding["spec"]["validationActions"] == ["Deny"]
    assert binding["spec"]["matchResources"] == {
        "namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "team-a"}},
        "objectSelector": {"matchLabels": {"app": "ops-leviathan-worker"}},
    }
    assert policy["spec"]["failurePolicy"] == "Fail"
    assert policy["spec"]["paramKind"] == {"apiVersion": "v1", "kind": "ConfigMap"}
    rules = policy["spec"]["matchConstraints"]["resourceRules"]
    assert rules == [
        {"apiGroups": ["batch"], "apiVersions": ["*"], "operations": ["CREATE", "UPDATE"], "resources": ["jobs"]}
    ]


def test_reads_the_environment_key_and_names_configmap_and_runbook_section_in_the_denial():
    policy = find(
        render_chart({"environment": "prod"}, show_only=[POLICY], extra_args=API),
        "ValidatingAdmissionPolicy",
        "leviathan-worker-switch.leviathan",
    )
    text = next(v["expression"] for v in policy["spec"]["variables"] if v["name"] == "text")
    assert '"prod.yaml" in params.data' in text
    message = policy["spec"]["validations"][0]["messageExpression"]
    assert "ConfigMap leviathan/leviathan-autonomy-config (key prod.yaml)" in message
    assert 'section \\"Worker Jobs refused by the API server\\"' in message


def test_the_switch_policy_reads_on_from_the_one_grammar():
    """The CEL's "on" is the generated grammar's pattern, not a rule of its own."""
    import json

    from leviathan_config import PATTERNS

    policy = find(
        render_chart(show_only=[POLICY], extra_args=API),
        "ValidatingAdmissionPolicy",
        "leviathan-worker-switch.leviathan",
    )
    enabled = next(v["expression"] for v in policy["spec"]["variables"] if v["name"] == "enabled")
    assert json.dumps("^(?:" + PATTERNS["on"] + ")$") in enabled


def test_the_shape_policy_binds_the_scheduler_service_account_only():
    docs = render_chart(name="ops", namespace="team-a", show_only=[POLICY], extra_args=API)
    policy = find(docs, "ValidatingAdmissionPolicy", "ops-leviathan-worker-shape.team-a")
    [condition] = policy["spec"]["matchConditions"]
    assert (
        condition["expression"] == 'request.userInfo.username == "system:serviceaccount:team-a:ops-leviathan-scheduler"'
    )
    assert policy["spec"]["failurePolicy"] == "Fail"
    messages = " ".join(v["message"] for v in policy["spec"]["validations"])
    assert "label app=ops-leviathan-worker" in messages


def test_the_shape_policy_allows_the_volume_sources_and_account_the_settings_allow():
    """One rule in two languages: the CEL's list is pinned to the scheduler's (settings.py)."""
    from leviathan_scheduler.settings import _VOLUME_SOURCES

    docs = render_chart({"worker": {"serviceAccountName": "crawler"}}, show_only=[POLICY], extra_args=API)
    policy = find(docs, "ValidatingAdmissionPolicy", "leviathan-worker-shape.leviathan")
    expressions = " ".join(v["expression"] for v in policy["spec"]["validations"])
    assert sorted(re.findall(r"has\(v\.(\w+)\)", expressions)) == sorted(_VOLUME_SOURCES)
    assert '["","default","crawler"]' in expressions
