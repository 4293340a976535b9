"""Kubernetes credentials, found the same way by both sidecars.

A kubeconfig when KUBECONFIG names one or no cluster is around us (a laptop, the
tests); inside a pod, the pod's own service-account token. The `kubernetes` client
is imported here, on first use, so a sidecar that never calls the API never loads it.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from kubernetes.client import Configuration

POD_NAMESPACE_FILE = Path("/var/run/secrets/kubernetes.io/serviceaccount/namespace")


class CredentialsError(Exception):
    """No credentials could be loaded; the message says why."""


def in_cluster() -> bool:
    return bool(os.environ.get("KUBERNETES_SERVICE_HOST")) and not os.environ.get("KUBECONFIG")


def load_configuration() -> Configuration:
    """A client configuration with no retries of its own: each sidecar retries on its own terms."""
    from kubernetes import client, config

    configuration = client.Configuration()
    try:
        if in_cluster():
            config.load_incluster_config(client_configuration=configuration)
        else:
            config.load_kube_config(client_configuration=configuration)
    except Exception as exc:  # the loaders raise several types; all mean "no credentials"
        raise CredentialsError(str(exc)) from None
    configuration.retries = False
    return configuration


def kubeconfig_namespace() -> str | None:
    """The current kubeconfig context's namespace; None in a pod or when the kubeconfig says none."""
    if in_cluster():
        return None
    from kubernetes import config

    try:
        _, context = config.list_kube_config_contexts()
    except Exception:  # no or unreadable kubeconfig: nothing to go by
        return None
    return (context or {}).get("context", {}).get("namespace") or None


def pod_namespace() -> str | None:
    """The namespace of the pod we run in, from its service-account files; None outside a pod."""
    try:
        return POD_NAMESPACE_FILE.read_text().strip() or None
    except OSError:
        return None
