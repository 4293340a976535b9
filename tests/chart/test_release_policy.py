"""autonomy.releasers: the ValidatingAdmissionPolicy that restricts releasing (issue 14).

What the policy admits and refuses is proven on a real API server
(tests/e2e/test_release_control.py); here: when it is rendered, what it names, and the schema.
"""

from __future__ import annotations

import json

import pytest

from support.helm import HelmError, find, notes, render_chart

POLICY = "templates/release-policy.yaml"
RELEASERS = {
    "autonomy": {"releasers": {"users": ["carol"], "groups": ["release-owners"], "serviceAccounts": ["ops/deployer"]}}
}


VAP_API = ["--api-versions", "admissionregistration.k8s.io/v1/ValidatingAdmissionPolicy"]


def test_no_releasers_renders_no_releaser_check_and_notes_say_the_restriction_is_off():
    assert [d for d in render_chart() if "AdmissionPolicy" in d["kind"]] == []
    assert "The release restriction is OFF" in notes()
    # Where the API is served, the policy still refuses binaryData in the switch ConfigMap, and nothing else.
    policy = find(render_chart(show_only=[POLICY], extra_args=VAP_API), "ValidatingAdmissionPolicy")
    assert [v["expression"] for v in policy["spec"]["validations"]] == ["!variables.binary"]


def test_releasers_render_a_policy_bound_to_this_release_only():
    docs = render_chart(RELEASERS)
    policy = find(docs, "ValidatingAdmissionPolicy")
    binding = find(docs, "ValidatingAdmissionPolicyBinding")
    assert policy["metadata"]["name"] == binding["spec"]["policyName"] == "leviathan-leviathan-release"
    assert binding["spec"]["validationActions"] == ["Deny"]
    assert binding["spec"]["matchResources"]["namespaceSelector"] == {
        "matchLabels": {"kubernetes.io/metadata.name": "leviathan"}
    }
    assert policy["spec"]["failurePolicy"] == "Fail"
    rules = policy["spec"]["matchConstraints"]["resourceRules"]
    # Every write path but DELETE (a brake): create after a delete, replace, apply, patch, edit.
    assert [(r["resources"], r["resourceNames"], r["operations"]) for r in rules] == [
        (["configmaps"], ["leviathan-autonomy-config", "leviathan-scheduler-config"], ["CREATE", "UPDATE"]),
        (["cronjobs"], ["leviathan-dev-scheduler"], ["CREATE", "UPDATE"]),
    ]
    releaser = next(v["expression"] for v in policy["spec"]["variables"] if v["name"] == "releaser")
    assert json.dumps(["carol", "system:serviceaccount:ops:deployer"], separators=(",", ":")) in releaser
    assert '["release-owners"]' in releaser
    assert "Turning autonomy on and unsuspending the scheduler are restricted" in notes(
        "--set", "autonomy.releasers.users={carol}"
    )


def test_the_denial_names_who_may_release():
    policy = find(render_chart(RELEASERS), "ValidatingAdmissionPolicy")
    messages = [v.get("messageExpression", "") for v in policy["spec"]["validations"]]
    assert all(
        "users carol; groups release-owners; ServiceAccounts ops/deployer" in m for m in messages if "may not" in m
    )
    assert sum("may not" in m for m in messages) == 4


def test_on_is_the_one_grammar_on_both_sides_of_the_write():
    from leviathan_config import PATTERNS

    policy = find(render_chart(RELEASERS), "ValidatingAdmissionPolicy")
    enabling = next(v["expression"] for v in policy["spec"]["variables"] if v["name"] == "enabling")
    assert enabling.count(json.dumps("^(?:" + PATTERNS["on"] + ")$")) == 2


@pytest.mark.parametrize(
    "releasers",
    [
        {"users": ["alice bob"]},  # two names in one entry
        {"groups": [""]},
        {"serviceAccounts": ["deployer"]},  # no namespace
        {"serviceAccounts": ["Ops/Deployer"]},
        {"user": ["alice"]},  # a typo in the key
        {"users": "alice"},  # not a list
    ],
    ids=["space", "empty", "sa-without-namespace", "sa-uppercase", "key-typo", "not-a-list"],
)
def test_schema_refuses_a_malformed_identity(releasers):
    with pytest.raises(HelmError, match="releasers"):
        render_chart({"autonomy": {"releasers": releasers}})


def test_releasers_below_1_30_are_refused_in_one_line_not_installed_unenforced():
    """Before 1.30 no API server serves the policy: the chart says so rather than fail on an unknown kind."""
    with pytest.raises(HelmError, match=r"autonomy.releasers needs a ValidatingAdmissionPolicy .* this is v1.29.9"):
        render_chart(RELEASERS, extra_args=["--kube-version", "1.29.9"])
    # Without releasers an old cluster still installs (no policy), and 1.30 renders the restriction.
    assert [d for d in render_chart(extra_args=["--kube-version", "1.29.9"]) if "AdmissionPolicy" in d["kind"]] == []
    docs = render_chart(RELEASERS, show_only=[POLICY], extra_args=["--kube-version", "1.30.0", *VAP_API])
    assert find(docs, "ValidatingAdmissionPolicyBinding")["spec"]["policyName"].endswith("-release")


STAMP_API = ["--api-versions", "admissionregistration.k8s.io/v1beta1/MutatingAdmissionPolicy"]
STAMP_API_V1 = ["--api-versions", "admissionregistration.k8s.io/v1/MutatingAdmissionPolicy"]


@pytest.mark.parametrize(
    ("served", "expected"),
    [
        (STAMP_API, "admissionregistration.k8s.io/v1beta1"),
        (STAMP_API_V1, "admissionregistration.k8s.io/v1"),
        (STAMP_API_V1 + STAMP_API, "admissionregistration.k8s.io/v1"),
    ],
    ids=["v1beta1", "v1", "both: v1 preferred"],
)
def test_identity_stamp_uses_the_served_version_of_mutating_admission_policy(served, expected):
    docs = render_chart(extra_args=served)
    stamp = [d for d in docs if d["kind"] in ("MutatingAdmissionPolicy", "MutatingAdmissionPolicyBinding")]
    assert [(d["kind"], d["apiVersion"]) for d in stamp] == [
        ("MutatingAdmissionPolicy", expected),
        ("MutatingAdmissionPolicyBinding", expected),
    ]


def test_identity_stamp_ignores_other_versions_and_kinds():
    """Only MutatingAdmissionPolicy itself counts: a served group version without it is no stamp."""
    other = ["--api-versions", "admissionregistration.k8s.io/v1/ValidatingAdmissionPolicy"]
    other += ["--api-versions", "admissionregistration.k8s.io/v1alpha1/MutatingAdmissionPolicy"]
    assert [d for d in render_chart(extra_args=other) if "MutatingAdmissionPolicy" in d["kind"]] == []


def test_identity_stamp_only_where_mutating_admission_policy_is_served():
    assert [d for d in render_chart() if "MutatingAdmissionPolicy" in d["kind"]] == []
    docs = render_chart(extra_args=STAMP_API)
    policy = find(docs, "MutatingAdmissionPolicy")
    assert find(docs, "MutatingAdmissionPolicyBinding")["spec"]["policyName"] == policy["metadata"]["name"]
    (rule,) = policy["spec"]["matchConstraints"]["resourceRules"]
    assert rule["resourceNames"] == ["leviathan-autonomy-config"] and rule["operations"] == ["CREATE", "UPDATE"]
    (mutation,) = policy["spec"]["mutations"]
    assert "autonomy.leviathan.io/switched-by" in mutation["applyConfiguration"]["expression"]
    assert "request.userInfo.username" in mutation["applyConfiguration"]["expression"]


def control_plane_env(docs: list[dict]) -> dict[str, str | None]:
    deployment = find(docs, "Deployment", "leviathan-control-plane")
    [container] = [c for c in deployment["spec"]["template"]["spec"]["containers"] if c["name"] == "control-plane"]
    return {e["name"]: e.get("value") for e in container["env"]}


@pytest.mark.parametrize("served", [STAMP_API, STAMP_API_V1], ids=["v1beta1", "v1"])
def test_the_control_plane_is_told_the_stamp_policy_is_in_force_exactly_when_it_is_rendered(served):
    """switched_by is reported as the API server's stamp only with LEVIATHAN_STAMP_POLICY=true."""
    assert "LEVIATHAN_STAMP_POLICY" not in control_plane_env(render_chart())
    docs = render_chart(extra_args=served)
    assert find(docs, "MutatingAdmissionPolicy")
    assert control_plane_env(docs)["LEVIATHAN_STAMP_POLICY"] == "true"
    # Without API access the control plane reads no annotation at all: nothing to tell it.
    no_api = render_chart({"controlPlane": {"kubernetesApi": {"enabled": False}}}, extra_args=served)
    assert "LEVIATHAN_STAMP_POLICY" not in control_plane_env(no_api)
