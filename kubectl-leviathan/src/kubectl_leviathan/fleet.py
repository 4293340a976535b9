"""Fleet mode: one command on many kube contexts at once, each with its own timeout, and a table.

A cluster that cannot be reached is asked again (with a short backoff) until its timeout runs
out, then reported; no cluster waits for another, and none is left out of the table.
"""

from __future__ import annotations

import fnmatch
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, replace

from kubernetes import config

from kubectl_leviathan import ops
from kubectl_leviathan.cluster import Cluster, ClusterError, Target

BACKOFF = (0.2, 0.5, 1.0, 2.0)


@dataclass
class Row:
    cluster: str
    outcome: ops.Outcome
    attempts: int = 0


def contexts(kubeconfig: str | None, names: list[str] | None, every: bool, pattern: str | None) -> list[str]:
    """The contexts to run on, in the order given (or the kubeconfig's); unknown ones are kept, to fail."""
    try:
        known = [entry["name"] for entry in config.list_kube_config_contexts(config_file=kubeconfig)[0]]
    except (config.ConfigException, OSError) as exc:
        raise ClusterError(f"cannot read the kubeconfig's contexts: {exc}") from None
    chosen = list(names or [])
    if every or pattern:
        chosen += [name for name in known if name not in chosen and (not pattern or fnmatch.fnmatchcase(name, pattern))]
    if not chosen:
        raise ClusterError(f"no context matches {pattern!r} (the kubeconfig has {', '.join(known) or 'none'})")
    return chosen


def one(target: Target, request: ops.Request, known: set[str] | None, row: Row) -> None:
    """Run on one cluster until done or out of time; retried only while the cluster is unreachable."""
    deadline = time.monotonic() + target.timeout
    if known is not None and target.context not in known:
        row.outcome = ops.Outcome(error=f"context {target.context} is not in the kubeconfig")
        return
    for attempt, pause in enumerate((*BACKOFF, None), start=1):
        row.attempts = attempt
        remaining = deadline - time.monotonic()
        try:
            # Each call may take a third of the budget, so a hung API server is asked at least three times.
            cluster = Cluster(replace(target, timeout=max(0.5, min(remaining, target.timeout / 3))))
        except ClusterError as exc:
            row.outcome = ops.Outcome(error=str(exc))
            return
        outcome = ops.run(cluster, request)
        row.outcome = outcome
        unreachable = outcome.retry
        if not unreachable or pause is None or time.monotonic() + pause >= deadline:
            if unreachable:
                spent = time.monotonic() - (deadline - target.timeout)
                outcome.error = f"{outcome.error} ({attempt} attempt{'s' if attempt > 1 else ''} in {spent:.1f} s)"
            return
        time.sleep(pause)


def run(
    targets: list[Target], request: ops.Request, known: set[str] | None, on_done: Callable[[Row], None] | None = None
) -> list[Row]:
    """Every target in its own thread; each gets its timeout plus a second's grace, then is reported."""
    rows = [Row(target.label, ops.Outcome(error="no answer yet")) for target in targets]
    threads = []
    for target, row in zip(targets, rows, strict=True):
        thread = threading.Thread(target=one, args=(target, request, known, row), daemon=True)
        thread.start()
        threads.append((thread, target, row))
    for thread, target, row in threads:
        thread.join(max(0.0, target.timeout + 1.0))
        if thread.is_alive():
            row.outcome = ops.Outcome(
                error=f"no answer within {target.timeout:.0f} s (a brake may still land: check with status)"
            )
    return rows


def table(rows: list[Row], action: str) -> str:
    if action == "status":
        header = ["CLUSTER", "STATE", "REASON", "SWITCHED BY", "CHART", "ERROR"]
        cells = [
            [
                row.cluster,
                row.outcome.prior or "-",
                (row.outcome.state.reason if row.outcome.state else None) or "-",
                (row.outcome.state.switched_by if row.outcome.state else None) or "-",
                (row.outcome.state.chart if row.outcome.state else None) or "-",
                row.outcome.problem or "",
            ]
            for row in rows
        ]
    else:
        header = ["CLUSTER", "PRIOR STATE", "NEW STATE", "PROOF", "ERROR"]
        if action in ops.BRAKES:
            header.insert(4, "RECORD")
        cells = []
        for row in rows:
            proof = row.outcome.proof
            shown = "-" if proof is None else (f"{proof.seconds * 1000:.0f} ms" if proof.refused else "NOT REFUSED")
            line = [row.cluster, row.outcome.prior or "-", row.outcome.new or "-", shown, row.outcome.problem or ""]
            if action in ops.BRAKES:
                record = row.outcome.record
                line.insert(4, "-" if record is None else ("kept " + record.braked_at if row.outcome.kept else "new"))
            cells.append(line)
    widths = [max(len(line[i]) for line in [header, *cells]) for i in range(len(header))]
    return "\n".join(
        "   ".join(c.ljust(w) for c, w in zip(line, widths, strict=True)).rstrip() for line in [header, *cells]
    )
