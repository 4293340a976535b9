"""An enabled tick: list worker Jobs once, plan, create, re-checking the switch before each create.

The switch is re-read from the mounted file and, when the tick knows its ConfigMap's name,
from the live ConfigMap through the API: kubelet delivers an edit to the file a minute or
more late, the API at once. The most restrictive answer wins. The same checks run again
before every retry of a create (after a 503 or a timeout): a retry is a new create.

When the tick knows its CronJob's name, a suspended (or deleted) CronJob stops it too: before
the list, before every create and before every retry. So a tick made by hand from a suspended
CronJob (`kubectl create job --from=cronjob/...`) submits nothing.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

import yaml

from leviathan_config import AutonomyConfig, ConfigState, parse_autonomy_config, read_autonomy_config
from leviathan_config.kube_credentials import kubeconfig_namespace
from leviathan_config.worker_jobs import JobTally, PauseRule, label_selector
from leviathan_scheduler.exit_codes import (
    CONFIG_EXIT_CODES,
    EXIT_CONFIG_NOT_MOUNTED,
    EXIT_CRONJOB_NOT_FOUND,
    EXIT_OK,
    EXIT_POLICY_REFUSED,
)
from leviathan_scheduler.jobs import build_job, cronjob_owner
from leviathan_scheduler.output import config_unusable, say
from leviathan_scheduler.plan import Plan, plan_tick
from leviathan_scheduler.settings import SchedulerSettings, SettingsError, load_settings

if TYPE_CHECKING:
    from leviathan_scheduler.kube import JobsApi


# The reason of the Event that records a task's pause (`kubectl get events --field-selector reason=TaskPaused`).
PAUSE_REASON = "TaskPaused"


@dataclass(frozen=True)
class TickOptions:
    namespace: str | None
    slot: int
    dry_run: bool
    retry_budget_seconds: float
    service_account: str | None
    # This tick's own Job (from the downward API), whose CronJob owns the workers.
    tick_job: str | None = None
    # The autonomy ConfigMap, re-read through the API before every create; None skips that.
    configmap: str | None = None
    # The tick's CronJob: suspended or not found, nothing is submitted; None skips that.
    cronjob: str | None = None


@dataclass
class Outcome:
    submitted: int = 0
    existed: int = 0


class _Stopped(Exception):
    """A re-check before a retry said stop; its line is already said."""

    def __init__(self, exit_code: int) -> None:
        super().__init__(exit_code)
        self.exit_code = exit_code


def run_enabled_tick(config: AutonomyConfig, options: TickOptions) -> int:
    try:
        _, settings = load_settings()
    except SettingsError as exc:
        return config_unusable(ConfigState.ERROR, str(exc))
    if not settings.tasks:
        say("✓ Autonomy enabled but no tasks are declared (scheduler.tasks): nothing to submit")
        return EXIT_OK
    if options.dry_run:
        return _dry_run(config, settings, options)

    from leviathan_scheduler.kube import ApiFailure, JobsApi, PolicyRefused, load_client

    assert settings.worker is not None
    outcome = Outcome()
    plan = Plan()
    active_total = 0
    try:
        api_client, namespace = load_client(options.namespace)
        api = JobsApi(api_client, namespace, options.retry_budget_seconds, options.service_account)
        if options.cronjob:
            exit_code = _cronjob_not_suspended(api, options.cronjob, "this tick submits nothing")
            if exit_code is not None:
                return exit_code
        # Page by page, each Job reduced as it arrives: the list itself is never held (issue 20).
        tally = JobTally(settings.worker.selector, (task.name for task in settings.tasks), options.tick_job)
        api.tally_jobs(label_selector(settings.worker.release_selector), tally)
        active_total = tally.active_total
        paused = _paused(tally, settings, api)
        plan = plan_tick(settings, tally.active_by_task, active_total, tally.newest_slot, paused)
        owner = cronjob_owner(tally.tick_job_owners)
        if plan.submit and owner is None and options.tick_job:
            say(
                f"… tick Job {options.tick_job} has no CronJob owner in the list: worker Jobs will outlive an uninstall"
            )

        def before_retry() -> None:
            exit_code = _may_create(api, config, options, plan, outcome)
            if exit_code is not None:
                raise _Stopped(exit_code)

        for task in plan.submit:
            # The switch may have been flipped (or the CronJob suspended) while this tick ran.
            exit_code = _may_create(api, config, options, plan, outcome)
            if exit_code is not None:
                return exit_code
            manifest = build_job(task, settings.worker, namespace, options.slot, config.sha256, owner)
            name = manifest["metadata"]["name"]
            try:
                created = api.create_job(manifest, before_retry)
            except _Stopped as stopped:
                return stopped.exit_code
            except PolicyRefused:
                say(
                    f"✗ The API server's admission policy refused worker Job {name}: autonomy is off (or unusable) "
                    f"in the live ConfigMap; stopping, {_done(plan, outcome)}"
                )
                return EXIT_POLICY_REFUSED
            if created:
                outcome.submitted += 1
                say(f"✓ Submitted job {name} (task {task.name})")
            else:
                outcome.existed += 1
                say(f"✓ Job {name} already exists (task {task.name}): this slot was already submitted")
    except ApiFailure as failure:
        say(failure.message)
        _summary(plan, outcome, active_total, settings, stopped=True)
        return failure.exit_code
    _summary(plan, outcome, active_total, settings)
    return EXIT_OK


def _paused(tally: JobTally, settings: SchedulerSettings, api: JobsApi) -> set[str]:
    """Tasks whose last pauseAfterFailures finished Jobs failed; one line for each, every tick, and one Event."""
    assert settings.worker is not None
    rule = PauseRule(
        tuple(task.name for task in settings.tasks), settings.worker.selector, settings.pause_after_failures
    )
    paused = tally.paused(rule)
    for pause in paused:
        count, last = pause.consecutive_failures, pause.last_failed_job
        say(f"⏸ Task {pause.task} paused after {count} consecutive failures (last: {last})")
        uid = tally.uid_of_failed(pause.task, last)
        _announce_pause(api, uid, pause.task, count, last, settings.worker.selector["app"])
    return {pause.task for pause in paused}


def _announce_pause(api: JobsApi, uid: str | None, task: str, count: int, last: str, app: str) -> None:
    """A Warning Event on the last failed Job, named after it: the first tick of a pause creates it,
    the next ones get AlreadyExists. It only tells operators: a failure to record it is one line."""
    from leviathan_scheduler.kube import EventNotRecorded

    event = pause_event(api.namespace, task, count, last, uid, app)
    try:
        if api.create_event(event):
            say(f"✓ Event {event['metadata']['name']} ({PAUSE_REASON}) records the pause of task {task}")
    except EventNotRecorded as problem:
        say(f"… Event {PAUSE_REASON} for task {task} not recorded ({problem}); the tick goes on")


def pause_event(namespace: str, task: str, count: int, last: str, uid: str | None, app: str) -> dict[str, Any]:
    """A core v1 Event, what `kubectl get events` and `kubectl describe job` read."""
    now = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    involved = {"apiVersion": "batch/v1", "kind": "Job", "name": last, "namespace": namespace}
    if uid:
        involved["uid"] = uid
    resume = (
        f"kubectl annotate jobs -n {namespace} -l app={app},leviathan.io/task={task} leviathan.io/resumed=true "
        "--overwrite"
    )
    return {
        "apiVersion": "v1",
        "kind": "Event",
        # One pause, one name: a later pause of the task ends in another failed Job.
        "metadata": {"name": f"{last}.task-paused", "namespace": namespace},
        "involvedObject": involved,
        "type": "Warning",
        "reason": PAUSE_REASON,
        "message": (
            f"Task {task} paused after {count} consecutive failures (last: {last}): the scheduler submits it no "
            f"more until resumed. After fixing the cause: make resume-task TASK={task}, or {resume}"
        ),
        "source": {"component": "leviathan-scheduler"},
        "reportingComponent": "leviathan-scheduler",
        "reportingInstance": "leviathan-scheduler",
        "firstTimestamp": now,
        "lastTimestamp": now,
        "count": 1,
    }


def _done(plan: Plan, outcome: Outcome) -> str:
    return f"{outcome.submitted + outcome.existed} of {len(plan.submit)} planned jobs submitted"


def _may_create(api: JobsApi, config: AutonomyConfig, options: TickOptions, plan: Plan, outcome: Outcome) -> int | None:
    """None while every check says go on: the mounted file, the live ConfigMap, the CronJob not suspended."""
    exit_code = _still_enabled(config, plan, outcome)
    if exit_code is None and options.configmap:
        exit_code = _still_enabled_live(api, options.configmap, config, plan, outcome)
    if exit_code is None and options.cronjob:
        exit_code = _cronjob_not_suspended(api, options.cronjob, f"stopping, {_done(plan, outcome)}")
    return exit_code


def _cronjob_not_suspended(api: JobsApi, cronjob: str, then: str) -> int | None:
    """None while the tick's CronJob exists and is not suspended; fail closed when it is not found."""
    suspended = api.cronjob_suspended(cronjob)
    if suspended is None:
        say(f"✗ CronJob {cronjob} not found through the API: failing closed, {then}")
        return EXIT_CRONJOB_NOT_FOUND
    if suspended:
        say(f"⚠ CronJob {cronjob} is suspended (spec.suspend: true): {then}")
        return EXIT_OK
    return None


def _still_enabled_live(
    api: JobsApi, configmap: str, config: AutonomyConfig, plan: Plan, outcome: Outcome
) -> int | None:
    """The switch as the live ConfigMap says it now (the same key as the mounted file)."""
    key = config.path.rsplit("/", 1)[-1]
    raw = api.read_config_map(configmap, key)
    done = _done(plan, outcome)
    if raw is None:
        say(f"✗ ConfigMap {configmap} not found through the API: failing closed, {done}")
        return EXIT_CONFIG_NOT_MOUNTED
    live = parse_autonomy_config(raw, f"configmap {configmap} key {key}")
    return _stop_unless_enabled(
        live,
        f"⚠ Autonomy disabled in the live ConfigMap {configmap} (autonomy_enabled: false): stopping, {done}",
        f"✗ The live ConfigMap {configmap} is unusable ({live.problem}): failing closed, {done}",
    )


def _still_enabled(config: AutonomyConfig, plan: Plan, outcome: Outcome) -> int | None:
    current = read_autonomy_config(config.path, previous=config)
    done = _done(plan, outcome)
    return _stop_unless_enabled(
        current,
        f"⚠ Autonomy disabled in configuration mid-tick (autonomy_enabled: false): stopping, {done}",
        f"✗ Config became unusable mid-tick ({current.problem}): failing closed, {done}",
    )


def _stop_unless_enabled(config: AutonomyConfig, disabled_line: str, unusable_line: str) -> int | None:
    """None while the switch is on; otherwise the line to say and the tick's exit code (fail closed)."""
    if config.state is ConfigState.LOADED and config.autonomy_enabled:
        return None
    if config.state is ConfigState.LOADED:
        say(disabled_line)
        return EXIT_OK
    say(unusable_line)
    return CONFIG_EXIT_CODES[config.state]


def _dry_run(config: AutonomyConfig, settings: SchedulerSettings, options: TickOptions) -> int:
    assert settings.worker is not None
    namespace = options.namespace
    if namespace is None:
        # Name the namespace a real tick would use (its kubeconfig context included), so the output matches.
        namespace = kubeconfig_namespace() or "default"
    plan = plan_tick(settings, Counter(), 0, {})  # no Job list: declaration order
    manifests = [build_job(task, settings.worker, namespace, options.slot, config.sha256) for task in plan.submit]
    if manifests:
        print(yaml.safe_dump_all(manifests, sort_keys=False), end="", flush=True)
    for manifest in manifests:
        task = manifest["metadata"]["labels"]["leviathan.io/task"]
        say(f"✓ Would submit job {manifest['metadata']['name']} (task {task})")
    say(
        f"✓ Dry run in namespace {namespace}: would submit {len(manifests)} "
        f"(no API call; active Jobs assumed 0){_skipped(plan)}"
    )
    return EXIT_OK


def _summary(
    plan: Plan, outcome: Outcome, active_total: int, settings: SchedulerSettings, stopped: bool = False
) -> None:
    verdict = "✗ Tick stopped" if stopped else "✓ Tick done"
    say(
        f"{verdict}: submitted {outcome.submitted}, already existed {outcome.existed}{_skipped(plan)}; "
        f"active workers before the tick {active_total}/{settings.max_concurrent_workers}"
    )


def _skipped(plan: Plan) -> str:
    if not plan.skipped:
        return ""
    reasons = ", ".join(f"{count} {reason}" for reason, count in sorted(plan.skipped.items()))
    return f", skipped {sum(plan.skipped.values())} ({reasons})"
