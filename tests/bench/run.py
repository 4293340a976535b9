"""`make bench`: performance targets, each measured side by side in one run.

  1. Status throughput under wrk: control plane vs a bare Starlette route with
     the same uvicorn settings, alternating rounds. Target: ratio >= 0.9.
  2. Reload latency: kubelet-style swaps until the API answers the new value,
     with a concurrent reader checking every answer. Target: p99 <= 100 ms over
     >= 200 swaps, zero wrong answers.
  3. Memory: RSS after 100k requests, and its growth over the second 50k.
     Target: <= 60 MB, no growth.
  4. Scheduler: a disabled tick vs `python -c "import yaml"`, alternating runs.
     Target: ratio <= 1.5. And an enabled tick with 500 tasks and 50 active Jobs
     against the API emulator: requests made (goal 1 list + 1 create per
     submission) and wall time.

Prints a table of figures and exits 1 if a target is missed.
"""

from __future__ import annotations

import http.client
import json
import os
import re
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
sys.path[:0] = [str(REPO / "tests"), str(REPO / "hack")]

from support.contract import configmap_source  # noqa: E402
from support.control_plane import free_port  # noqa: E402
from support.kubelet_volume import publish  # noqa: E402
from support.paths import CONTROL_PLANE, PYTHON, SCHEDULER  # noqa: E402

TOKEN = "bench-token-0123456789abcdefghijklmnopqrstuv"
results: list[tuple[str, str, bool | None]] = []


def report(name: str, figure: str, ok: bool | None = None) -> None:
    results.append((name, figure, ok))
    mark = {True: "PASS", False: "FAIL", None: "    "}[ok]
    print(f"  {mark}  {name:<58} {figure}", flush=True)


# ---- servers -----------------------------------------------------------------


class Server:
    def __init__(self, command: list[str], env: dict[str, str], port: int) -> None:
        self.port = port
        self.process = subprocess.Popen(command, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + 15
        while True:
            try:
                connection = http.client.HTTPConnection("127.0.0.1", port, timeout=1)
                connection.request("GET", "/v1/autonomy/status")
                connection.getresponse().read()
                return
            except OSError:
                if time.monotonic() > deadline or self.process.poll() is not None:
                    raise RuntimeError(f"{command[0]} did not start") from None
                time.sleep(0.05)

    def rss_mb(self) -> float:
        status = Path(f"/proc/{self.process.pid}/status").read_text()
        return int(re.search(r"VmRSS:\s+(\d+) kB", status).group(1)) / 1024

    def stop(self) -> None:
        self.process.terminate()
        self.process.wait(timeout=10)


def control_plane(workdir: Path) -> tuple[Server, Path]:
    mount = workdir / "autonomy"
    publish(mount, {"dev.yaml": "autonomy_enabled: true\n"})
    token = workdir / "token"
    token.write_text(TOKEN)
    port = free_port()
    env = {
        "PATH": os.environ["PATH"],
        "LEVIATHAN_AUTONOMY_CONFIG": str(mount / "dev.yaml"),
        "LEVIATHAN_CONTROL_PLANE_TOKEN_FILE": str(token),
    }
    command = [str(CONTROL_PLANE), "serve", "--host", "127.0.0.1", "--port", str(port), "--log-level", "warning"]
    return Server(command, env, port), mount


def bare_starlette() -> Server:
    port = free_port()
    env = {"PATH": os.environ["PATH"]}
    return Server([str(PYTHON), str(Path(__file__).with_name("bare_starlette.py")), str(port)], env, port)


def wrk(port: int, seconds: float, connections: int = 32) -> tuple[float, int]:
    """Requests per second and total requests."""
    output = subprocess.run(
        [
            "wrk", "-t1", f"-c{connections}", f"-d{seconds}s", "-H", f"Authorization: Bearer {TOKEN}",
            f"http://127.0.0.1:{port}/v1/autonomy/status",
        ],
        capture_output=True, text=True, check=True,
    ).stdout  # fmt: skip
    if "Non-2xx" in output:
        raise RuntimeError(f"wrk saw errors:\n{output}")
    per_second = float(re.search(r"Requests/sec:\s+([\d.]+)", output).group(1))
    total = int(re.search(r"(\d+) requests in", output).group(1))
    return per_second, total


# ---- 1. throughput -------------------------------------------------------------


def bench_throughput(workdir: Path, rounds: int = 5, seconds: float = 4) -> None:
    app, _ = control_plane(workdir / "throughput")
    baseline = bare_starlette()
    try:
        wrk(app.port, 1)
        wrk(baseline.port, 1)  # warm both up
        app_rates, base_rates = [], []
        for _ in range(rounds):
            base_rates.append(wrk(baseline.port, seconds)[0])
            app_rates.append(wrk(app.port, seconds)[0])
    finally:
        app.stop()
        baseline.stop()
    app_rate, base_rate = statistics.median(app_rates), statistics.median(base_rates)
    ratio = app_rate / base_rate
    report("status throughput, control plane (req/s, median)", f"{app_rate:,.0f}")
    report("status throughput, bare Starlette constant JSON (req/s)", f"{base_rate:,.0f}")
    report("throughput ratio control plane / bare (target >= 0.9)", f"{ratio:.3f}", ratio >= 0.9)


# ---- 2. reload latency ---------------------------------------------------------


def get_status(connection: http.client.HTTPConnection) -> tuple[int, dict]:
    connection.request("GET", "/v1/autonomy/status", headers={"Authorization": f"Bearer {TOKEN}"})
    response = connection.getresponse()
    return response.status, json.loads(response.read())


def bench_reload(workdir: Path, swaps: int = 250) -> None:
    server, mount = control_plane(workdir / "reload")
    source = configmap_source(mount / "dev.yaml")
    samples: list[tuple[float, float, int, dict]] = []
    stop = threading.Event()

    def reader() -> None:
        connection = http.client.HTTPConnection("127.0.0.1", server.port, timeout=5)
        while not stop.is_set():
            sent = time.monotonic()
            status, body = get_status(connection)
            samples.append((sent, time.monotonic(), status, body))

    thread = threading.Thread(target=reader, daemon=True)
    thread.start()
    checker = http.client.HTTPConnection("127.0.0.1", server.port, timeout=5)
    # timeline[i] = (started, confirmed, value): value i may be answered once its swap has
    # started; value i-1 until value i is confirmed.
    timeline: list[tuple[float, float, bool]] = [(0.0, 0.0, True)]
    latencies = []
    try:
        for index in range(swaps):
            value = index % 2 == 1
            started = time.monotonic()
            publish(mount, {"dev.yaml": f"autonomy_enabled: {str(value).lower()}\n"})
            swapped = time.monotonic()
            while get_status(checker)[1]["autonomy_enabled"] is not value:
                pass
            confirmed = time.monotonic()
            latencies.append(confirmed - swapped)
            timeline.append((started, confirmed, value))
            time.sleep(0.005)
    finally:
        stop.set()
        thread.join()
        server.stop()

    wrong = 0
    for sent, received, status, body in samples:
        allowed = set()
        for index, (started, _, value) in enumerate(timeline):
            following = timeline[index + 1] if index + 1 < len(timeline) else None
            valid_until = following[1] if following else float("inf")
            if started <= received and valid_until >= sent:
                allowed.add(value)
        if status != 200 or body.get("source") != source or body.get("autonomy_enabled") not in allowed:
            wrong += 1
    latencies.sort()
    p50 = latencies[len(latencies) // 2] * 1000
    p99 = latencies[int(len(latencies) * 0.99) - 1] * 1000
    report(f"reload latency over {swaps} kubelet swaps, p50 (ms)", f"{p50:.2f}")
    report("reload latency p99 (ms, target <= 100)", f"{p99:.2f}", p99 <= 100)
    report(f"wrong answers among {len(samples):,} concurrent reads (target 0)", str(wrong), wrong == 0)


def bench_event_path(workdir: Path, swaps: int = 50) -> None:
    """No request at all: the watcher alone must notice, seen in the log's timestamps."""
    mount = workdir / "events" / "autonomy"
    publish(mount, {"dev.yaml": "autonomy_enabled: true\n"})
    token = workdir / "events" / "token"
    token.write_text(TOKEN)
    port = free_port()
    log_path = workdir / "events" / "server.log"
    env = {
        "PATH": os.environ["PATH"],
        "LEVIATHAN_AUTONOMY_CONFIG": str(mount / "dev.yaml"),
        "LEVIATHAN_CONTROL_PLANE_TOKEN_FILE": str(token),
    }
    with open(log_path, "wb") as log:
        process = subprocess.Popen(
            [str(CONTROL_PLANE), "serve", "--host", "127.0.0.1", "--port", str(port)],
            env=env, stdout=log, stderr=subprocess.STDOUT,
        )  # fmt: skip
        try:
            time.sleep(1.5)
            latencies = []
            for index in range(swaps):
                value = "false" if index % 2 == 0 else "true"
                before = log_path.read_text().count("autonomy_enabled changed:")
                published = time.monotonic()
                publish(mount, {"dev.yaml": f"autonomy_enabled: {value}\n"})
                while log_path.read_text().count("autonomy_enabled changed:") == before:
                    time.sleep(0.0005)
                latencies.append(time.monotonic() - published)
        finally:
            process.terminate()
            process.wait(timeout=10)
    latencies.sort()
    p99 = latencies[int(len(latencies) * 0.99) - 1] * 1000
    report(
        f"event path only (no requests), {swaps} swaps: p50 / p99 (ms)",
        f"{latencies[swaps // 2] * 1000:.1f} / {p99:.1f}",
    )


# ---- 3. memory -----------------------------------------------------------------


def bench_memory(workdir: Path) -> None:
    server, _ = control_plane(workdir / "memory")
    try:
        total = 0
        marks = {}
        for target in (50_000, 100_000):
            while total < target:
                total += wrk(server.port, 1)[1]
            marks[target] = (total, server.rss_mb())
    finally:
        server.stop()
    (first_n, first_rss), (last_n, last_rss) = marks[50_000], marks[100_000]
    growth = last_rss - first_rss
    report(f"RSS after {first_n:,} requests (MB)", f"{first_rss:.1f}")
    report(f"RSS after {last_n:,} requests (MB, target <= 60)", f"{last_rss:.1f}", last_rss <= 60)
    report("RSS growth over the second 50k requests (MB, target ~0)", f"{growth:+.2f}", growth <= 0.5)


# ---- 4. scheduler ---------------------------------------------------------------


def timed(command: list[str], env: dict[str, str]) -> float:
    start = time.perf_counter()
    subprocess.run(command, env=env, check=True, capture_output=True)
    return time.perf_counter() - start


def bench_disabled_tick(workdir: Path, runs: int = 25) -> None:
    config = workdir / "disabled.yaml"
    config.write_text("autonomy_enabled: false\n")
    env = {"PATH": os.environ["PATH"], "LEVIATHAN_AUTONOMY_CONFIG": str(config)}
    tick, baseline = [], []
    for _ in range(3):  # warm the page cache
        timed([str(SCHEDULER)], env)
        timed([str(PYTHON), "-c", "import yaml"], env)
    for _ in range(runs):
        tick.append(timed([str(SCHEDULER)], env))
        baseline.append(timed([str(PYTHON), "-c", "import yaml"], env))
    tick_ms, base_ms = statistics.median(tick) * 1000, statistics.median(baseline) * 1000
    ratio = tick_ms / base_ms
    report("disabled tick wall time (ms, median)", f"{tick_ms:.1f}")
    report('python -c "import yaml" wall time (ms, median)', f"{base_ms:.1f}")
    report("disabled tick / import yaml (target <= 1.5)", f"{ratio:.2f}", ratio <= 1.5)


def bench_enabled_tick(workdir: Path) -> None:
    from support.emulator import KubeEmulator, job  # kmock: imported only for this part
    from support.helm import render_chart

    tasks = [{"name": f"task-{index:03d}", "image": "busybox:1.37.0"} for index in range(500)]
    values = {"scheduler": {"tasks": tasks, "maxConcurrentWorkers": 100, "maxJobsPerTick": 50}}
    (configmap,) = render_chart(values, show_only=["templates/configmap.yaml"])
    mount = workdir / "enabled"
    publish(mount, {"dev.yaml": configmap["data"]["dev.yaml"]})
    slot = int(time.time() // 60)
    labels = {"app.kubernetes.io/instance": "leviathan"}
    tick = job(f"leviathan-dev-scheduler-{slot}", {"app.kubernetes.io/name": "leviathan", **labels})
    tick["metadata"]["ownerReferences"] = [
        {
            "apiVersion": "batch/v1",
            "kind": "CronJob",
            "name": "leviathan-dev-scheduler",
            "uid": "bench",
            "controller": True,
        }
    ]
    with KubeEmulator() as emulator:
        emulator.seed(tick)
        workers = {**labels, "app": "leviathan-worker", "app.kubernetes.io/name": "leviathan"}
        emulator.seed(*(job(f"active-{i:03d}", {**workers, "leviathan.io/task": f"task-{i:03d}"}) for i in range(50)))
        env = {
            "PATH": os.environ["PATH"],
            "KUBECONFIG": str(emulator.kubeconfig(workdir / "kubeconfig")),
            "LEVIATHAN_AUTONOMY_CONFIG": str(mount / "dev.yaml"),
            "LEVIATHAN_SCHEDULER_JOB_NAME": f"leviathan-dev-scheduler-{slot}",
        }
        start = time.perf_counter()
        result = subprocess.run([str(SCHEDULER)], env=env, capture_output=True, text=True)
        wall = time.perf_counter() - start
        requests = emulator.requests()
    if result.returncode != 0:
        raise RuntimeError(result.stderr)
    lists = sum(1 for r in requests if r.action == "LIST")
    creates = sum(1 for r in requests if r.action == "CREATE")
    submitted = result.stderr.count("✓ Submitted job")
    report("enabled tick, 500 tasks / 50 active Jobs: wall time (s)", f"{wall:.2f}")
    report(
        "  API requests: lists + creates (goal 1 + one per submission)",
        f"{lists} + {creates} for {submitted} submitted",
        lists == 1 and creates == submitted and len(requests) == lists + creates,
    )


def main() -> int:
    if not shutil.which("wrk"):
        print("make bench needs wrk: apt-get install wrk", file=sys.stderr)
        return 2
    print(f"Benchmarks ({os.cpu_count()} CPUs), each comparison measured side by side in this run:", flush=True)
    with tempfile.TemporaryDirectory() as tmp:
        workdir = Path(tmp)
        bench_throughput(workdir)
        bench_reload(workdir)
        bench_event_path(workdir)
        bench_memory(workdir)
        bench_disabled_tick(workdir)
        bench_enabled_tick(workdir)
    missed = [name for name, _, ok in results if ok is False]
    print(f"\n{len(missed)} target(s) missed" + (": " + "; ".join(missed) if missed else ""))
    return 1 if missed else 0


if __name__ == "__main__":
    sys.exit(main())
