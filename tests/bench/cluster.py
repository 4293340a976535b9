"""`make bench-cluster`: time-to-safe on a real control plane, both paths side by side in one run.

From the ConfigMap patch that disables autonomy to the first refused worker create:

  policy     the chart's ValidatingAdmissionPolicy: a server-side dry-run create of a worker
             Job, repeated until the API server refuses it. Target: p99 <= 1 s.
  scheduler  no policy: the scheduler's own re-check before every create (a GET of the live
             ConfigMap, parsed by the shared reader), repeated with a dry-run create between
             checks, as a tick does, until it says stop.

Each trial re-enables, waits until a create is allowed again, then disables; the two paths
alternate. Before them, the admission overhead: the time of a dry-run create of an unrelated Job
in the namespace without a release, with the policies (switch and shape) of 0, 1 and 5 releases
installed, p50/p99 and the ratio to 0 (printed, no target: the policies match by namespace, so
other namespaces should not pay for them). Then the scale table (tests/bench/cluster_scale.py,
issue 20): the sidecars' memory, status latency and tick cost with 0, 1,000 and 10,000 Jobs in
the policy namespace, with time-to-safe again at each. Uses the cluster of $KUBECONFIG;
everything lives in namespaces of its own, deleted at the end. Prints p50/p99, the table and its
targets, and exits 1 if one is missed.
LEVIATHAN_BENCH_SCALE=0 skips the scale table.
"""

from __future__ import annotations

import contextlib
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

import yaml
from kubernetes import client, config
from kubernetes.client.exceptions import ApiException

REPO = Path(__file__).resolve().parents[2]
sys.path[:0] = [str(REPO / "tests")]

import cluster_scale  # noqa: E402

from leviathan_config import ConfigState, parse_autonomy_config  # noqa: E402
from leviathan_scheduler.kube import JobsApi  # noqa: E402
from support import scale  # noqa: E402
from support.paths import CHART, VALUES_DIR, helm_binary  # noqa: E402

TRIALS = 30
TARGET_P99 = 1.0
POLICY_NS, PLAIN_NS = "leviathan-bench", "leviathan-bench-nopolicy"
CONFIGMAP = "leviathan-autonomy-config"
SWITCH_POLICY = "leviathan-worker-switch"
API = "admissionregistration.k8s.io/v1/ValidatingAdmissionPolicy"
KEEPER = "leviathan-e2e-param-informer-keeper"
OVERHEAD_RELEASES, OVERHEAD_TRIALS = (0, 1, 5), 60
# The admission overhead's releases: only their policies and bindings are made, never the namespaces.
OVERHEAD_NS = "leviathan-bench-release-"


def render(namespace: str) -> list[dict]:
    command = [helm_binary(), "template", "leviathan", str(CHART), "-n", namespace, "-f", str(VALUES_DIR / "dev.yaml")]
    command += ["--api-versions", API, "-s", "templates/configmap.yaml", "-s", "templates/worker-admission-policy.yaml"]
    return [doc for doc in yaml.safe_load_all(subprocess.check_output(command, text=True)) if doc]


def worker(namespace: str) -> dict:
    return {
        "apiVersion": "batch/v1",
        "kind": "Job",
        "metadata": {"name": "bench", "namespace": namespace, "labels": {"app": "leviathan-worker"}},
        "spec": {"template": {"spec": {"restartPolicy": "Never", "containers": [{"name": "w", "image": "busybox"}]}}},
    }


class Bench:
    def __init__(self) -> None:
        configuration = client.Configuration()
        config.load_kube_config(client_configuration=configuration)
        api_client = client.ApiClient(configuration)
        self.core = client.CoreV1Api(api_client)
        self.batch = client.BatchV1Api(api_client)
        self.admission = client.AdmissionregistrationV1Api(api_client)
        self.jobs = JobsApi(api_client, PLAIN_NS, retry_budget_seconds=5)
        rendered = {(doc["kind"], doc["metadata"]["name"].split(".")[0]): doc for doc in render(POLICY_NS)}
        self.configmap = rendered["ConfigMap", CONFIGMAP]
        # The switch policy (the worker-shape policy and the scheduler's ConfigMap are rendered too, not used here).
        self.policy_object = rendered["ValidatingAdmissionPolicy", SWITCH_POLICY]
        self.binding = rendered["ValidatingAdmissionPolicyBinding", SWITCH_POLICY]
        self.text = self.configmap["data"]["dev.yaml"]
        self.policy = self.policy_object["metadata"]["name"]

    def set_up(self) -> None:
        for namespace in (POLICY_NS, PLAIN_NS):
            self.namespace_with_configmap(namespace)
        self.keep_param_informer()

    def install_policy(self) -> None:
        self.admission.create_validating_admission_policy(self.policy_object)
        self.admission.create_validating_admission_policy_binding(self.binding)

    def keep_param_informer(self) -> None:
        """The e2e suite's do-nothing binding with paramKind ConfigMap (tests/e2e/conftest.py), left in place.

        kube-apiserver stops its ConfigMap param informer for good once no binding uses that paramKind
        (kubernetes/kubernetes#133827): without it, the next run's policy would never see its ConfigMap.
        """
        policy = {
            "metadata": {"name": KEEPER},
            "spec": {
                "paramKind": {"apiVersion": "v1", "kind": "ConfigMap"},
                "matchConstraints": {
                    "resourceRules": [
                        {
                            "apiGroups": ["leviathan.io"],
                            "apiVersions": ["v1"],
                            "operations": ["CREATE"],
                            "resources": ["no-such-objects"],
                        }
                    ]
                },
                "validations": [{"expression": "true"}],
            },
        }
        binding = {
            "metadata": {"name": KEEPER},
            "spec": {
                "policyName": KEEPER,
                "validationActions": ["Deny"],
                "paramRef": {"name": KEEPER, "namespace": "default", "parameterNotFoundAction": "Allow"},
            },
        }
        for create, body in (
            (self.admission.create_validating_admission_policy, policy),
            (self.admission.create_validating_admission_policy_binding, binding),
        ):
            try:
                create(body)
            except ApiException as exc:
                if exc.status != 409:
                    raise

    def admission_overhead(self) -> dict[int, list[float]]:
        """Dry-run creates of an unrelated Job in PLAIN_NS, timed, with each count of releases' policies installed."""
        unrelated = {**worker(PLAIN_NS), "metadata": {"name": "unrelated", "labels": {"app": "unrelated"}}}
        results: dict[int, list[float]] = {}
        installed = 0
        try:
            for releases in OVERHEAD_RELEASES:
                for index in range(installed, releases):
                    for doc in render(f"{OVERHEAD_NS}{index}"):
                        if doc["kind"] == "ValidatingAdmissionPolicy":
                            self.admission.create_validating_admission_policy(doc)
                        elif doc["kind"] == "ValidatingAdmissionPolicyBinding":
                            self.admission.create_validating_admission_policy_binding(doc)
                installed = releases
                time.sleep(2)  # the API server's policy informer picks them up
                times = []
                for trial in range(OVERHEAD_TRIALS + 5):  # the first 5 warm up
                    started = time.perf_counter()
                    self.batch.create_namespaced_job(PLAIN_NS, unrelated, dry_run="All")
                    if trial >= 5:
                        times.append(time.perf_counter() - started)
                results[releases] = times
        finally:
            self.remove_overhead_policies()
        return results

    def remove_overhead_policies(self) -> None:
        for name in (b.metadata.name for b in self.admission.list_validating_admission_policy_binding().items):
            if name.rpartition(".")[2].startswith(OVERHEAD_NS):
                with contextlib.suppress(ApiException):
                    self.admission.delete_validating_admission_policy_binding(name)
        for name in (p.metadata.name for p in self.admission.list_validating_admission_policy().items):
            if name.rpartition(".")[2].startswith(OVERHEAD_NS):
                with contextlib.suppress(ApiException):
                    self.admission.delete_validating_admission_policy(name)

    def namespace_with_configmap(self, namespace: str) -> None:
        deadline = time.monotonic() + 300
        while True:  # a namespace left by an earlier run may still be going away
            try:
                self.core.create_namespace({"metadata": {"name": namespace}})
                break
            except ApiException as exc:
                if exc.status != 409 or time.monotonic() > deadline:
                    raise
                time.sleep(1)
        self.core.create_namespaced_config_map(namespace, {**self.configmap, "metadata": {"name": CONFIGMAP}})

    def policy_trials(self, count: int) -> list[float]:
        """Time-to-safe through the policy, `count` times; the switch is left on (creates allowed)."""
        times = [self.trial(POLICY_NS, self.policy_allows) for _ in range(count)]
        self.switch(POLICY_NS, True)
        deadline = time.monotonic() + 30
        while not self.policy_allows() and time.monotonic() < deadline:
            time.sleep(0.02)
        return times

    def bind_policy(self, bound: bool) -> None:
        if not bound:
            with contextlib.suppress(ApiException):
                self.admission.delete_validating_admission_policy_binding(self.policy)
            return
        self.admission.create_validating_admission_policy_binding(self.binding)
        self.policy_trials(1)  # a refusal once disabled proves the binding is in force; left on

    def tear_down(self) -> None:
        for namespace in (POLICY_NS, cluster_scale.ANNOTATION_NS):  # thousands of Jobs: one request, not one each
            with contextlib.suppress(ApiException):
                scale.delete_jobs(namespace, "app.kubernetes.io/instance=leviathan")
        for call in (
            lambda: self.admission.delete_validating_admission_policy_binding(self.policy),
            lambda: self.admission.delete_validating_admission_policy(self.policy),
            lambda: self.core.delete_namespace(POLICY_NS),
            lambda: self.core.delete_namespace(PLAIN_NS),
            lambda: self.core.delete_namespace(cluster_scale.ANNOTATION_NS),
            self.remove_overhead_policies,
        ):
            with contextlib.suppress(ApiException):
                call()

    def switch(self, namespace: str, enabled: bool) -> float:
        """Patch the switch line; the moment before the patch was sent."""
        body = {
            "data": {
                "dev.yaml": self.text.replace("autonomy_enabled: true", f"autonomy_enabled: {str(enabled).lower()}", 1)
            }
        }
        started = time.monotonic()
        self.core.patch_namespaced_config_map(CONFIGMAP, namespace, body)
        return started

    def policy_allows(self) -> bool:
        try:
            self.batch.create_namespaced_job(POLICY_NS, worker(POLICY_NS), dry_run="All")
            return True
        except ApiException as exc:
            if exc.status not in (403, 422):  # 422: the binding has not found its ConfigMap (yet)
                raise
            return False

    def scheduler_allows(self) -> bool:
        """The scheduler's re-check before a create, then the create itself (dry run), as in a tick."""
        live = parse_autonomy_config(self.jobs.read_config_map(CONFIGMAP, "dev.yaml") or b"", "bench")
        if not (live.state is ConfigState.LOADED and live.autonomy_enabled):
            return False
        self.batch.create_namespaced_job(PLAIN_NS, worker(PLAIN_NS), dry_run="All")
        return True

    def trial(self, namespace: str, allows) -> float:
        self.switch(namespace, True)
        deadline = time.monotonic() + 30
        while not allows():
            if time.monotonic() > deadline:
                raise SystemExit(
                    f"bench-cluster: creates stay refused in {namespace} after re-enabling; if the API server says "
                    "'no params found', it has lost its ConfigMap param informer (kubernetes/kubernetes#133827): "
                    "restart kube-apiserver (make cluster-down cluster-up)"
                )
            time.sleep(0.02)
        disabled_at = self.switch(namespace, False)
        while allows():
            if time.monotonic() - disabled_at > 30:
                raise SystemExit(f"bench-cluster: creates still allowed in {namespace} 30 s after disabling")
        return time.monotonic() - disabled_at


def percentile(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(fraction * (len(ordered) - 1)))]


def main() -> int:
    try:
        bench = Bench()
    except config.ConfigException as exc:
        print(f"bench-cluster needs a cluster: run make cluster-up first, or set KUBECONFIG ({exc})", file=sys.stderr)
        return 2
    bench.tear_down()
    bench.set_up()
    scaled = True
    try:
        print_overhead(bench.admission_overhead())
        bench.install_policy()
        policy, scheduler = [], []
        for _ in range(TRIALS):
            policy.append(bench.trial(POLICY_NS, bench.policy_allows))
            scheduler.append(bench.trial(PLAIN_NS, bench.scheduler_allows))
        print_time_to_safe(policy, scheduler)
        bench.policy_trials(0)  # the switch back on
        if os.environ.get("LEVIATHAN_BENCH_SCALE") != "0":
            scaled = cluster_scale.run(
                POLICY_NS, bench.text, bench.policy_trials, bench.namespace_with_configmap, bench.bind_policy
            )
    finally:
        bench.tear_down()
    met = percentile(policy, 0.99) <= TARGET_P99
    print(f"target: policy p99 <= {TARGET_P99:g} s: {'met' if met else 'MISSED'}")
    return 0 if met and scaled else 1


def print_overhead(results: dict[int, list[float]]) -> None:
    print(
        f"admission overhead: dry-run create of an unrelated Job in {PLAIN_NS}, {OVERHEAD_TRIALS} each, "
        "with the policies of N releases installed (switch and worker shape, each bound to its own namespace):"
    )
    print(f"  {'releases':>8} {'p50':>8} {'p99':>8} {'p50 / 0 releases':>17}")
    base = statistics.median(results[0])
    for releases, times in results.items():
        p50 = statistics.median(times)
        print(f"  {releases:>8} {p50 * 1000:7.1f}ms {percentile(times, 0.99) * 1000:7.1f}ms {p50 / base:16.2f}x")


def print_time_to_safe(policy: list[float], scheduler: list[float]) -> None:
    print(f"time-to-safe over {TRIALS} trials each (ConfigMap patch sent -> first refused worker create):")
    print(f"  {'path':<42} {'p50':>8} {'p99':>8} {'max':>8}")
    for name, values in (
        ("admission policy (API server)", policy),
        ("scheduler re-check via API (no policy)", scheduler),
    ):
        print(
            f"  {name:<42} {statistics.median(values) * 1000:7.0f}ms {percentile(values, 0.99) * 1000:7.0f}ms "
            f"{max(values) * 1000:7.0f}ms"
        )
    print("  before issue 10: kubelet's sync period (60-120 s) plus up to one schedule interval (5 min)", flush=True)


if __name__ == "__main__":
    sys.exit(main())
