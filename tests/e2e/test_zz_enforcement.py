"""Issue 10 on a real API server: the admission policy, the scheduler's live re-check,
halting workers and pausing a failing task.

Named to run after the runbook module (which uninstalls its release at its end): this
module installs release `leviathan` itself and uninstalls it when done.
"""

from __future__ import annotations

import json
import os
import subprocess
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
import yaml
from kubernetes import client, config
from kubernetes.client.exceptions import ApiException

from leviathan_config import ConfigState, read_autonomy_config
from support.cluster import NO_SCHEDULED_TICKS, eventually, helm, install_args, kubectl
from support.paths import CHART, REPO, VALUES_DIR

from .config_corpus import corpus

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
            if NO_PARAMS not in message or time.monotonic() > deadline:
                raise AssertionError(f"unexpected answer in {namespace}: {exc.status} {message}") from None
            time.sleep(0.2)


def delete_namespace(core: client.CoreV1Api, namespace: str) -> None:
    try:
        core.delete_namespace(namespace)
    except ApiException as exc:
        if exc.status != 404:
            raise


STAMP_API = "admissionregistration.k8s.io/v1beta1/MutatingAdmissionPolicy"
CORPUS_USER = "corpus-user"
RELEASE_REFUSALS = ("may not turn autonomy on", "turning autonomy on needs a reason")


def dry_update_as(core: client.CoreV1Api, namespace: str, name: str, text: str) -> tuple[bool, dict]:
    """A server-side dry-run update of ConfigMap `name` to `text` as CORPUS_USER: (admitted, the object or refusal)."""
    body = {"metadata": {"name": name}, "data": {"dev.yaml": text}}
    try:
        return True, core.api_client.sanitize_for_serialization(
            core.patch_namespaced_config_map(name, namespace, body, dry_run="All")
        )
    except ApiException as exc:
        return False, json.loads(exc.body or "{}")


def release_calls_on(core: client.CoreV1Api, namespace: str, text: str) -> bool:
    admitted, answer = dry_update_as(core, namespace, "leviathan-autonomy-config", text)
    if admitted:
        return False
    message = answer.get("message", "")
    assert any(refusal in message for refusal in RELEASE_REFUSALS), f"unexpected refusal in {namespace}: {message}"
    return True


def stamp_calls_on(core: client.CoreV1Api, namespace: str, text: str) -> bool:
    """The stamp policy records a flip (off -> this text) only when it reads the text as on."""
    admitted, answer = dry_update_as(core, namespace, "corpus-stamp", text)
    assert admitted, f"the stamp copy refused in {namespace}: {answer}"
    return (answer["metadata"].get("annotations") or {}).get("autonomy.leviathan.io/switched-by") == CORPUS_USER


def copy_bound(admission, kind: str, policy: dict, binding_spec: dict) -> None:
    """Create `policy` under the name leviathan-corpus-<kind> with a binding for the corpus namespaces."""
    name = f"leviathan-corpus-{kind}"
    policy["metadata"] = {"name": name}
    binding = {
        "apiVersion": policy["apiVersion"],
        "kind": policy["kind"] + "Binding",
        "metadata": {"name": name},
        "spec": {
            "policyName": name,
            **binding_spec,
            "matchResources": {"namespaceSelector": {"matchLabels": {"leviathan.io/corpus": "true"}}},
        },
    }
    if kind == "worker":
        binding["spec"]["matchResources"]["objectSelector"] = {"matchLabels": {"app": WORKER_APP}}
    if policy["kind"] == "ValidatingAdmissionPolicy":
        admission.v1.create_validating_admission_policy(policy)
        admission.v1.create_validating_admission_policy_binding(binding)
    else:
        admission.custom.create_cluster_custom_object(*admission.mutating, "mutatingadmissionpolicies", policy)
        admission.custom.create_cluster_custom_object(*admission.mutating, "mutatingadmissionpolicybindings", binding)


def test_every_policy_judges_each_text_as_the_reader_does(installed):
    """Every corpus text through the shared reader and through each of the chart's policies on the API server:
    the worker policy (create a worker Job), the release policy (turn a switch from off to the text, as a
    non-releaser) and the identity stamp (does it record a flip?). Per policy, the count of texts judged
    differently from the reader must be 0, both ways.

    Copies of the policies run under bindings for corpus namespaces, one namespace per text, all in one go.
    The release stays installed meanwhile: on this API server, a policy created after the last one with
    the same paramKind was deleted sometimes never finds its parameters (all denied).
    """
    releasers = ("--set", "autonomy.releasers.users[0]=alice")
    base = render("leviathan", "configmap.yaml")[0]["data"]["dev.yaml"]
    texts = list(corpus(base).items())
    assert len(texts) >= 200
    api_client = api()
    core, batch = client.CoreV1Api(api_client), client.BatchV1Api(api_client)
    as_user = api()
    as_user.set_default_header("Impersonate-User", CORPUS_USER)
    core_as_user = client.CoreV1Api(as_user)
    rbac = client.RbacAuthorizationV1Api(api_client)

    class Admission:
        v1 = client.AdmissionregistrationV1Api(api_client)
        custom = client.CustomObjectsApi(api_client)
        mutating = ("admissionregistration.k8s.io", "v1beta1")

    worker_policy = render("leviathan", "worker-admission-policy.yaml")[0]
    release_policy = render("leviathan", "release-policy.yaml", values=releasers)[0]
    stamps = render("leviathan", "identity-stamp.yaml", values=("--api-versions", STAMP_API))
    stamp_policy = next(d for d in stamps if d["kind"] == "MutatingAdmissionPolicy")
    stamp_policy["spec"]["matchConstraints"]["resourceRules"][0]["resourceNames"] = ["corpus-stamp"]
    rule = {"apiGroups": [""], "resources": ["configmaps"], "verbs": ["get", "update", "patch"]}
    role = {"metadata": {"name": "leviathan-corpus-editor"}, "rules": [rule]}
    rbac.create_cluster_role(role)
    rbac.create_cluster_role_binding({
        "metadata": {"name": "leviathan-corpus-editor"},
        "roleRef": {"apiGroup": "rbac.authorization.k8s.io", "kind": "ClusterRole", "name": "leviathan-corpus-editor"},
        "subjects": [{"apiGroup": "rbac.authorization.k8s.io", "kind": "User", "name": CORPUS_USER}],
    })  # fmt: skip
    deny_params = {
        "validationActions": ["Deny"],
        "paramRef": {"name": "corpus-config", "parameterNotFoundAction": "Deny"},
    }
    copy_bound(Admission, "worker", worker_policy, deny_params)
    copy_bound(Admission, "release", release_policy, {"validationActions": ["Deny"]})
    copy_bound(Admission, "stamp", stamp_policy, {})
    run_id = int(time.time()) % 100000  # a rerun does not wait for the last run's namespaces to go
    names = [f"lev-corpus-{run_id}-{index}" for index in range(len(texts))]
    off = 'autonomy_enabled: false\nreason: ""\n'

    def prepare(index: int) -> None:
        namespace = names[index]
        core.create_namespace({"metadata": {"name": namespace, "labels": {"leviathan.io/corpus": "true"}}})
        for name, text in (
            ("corpus-config", texts[index][1]),
            ("leviathan-autonomy-config", off),
            ("corpus-stamp", off),
        ):
            core.create_namespaced_config_map(namespace, {"metadata": {"name": name}, "data": {"dev.yaml": text}})

    def judge(index: int) -> tuple[bool, bool, bool]:
        namespace, text = names[index], texts[index][1]
        worker = policy_allows(batch, namespace)
        release = release_calls_on(core_as_user, namespace, text)
        stamp = stamp_calls_on(core_as_user, namespace, text)
        return worker, release, stamp

    try:
        with ThreadPoolExecutor(8) as pool:
            list(pool.map(prepare, range(len(texts))))
            # A new policy takes a moment to be in force: wait until the base text is judged on by each copy.
            eventually(lambda: all(judge(0)), timeout=60, what="the corpus policies to be in force")
            started = time.monotonic()
            verdicts = list(pool.map(judge, range(len(texts))))
            seconds = time.monotonic() - started
        with tempfile.TemporaryDirectory() as directory:
            loads = [reader_allows(text, Path(directory)) for _, text in texts]
    finally:
        Admission.v1.delete_validating_admission_policy_binding("leviathan-corpus-worker")
        Admission.v1.delete_validating_admission_policy("leviathan-corpus-worker")
        Admission.v1.delete_validating_admission_policy_binding("leviathan-corpus-release")
        Admission.v1.delete_validating_admission_policy("leviathan-corpus-release")
        for plural in ("mutatingadmissionpolicybindings", "mutatingadmissionpolicies"):
            Admission.custom.delete_cluster_custom_object(*Admission.mutating, plural, "leviathan-corpus-stamp")
        rbac.delete_cluster_role_binding("leviathan-corpus-editor")
        rbac.delete_cluster_role("leviathan-corpus-editor")
        with ThreadPoolExecutor(8) as pool:
            list(pool.map(lambda namespace: delete_namespace(core, namespace), names))
    differ = {
        policy: [
            name for (name, _), verdict, reader in zip(texts, verdicts, loads, strict=True) if verdict[i] != reader
        ]
        for i, policy in enumerate(("worker", "release", "stamp"))
    }
    counts = ", ".join(f"{policy} {len(names)}" for policy, names in differ.items())
    print(
        f"corpus: {len(texts)} texts in {seconds:.1f}s; the reader loads {sum(loads)} as enabled; "
        f"texts judged differently from the reader, per policy: {counts}"
    )
    assert differ == {"worker": [], "release": [], "stamp": []}, differ
    assert verdicts[0] == (True, True, True) and verdicts[1] == (True, True, True), "the chart's own file is on"


# ---- The installed chart: policy, scheduler, halt/resume, pause -----------------------------------

NAMESPACE = "leviathan"
CONFIGMAP = "leviathan-autonomy-config"
CRONJOB = "leviathan-dev-scheduler"
FAILING_TASKS = [
    {"name": "steady", "image": "busybox:1.37.0", "command": ["sh", "-c", "echo ok"]},
    {
        "name": "flaky",
        "image": "busybox:1.37.0",
        "command": ["sh", "-c", "exit 1"],
        "env": [{"name": "LEVIATHAN_E2E_OUTCOME", "value": "fail"}],
    },
]


@pytest.fixture(scope="module")
def installed(namespace: str, images):
    """Release `leviathan` with two tasks, one whose workers fail (kwok), and no failure retries.
    Its CronJob is not suspended (a tick of a suspended CronJob submits nothing) but scheduled for
    1 January only: the ticks are the tests' own (run_scheduler), and a real one at a */5 minute
    would add workers (and a failed flaky one) that a test does not expect."""
    helm(
        *install_args(images),
        *NO_SCHEDULED_TICKS,
        "--set-json",
        f"scheduler.tasks={json.dumps(FAILING_TASKS)}",
        "--set",
        "worker.backoffLimit=0",
        "--set",
        "autonomy.enabled=true",
        "--set",
        f"autonomy.confirmEnable={live_resource_version()}",
        "--wait",
        "--timeout",
        "3m",
    )
    yield
    helm("uninstall", "leviathan", "-n", NAMESPACE, "--wait", check=False)
    kubectl("delete", "jobs", "-n", NAMESPACE, "-l", f"app in ({WORKER_APP},other)", "--wait=false", check=False)
    kubectl("delete", "configmap", STALE_CONFIGMAP, "-n", NAMESPACE, "--ignore-not-found", check=False)


def live_resource_version() -> str:
    found = kubectl(
        "get", "configmap", CONFIGMAP, "-n", NAMESPACE, "-o", "jsonpath={.metadata.resourceVersion}", check=False
    )
    return found.stdout.strip() if found.returncode == 0 else ""


def config_text() -> str:
    return client.CoreV1Api(api()).read_namespaced_config_map(CONFIGMAP, NAMESPACE).data["dev.yaml"]


def set_switch(enabled: bool) -> float:
    """Edit the live ConfigMap's switch line, as `kubectl edit` does; the time the API accepted it."""
    text = config_text().split("\n", 1)[1]
    body = {"data": {"dev.yaml": f"autonomy_enabled: {str(enabled).lower()}\n{text}"}}
    client.CoreV1Api(api()).patch_namespaced_config_map(CONFIGMAP, NAMESPACE, body)
    return time.monotonic()


def create_worker(name: str, **options) -> ApiException | None:
    try:
        client.BatchV1Api(api()).create_namespaced_job(NAMESPACE, worker_job(name, NAMESPACE, **options))
    except ApiException as exc:
        return exc
    return None


def first_refusal_after(changed: float, timeout: float = 10) -> float:
    """Seconds from `changed` to the first refused dry-run create of a worker Job."""
    batch = client.BatchV1Api(api())
    while time.monotonic() - changed < timeout:
        try:
            batch.create_namespaced_job(NAMESPACE, worker_job("probe", NAMESPACE), dry_run="All")
        except ApiException as exc:
            assert exc.status == 403, exc.body
            return time.monotonic() - changed
        time.sleep(0.01)
    raise AssertionError(f"no refusal within {timeout}s")


STALE_CONFIGMAP = "leviathan-e2e-stale-switch"


def run_scheduler(slot: int, config: Path, live: bool = True) -> subprocess.CompletedProcess[str]:
    """One tick in the scheduler's image on the real node, as the CronJob runs it: a Job from the
    CronJob's own template (its ServiceAccount, env and settings mount), owned by the CronJob and
    named for `slot` as the CronJob names its ticks. Its switch file is `config`'s text (possibly
    stale), from a ConfigMap of its own; `live=False` drops the live ConfigMap check (an older
    scheduler). Its exit code and log come back as a CompletedProcess (the log as stderr)."""
    batch, core = client.BatchV1Api(api()), client.CoreV1Api(api())
    stale = {"metadata": {"name": STALE_CONFIGMAP}, "data": {"dev.yaml": config.read_text()}}
    try:
        core.replace_namespaced_config_map(STALE_CONFIGMAP, NAMESPACE, stale)
    except ApiException as exc:
        if exc.status != 404:
            raise
        core.create_namespaced_config_map(NAMESPACE, stale)
    cronjob = batch.read_namespaced_cron_job(CRONJOB, NAMESPACE)
    template = api().sanitize_for_serialization(cronjob.spec.job_template)
    pod = template["spec"]["template"]["spec"]
    for volume in pod["volumes"]:
        if volume["name"] == "autonomy-config":
            volume["configMap"]["name"] = STALE_CONFIGMAP
    [container] = pod["containers"]
    if not live:
        container["env"] = [e for e in container["env"] if e["name"] != "LEVIATHAN_CONFIGMAP"]
    name = f"{CRONJOB}-{slot}"
    owner = {"apiVersion": "batch/v1", "kind": "CronJob", "name": CRONJOB, "uid": cronjob.metadata.uid}
    template["metadata"].update(name=name, ownerReferences=[{**owner, "controller": True}])
    # A tick of the same slot again: the earlier one goes first, its pod too.
    kubectl("delete", "job", name, "-n", NAMESPACE, "--ignore-not-found", "--cascade=foreground", "--wait=true")
    uid = batch.create_namespaced_job(NAMESPACE, template).metadata.uid

    seen: list[str] = []

    def finished() -> tuple[str, int] | None:
        pods = core.list_namespaced_pod(NAMESPACE, label_selector=f"batch.kubernetes.io/controller-uid={uid}").items
        seen[:] = [f"{found.metadata.name}: {found.status.phase}" for found in pods]
        for found in pods:
            for status in found.status.container_statuses or []:
                if status.state.terminated:
                    return found.metadata.name, status.state.terminated.exit_code
                if status.state.waiting:
                    seen.append(f"waiting: {status.state.waiting.reason} {status.state.waiting.message or ''}")
        return None

    try:
        pod_name, exit_code = eventually(finished, timeout=120, what=f"tick {name} to finish in its pod", interval=0.5)
    except AssertionError as timed_out:
        raise AssertionError(f"{timed_out}; its pods: {seen or 'none'}") from None
    log = kubectl("logs", pod_name, "-n", NAMESPACE).stdout
    print(f"--- tick {name} in pod {pod_name}: exit {exit_code}\n{log}", flush=True)
    return subprocess.CompletedProcess([name], exit_code, stdout="", stderr=log)


def status_detail() -> dict:
    """GET /v1/autonomy as `make status` prints it (the line before the status answer)."""
    port = 18470 + int(os.environ.get("LEVIATHAN_CLUSTER_INDEX", "0"))  # not another engineer's forward
    lines = subprocess.run(
        ["make", "-s", "-C", str(REPO), "status", f"LOCAL_PORT={port}"], capture_output=True, text=True, check=True
    ).stdout.splitlines()
    return json.loads(lines[-2])


def worker_names() -> set[str]:
    return set(kubectl("get", "jobs", "-n", NAMESPACE, "-l", f"app={WORKER_APP}", "-o", "name").stdout.split())


def test_kubectl_create_is_refused_within_a_second_and_other_jobs_go_on(installed):
    assert create_worker("before-disable", suspend=True) is None
    changed = set_switch(False)
    assert first_refusal_after(changed) < 1.0
    manifest = yaml.safe_dump(worker_job("by-hand", NAMESPACE))
    refused = subprocess.run(["kubectl", "create", "-f", "-"], input=manifest, capture_output=True, text=True)
    assert refused.returncode != 0
    assert f"autonomy is not enabled in ConfigMap {NAMESPACE}/{CONFIGMAP} (key dev.yaml)" in refused.stderr
    assert 'see docs/RUNBOOK.md, section "Worker Jobs refused by the API server"' in refused.stderr
    # Another Job in the namespace is not the policy's business.
    assert create_worker("unrelated", labels={"app": "other"}) is None
    # Resuming a suspended worker is refused too; halting stays allowed.
    resumed = subprocess.run(
        [
            "kubectl",
            "patch",
            "job",
            "before-disable",
            "-n",
            NAMESPACE,
            "--type=merge",
            "-p",
            '{"spec":{"suspend":false}}',
        ],
        capture_output=True,
        text=True,
    )
    assert resumed.returncode != 0 and DENIAL in resumed.stderr
    set_switch(True)


def test_the_scheduler_stops_on_the_live_configmap_before_kubelet_delivers_it(installed, tmp_path):
    stale = tmp_path / "dev.yaml"
    stale.write_text(config_text())  # what the mounted file still says: enabled
    before = worker_names()
    changed = set_switch(False)
    result = run_scheduler(int(time.time() // 60), stale)
    seconds = time.monotonic() - changed
    assert result.returncode == 0, result.stderr
    assert f"⚠ Autonomy disabled in the live ConfigMap {CONFIGMAP} (autonomy_enabled: false)" in result.stderr
    assert worker_names() == before
    print(f"scheduler stopped {seconds:.2f}s after the disable (process start included)")
    # An old scheduler without the live check: the API server refuses its create.
    result = run_scheduler(int(time.time() // 60), stale, live=False)
    assert result.returncode == 8, result.stderr
    assert "✗ The API server's admission policy refused worker Job" in result.stderr
    assert "Traceback" not in result.stderr
    assert worker_names() == before
    set_switch(True)


def test_a_deleted_configmap_refuses(installed):
    kubectl("delete", "configmap", CONFIGMAP, "-n", NAMESPACE)
    try:
        refused = eventually(lambda: create_worker("no-config"), timeout=10, what="a refusal", interval=0.1)
        # The binding finds no parameter: 422, naming the worker policy.
        assert refused.status == 422 and NO_PARAMS in refused.body and "worker-switch" in refused.body, refused.body
    finally:
        helm(*install_args_for_restore(), "--wait", "--timeout", "3m")
    assert "autonomy_enabled: true" in config_text()


def install_args_for_restore() -> list[str]:
    return [
        "upgrade",
        "leviathan",
        str(CHART),
        "-n",
        NAMESPACE,
        "--reset-then-reuse-values",
        "--set",
        "autonomy.enabled=true",
    ]


def test_halt_and_resume_workers(installed):
    manifest = worker_job("long-run", NAMESPACE)
    manifest["spec"].update({"completions": 1000, "parallelism": 1})
    client.BatchV1Api(api()).create_namespaced_job(NAMESPACE, manifest)
    make_env = dict(os.environ)
    halted = subprocess.run(["make", "-C", str(REPO), "halt-workers"], capture_output=True, text=True, env=make_env)
    # Autonomy is on: the halt is done, and the plugin says loudly that new worker Jobs are still admitted.
    assert halted.returncode != 0
    assert "✗ the API server does NOT refuse new worker Jobs: autonomy is on" in halted.stderr, halted.stderr

    def suspended() -> str:
        return kubectl("get", "job", "long-run", "-n", NAMESPACE, "-o", "jsonpath={.spec.suspend}").stdout

    assert suspended() == "true"
    eventually(
        lambda: (
            "Suspended"
            in kubectl("get", "job", "long-run", "-n", NAMESPACE, "-o", "jsonpath={.status.conditions[*].type}").stdout
        ),
        timeout=30,
        what="the Job controller to mark it Suspended",
    )
    set_switch(False)
    refused = subprocess.run(["make", "-C", str(REPO), "resume-workers"], capture_output=True, text=True, env=make_env)
    assert refused.returncode != 0
    assert "Autonomy is not enabled in ConfigMap leviathan-autonomy-config" in refused.stderr
    assert suspended() == "true"
    set_switch(True)
    eventually(
        lambda: (
            subprocess.run(["make", "-C", str(REPO), "resume-workers"], capture_output=True, env=make_env).returncode
            == 0
        ),
        timeout=10,
        what="make resume-workers to pass once enabled",
        interval=0.2,
    )
    assert suspended() == "false"
    kubectl("delete", "job", "long-run", "-n", NAMESPACE, "--wait=false")


def test_a_failing_task_pauses_and_resumes_while_the_other_goes_on(installed, tmp_path):
    config = tmp_path / "dev.yaml"
    config.write_text(config_text())
    slot = int(time.time() // 60) - 100

    def failed_flaky() -> int:
        out = kubectl("get", "jobs", "-n", NAMESPACE, "-l", "leviathan.io/task=flaky", "-o", "json").stdout
        return sum(
            any(c["type"] == "Failed" and c["status"] == "True" for c in (j.get("status") or {}).get("conditions", []))
            for j in json.loads(out)["items"]
        )

    for tick in range(3):
        assert run_scheduler(slot + tick, config).returncode == 0
        eventually(lambda done=tick + 1: failed_flaky() == done, timeout=60, what=f"{tick + 1} failed flaky Jobs")
    result = run_scheduler(slot + 3, config)
    assert (
        f"⏸ Task flaky paused after 3 consecutive failures (last: leviathan-worker-flaky-{slot + 2})" in result.stderr
    )
    assert f"✓ Submitted job leviathan-worker-steady-{slot + 3} (task steady)" in result.stderr
    # A second tick of the same pause says it again, and records no second Event.
    again = run_scheduler(slot + 3, config)
    assert f"⏸ Task flaky paused after 3 consecutive failures (last: leviathan-worker-flaky-{slot + 2})" in again.stderr
    selector = f"reason=TaskPaused,involvedObject.name=leviathan-worker-flaky-{slot + 2}"
    events = kubectl("get", "events", "-n", NAMESPACE, "--field-selector", selector, "-o", "json").stdout
    [event] = json.loads(events)["items"]
    assert event["involvedObject"]["kind"] == "Job" and event["count"] == 1
    assert event["message"].startswith("Task flaky paused after 3 consecutive failures")
    assert "make resume-task TASK=flaky" in event["message"]
    assert f"job.batch/leviathan-worker-flaky-{slot + 3}" not in worker_names()
    # The control plane reports the same pause (issue 10 item 4), in make status.
    paused = [{"task": "flaky", "consecutive_failures": 3, "last_failed_job": f"leviathan-worker-flaky-{slot + 2}"}]
    eventually(lambda: status_detail()["paused_tasks"] == paused, timeout=60, what="make status to show flaky paused")
    resumed = subprocess.run(["make", "-C", str(REPO), "resume-task", "TASK=flaky"], capture_output=True, text=True)
    assert resumed.returncode == 0, resumed.stderr
    eventually(lambda: status_detail()["paused_tasks"] == [], timeout=60, what="the pause to leave make status")
    result = run_scheduler(slot + 4, config)
    assert "⏸" not in result.stderr
    assert f"✓ Submitted job leviathan-worker-flaky-{slot + 4} (task flaky)" in result.stderr
