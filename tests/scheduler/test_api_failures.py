"""The API refusing, failing or missing: bounded retries, one clear line, distinct exit codes."""

from __future__ import annotations

import re
import socket
import time

import kmock
import pytest

from support.emulator import NAMESPACE, Call, write_kubeconfig
from support.scheduler import TASK_NAMES, assert_no_traceback, job_name, lines, worker_jobs

LIST = Call("GET", "LIST", "batch/jobs", NAMESPACE)
CREATE = Call("POST", "CREATE", "batch/jobs", NAMESPACE)
JOBS = kmock.resource("batch/v1/jobs")
ON_LIST = (kmock.action.LIST, JOBS)
ON_CREATE = (kmock.action.CREATE, JOBS)

EXIT_API_UNAVAILABLE = 5
EXIT_API_FORBIDDEN = 6
EXIT_API_REJECTED = 7


def failure_line(stderr: str) -> str:
    [line] = [line for line in lines(stderr) if line.startswith("✗ ") and not line.startswith("✗ Tick stopped")]
    return line


def retry_lines(stderr: str) -> list[str]:
    return [line for line in lines(stderr) if line.startswith("… ")]


def stopped(stderr: str) -> str:
    [line] = [line for line in lines(stderr) if line.startswith("✗ Tick stopped")]
    return line


@pytest.mark.parametrize(("status", "reason"), [(403, "Forbidden"), (401, "Unauthorized")])
def test_refused_list_exits_6_with_an_rbac_hint(enabled_config, run_scheduler, emulator, status, reason):
    emulator.react(lambda k: k[ON_LIST] << status)
    result = run_scheduler(env={"LEVIATHAN_SERVICE_ACCOUNT": "leviathan-scheduler"})
    assert result.returncode == EXIT_API_FORBIDDEN
    assert failure_line(result.stderr) == (
        f"✗ Kubernetes API refused list batch/jobs in namespace {NAMESPACE} ({status} {reason}): "
        "the scheduler's Role must allow list on jobs.batch; check with "
        f"kubectl auth can-i list jobs.batch -n {NAMESPACE} "
        f"--as=system:serviceaccount:{NAMESPACE}:leviathan-scheduler"
    )
    assert stopped(result.stderr).startswith("✗ Tick stopped: submitted 0, already existed 0")
    assert retry_lines(result.stderr) == []  # a refusal is not retried
    assert emulator.requests() == [LIST]
    assert worker_jobs(emulator) == []
    assert_no_traceback(result)


def test_refused_create_exits_6_after_the_first_attempt(enabled_config, run_scheduler, emulator):
    emulator.react(lambda k: k[ON_CREATE] << 403)
    result = run_scheduler()
    assert result.returncode == EXIT_API_FORBIDDEN
    line = failure_line(result.stderr)
    assert line.startswith(f"✗ Kubernetes API refused create batch/jobs in namespace {NAMESPACE} (403 Forbidden)")
    assert f"kubectl auth can-i create jobs.batch -n {NAMESPACE}" in line
    assert "<scheduler service account>" in line  # LEVIATHAN_SERVICE_ACCOUNT unset
    # The second task is not even tried: the same Role would refuse it.
    assert emulator.requests() == [LIST, CREATE]
    assert "Submitted" not in result.stderr
    assert_no_traceback(result)


def test_invalid_job_exits_7_with_the_server_message(enabled_config, run_scheduler, emulator):
    status = {
        "apiVersion": "v1",
        "kind": "Status",
        "status": "Failure",
        "code": 422,
        "reason": "Invalid",
        "message": 'Job.batch "x" is invalid: spec.template.spec.containers[0].image: Required value',
    }
    emulator.react(lambda k: k[ON_CREATE] << 422 << status)
    result = run_scheduler()
    assert result.returncode == EXIT_API_REJECTED
    assert failure_line(result.stderr) == (
        f"✗ Kubernetes API rejected create batch/jobs in namespace {NAMESPACE} (422 Unprocessable Entity): "
        + status["message"]
    )
    assert emulator.requests() == [LIST, CREATE]
    assert_no_traceback(result)


@pytest.mark.parametrize(
    ("answer", "why"),
    [
        ({"kind": "Status", "status": "Success"}, "it has no items"),
        (b"<html>maintenance</html>", "it is not a JSON object"),
        ({"items": "none"}, "its items are not a list"),
        ({"items": [{"metadata": {}}, 7]}, "its item 2 is not an object"),
        (b'{"items": [{"metadata": {"name": "a"}}', "it ends before the list does"),
    ],
    ids=["no items", "not JSON", "items not a list", "an item not an object", "cut short"],
)
def test_a_list_answer_that_is_not_a_job_list_exits_7(enabled_config, run_scheduler, emulator, answer, why):
    emulator.react(lambda k: k[ON_LIST] << answer)
    result = run_scheduler()
    assert result.returncode == EXIT_API_REJECTED
    assert failure_line(result.stderr) == (
        f"✗ Kubernetes API answered list batch/jobs with something that is not a Job list ({why})"
    )
    assert "Submitted" not in result.stderr
    assert emulator.requests() == [LIST]
    assert_no_traceback(result)


@pytest.mark.parametrize(("status", "shown"), [(500, "500 Internal Server Error"), (429, "429 Too Many Requests")])
def test_transient_list_errors_are_retried(enabled_config, run_scheduler, emulator, slot, status, shown):
    emulator.react(lambda k: k[ON_LIST][:2] << status)
    result = run_scheduler()
    assert result.returncode == 0, result.stderr
    assert retry_lines(result.stderr) == [
        f"… list batch/jobs failed ({shown}); retrying in 0.5s",
        f"… list batch/jobs failed ({shown}); retrying in 1.0s",
    ]
    assert emulator.requests() == [LIST, LIST, LIST, CREATE, CREATE]
    assert sorted(j["metadata"]["name"] for j in worker_jobs(emulator)) == sorted(job_name(t, slot) for t in TASK_NAMES)
    assert_no_traceback(result)


def test_persistent_500_gives_up_after_the_budget(enabled_config, run_scheduler, emulator):
    emulator.react(lambda k: k[ON_LIST] << 500)
    started = time.monotonic()
    result = run_scheduler("--retry-budget", "2")
    elapsed = time.monotonic() - started
    assert result.returncode == EXIT_API_UNAVAILABLE
    line = failure_line(result.stderr)
    match = re.fullmatch(
        rf"✗ Kubernetes API unavailable for list batch/jobs in namespace {NAMESPACE}: "
        r"500 Internal Server Error \(gave up after (\d+) attempts in 2s\)",
        line,
    )
    assert match, line
    attempts = int(match.group(1))
    assert attempts >= 3
    assert emulator.requests() == [LIST] * attempts
    assert len(retry_lines(result.stderr)) == attempts - 1
    assert stopped(result.stderr).startswith("✗ Tick stopped: submitted 0")
    assert 2 <= elapsed < 15
    assert worker_jobs(emulator) == []
    assert_no_traceback(result)


def test_a_lost_create_reply_does_not_duplicate_the_job(enabled_config, run_scheduler, emulator, slot):
    """The first create is stored but answered 500; the retry gets 409 and counts it as existing."""
    emulator.react(lambda k: k[ON_CREATE][:1] << 500)
    result = run_scheduler()
    assert result.returncode == 0, result.stderr
    assert emulator.requests() == [LIST, CREATE, CREATE, CREATE]
    assert lines(result.stderr) == [
        "… create batch/jobs failed (500 Internal Server Error); retrying in 0.5s",
        f"✓ Job {job_name('inventory', slot)} already exists (task inventory): this slot was already submitted",
        f"✓ Submitted job {job_name('index', slot)} (task index)",
        "✓ Tick done: submitted 1, already existed 1; active workers before the tick 0/5",
    ]
    assert sorted(j["metadata"]["name"] for j in worker_jobs(emulator)) == sorted(job_name(t, slot) for t in TASK_NAMES)


def closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def test_connection_refused_exits_5(enabled_config, run_scheduler, tmp_path):
    kubeconfig = write_kubeconfig(tmp_path / "closed", f"http://127.0.0.1:{closed_port()}")
    started = time.monotonic()
    result = run_scheduler("--retry-budget", "2", kubeconfig=kubeconfig)
    assert result.returncode == EXIT_API_UNAVAILABLE
    line = failure_line(result.stderr)
    assert line.startswith(f"✗ Kubernetes API unavailable for list batch/jobs in namespace {NAMESPACE}: ")
    assert "Connection refused" in line, line
    assert re.search(r"\(gave up after \d+ attempts in 2s\)$", line), line
    assert retry_lines(result.stderr)
    assert time.monotonic() - started < 15
    assert_no_traceback(result)


@pytest.mark.parametrize(
    "kubeconfig_text",
    [None, "not: [a kubeconfig\n", "apiVersion: v1\nkind: Config\nclusters: []\ncontexts: []\n"],
    ids=["missing file", "invalid YAML", "no context"],
)
def test_no_usable_credentials_exits_5(enabled_config, run_scheduler, emulator, tmp_path, kubeconfig_text):
    kubeconfig = tmp_path / "broken-kubeconfig"
    if kubeconfig_text is not None:
        kubeconfig.write_text(kubeconfig_text)
    result = run_scheduler(kubeconfig=kubeconfig)
    assert result.returncode == EXIT_API_UNAVAILABLE
    assert failure_line(result.stderr).startswith("✗ Cannot load Kubernetes credentials: ")
    assert emulator.requests() == []
    assert_no_traceback(result)
