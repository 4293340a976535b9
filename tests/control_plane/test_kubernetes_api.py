"""GET /v1/autonomy's who and paused tasks, and the switch-change Events, through a real
control plane talking to a kmock API emulator (issues 10 and 14).

The API is off the request path: whatever it does, /v1/autonomy/status answers as the
file says, and GET /v1/autonomy answers 200 with what is not known and why.
"""

from __future__ import annotations

import asyncio
import copy
import os
import signal
import sys
import time
from pathlib import Path

import kmock
import pytest
import yaml

from support.api_read import detail, detail_after_api_read
from support.control_plane import ControlPlaneServer, bearer, eventually
from support.emulator import CONFIGMAPS, NAMESPACE, KubeEmulator, finished_status, job, job_list
from support.kubelet_volume import publish

CONFIGMAP = "leviathan-autonomy-config"
STAMP = "autonomy.leviathan.io/switched-by"
EVENTS = "v1/events"
# The switch file, and the scheduler's settings file beside it (its own ConfigMap, mounted as the chart does).
CONFIG = """autonomy_enabled: {enabled}
reason: "INC-7: runaway retries"
"""
SETTINGS = """scheduler:
  tasks:
    - name: inventory
      image: busybox:1.37.0
worker:
  selector: {app: leviathan-worker, app.kubernetes.io/instance: leviathan}
  releaseSelector: {app.kubernetes.io/instance: leviathan}
"""
WORKER_LABELS = {"app": "leviathan-worker", "app.kubernetes.io/instance": "leviathan", "leviathan.io/task": "inventory"}


def config_map(text: str, stamp: str | None = None, resource_version: int = 41) -> dict:
    metadata: dict = {"name": CONFIGMAP, "namespace": NAMESPACE, "resourceVersion": str(resource_version)}
    if stamp is not None:
        metadata["annotations"] = {STAMP: stamp}
    return {"apiVersion": "v1", "kind": "ConfigMap", "metadata": metadata, "data": {"dev.yaml": text}}


def failed_job(minute: int) -> dict:
    manifest = job(f"leviathan-worker-inventory-{minute}", WORKER_LABELS)
    manifest["metadata"]["annotations"] = {"leviathan.io/scheduled-time": f"2026-11-27T08:{minute:02d}:00Z"}
    manifest["status"] = finished_status("Failed")
    return manifest


@pytest.fixture
def emulator():
    with KubeEmulator() as running:
        running.call(
            lambda k: k.resources.__setitem__(
                EVENTS, kmock.ResourceInfo(kind="Event", namespaced=True, verbs={"create", "get", "list"})
            )
        )
        yield running


def stored_events(emulator: KubeEmulator) -> list[dict]:
    return emulator.call(
        lambda k: [copy.deepcopy(dict(o.raw)) for (r, _, _), o in k.objects.items() if r.plural == "events"]
    )


@pytest.fixture
def settings_mount(tmp_path: Path) -> Path:
    """A kubelet-style volume of the scheduler's settings ConfigMap: tasks and the worker selectors."""
    directory = tmp_path / "scheduler"
    publish(directory, {"scheduler.yaml": SETTINGS})
    return directory


@pytest.fixture
def start(
    emulator: KubeEmulator, mount: Path, config_path: Path, settings_mount: Path, token_file: Path, tmp_path: Path
):
    """start(name) runs a control plane with API access to the emulator; all are stopped at the end."""
    kubeconfig = emulator.kubeconfig(tmp_path / "kubeconfig")
    publish(mount, {"dev.yaml": CONFIG.format(enabled="true")})
    servers = []

    def start_one(name: str = "replica-a", stamp_policy: str | None = "true") -> ControlPlaneServer:
        """stamp_policy: LEVIATHAN_STAMP_POLICY as the chart sets it where it renders the stamp policy (None: unset)."""
        env = {
            "KUBECONFIG": str(kubeconfig),
            "LEVIATHAN_CONFIGMAP": CONFIGMAP,
            "LEVIATHAN_SCHEDULER_CONFIG": str(settings_mount / "scheduler.yaml"),
            "HOME": str(tmp_path),
            "HOSTNAME": name,
        }
        if stamp_policy is not None:
            env["LEVIATHAN_STAMP_POLICY"] = stamp_policy
        servers.append(ControlPlaneServer(config_path, token_file, tmp_path / f"{name}.log", extra_env=env))
        return servers[-1]

    yield start_one
    for server in servers:
        server.stop()


def test_without_api_access_who_and_paused_tasks_are_null_and_say_why(client):
    body = client.get("/v1/autonomy", headers=bearer()).json()
    for field in ("switched_by", "paused_tasks", "kubernetes_api_read_at", "kubernetes_api_read_age_seconds"):
        assert body[field] is None
    for field in ("switched_by_problem", "paused_tasks_problem", "kubernetes_api_problem"):
        assert body[field].startswith("no Kubernetes API access (LEVIATHAN_CONFIGMAP is not set")


def test_who_flipped_and_the_paused_task_come_from_the_api(emulator, start):
    emulator.seed(config_map(CONFIG.format(enabled="true"), stamp="alice"), resource=CONFIGMAPS)
    emulator.seed(*(failed_job(minute) for minute in (10, 20, 30)))
    body = detail_after_api_read(start())
    assert body["switched_by"] == "alice"
    assert body["switched_by_problem"] is None
    assert body["paused_tasks_problem"] is None
    assert body["paused_tasks"] == [
        {"task": "inventory", "consecutive_failures": 3, "last_failed_job": "leviathan-worker-inventory-30"}
    ]
    assert body["paused_tasks_problem"] is None
    assert body["kubernetes_api_problem"] is None
    assert 0 <= body["kubernetes_api_read_age_seconds"] < 10
    assert {p["labelSelector"] for p in emulator.params("LIST")} == {"app.kubernetes.io/instance=leviathan"}


@pytest.mark.parametrize(
    ("settings", "why"),
    [
        (None, "scheduler.yaml does not exist"),
        ("scheduler: [\n", "invalid YAML in"),
        ("scheduler:\n  tasks: {name: inventory}\n", "scheduler.tasks: not a list of tasks with names"),
    ],
    ids=["missing", "invalid YAML", "tasks not a list"],
)
def test_settings_that_cannot_be_read_leave_the_paused_tasks_unknown(
    emulator, start, mount, settings_mount, settings, why
):
    """The paused tasks come from the settings file: without it they are unknown, and the answer says why."""
    publish(settings_mount, {} if settings is None else {"scheduler.yaml": settings})
    emulator.seed(config_map(CONFIG.format(enabled="true"), stamp="alice"), resource=CONFIGMAPS)
    emulator.seed(*(failed_job(minute) for minute in (10, 20, 30)))
    server = start()
    body = detail_after_api_read(server)
    assert body["paused_tasks"] is None
    assert body["paused_tasks_problem"].startswith("cannot read the scheduler's settings: ")
    assert why in body["paused_tasks_problem"]
    assert body["paused_tasks_problem"].endswith("(the scheduler fails closed on it)")
    assert body["switched_by"] == "alice"  # the rest of the answer stands
    assert server.status() == {"autonomy_enabled": True, "source": f"configmap:{mount / 'dev.yaml'}"}


def test_an_unusable_switch_file_leaves_the_paused_tasks_unknown(emulator, start, mount):
    emulator.seed(config_map("autonomy_enabled: True\n", stamp="alice"), resource=CONFIGMAPS)
    emulator.seed(*(failed_job(minute) for minute in (10, 20, 30)))
    publish(mount, {"dev.yaml": "autonomy_enabled: True\n"})
    server = start()
    body = detail_after_api_read(server)
    assert body["source"] == "default (error reading config)"
    assert (body["paused_tasks"], body["paused_tasks_problem"]) == (
        None,
        "the config is unusable, so the scheduler submits nothing (it fails closed)",
    )


@pytest.mark.parametrize(
    ("stamp", "why"),
    [(None, "MutatingAdmissionPolicy"), ("unknown (no flip seen yet)", "no flip since the identity stamp policy")],
)
def test_an_unknown_identity_is_null_with_the_reason(emulator, start, stamp, why):
    emulator.seed(config_map(CONFIG.format(enabled="true"), stamp=stamp), resource=CONFIGMAPS)
    body = detail_after_api_read(start())
    assert body["switched_by"] is None
    assert why in body["switched_by_problem"]


@pytest.mark.parametrize("stamp_policy", [None, "false"], ids=["unset", "false"])
def test_without_the_stamp_policy_the_annotation_is_unverified_and_not_reported(emulator, start, stamp_policy):
    """Where the chart rendered no stamp policy, anyone who may edit the ConfigMap can type the annotation."""
    emulator.seed(config_map(CONFIG.format(enabled="true"), stamp="alice"), resource=CONFIGMAPS)
    body = detail_after_api_read(start(stamp_policy=stamp_policy))
    assert body["switched_by"] is None
    assert body["switched_by_problem"].startswith("unverified: the identity stamp policy is not in force here")
    assert "MutatingAdmissionPolicy" in body["switched_by_problem"]
    assert "alice" not in str(body)
    assert body["kubernetes_api_problem"] is None  # the read itself worked


def test_an_unverified_stamp_never_names_anyone_in_the_events(emulator, start, mount):
    emulator.seed(config_map(CONFIG.format(enabled="true"), stamp="mallory"), resource=CONFIGMAPS)
    server = start(stamp_policy=None)
    detail_after_api_read(server)
    publish(mount, {"dev.yaml": CONFIG.format(enabled="false")})
    eventually(lambda: len(stored_events(emulator)) == 1, timeout=10)
    [event] = stored_events(emulator)
    assert event["reason"] == "AutonomyDisabled"
    assert "switched by" not in event["message"] and "mallory" not in event["message"]


@pytest.mark.parametrize("length", [256, 257, 100_000])
def test_switched_by_is_capped_at_256_characters_with_a_problem_when_longer(emulator, start, length):
    stamp = ("oidc:" + "x" * length)[:length]
    emulator.seed(config_map(CONFIG.format(enabled="true"), stamp=stamp), resource=CONFIGMAPS)
    body = detail_after_api_read(start())
    assert body["switched_by"] == stamp[:256]
    if length <= 256:
        assert body["switched_by_problem"] is None
    else:
        assert body["switched_by_problem"] == (
            f"the autonomy.leviathan.io/switched-by annotation is {length} characters long (escaped): switched_by "
            "shows its first 256; no user name is that long, see the audit log"
        )


def test_the_cap_counts_the_escaped_text(emulator, start):
    """A control character is shown escaped (\\n: two characters); the cap holds on what is shown."""
    stamp = "\n" * 200
    emulator.seed(config_map(CONFIG.format(enabled="true"), stamp=stamp), resource=CONFIGMAPS)
    body = detail_after_api_read(start())
    assert body["switched_by"] == "\\n" * 128
    assert "is 400 characters long (escaped)" in body["switched_by_problem"]


def test_a_stamp_policy_flag_that_is_not_a_boolean_refuses_to_start(emulator, start):
    with pytest.raises(AssertionError, match="LEVIATHAN_STAMP_POLICY must be true or false, not 'yes'"):
        start(stamp_policy="yes")


def test_an_api_failure_is_a_reported_problem_never_an_error_answer(emulator, start, mount):
    emulator.react(lambda k: k[kmock.action.FETCH, kmock.resource(CONFIGMAPS)] << 500)
    server = start()
    eventually(lambda: "500" in (detail(server)["kubernetes_api_problem"] or ""), timeout=10)
    body = detail(server)
    assert "get configmaps/leviathan-autonomy-config" in body["kubernetes_api_problem"]
    assert "500" in body["kubernetes_api_problem"]
    assert body["switched_by"] is None and body["switched_by_problem"] == body["kubernetes_api_problem"]
    assert server.status() == {"autonomy_enabled": True, "source": f"configmap:{mount / 'dev.yaml'}"}
    metrics = server.get("/metrics").body.decode()
    assert "leviathan_kubernetes_api_read_failing 1.0" in metrics
    assert server.logs().count("keeps the last answer read") == 1


def test_credentials_missing_at_start_up_are_a_problem_and_the_thread_connects_later(emulator, start, mount, tmp_path):
    """Credentials are loaded before the server takes requests; when they fail there, it still starts,
    says why, and the thread loads them at a later read."""
    emulator.seed(config_map(CONFIG.format(enabled="true"), stamp="alice"), resource=CONFIGMAPS)
    kubeconfig = tmp_path / "kubeconfig"
    kubeconfig.rename(tmp_path / "kubeconfig.away")
    server = start()
    eventually(lambda: "credentials" in (detail(server)["kubernetes_api_problem"] or ""), timeout=10)
    assert detail(server)["kubernetes_api_problem"].startswith("cannot load Kubernetes credentials")
    assert server.status() == {"autonomy_enabled": True, "source": f"configmap:{mount / 'dev.yaml'}"}
    (tmp_path / "kubeconfig.away").rename(kubeconfig)
    publish(mount, {"dev.yaml": CONFIG.format(enabled="false")})  # a config change: the thread reads again now
    eventually(lambda: detail(server)["switched_by"] == "alice", timeout=10)
    assert detail(server)["kubernetes_api_problem"] is None


def test_a_credential_plugin_that_hangs_never_keeps_the_server_from_serving(emulator, start, mount, tmp_path):
    """Start-up waits for the credentials a bounded time (exec plugins run without a timeout)."""
    plugin = tmp_path / "hanging_plugin.py"
    plugin.write_text("import time\ntime.sleep(20)\n")
    kubeconfig = tmp_path / "kubeconfig"
    document = yaml.safe_load(kubeconfig.read_text())
    exec_config = {"apiVersion": "client.authentication.k8s.io/v1", "command": sys.executable}
    exec_config |= {"args": [str(plugin)], "interactiveMode": "Never"}
    document["users"] = [{"name": "tester", "user": {"exec": exec_config}}]
    kubeconfig.write_text(yaml.safe_dump(document))
    began = time.monotonic()
    server = start()
    assert server.status() == {"autonomy_enabled": True, "source": f"configmap:{mount / 'dev.yaml'}"}
    assert time.monotonic() - began < 10
    assert detail(server)["kubernetes_api_problem"] == "not read yet"


def test_each_switch_change_is_one_event_however_many_replicas_see_it(emulator, start, mount):
    emulator.seed(config_map(CONFIG.format(enabled="true"), stamp="alice"), resource=CONFIGMAPS)
    replicas = [start("replica-a"), start("replica-b")]
    for replica in replicas:
        detail_after_api_read(replica)
    emulator.seed(config_map(CONFIG.format(enabled="false"), stamp="bob", resource_version=42), resource=CONFIGMAPS)
    publish(mount, {"dev.yaml": CONFIG.format(enabled="false")})
    eventually(lambda: len(emulator.bodies("CREATE")) == 2, timeout=10)
    [event] = stored_events(emulator)
    assert event["reason"] == "AutonomyDisabled"
    assert event["type"] == "Warning"
    assert event["involvedObject"] == {
        "apiVersion": "v1",
        "kind": "ConfigMap",
        "name": CONFIGMAP,
        "namespace": NAMESPACE,
        "resourceVersion": "42",
    }
    assert event["message"] == (
        f"autonomy_enabled true -> false (source: configmap:{mount / 'dev.yaml'}); "
        "reason: INC-7: runaway retries; switched by bob"
    )
    assert event["metadata"]["name"].startswith(CONFIGMAP + ".")
    counts = [r.get("/metrics").body.decode() for r in replicas]
    assert sorted("leviathan_switch_events_total 1.0" in text for text in counts) == [False, True]


def test_an_event_that_cannot_be_written_is_logged_once_and_counted(emulator, start, mount):
    emulator.seed(config_map(CONFIG.format(enabled="true"), stamp="alice"), resource=CONFIGMAPS)
    emulator.react(lambda k: k[kmock.action.CREATE, kmock.resource(EVENTS)] << 403)
    server = start()
    detail_after_api_read(server)
    for count, enabled in enumerate(("false", "true", "false"), start=1):
        # Each edit is a new resourceVersion, as on a real API server (it names the Event).
        emulator.seed(config_map(CONFIG.format(enabled=enabled), "alice", 41 + count), resource=CONFIGMAPS)
        publish(mount, {"dev.yaml": CONFIG.format(enabled=enabled)})
        failed = f"leviathan_switch_event_failures_total {count}.0"
        eventually(lambda failed=failed: failed in server.get("/metrics").body.decode(), timeout=10)
    assert server.status() == {"autonomy_enabled": False, "source": f"configmap:{mount / 'dev.yaml'}"}
    assert server.logs().count("cannot record the switch change as an Event") == 1
    assert detail(server)["kubernetes_api_problem"] is None


# ---- issue 20: the Job list in pages, read by a process of its own ---------------------------------


def paged(pages: list[list[dict]], gone_at: int | None = None):
    """A list reaction answering page n+1 to `continue: page-n` (kmock does not page); 410 Gone for `gone_at`."""

    def answer(request: kmock.Request):
        token = request.params.get("continue") or ""
        index = int(token.removeprefix("page-")) if token else 0
        if index == gone_at:
            status = {"kind": "Status", "status": "Failure", "reason": "Expired", "code": 410, "message": "too old"}
            return kmock.Response(status=410, payload=status)
        body = job_list(pages[index])
        if index + 1 < len(pages):
            body["metadata"] = {"continue": f"page-{index + 1}"}
        return body

    return answer


def succeeded_job(minute: int) -> dict:
    manifest = failed_job(minute)
    manifest["status"] = finished_status("Complete")
    return manifest


ON_LIST = (kmock.action.LIST, kmock.resource("batch/v1/jobs"))


def test_the_job_list_is_read_page_by_page_and_the_pause_spans_pages(emulator, start):
    emulator.seed(config_map(CONFIG.format(enabled="true"), stamp="alice"), resource=CONFIGMAPS)
    pages = [[failed_job(30), succeeded_job(5)], [failed_job(20)], [], [failed_job(10)]]
    emulator.react(lambda k: k[ON_LIST] << paged(pages))
    server = start()
    body = detail_after_api_read(server, timeout=30)
    assert body["paused_tasks"] == [
        {"task": "inventory", "consecutive_failures": 3, "last_failed_job": "leviathan-worker-inventory-30"}
    ]
    first_read = emulator.params("LIST")[:4]
    assert [p.get("continue") for p in first_read] == [None, "page-1", "page-2", "page-3"]
    assert {p["limit"] for p in first_read} == {"500"}
    metrics = server.get("/metrics").body.decode()
    assert "leviathan_kubernetes_api_jobs_listed 4.0" in metrics
    assert "leviathan_kubernetes_api_list_pages 4.0" in metrics


def test_an_expired_continue_token_is_a_problem_never_a_wrong_pause(emulator, start, mount):
    emulator.seed(config_map(CONFIG.format(enabled="true"), stamp="alice"), resource=CONFIGMAPS)
    # Only two of the three failures are on the pages before the token expires: reading on would say "not paused".
    pages = [[failed_job(30)], [failed_job(20)], [failed_job(10)]]
    emulator.react(lambda k: k[ON_LIST] << paged(pages, gone_at=2))
    server = start()
    eventually(lambda: "410" in (detail(server)["kubernetes_api_problem"] or ""), timeout=30)
    body = detail(server)
    assert body["kubernetes_api_problem"] == (
        "Kubernetes API answered list jobs.batch in namespace leviathan with 410 Gone: the list changed too much "
        "while it was read page by page (its continue token expired); the next poll lists again"
    )
    assert body["paused_tasks"] is None and body["paused_tasks_problem"] == body["kubernetes_api_problem"]
    assert server.status() == {"autonomy_enabled": True, "source": f"configmap:{mount / 'dev.yaml'}"}
    assert "leviathan_kubernetes_api_read_failing 1.0" in server.get("/metrics").body.decode()


def test_a_job_with_a_huge_annotation_is_counted_like_any_other(emulator, start):
    emulator.seed(config_map(CONFIG.format(enabled="true"), stamp="alice"), resource=CONFIGMAPS)
    bulky = [failed_job(minute) for minute in (10, 20, 30)]
    for manifest in bulky:
        manifest["metadata"]["annotations"]["example.com/blob"] = "x" * 1_000_000
    emulator.seed(*bulky)
    body = detail_after_api_read(start(), timeout=30)
    assert [p["consecutive_failures"] for p in body["paused_tasks"]] == [3]


def listers(server: ControlPlaneServer) -> list[int]:
    """The server's child processes running leviathan_control_plane.job_lister."""
    found = []
    for task in Path(f"/proc/{server.process.pid}/task").iterdir():
        for pid in (task / "children").read_text().split():
            if b"leviathan_control_plane.job_lister" in Path(f"/proc/{pid}/cmdline").read_bytes():
                found.append(int(pid))
    return found


def list_headers(emulator: KubeEmulator) -> list[dict[str, str]]:
    return emulator.call(lambda k: [dict(r.headers) for r in k if r.action is not None and r.action.value == "LIST"])


def test_the_job_list_is_read_by_a_process_of_its_own_with_the_servers_credentials(emulator, start):
    """The server's client reads the ConfigMap; every Job-list request comes from the lister, with the same token."""
    emulator.seed(config_map(CONFIG.format(enabled="true"), stamp="alice"), resource=CONFIGMAPS)
    emulator.seed(*(failed_job(minute) for minute in (10, 20, 30)))
    server = start()
    detail_after_api_read(server, timeout=30)
    assert len(listers(server)) == 1
    headers = list_headers(emulator)
    assert headers
    assert {h.get("User-Agent") for h in headers} == {"leviathan-control-plane-job-lister"}
    assert {h.get("Authorization") for h in headers} == {"Bearer test-token"}
    gets = emulator.call(lambda k: [dict(r.headers) for r in k if r.action is not None and r.action.value == "FETCH"])
    assert gets and {h.get("Authorization") for h in gets} == {"Bearer test-token"}
    assert "job-lister" not in str({h.get("User-Agent") for h in gets})


# An exec credential plugin (client.authentication.k8s.io/v1) that hands out whatever token file says, already
# expired, so the kubernetes client runs it again before each request: a token rotated under the server.
EXEC_PLUGIN = """import json, sys
token = open(sys.argv[1]).read().strip()
status = {"token": token, "expirationTimestamp": "2000-01-01T00:00:00Z"}
print(json.dumps({"apiVersion": "client.authentication.k8s.io/v1", "kind": "ExecCredential", "status": status}))
"""


def test_a_rotated_token_reaches_the_running_job_list_process(emulator, start, tmp_path, mount):
    """The lister gets the credentials with each request, so a new token is used from the next list on,
    by the same process, without a restart of either."""
    emulator.seed(config_map(CONFIG.format(enabled="true")), resource=CONFIGMAPS)
    emulator.seed(failed_job(10))
    token = tmp_path / "exec-token"
    token.write_text("token-one")
    plugin = tmp_path / "exec_plugin.py"
    plugin.write_text(EXEC_PLUGIN)
    kubeconfig = emulator.kubeconfig(tmp_path / "kubeconfig")
    document = yaml.safe_load(kubeconfig.read_text())
    exec_config = {"apiVersion": "client.authentication.k8s.io/v1", "command": sys.executable}
    exec_config |= {"args": [str(plugin), str(token)], "interactiveMode": "Never"}
    document["users"] = [{"name": "tester", "user": {"exec": exec_config}}]
    kubeconfig.write_text(yaml.safe_dump(document))
    server = start()
    first = detail_after_api_read(server, timeout=30)
    (lister,) = listers(server)
    assert {h.get("Authorization") for h in list_headers(emulator)} == {"Bearer token-one"}

    token.write_text("token-two")
    publish(mount, {"dev.yaml": CONFIG.format(enabled="false")})  # a config change: the thread reads again now
    detail_after_api_read(server, since=first["kubernetes_api_read_at"], timeout=30)
    eventually(lambda: list_headers(emulator)[-1].get("Authorization") == "Bearer token-two", timeout=10)
    assert listers(server) == [lister]
    used = [h.get("Authorization") for h in list_headers(emulator)]
    assert used[-1] == "Bearer token-two" and set(used) == {"Bearer token-one", "Bearer token-two"}


def test_the_job_list_process_is_started_again_if_it_dies(emulator, start):
    emulator.seed(config_map(CONFIG.format(enabled="true"), stamp="alice"), resource=CONFIGMAPS)
    emulator.seed(*(failed_job(minute) for minute in (10, 20, 30)))
    server = start()
    first = detail_after_api_read(server, timeout=30)
    [lister] = listers(server)
    os.kill(lister, signal.SIGKILL)
    # The next poll (every 10 s) finds it gone and starts another before it reads.
    body = detail_after_api_read(server, since=first["kubernetes_api_read_at"], timeout=40)
    assert body["kubernetes_api_problem"] is None
    assert body["paused_tasks"] == first["paused_tasks"]
    [again] = listers(server)
    assert again != lister
    server.stop()
    eventually(lambda: not Path(f"/proc/{again}").exists() or b"zombie" in Path(f"/proc/{again}/status").read_bytes())


def test_a_list_that_is_not_a_job_list_is_a_problem_and_the_next_read_recovers(emulator, start):
    emulator.seed(config_map(CONFIG.format(enabled="true"), stamp="alice"), resource=CONFIGMAPS)
    emulator.seed(*(failed_job(minute) for minute in (10, 20, 30)))
    # The first list breaks off mid-page (its second item is not a Job).
    emulator.react(lambda k: k[ON_LIST][:1] << {"items": [failed_job(40), 7, failed_job(50)]})
    server = start()
    eventually(lambda: "not a Job list" in (detail(server)["kubernetes_api_problem"] or ""), timeout=30)
    assert detail(server)["kubernetes_api_problem"] == (
        "the Kubernetes API answered list jobs.batch with something that is not a Job list "
        "(its item 2 is not an object)"
    )
    assert detail(server)["paused_tasks"] is None
    [lister] = listers(server)
    body = detail_after_api_read(server, timeout=40)
    assert body["kubernetes_api_problem"] is None
    assert [p["consecutive_failures"] for p in body["paused_tasks"]] == [3]
    assert listers(server) == [lister]  # the same process: a bad answer is an answer, not a crash


@pytest.mark.parametrize(
    ("status", "why"),
    [(500, "500 Internal Server Error"), (403, "403 Forbidden: check the control plane's Role")],
)
def test_a_list_the_api_refuses_is_a_problem_never_an_error_answer(emulator, start, mount, status, why):
    emulator.seed(config_map(CONFIG.format(enabled="true"), stamp="alice"), resource=CONFIGMAPS)
    emulator.react(lambda k: k[ON_LIST] << status)
    server = start()
    eventually(lambda: why in (detail(server)["kubernetes_api_problem"] or ""), timeout=30)
    body = detail(server)
    assert (
        body["kubernetes_api_problem"] == f"Kubernetes API answered list jobs.batch in namespace leviathan with {why}"
    )
    assert body["paused_tasks"] is None and body["paused_tasks_problem"] == body["kubernetes_api_problem"]
    assert server.status() == {"autonomy_enabled": True, "source": f"configmap:{mount / 'dev.yaml'}"}
    assert "leviathan_kubernetes_api_read_failing 1.0" in server.get("/metrics").body.decode()


def test_a_list_that_stalls_mid_page_is_a_problem_and_the_last_answer_stays(emulator, start, mount):
    """A body that stops coming for longer than the read timeout (5 s): the list is given up, the status answers."""
    emulator.seed(config_map(CONFIG.format(enabled="true"), stamp="alice"), resource=CONFIGMAPS)
    emulator.seed(*(failed_job(minute) for minute in (10, 20, 30)))
    server = start()
    first = detail_after_api_read(server, timeout=30)
    stalled = []

    async def stall():
        stalled.append(True)
        yield b'{"kind": "JobList", "metadata": {}, "items": ['
        await asyncio.sleep(8)
        yield b"]}"

    seen = len(emulator.params("LIST"))
    emulator.react(lambda k: k[ON_LIST][seen : seen + 1] << stall)
    eventually(lambda: "broke off" in (detail(server)["kubernetes_api_problem"] or ""), timeout=30)
    body = detail(server)
    assert body["kubernetes_api_problem"] == (
        "the Kubernetes API broke off list jobs.batch while it was read: TimeoutError"
    )
    assert body["paused_tasks"] == first["paused_tasks"]  # the last complete answer, with its age
    assert body["kubernetes_api_read_at"] == first["kubernetes_api_read_at"]
    assert server.status() == {"autonomy_enabled": True, "source": f"configmap:{mount / 'dev.yaml'}"}
    assert stalled
