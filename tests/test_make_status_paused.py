"""make status shows the tasks paused after failures, and who flipped the switch (issues 10 and 14).

make status's GET /v1/autonomy line, as the runbook shows it, against the real control plane
reading a kmock API emulator that holds three failed worker Jobs of one task.
"""

from __future__ import annotations

import json
import os
import subprocess

from support.api_read import detail_after_api_read
from support.control_plane import TOKEN, ControlPlaneServer
from support.emulator import CONFIGMAPS, NAMESPACE, KubeEmulator, finished_status, job
from support.kubelet_volume import publish
from support.paths import REPO
from support.runbook_docs import code_spans, table_rows

CONFIG = """autonomy_enabled: false
reason: "INC-9: flaky upstream"
"""
SETTINGS = """scheduler:
  tasks: [{name: reconcile-inventory, image: "busybox:1.37.0"}]
worker:
  selector: {app: leviathan-worker, app.kubernetes.io/instance: leviathan}
  releaseSelector: {app.kubernetes.io/instance: leviathan}
"""
LABELS = {
    "app": "leviathan-worker",
    "app.kubernetes.io/instance": "leviathan",
    "leviathan.io/task": "reconcile-inventory",
}


def failed(minute: int) -> dict:
    manifest = job(f"leviathan-worker-reconcile-inventory-{minute}", LABELS)
    manifest["metadata"]["annotations"] = {"leviathan.io/scheduled-time": f"2026-11-27T09:{minute:02d}:00Z"}
    manifest["status"] = finished_status("Failed")
    return manifest


def test_the_status_detail_line_shows_paused_tasks_and_who(tmp_path):
    runbook = (REPO / "docs" / "RUNBOOK.md").read_text()
    [row] = [command for _, command, target in table_rows(runbook, "## Quick reference") if "make status" in target]
    [curl] = [span for span in code_spans(row) if span.startswith("curl ") and span.endswith("/v1/autonomy")]
    publish(tmp_path / "autonomy", {"dev.yaml": CONFIG})
    publish(tmp_path / "scheduler", {"scheduler.yaml": SETTINGS})
    publish(tmp_path / "token", {"control-plane-token": TOKEN})
    with KubeEmulator() as emulator:
        configmap = {"metadata": {"name": "leviathan-autonomy-config", "namespace": NAMESPACE}, "data": {}}
        configmap["metadata"]["annotations"] = {"autonomy.leviathan.io/switched-by": "oncall@example.com"}
        emulator.seed({"apiVersion": "v1", "kind": "ConfigMap", **configmap}, resource=CONFIGMAPS)
        emulator.seed(*(failed(minute) for minute in (0, 5, 10)))
        env = {
            "KUBECONFIG": str(emulator.kubeconfig(tmp_path / "kubeconfig")),
            "LEVIATHAN_CONFIGMAP": "leviathan-autonomy-config",
            # As the chart sets it where it renders the identity stamp policy: switched_by is reported.
            "LEVIATHAN_STAMP_POLICY": "true",
            "LEVIATHAN_SCHEDULER_CONFIG": str(tmp_path / "scheduler/scheduler.yaml"),
            "HOME": str(tmp_path),
        }
        server = ControlPlaneServer(
            tmp_path / "autonomy/dev.yaml", tmp_path / "token/control-plane-token", tmp_path / "log", extra_env=env
        )
        try:
            detail_after_api_read(server)
            local = curl.replace("http://127.0.0.1:18000", server.url)
            shell_env = {"PATH": os.environ["PATH"], "CONTROL_PLANE_TOKEN": TOKEN}
            result = subprocess.run(["bash", "-c", local], env=shell_env, capture_output=True, text=True, timeout=30)
        finally:
            server.stop()
    assert result.returncode == 0, result.stderr
    shown = json.loads(result.stdout)
    assert shown["paused_tasks"] == [
        {
            "task": "reconcile-inventory",
            "consecutive_failures": 3,
            "last_failed_job": "leviathan-worker-reconcile-inventory-10",
        }
    ]
    assert shown["switched_by"] == "oncall@example.com"
    assert shown["autonomy_enabled"] is False
