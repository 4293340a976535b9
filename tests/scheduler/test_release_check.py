"""`leviathan-scheduler check-release-policy`, the `helm test` pod rendered while autonomy.releasers is set.

The emulator serves the two cluster-scoped objects the way the API server does;
the chart side (what is rendered, and the account's rights) is in tests/chart.
"""

from __future__ import annotations

from typing import Any

import kmock
import pytest

from support.emulator import KubeEmulator
from support.scheduler import assert_no_traceback, lines

POLICY = "leviathan-leviathan-release"
GROUP = "admissionregistration.k8s.io/v1"
POLICIES = f"{GROUP}/validatingadmissionpolicies"
BINDINGS = f"{GROUP}/validatingadmissionpolicybindings"
RESTORE = 'helm upgrade leviathan "$LEVIATHAN_CHART" -n leviathan --reset-then-reuse-values'
EXIT_NOT_IN_FORCE = 9


def not_found(kind: str) -> dict[str, Any]:
    """The API server's answer for a deleted object."""
    return {
        "apiVersion": "v1",
        "kind": "Status",
        "status": "Failure",
        "code": 404,
        "reason": "NotFound",
        "message": f'{kind}.admissionregistration.k8s.io "{POLICY}" not found',
        "details": {"name": POLICY, "group": "admissionregistration.k8s.io", "kind": kind},
    }


def serve(emulator: KubeEmulator, policy: bool = True, binding: dict[str, Any] | None = None) -> None:
    """Serve the policy API with the policy (or a deleted one) and this binding spec (None: deleted)."""

    def install(k: kmock.KubernetesEmulator) -> None:
        for resource, kind in ((POLICIES, "ValidatingAdmissionPolicy"), (BINDINGS, "ValidatingAdmissionPolicyBinding")):
            k.resources[resource] = kmock.ResourceInfo(kind=kind, namespaced=False, verbs={"get"})
        if policy:
            k.objects[POLICIES, None, POLICY] = {"apiVersion": GROUP, "kind": "ValidatingAdmissionPolicy",
                                                  "metadata": {"name": POLICY}}  # fmt: skip
        else:
            k[kmock.resource(POLICIES)] << 404 << not_found("validatingadmissionpolicies")
        if binding is not None:
            k.objects[BINDINGS, None, POLICY] = {"apiVersion": GROUP, "kind": "ValidatingAdmissionPolicyBinding",
                                                  "metadata": {"name": POLICY}, "spec": binding}  # fmt: skip
        else:
            k[kmock.resource(BINDINGS)] << 404 << not_found("validatingadmissionpolicybindings")

    emulator.call(install)


BOUND = {"policyName": POLICY, "validationActions": ["Deny"]}


def check(run_scheduler):
    result = run_scheduler("check-release-policy", POLICY, "--restore", RESTORE)
    assert_no_traceback(result)
    return result


def test_both_objects_present_pass(emulator, run_scheduler):
    serve(emulator, binding=BOUND)
    result = check(run_scheduler)
    assert result.returncode == 0, result.stderr
    assert lines(result.stderr) == [
        f"✓ The release restriction is in force: ValidatingAdmissionPolicy {POLICY} and its binding (Deny) exist"
    ]
    assert {(call.action, call.resource) for call in emulator.requests()} == {
        ("FETCH", "admissionregistration.k8s.io/validatingadmissionpolicies"),
        ("FETCH", "admissionregistration.k8s.io/validatingadmissionpolicybindings"),
    }


def test_a_deleted_policy_fails_with_one_line_that_says_how_to_restore(emulator, run_scheduler):
    serve(emulator, policy=False, binding=BOUND)
    result = check(run_scheduler)
    assert result.returncode == EXIT_NOT_IN_FORCE
    assert lines(result.stderr) == [
        f"✗ The release restriction is NOT in force: ValidatingAdmissionPolicy {POLICY} not found. The switch "
        "itself still works (turning autonomy off and suspending are unaffected), but anyone with update rights "
        f"can turn it back on. Restore it with: {RESTORE}"
    ]


def test_a_deleted_binding_fails_too(emulator, run_scheduler):
    serve(emulator)
    result = check(run_scheduler)
    assert result.returncode == EXIT_NOT_IN_FORCE
    assert f"NOT in force: ValidatingAdmissionPolicyBinding {POLICY} not found." in result.stderr


def test_both_deleted_are_named_in_the_one_line(emulator, run_scheduler):
    serve(emulator, policy=False)
    result = check(run_scheduler)
    assert result.returncode == EXIT_NOT_IN_FORCE
    [line] = lines(result.stderr)
    assert f"ValidatingAdmissionPolicy {POLICY} not found; ValidatingAdmissionPolicyBinding {POLICY} not found" in line


@pytest.mark.parametrize(
    "binding",
    [
        {"policyName": "something-else", "validationActions": ["Deny"]},
        {"policyName": POLICY, "validationActions": ["Warn"]},
    ],
)
def test_a_binding_that_does_not_deny_through_the_policy_is_not_in_force(emulator, run_scheduler, binding):
    serve(emulator, binding=binding)
    result = check(run_scheduler)
    assert result.returncode == EXIT_NOT_IN_FORCE
    assert f"ValidatingAdmissionPolicyBinding {POLICY} does not deny through it" in result.stderr


def test_an_api_server_that_does_not_serve_the_api_says_so(emulator, run_scheduler):
    """No resource registered: the emulator answers 404 without a NotFound Status, as an unserved path does."""
    result = check(run_scheduler)
    assert result.returncode == EXIT_NOT_IN_FORCE
    assert (
        f"ValidatingAdmissionPolicy {POLICY} not found (this API server does not serve "
        "admissionregistration.k8s.io/v1 ValidatingAdmissionPolicy)"
    ) in result.stderr


@pytest.mark.parametrize(("status", "code"), [(403, 6), (500, 5)])
def test_an_api_that_will_not_say_is_a_failure_not_a_pass(emulator, run_scheduler, status, code):
    serve(emulator, binding=BOUND)
    emulator.react(lambda k: k[kmock.resource(POLICIES)] << status)
    result = check(run_scheduler)
    assert result.returncode == code
    [line] = lines(result.stderr)
    assert line.startswith(
        f"✗ Cannot tell whether the release restriction is in force: get ValidatingAdmissionPolicy {POLICY} "
        f"answered {status}"
    )
