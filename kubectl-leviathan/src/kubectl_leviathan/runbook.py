"""The runbook commands each plugin command stands for, as text to print.

The reference runbook's commands come from its contract (runbook.yaml beside this file, a
symlink to tests/contract/runbook.yaml, so never retyped). The few procedures that exist only in
docs/RUNBOOK.md (halt and resume workers, who, the paused tasks) are written below once, for the
runbook's names, and tests/test_plugin.py pins them to docs/RUNBOOK.md. All are written for release
`leviathan` in namespace `leviathan` (environment `dev`); `for_names` puts another release's names in.
"""

from __future__ import annotations

import re
from functools import cache
from importlib import resources
from typing import Any

import yaml

from kubectl_leviathan.names import Names

# docs/RUNBOOK.md, "Halt and resume running workers" and "Query autonomy status" (make status's second line).
HALT_WORKERS = (
    "kubectl get jobs -n leviathan -l app=leviathan-worker -o name | xargs -r -I{} kubectl patch {} -n leviathan"
    """ --type=merge -p '{"spec": {"suspend": true}}'""",
    "kubectl get jobs -n leviathan -l app=leviathan-worker",
)
RESUME_CHECK = (
    "kubectl get configmap leviathan-autonomy-config -n leviathan -o jsonpath='{.data.dev\\.yaml}'"
    " | grep autonomy_enabled"
)
RESUME_WORKERS = (
    "kubectl get jobs -n leviathan -l app=leviathan-worker -o name | xargs -r -I{} kubectl patch {} -n leviathan"
    """ --type=merge -p '{"spec": {"suspend": false}}'""",
    "kubectl get jobs -n leviathan -l app=leviathan-worker",
)
WHO = (
    "kubectl get configmap leviathan-autonomy-config -n leviathan -o jsonpath="
    """'{"switched by: "}{.metadata.annotations.autonomy\\.leviathan\\.io/switched-by}{"\\n"}'"""
)
PAUSED_GREP = " | grep '⏸'"


@cache
def contract() -> dict[str, Any]:
    text = resources.files(__package__).joinpath("runbook.yaml").read_text(encoding="utf-8")
    return yaml.safe_load(text)


def contract_command(command_id: str) -> dict[str, Any]:
    for procedure in contract()["procedures"]:
        for step in procedure["steps"]:
            for command in step["commands"]:
                if command["id"] == command_id:
                    return command
    raise KeyError(command_id)


def for_names(text: str, names: Names) -> str:
    """The runbook's command for another release, namespace or environment."""
    ours = contract()["names"]
    text = text.replace(ours["scheduler"], names.cronjob)
    text = text.replace(ours["configmap"], names.configmap)
    text = text.replace(ours["worker_selector"], f"app={names.worker_app}")
    text = text.replace(
        "{.data." + ours["config_key"].replace(".", "\\.") + "}", "{.data." + names.config_key.replace(".", "\\.") + "}"
    )
    return re.sub(r"(?<=-n )" + re.escape(contract()["namespace"]) + r"(?=\s|$)", names.namespace, text)


def edit_line(command_id: str, names: Names) -> list[str]:
    """A `kubectl edit` of the contract, and the line the operator changes in it (as a comment)."""
    command = contract_command(command_id)
    edit = command["edit"]
    return [for_names(command["run"], names), f"#   in {names.config_key}: {edit['from']} -> {edit['to']}"]


def commands(action: str, names: Names) -> list[str]:
    """What the plugin's `action` stands for: command lines, and `#` lines that say what changes."""
    run = lambda command_id: for_names(contract_command(command_id)["run"], names)  # noqa: E731
    return {
        "status": [run("disable.grep-configmap"), run("emergency-stop.get-cronjob"), for_names(WHO, names)],
        "disable": [*edit_line("disable.edit-configmap", names), "#   and the reason: line"],
        "enable": [*edit_line("re-enable.edit-configmap", names), "#   and the reason: line"],
        "stop": [run("emergency-stop.suspend"), run("emergency-stop.get-cronjob")],
        "resume": [run("re-enable.unsuspend"), run("re-enable.get-cronjob")],
        "halt-workers": [for_names(line, names) for line in HALT_WORKERS],
        "resume-workers": [
            for_names(RESUME_CHECK, names),
            "# only when it prints autonomy_enabled: true",
            *(for_names(line, names) for line in RESUME_WORKERS),
        ],
        "paused-tasks": [run("disable.scheduler-logs") + PAUSED_GREP],
        "who": [for_names(WHO, names)],
    }[action]
