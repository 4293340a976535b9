"""`leviathan-scheduler check`: the scheduler's half of `helm test`.

It runs in a pod with the scheduler's ServiceAccount and config mount and
submits nothing. It passes only when the config is one a tick would accept and
the account may do exactly what a tick does: list and create Jobs in its
namespace, create Events there, and nothing else it is asked about. It prints every check it makes.
"""

from __future__ import annotations

import argparse
import json
import os
from typing import NamedTuple

from leviathan_config import ConfigState, config_path_from_env, read_autonomy_config
from leviathan_scheduler.exit_codes import (
    EXIT_API_FORBIDDEN,
    EXIT_API_UNAVAILABLE,
    EXIT_CONFIG_ERROR,
    EXIT_OK,
)
from leviathan_scheduler.output import config_unusable, say
from leviathan_scheduler.settings import SettingsError, load_settings


class Access(NamedTuple):
    verb: str
    group: str
    resource: str
    wanted: bool
    name: str = ""

    def __str__(self) -> str:
        named = f" {self.name}" if self.name else ""
        return f"{self.verb} {self.resource}{'.' + self.group if self.group else ''}{named}"


# A tick lists and creates Jobs, and records a task's pause as an Event; every other
# verb on Jobs, and a few things an attacker would want from a scheduler's token, must be refused.
ACCESS = (
    Access("list", "batch", "jobs", True),
    Access("create", "batch", "jobs", True),
    Access("create", "", "events", True),
    *(Access(verb, "batch", "jobs", False) for verb in ("get", "watch", "update", "patch", "delete")),
    Access("deletecollection", "batch", "jobs", False),
    Access("patch", "batch", "cronjobs", False),
    Access("update", "", "configmaps", False),
    Access("get", "", "secrets", False),
    Access("create", "", "pods", False),
)


def main(argv: list[str], default_namespace: str | None) -> int:
    parser = argparse.ArgumentParser(
        prog="leviathan-scheduler check",
        description="Check the config and RBAC a tick would use, without submitting anything.",
    )
    parser.add_argument("--namespace", help="namespace to check (default: the pod's, or the kubeconfig context's)")
    args = parser.parse_args(argv)

    config = read_autonomy_config(config_path_from_env())
    if config.state is not ConfigState.LOADED:
        return config_unusable(config.state, config.problem, tick=False)
    try:
        settings_path, settings = load_settings()
    except SettingsError as exc:
        say(f"✗ Settings are not usable by the scheduler: {exc}")
        return EXIT_CONFIG_ERROR
    say(
        f"✓ Config {config.path} is usable: autonomy_enabled: {str(config.autonomy_enabled).lower()}; "
        f"settings {settings_path}: {len(settings.tasks)} task(s), at most {settings.max_jobs_per_tick} Job(s) per tick"
    )
    return _check_access(
        args.namespace or default_namespace,
        os.environ.get("LEVIATHAN_CONFIGMAP") or None,
        os.environ.get("LEVIATHAN_CRONJOB") or None,
    )


def _check_access(namespace: str | None, configmap: str | None = None, cronjob: str | None = None) -> int:
    from kubernetes import client
    from kubernetes.client.exceptions import ApiException
    from urllib3.exceptions import HTTPError

    from leviathan_scheduler.kube import ApiFailure, load_client

    try:
        api_client, namespace = load_client(namespace)
    except ApiFailure as failure:
        say(failure.message)
        return failure.exit_code
    authorization = client.AuthorizationV1Api(api_client)
    wrong = 0
    # A tick re-reads its own ConfigMap before every create, and no other.
    extra = (
        (Access("get", "", "configmaps", True, configmap), Access("get", "", "configmaps", False)) if configmap else ()
    )
    # ... and its own CronJob (is it suspended?), and no other.
    if cronjob:
        extra += (Access("get", "batch", "cronjobs", True, cronjob), Access("get", "batch", "cronjobs", False))
    for access in (*ACCESS, *extra):
        attributes = {"namespace": namespace, "verb": access.verb, "group": access.group, "resource": access.resource}
        if access.name:
            attributes["name"] = access.name
        review = {"apiVersion": "authorization.k8s.io/v1", "kind": "SelfSubjectAccessReview"}
        try:
            response = authorization.create_self_subject_access_review(
                {**review, "spec": {"resourceAttributes": attributes}}, _preload_content=False, _request_timeout=(5, 15)
            )
            allowed = (json.loads(response.data).get("status") or {}).get("allowed") is True
        except (ApiException, HTTPError, OSError, ValueError, AttributeError) as exc:
            detail = f"{exc.status} {exc.reason}" if isinstance(exc, ApiException) else type(exc).__name__
            say(f"✗ Cannot ask the API whether this account may {access} ({detail})")
            return EXIT_API_UNAVAILABLE
        if allowed == access.wanted:
            say(f"✓ {'may' if allowed else 'may not'} {access} in namespace {namespace}")
        else:
            wrong += 1
            need = "needs to" if access.wanted else "must not"
            say(f"✗ {'may' if allowed else 'may not'} {access} in namespace {namespace}: a tick {need}")
    if wrong:
        say(f"✗ RBAC is not what a tick needs ({wrong} wrong): see the scheduler Role (rbac.create)")
        return EXIT_API_FORBIDDEN
    return EXIT_OK
