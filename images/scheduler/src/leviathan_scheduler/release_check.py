"""`leviathan-scheduler check-release-policy NAME`: `helm test` says whether the release restriction is in force.

Rendered only while autonomy.releasers is set (chart/templates/tests/test-release-policy.yaml).
It gets the ValidatingAdmissionPolicy NAME and its binding of the same name, as an account
that may get those two objects and nothing else, and fails with one line when either is
missing (deleted, or never created) or the binding does not deny through that policy. Without
them the switch itself still works; only the restriction on turning it back on is gone.
"""

from __future__ import annotations

import argparse
import json
from collections.abc import Callable
from typing import Any

from leviathan_scheduler.exit_codes import EXIT_API_FORBIDDEN, EXIT_API_UNAVAILABLE, EXIT_NOT_IN_FORCE, EXIT_OK
from leviathan_scheduler.output import say


class Unknown(Exception):
    """The API did not say whether the object exists."""

    def __init__(self, exit_code: int, message: str) -> None:
        super().__init__(message)
        self.exit_code = exit_code


def main(argv: list[str], default_namespace: str | None) -> int:
    parser = argparse.ArgumentParser(
        prog="leviathan-scheduler check-release-policy",
        description="Fail unless the release restriction's ValidatingAdmissionPolicy and its binding exist.",
    )
    parser.add_argument("name", help="the policy's name; its binding has the same name")
    parser.add_argument("--restore", default="helm upgrade", help="the command that restores both, for the message")
    args = parser.parse_args(argv)

    from kubernetes import client

    from leviathan_scheduler.kube import ApiFailure, load_client

    try:
        # Cluster-scoped objects: any namespace will do for the client.
        api_client, _ = load_client(default_namespace or "default")
    except ApiFailure as failure:
        say(failure.message)
        return failure.exit_code
    api = client.AdmissionregistrationV1Api(api_client)
    try:
        policy = _get(api.read_validating_admission_policy, "ValidatingAdmissionPolicy", args.name)
        binding = _get(api.read_validating_admission_policy_binding, "ValidatingAdmissionPolicyBinding", args.name)
    except Unknown as unknown:
        say(f"✗ Cannot tell whether the release restriction is in force: {unknown}")
        return unknown.exit_code
    missing = [found for found in (policy, binding) if isinstance(found, str)]
    if isinstance(binding, dict):
        spec = binding.get("spec") or {}
        actions = spec.get("validationActions") or []
        if spec.get("policyName") != args.name or "Deny" not in actions:
            missing.append(
                f"ValidatingAdmissionPolicyBinding {args.name} does not deny through it "
                f"(policyName {spec.get('policyName')}, validationActions {actions})"
            )
    if missing:
        say(
            f"✗ The release restriction is NOT in force: {'; '.join(missing)}. The switch itself still works "
            "(turning autonomy off and suspending are unaffected), but anyone with update rights can turn it back "
            f"on. Restore it with: {args.restore}"
        )
        return EXIT_NOT_IN_FORCE
    say(f"✓ The release restriction is in force: ValidatingAdmissionPolicy {args.name} and its binding (Deny) exist")
    return EXIT_OK


def _get(read: Callable[..., Any], kind: str, name: str) -> dict[str, Any] | str:
    """The object as a dict, or why it is not there."""
    from kubernetes.client.exceptions import ApiException
    from urllib3.exceptions import HTTPError

    try:
        response = read(name, _preload_content=False, _request_timeout=(5, 15))
        found = json.loads(response.data)
    except ApiException as exc:
        if exc.status == 404:
            # A Status naming the object: it was deleted. Anything else: the API itself is not served.
            if _status_reason(exc) == "NotFound":
                return f"{kind} {name} not found"
            return f"{kind} {name} not found (this API server does not serve admissionregistration.k8s.io/v1 {kind})"
        if exc.status in (401, 403):
            raise Unknown(
                EXIT_API_FORBIDDEN,
                f"get {kind} {name} answered {exc.status} {exc.reason}: the test's ClusterRole must allow get on it",
            ) from None
        raise Unknown(EXIT_API_UNAVAILABLE, f"get {kind} {name} answered {exc.status} {exc.reason}") from None
    except (HTTPError, OSError, ValueError) as exc:
        raise Unknown(EXIT_API_UNAVAILABLE, f"get {kind} {name} failed ({type(exc).__name__})") from None
    if not isinstance(found, dict):
        raise Unknown(EXIT_API_UNAVAILABLE, f"get {kind} {name}: the API answered something that is not an object")
    return found


def _status_reason(exc: Any) -> str | None:
    try:
        return json.loads(exc.body).get("reason")
    except (TypeError, ValueError, AttributeError):
        return None
