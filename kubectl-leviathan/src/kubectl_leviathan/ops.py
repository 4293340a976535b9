"""The plugin's commands on one cluster, each as the runbook says, returning what happened.

An `Outcome` carries the state before and after, the proof of a brake, the lines to print for one
cluster, and the error (one line) if any. The fleet runner puts the same outcomes into a table.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, field

from kubectl_leviathan import switch
from kubectl_leviathan.cluster import Cluster, ClusterError, Proof, Record, Refused, State

BRAKES = ("disable", "stop", "halt-workers")
EXIT_OK, EXIT_FAILED, EXIT_UNPROVEN = 0, 1, 3


@dataclass
class Outcome:
    prior: str = ""
    new: str = ""
    proof: Proof | None = None
    lines: list[str] = field(default_factory=list)
    error: str | None = None
    record: Record | None = None
    state: State | None = None
    kept: bool = False  # the record is an earlier fleet brake's
    retry: bool = False  # the error is worth another try (no answer, 429, 5xx)
    done_at: float | None = None

    @property
    def problem(self) -> str | None:
        """The one line to show as an error: the failure, else an unproven brake."""
        if self.error:
            return self.error
        if self.proof is not None and not self.proof.refused:
            return self.proof.line()
        return None

    @property
    def exit_code(self) -> int:
        if self.error:
            return EXIT_FAILED
        if self.proof is not None and not self.proof.refused:
            return EXIT_UNPROVEN
        return EXIT_OK


@dataclass(frozen=True)
class Request:
    action: str
    reason: str | None = None
    fleet: bool = False  # a fleet brake records the prior state; a fleet restore gives it back
    restore: bool = False


def quoted(reason: str | None) -> str:
    return "no reason" if not reason else f"reason {json.dumps(reason, ensure_ascii=False)}"


def run(cluster: Cluster, request: Request) -> Outcome:
    """One command; a ClusterError becomes the outcome's error, after whatever was already done."""
    outcome = Outcome()
    try:
        ACTIONS[request.action](cluster, request, outcome)
    except ClusterError as exc:
        outcome.error = str(exc)
        outcome.retry = exc.unreachable
    return outcome


def _prior(cluster: Cluster, request: Request, outcome: Outcome) -> State:
    """The state before a brake; a fleet brake records it first (an earlier fleet brake's record stays)."""
    prior = cluster.state()
    outcome.prior = prior.summary()
    if request.fleet:
        outcome.record, new = cluster.keep_record(prior, cluster.last_configmap)
        outcome.kept = not new
        kept = "recorded" if new else f"kept the record of the fleet brake at {outcome.record.braked_at}"
        outcome.lines.append(
            f"prior state {kept}: {outcome.record.state}, {quoted(outcome.record.reason)}, "
            f"switched by {outcome.record.switched_by or 'unknown'}"
        )
    return prior


def _finish_brake(cluster: Cluster, outcome: Outcome, done_at: float, switch_off: bool) -> None:
    outcome.done_at = done_at
    outcome.proof = cluster.prove(done_at, switch_off)
    if outcome.proof.refused:  # an unproven brake is said loudly, on stderr, by the caller
        outcome.lines.append(outcome.proof.line())


def disable(cluster: Cluster, request: Request, outcome: Outcome) -> None:
    prior, done_at = cluster.set_switch(False, request.reason or "", first=_prior(cluster, request, outcome))
    outcome.new = f"off{', stopped' if prior.suspended else ''}"
    outcome.lines.append(
        f"✓ autonomy off in ConfigMap {cluster.names.configmap} (was {prior.switch}), {quoted(request.reason)}"
    )
    _finish_brake(cluster, outcome, done_at, switch_off=True)


def stop(cluster: Cluster, request: Request, outcome: Outcome) -> None:
    prior = _prior(cluster, request, outcome)
    done_at = cluster.set_suspend(True)
    outcome.new = f"{prior.switch}, stopped"
    outcome.lines += [f"✓ CronJob {cluster.names.cronjob} suspended", cluster.table(cronjob_path(cluster))]
    _finish_brake(cluster, outcome, done_at, switch_off=prior.switch != "on")


def halt_workers(cluster: Cluster, request: Request, outcome: Outcome) -> None:
    prior = _prior(cluster, request, outcome)
    count = cluster.suspend_workers(True)
    done_at = time.monotonic()
    outcome.new = outcome.prior
    outcome.lines += [f"✓ {count} worker Job(s) suspended", cluster.table(jobs_path(cluster))]
    _finish_brake(cluster, outcome, done_at, switch_off=prior.switch != "on")


def enable(cluster: Cluster, request: Request, outcome: Outcome) -> None:
    if request.restore:
        restore(cluster, request, outcome)
        return
    prior, _ = cluster.set_switch(True, request.reason or "")
    outcome.prior = prior.summary()
    outcome.new = f"on{', stopped' if prior.suspended else ''}"
    outcome.lines.append(
        f"✓ autonomy on in ConfigMap {cluster.names.configmap} (was {prior.switch}), {quoted(request.reason)}"
    )
    if prior.suspended:
        outcome.lines.append(f"the CronJob {cluster.names.cronjob} stays suspended: kubectl leviathan resume")


def restore(cluster: Cluster, request: Request, outcome: Outcome) -> None:
    """Give the cluster back the state its fleet brake record holds, only if the API server lets the
    caller make every part of it (a dry run of each change first: a releaser, where releasers are set)."""
    current = cluster.state()
    outcome.prior = outcome.new = current.summary()
    record = cluster.read_record()
    if record is None:
        raise ClusterError("no fleet brake record here: nothing restored")
    reason_line = record.reason_line
    try:
        turning_on = switch.state_of(switch.with_lines(current.text or "", record.switch_line, None)) == "on"
        if turning_on and not record.reason:
            reason_line = switch.reason_line(request.reason or "")  # the release policy wants a reason to turn on
        text = switch.with_lines(current.text or "", record.switch_line, reason_line)
    except ValueError as exc:
        raise ClusterError(
            f"not restored: the fleet record's lines are outside the switch file's form ({exc})"
        ) from None
    config_changes = text != current.text
    suspend_changes = record.suspended is not None and record.suspended != current.suspended
    try:
        if config_changes:
            cluster.write_switch(current, record.switch_line, reason_line, dry_run=True)
        if suspend_changes:
            cluster.set_suspend(bool(record.suspended), dry_run=True)
    except Refused as exc:
        raise ClusterError(f"not restored: the API server refuses it to you (not a releaser here?): {exc}") from None
    if config_changes:
        cluster.write_switch(current, record.switch_line, reason_line)
    if suspend_changes:
        cluster.set_suspend(bool(record.suspended))
    cluster.clear_record()
    after = cluster.state()
    outcome.new = after.summary()
    outcome.lines.append(
        f"✓ restored the state before the fleet brake of {record.braked_at}: {after.summary()}, {quoted(after.reason)}"
    )


def resume(cluster: Cluster, request: Request, outcome: Outcome) -> None:
    prior = cluster.state()
    outcome.prior = prior.summary()
    cluster.set_suspend(False)
    outcome.new = prior.switch
    outcome.lines += [f"✓ CronJob {cluster.names.cronjob} resumed", cluster.table(cronjob_path(cluster))]


def resume_workers(cluster: Cluster, request: Request, outcome: Outcome) -> None:
    prior = cluster.state()
    outcome.prior = outcome.new = prior.summary()
    state = switch.state_of(prior.text)
    if state != "on":
        raise ClusterError(
            f"autonomy is not enabled in ConfigMap {cluster.names.configmap} (the switch file is {state}): "
            "worker Jobs are resumed only while it is"
        )
    count = cluster.suspend_workers(False)
    outcome.lines += [f"✓ {count} worker Job(s) resumed", cluster.table(jobs_path(cluster))]


def paused_tasks(cluster: Cluster, request: Request, outcome: Outcome) -> None:
    lines = [line for line in cluster.scheduler_log_lines() if "⏸" in line]
    outcome.lines += lines or ["no task paused in the last tick's log"]
    outcome.new = f"{len(lines)} paused"


def who(cluster: Cluster, request: Request, outcome: Outcome) -> None:
    state = cluster.state()
    outcome.prior = outcome.new = state.summary()
    outcome.lines.append(f"switched by: {state.switched_by or ''}")


def status(cluster: Cluster, request: Request, outcome: Outcome) -> None:
    state = cluster.state()
    outcome.prior = outcome.new = state.summary()
    try:
        refused = "refused" if cluster.worker_refused()[0] else "admitted"
    except ClusterError as exc:  # e.g. no right to create Jobs: the rest of the status still stands
        refused = f"unknown ({exc})"
    try:
        record = cluster.read_record()
        kept = f"held since {record.braked_at} (before: {record.state}, {quoted(record.reason)})" if record else "none"
    except ClusterError as exc:
        kept = f"unknown ({exc})"
    outcome.state = state
    outcome.lines += [
        f"autonomy: {state.switch} ({quoted(state.reason)})"
        f" in ConfigMap {cluster.names.configmap}, key {cluster.names.config_key}",
        f"scheduler: CronJob {cluster.names.cronjob} "
        + {True: "suspended", False: "not suspended", None: "missing"}[state.suspended],
        f"switched by: {state.switched_by or ''}",
        f"new worker Jobs: {refused} by the API server (dry run)",
        f"chart: {state.chart or 'unknown'}",
        f"fleet brake record: {kept}",
    ]


def cronjob_path(cluster: Cluster) -> str:
    return f"/apis/batch/v1/namespaces/{cluster.names.namespace}/cronjobs/{cluster.names.cronjob}"


def jobs_path(cluster: Cluster) -> str:
    return f"/apis/batch/v1/namespaces/{cluster.names.namespace}/jobs?labelSelector=app%3D{cluster.names.worker_app}"


ACTIONS = {
    "status": status,
    "disable": disable,
    "enable": enable,
    "stop": stop,
    "resume": resume,
    "halt-workers": halt_workers,
    "resume-workers": resume_workers,
    "paused-tasks": paused_tasks,
    "who": who,
}
