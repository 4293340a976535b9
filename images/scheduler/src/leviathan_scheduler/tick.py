"""An enabled tick: list active worker Jobs once, plan, create, re-checking the switch before each create."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass

import yaml

from leviathan_config import AutonomyConfig, ConfigState, read_autonomy_config
from leviathan_scheduler.exit_codes import (
    EXIT_CONFIG_ERROR,
    EXIT_CONFIG_NOT_MOUNTED,
    EXIT_OK,
)
from leviathan_scheduler.jobs import build_job, cronjob_owner, is_active, is_ours, last_submitted, task_of
from leviathan_scheduler.output import say
from leviathan_scheduler.plan import Plan, plan_tick
from leviathan_scheduler.settings import SchedulerSettings, SettingsError, parse_settings


@dataclass(frozen=True)
class TickOptions:
    namespace: str | None
    slot: int
    dry_run: bool
    retry_budget_seconds: float
    service_account: str | None
    # This tick's own Job (from the downward API), whose CronJob owns the workers.
    tick_job: str | None = None


@dataclass
class Outcome:
    submitted: int = 0
    existed: int = 0


def run_enabled_tick(config: AutonomyConfig, options: TickOptions) -> int:
    try:
        settings = parse_settings(config.document)
    except SettingsError as exc:
        say(f"✗ Error reading config: {exc}; failing closed without submitting jobs")
        return EXIT_CONFIG_ERROR
    if not settings.tasks:
        say("✓ Autonomy enabled but no tasks are declared (scheduler.tasks): nothing to submit")
        return EXIT_OK
    if options.dry_run:
        return _dry_run(config, settings, options)

    from leviathan_scheduler.kube import ApiFailure, JobsApi, load_client

    assert settings.worker is not None
    outcome = Outcome()
    plan = Plan()
    active_total = 0
    try:
        api_client, namespace = load_client(options.namespace)
        api = JobsApi(api_client, namespace, options.retry_budget_seconds, options.service_account)
        release_jobs = api.list_jobs(
            ",".join(f"{key}={value}" for key, value in settings.worker.release_selector.items())
        )
        active = [job for job in release_jobs if is_ours(job, settings.worker.selector) and is_active(job)]
        active_total = len(active)
        history = last_submitted(release_jobs, settings.worker.selector)
        plan = plan_tick(settings, Counter(task_of(job) for job in active), active_total, history)
        owner = cronjob_owner(release_jobs, options.tick_job)
        if plan.submit and owner is None and options.tick_job:
            say(
                f"… tick Job {options.tick_job} has no CronJob owner in the list: worker Jobs will outlive an uninstall"
            )
        for task in plan.submit:
            # The switch may have been flipped while this tick ran.
            exit_code = _still_enabled(config, plan, outcome)
            if exit_code is not None:
                return exit_code
            manifest = build_job(task, settings.worker, namespace, options.slot, config.sha256, owner)
            name = manifest["metadata"]["name"]
            if api.create_job(manifest):
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


def _still_enabled(config: AutonomyConfig, plan: Plan, outcome: Outcome) -> int | None:
    current = read_autonomy_config(config.path, previous=config)
    done = f"{outcome.submitted + outcome.existed} of {len(plan.submit)} planned jobs submitted"
    if current.state is ConfigState.LOADED and current.autonomy_enabled:
        return None
    if current.state is ConfigState.LOADED:
        say(f"⚠ Autonomy disabled in configuration mid-tick (autonomy_enabled: false): stopping, {done}")
        return EXIT_OK
    say(f"✗ Config became unusable mid-tick ({current.problem}): failing closed, {done}")
    return EXIT_CONFIG_NOT_MOUNTED if current.state is ConfigState.NOT_MOUNTED else EXIT_CONFIG_ERROR


def _dry_run(config: AutonomyConfig, settings: SchedulerSettings, options: TickOptions) -> int:
    assert settings.worker is not None
    namespace = options.namespace
    if namespace is None:
        # Name the namespace a real tick would use (its kubeconfig context included), so the output matches.
        from leviathan_scheduler.kube import kubeconfig_namespace

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
