"""--dry-run: the Jobs a tick would create, as YAML on stdout, without any API call."""

from __future__ import annotations

import socket

import kubernetes_validate
import pytest
import yaml

from support.emulator import NAMESPACE, write_kubeconfig
from support.helm import KUBERNETES_VERSIONS
from support.scheduler import (
    RELEASE,
    TASK_NAMES,
    WORKER_APP,
    assert_no_traceback,
    job_name,
    lines,
    owner_reference,
    worker_jobs,
)


def documents(stdout: str) -> list[dict]:
    return [doc for doc in yaml.safe_load_all(stdout) if doc is not None]


@pytest.fixture
def dry_run(enabled_config, run_scheduler, emulator):
    result = run_scheduler("--dry-run")
    assert result.returncode == 0, result.stderr
    assert emulator.requests() == []
    assert worker_jobs(emulator) == []
    return result


def test_prints_one_job_per_task(dry_run, slot):
    docs = documents(dry_run.stdout)
    assert [doc["kind"] for doc in docs] == ["Job", "Job"]
    assert [doc["apiVersion"] for doc in docs] == ["batch/v1", "batch/v1"]
    assert [doc["metadata"]["name"] for doc in docs] == [job_name(task, slot) for task in TASK_NAMES]
    for doc, task in zip(docs, TASK_NAMES, strict=True):
        for labels in (doc["metadata"]["labels"], doc["spec"]["template"]["metadata"]["labels"]):
            assert labels["app"] == WORKER_APP
            assert labels["app.kubernetes.io/instance"] == RELEASE
            assert labels["leviathan.io/task"] == task


def test_log_lines_go_to_stderr(dry_run, slot):
    assert lines(dry_run.stderr) == [
        *(f"✓ Would submit job {job_name(task, slot)} (task {task})" for task in TASK_NAMES),
        f"✓ Dry run in namespace {NAMESPACE}: would submit 2 (no API call; active Jobs assumed 0)",
    ]
    assert_no_traceback(dry_run)


@pytest.mark.parametrize("version", KUBERNETES_VERSIONS)
def test_every_job_is_valid_for_kubernetes(dry_run, version):
    for doc in documents(dry_run.stdout):
        kubernetes_validate.validate(doc, version, strict=True)


def test_prints_exactly_what_a_real_tick_submits(enabled_config, run_scheduler, emulator):
    """Same config, same environment: the dry run's manifests are the bodies the real tick sends."""
    dry = run_scheduler("--dry-run")
    assert dry.returncode == 0
    assert emulator.requests() == []
    real = run_scheduler()
    assert real.returncode == 0
    sent = emulator.bodies("CREATE")
    # Only a real tick knows its CronJob (from the list), so only it sets the owner.
    for body in sent:
        assert body["metadata"].pop("ownerReferences") == [owner_reference()]
    assert documents(dry.stdout) == sent


@pytest.mark.parametrize(
    ("args", "env", "namespace"),
    [
        (("--namespace", "ops"), {}, "ops"),
        ((), {"LEVIATHAN_NAMESPACE": "team"}, "team"),
    ],
)
def test_namespace_choice(enabled_config, run_scheduler, emulator, args, env, namespace):
    result = run_scheduler("--dry-run", *args, env=env)
    assert result.returncode == 0
    assert {doc["metadata"]["namespace"] for doc in documents(result.stdout)} == {namespace}
    assert f"Dry run in namespace {namespace}:" in lines(result.stderr)[-1]


def test_needs_no_reachable_api(enabled_config, run_scheduler, tmp_path):
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    kubeconfig = write_kubeconfig(tmp_path / "closed", f"http://127.0.0.1:{port}")
    result = run_scheduler("--dry-run", "--retry-budget", "0", kubeconfig=kubeconfig)
    assert result.returncode == 0
    assert len(documents(result.stdout)) == 2


def test_follows_the_guardrails(publish_config, run_scheduler, emulator, slot):
    publish_config({"scheduler": {"maxJobsPerTick": 1}})
    result = run_scheduler("--dry-run")
    assert result.returncode == 0
    assert [doc["metadata"]["name"] for doc in documents(result.stdout)] == [job_name("inventory", slot)]
    assert lines(result.stderr)[-1] == (
        f"✓ Dry run in namespace {NAMESPACE}: would submit 1 (no API call; active Jobs assumed 0), "
        "skipped 1 (1 maxJobsPerTick reached)"
    )


def test_nothing_to_submit_prints_nothing(publish_config, run_scheduler, emulator):
    publish_config({"scheduler": {"maxConcurrentWorkers": 0}})
    result = run_scheduler("--dry-run")
    assert result.returncode == 0
    assert result.stdout == ""
    assert emulator.requests() == []
