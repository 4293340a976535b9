"""make halt-workers / resume-workers / resume-task run exactly the commands of their runbook section."""

from __future__ import annotations

import re

from support.make import expand_plugin_lines, make
from support.paths import REPO

RUNBOOK = (REPO / "docs" / "RUNBOOK.md").read_text()
SECTION = RUNBOOK.split("## Halt and resume running workers", 1)[1].split("\n## ", 1)[0]


def block_after(heading: str) -> list[str]:
    """The command lines of the first bash block under `heading`."""
    block = re.search(r"```bash\n(.*?)```", SECTION.split(heading, 1)[1], flags=re.S)
    assert block, heading
    return [line for line in block.group(1).splitlines() if line.startswith("kubectl ")]


def printed_commands(*args: str) -> list[str]:
    result = make("-n", *args)
    assert result.returncode == 0, result.stderr
    return [line for line in expand_plugin_lines(result.stdout.splitlines()) if line.startswith("kubectl ")]


def test_paused_tasks_reads_the_last_ticks_log():
    assert printed_commands("paused-tasks") == [
        "kubectl logs -n leviathan -l app=leviathan-dev-scheduler --tail=50 | grep '⏸'"
    ]


def test_halt_workers_suspends_every_worker_job():
    commands = block_after("### Halt every worker Job")
    assert printed_commands("halt-workers") == commands
    assert """-p '{"spec": {"suspend": true}}'""" in commands[0]


def test_resume_workers_checks_the_switch_first_then_resumes():
    check, *resume = block_after("### Resume them")
    assert check.startswith("kubectl get configmap leviathan-autonomy-config")
    assert printed_commands("resume-workers") == [check, *resume]
    assert "hack/require-enabled.sh leviathan-autonomy-config dev.yaml leviathan" in make("-n", "resume-workers").stdout


def test_resume_task_annotates_the_task_jobs():
    expected = block_after("### A task paused after failures")
    assert printed_commands("resume-task", "TASK=reconcile-inventory") == expected


def test_resume_task_needs_a_task():
    result = make("resume-task")
    assert result.returncode != 0
    assert "Name the task: make resume-task TASK=" in result.stderr
