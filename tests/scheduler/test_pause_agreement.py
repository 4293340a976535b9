"""The control plane reports exactly the pauses the scheduler acts on (issue 10 item 4, issue 14).

Both run for real against one kmock API emulator and one chart-rendered config:
the scheduler's `⏸` lines and GET /v1/autonomy's `paused_tasks` must name the
same tasks, counts and last failed Jobs, for every Job history below.
"""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from support.api_read import detail_after_api_read
from support.control_plane import TOKEN, ControlPlaneServer
from support.emulator import CONFIGMAPS
from support.scheduler import config_map, failed_job, lines, settings_path_for

PAUSE_LINE = re.compile(r"⏸ Task (\S+) paused after (\d+) consecutive failures \(last: (\S+)\)")

FAILED, COMPLETE = ("Failed", False), ("Complete", False)
RESUMED = ("Failed", True)
# (task, minutes before this tick, (condition, resumed)) of each finished worker Job.
HISTORIES = {
    "three failures": [("inventory", 5, FAILED), ("inventory", 10, FAILED), ("inventory", 15, FAILED)],
    "a success in between": [("inventory", 5, FAILED), ("inventory", 10, COMPLETE), ("inventory", 15, FAILED)],
    "resumed": [("inventory", 5, FAILED), ("inventory", 10, RESUMED), ("index", 5, FAILED)],
    "both tasks": [(task, ago, FAILED) for task in ("index", "inventory") for ago in (5, 10, 15, 20)],
}
PAUSED = {
    "three failures": ["inventory"],
    "a success in between": [],
    "resumed": [],
    "both tasks": ["inventory", "index"],
}


@pytest.mark.parametrize("history", HISTORIES, ids=list(HISTORIES))
def test_the_control_plane_and_the_scheduler_agree_on_paused_tasks(
    history, enabled_config, run_scheduler, emulator, slot, config_path, kubeconfig, tmp_path: Path
):
    jobs = [failed_job(task, slot - ago, resumed, condition) for task, ago, (condition, resumed) in HISTORIES[history]]
    emulator.seed(*jobs)
    emulator.seed(config_map(enabled_config), resource=CONFIGMAPS)
    token_file = tmp_path / "token"
    token_file.write_text(TOKEN)
    env = {
        "KUBECONFIG": str(kubeconfig),
        "LEVIATHAN_CONFIGMAP": "leviathan-autonomy-config",
        "LEVIATHAN_SCHEDULER_CONFIG": str(settings_path_for(config_path)),
        "HOME": str(tmp_path),
    }
    server = ControlPlaneServer(config_path, token_file, tmp_path / "server.log", extra_env=env)
    try:
        reported = detail_after_api_read(server)
    finally:
        server.stop()
    ticked = run_scheduler()
    assert ticked.returncode == 0, ticked.stderr
    scheduler_says = [PAUSE_LINE.fullmatch(line).groups() for line in lines(ticked.stderr) if line.startswith("⏸")]
    control_plane_says = [
        (p["task"], str(p["consecutive_failures"]), p["last_failed_job"]) for p in reported["paused_tasks"]
    ]
    assert control_plane_says == scheduler_says
    assert [task for task, _, _ in scheduler_says] == PAUSED[history]
    assert reported["paused_tasks_problem"] is None
