"""`make bench-fleet`: fleet time-to-safe of `kubectl leviathan disable` on N = 1, 3 and 5 clusters.

Time-to-safe: from the call of the fleet brake (contexts read, clients made, in parallel, each
cluster's prior state recorded, the switch turned off) to the last cluster's proven refusal of a
worker Job (the API server's answer to a dry-run create). 20 trials per N, side by side in one run,
on the fleet of `make fleet-up` ($LEVIATHAN_FLEET_KUBECONFIG). Before each trial every cluster is
switched on as a releaser and the API server seen to admit worker Jobs again; after it the fleet
restore gives the record back. The plugin process's own start-up (Python importing the client) comes
before any of this and is printed apart. Target: p99 <= 1 s for N = 5; exits 1 if missed.
"""

from __future__ import annotations

import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

from kubectl_leviathan import fleet, ops
from kubectl_leviathan.cluster import Cluster, Target

TRIALS = int(os.environ.get("BENCH_FLEET_TRIALS", "20"))
SIZES = (1, 3, 5)
TARGET_P99 = 1.0
KUBECONFIG = os.environ.get(
    "LEVIATHAN_FLEET_KUBECONFIG", str(Path(__file__).resolve().parents[2] / ".run/fleet/kubeconfig")
)
RELEASER = {"as_user": "bob", "as_groups": ("release-owners",)}


def percentile(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(fraction * (len(ordered) - 1)))]


def targets(names: list[str], **extra) -> list[Target]:
    return [Target(context=name, kubeconfig=KUBECONFIG, timeout=10, **extra) for name in names]


def switch_on(names: list[str]) -> None:
    rows = fleet.run(
        targets(names, **RELEASER), ops.Request("enable", reason="bench-fleet: on for the next trial"), None
    )
    failed = [f"{row.cluster}: {row.outcome.error}" for row in rows if row.outcome.error]
    if failed:
        raise SystemExit("bench-fleet: cannot switch on: " + "; ".join(failed))
    deadline = time.monotonic() + 30
    for target in targets(names):
        cluster = Cluster(target)
        while cluster.worker_refused()[0]:
            if time.monotonic() > deadline:
                raise SystemExit(f"bench-fleet: {target.context} still refuses worker Jobs 30 s after switching on")
            time.sleep(0.01)


def trial(names: list[str]) -> float:
    switch_on(names)
    started = time.monotonic()
    known = set(fleet.contexts(KUBECONFIG, names, False, None))
    rows = fleet.run(targets(names), ops.Request("disable", reason="bench-fleet: the brake", fleet=True), known)
    unproven = [f"{row.cluster}: {row.outcome.problem}" for row in rows if row.outcome.exit_code != ops.EXIT_OK]
    if unproven:
        raise SystemExit("bench-fleet: a brake was not proven: " + "; ".join(unproven))
    safe = max(row.outcome.done_at + row.outcome.proof.seconds for row in rows)  # type: ignore[operator]
    restored = fleet.run(targets(names, **RELEASER), ops.Request("enable", reason="bench-fleet", restore=True), None)
    if any(row.outcome.error for row in restored):
        raise SystemExit("bench-fleet: restore failed: " + "; ".join(str(r.outcome.error) for r in restored))
    return safe - started


def main() -> int:
    if not Path(KUBECONFIG).exists():
        print("bench-fleet needs a fleet: run make fleet-up first (or make bench-fleet alone, which starts one)",
              file=sys.stderr)  # fmt: skip
        return 1
    names = fleet.contexts(KUBECONFIG, None, True, None)
    if len(names) < max(SIZES):
        print(f"bench-fleet needs {max(SIZES)} clusters; the fleet has {len(names)}: make fleet-down fleet-up N=5",
              file=sys.stderr)  # fmt: skip
        return 1
    before = {target.context: Cluster(target).state() for target in targets(names)}
    start_up = []
    for _ in range(3):
        began = time.monotonic()
        subprocess.run([sys.executable, "-m", "kubectl_leviathan.cli", "status", "--show-runbook"], check=True,
                       capture_output=True)  # fmt: skip
        start_up.append(time.monotonic() - began)
    trial(names[:1])  # warm-up: imports and first connections, not counted
    results: dict[int, list[float]] = {size: [] for size in SIZES}
    for _ in range(TRIALS):
        for size in SIZES:  # side by side: each round measures every N once
            results[size].append(trial(names[:size]))
    p50 = {size: statistics.median(values) for size, values in results.items()}
    p99 = {size: percentile(values, 0.99) for size, values in results.items()}
    print(f"fleet time-to-safe, kubectl leviathan disable, {TRIALS} trials per N (on {os.cpu_count()} cores):")
    print(f"{'N':>3} {'p50 ms':>8} {'p99 ms':>8} {'p50/N=1':>8} {'p99/N=1':>8}")
    for size in SIZES:
        ratios = f"{p50[size] / p50[1]:8.2f} {p99[size] / p99[1]:8.2f}"
        print(f"{size:>3} {p50[size] * 1000:8.0f} {p99[size] * 1000:8.0f} {ratios}")
    print(f"plugin process start-up before the first call (not included): {statistics.median(start_up) * 1000:.0f} ms")
    for name, state in before.items():  # the bench switched everything on: give each cluster its text and stop back
        cluster = Cluster(Target(context=name, kubeconfig=KUBECONFIG, **RELEASER))
        cluster.state()
        body = {"data": {cluster.names.config_key: state.text}}
        cluster.request(
            "PATCH", cluster.path("configmaps", cluster.names.configmap), body, "application/merge-patch+json"
        )
        if state.suspended is not None:
            cluster.set_suspend(state.suspended)
    ok = p99[max(SIZES)] <= TARGET_P99
    print(f"target p99 <= {TARGET_P99 * 1000:.0f} ms for N = {max(SIZES)}: {'met' if ok else 'MISSED'}")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
