"""Issue 10 on a real API server: the admission policy, the scheduler's live re-check,
halting workers and pausing a failing task.

Named to run after the runbook module (which uninstalls its release at its end): this
module installs release `leviathan` itself and uninstalls it when done.
"""

from __future__ import annotations

import json
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import yaml
from kubernetes import client, config
from kubernetes.client.exceptions import ApiException

from leviathan_config import ConfigState, read_autonomy_config
from support.paths import CHART, VALUES_DIR

from .config_corpus import corpus
from .conftest import helm

POLICY_API = "admissionregistration.k8s.io/v1/ValidatingAdmissionPolicy"
WORKER_APP = "leviathan-worker"
DENIAL = "worker Jobs of release leviathan are refused"
NO_PARAMS = "no params found"


def api() -> client.ApiClient:
    configuration = client.Configuration()
    config.load_kube_config(client_configuration=configuration)
    return client.ApiClient(configuration)


def render(namespace: str, *templates: str, values: tuple[str, ...] = ()) -> list[dict]:
    args = ["template", "leviathan", str(CHART), "-n", namespace, "-f", str(VALUES_DIR / "dev.yaml")]
    args += ["--api-versions", POLICY_API, *values]
    for template in templates:
        args += ["-s", f"templates/{template}"]
    return [doc for doc in yaml.safe_load_all(helm(*args).stdout) if doc]


def worker_job(name: str, namespace: str, labels: dict[str, str] | None = None, suspend: bool | None = None) -> dict:
    spec: dict = {
        "template": {"spec": {"restartPolicy": "Never", "containers": [{"name": "worker", "image": "busybox:1.37.0"}]}}
    }
    if suspend is not None:
        spec["suspend"] = suspend
    return {
        "apiVersion": "batch/v1",
        "kind": "Job",
        "metadata": {"name": name, "namespace": namespace, "labels": labels or {"app": WORKER_APP}},
        "spec": spec,
    }


def reader_allows(text: str, directory: Path) -> bool:
    path = directory / "dev.yaml"
    path.write_bytes(text.encode("utf-8", "surrogatepass"))
    config_read = read_autonomy_config(path)
    return config_read.state is ConfigState.LOADED and config_read.autonomy_enabled is True


def policy_allows(batch: client.BatchV1Api, namespace: str) -> bool:
    """A server-side dry-run create of a worker Job; retried while the API server has not seen the ConfigMap yet."""
    deadline = time.monotonic() + 30
    while True:
        try:
            batch.create_namespaced_job(namespace, worker_job("probe", namespace), dry_run="All")
            return True
        except ApiException as exc:
            message = json.loads(exc.body or "{}").get("message", "")
            if exc.status == 403 and DENIAL in message:
                return False
            if not (exc.status == 403 and NO_PARAMS in message) or time.monotonic() > deadline:
                raise AssertionError(f"unexpected answer in {namespace}: {exc.status} {message}") from None
            time.sleep(0.2)


def delete_namespace(core: client.CoreV1Api, namespace: str) -> None:
    try:
        core.delete_namespace(namespace)
    except ApiException as exc:
        if exc.status != 404:
            raise


def test_policy_never_allows_a_config_the_reader_refuses():
    """Every corpus text through the shared reader and through the chart's policy on the API server.

    The chart's policy runs under a second binding that takes its parameter from the request's
    namespace, so each text gets a namespace and a ConfigMap of its own and all run in one go.
    """
    base = render("leviathan", "configmap.yaml")[0]["data"]["dev.yaml"]
    texts = list(corpus(base).items())
    assert len(texts) >= 200
    policy = render("leviathan", "worker-admission-policy.yaml")[0]
    policy["metadata"] = {"name": "leviathan-corpus-check"}
    binding = {
        "apiVersion": "admissionregistration.k8s.io/v1",
        "kind": "ValidatingAdmissionPolicyBinding",
        "metadata": {"name": "leviathan-corpus-check"},
        "spec": {
            "policyName": "leviathan-corpus-check",
            "validationActions": ["Deny"],
            "paramRef": {"name": "corpus-config", "parameterNotFoundAction": "Deny"},
            "matchResources": {
                "namespaceSelector": {"matchLabels": {"leviathan.io/corpus": "true"}},
                "objectSelector": {"matchLabels": {"app": WORKER_APP}},
            },
        },
    }
    api_client = api()
    core, batch = client.CoreV1Api(api_client), client.BatchV1Api(api_client)
    admission = client.AdmissionregistrationV1Api(api_client)
    admission.create_validating_admission_policy(policy)
    admission.create_validating_admission_policy_binding(binding)
    run_id = int(time.time()) % 100000  # a rerun does not wait for the last run's namespaces to go
    names = [f"lev-corpus-{run_id}-{index}" for index in range(len(texts))]

    def prepare(index: int) -> None:
        namespace = names[index]
        labels = {"leviathan.io/corpus": "true"}
        core.create_namespace({"metadata": {"name": namespace, "labels": labels}})
        core.create_namespaced_config_map(
            namespace, {"metadata": {"name": "corpus-config"}, "data": {"dev.yaml": texts[index][1]}}
        )

    try:
        with ThreadPoolExecutor(8) as pool:
            list(pool.map(prepare, range(len(texts))))
            started = time.monotonic()
            allowed = list(pool.map(lambda namespace: policy_allows(batch, namespace), names))
            seconds = time.monotonic() - started
        with tempfile.TemporaryDirectory() as directory:
            loads = [reader_allows(text, Path(directory)) for _, text in texts]
    finally:
        admission.delete_validating_admission_policy_binding("leviathan-corpus-check")
        admission.delete_validating_admission_policy("leviathan-corpus-check")
        with ThreadPoolExecutor(8) as pool:
            list(pool.map(lambda namespace: delete_namespace(core, namespace), names))
    unsafe = [
        name
        for (name, _), policy_yes, reader_yes in zip(texts, allowed, loads, strict=True)
        if policy_yes and not reader_yes
    ]
    strict = [
        name
        for (name, _), policy_yes, reader_yes in zip(texts, allowed, loads, strict=True)
        if reader_yes and not policy_yes
    ]
    print(
        f"corpus: {len(texts)} texts in {seconds:.1f}s; reader loads {sum(loads)} as enabled, "
        f"policy allows {sum(allowed)}; unsafe allows: {len(unsafe)}; refused though the reader loads them: "
        f"{len(strict)}"
    )
    assert unsafe == [], f"the policy allowed texts the reader refuses: {unsafe}"
    assert allowed[0] and allowed[1], "the chart's own config must be allowed"
