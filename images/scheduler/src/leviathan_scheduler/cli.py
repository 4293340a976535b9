"""`leviathan-scheduler`: one tick per run, as the CronJob starts it.

The config is read first. Off means two log lines and exit 0, without even
importing the Kubernetes client; missing or invalid means fail closed.
"""

from __future__ import annotations

import argparse
import math
import os
import sys

from leviathan_config import CONFIG_ENV, DEFAULT_CONFIG_PATH, ConfigState, config_path_from_env, read_autonomy_config
from leviathan_scheduler.exit_codes import EXIT_OK, EXIT_UNEXPECTED
from leviathan_scheduler.output import DISABLED_LINE, EXITING_LINE, config_unusable, say

SERVICE_ACCOUNT_NAMESPACE = "/var/run/secrets/kubernetes.io/serviceaccount/namespace"


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if argv[:1] == ["check"]:  # `helm test`: config and RBAC, nothing submitted
        from leviathan_scheduler.check import main as check

        return check(argv[1:], os.environ.get("LEVIATHAN_NAMESPACE") or _pod_namespace())
    if argv[:1] == ["check-release-policy"]:  # `helm test`, with autonomy.releasers set
        from leviathan_scheduler.release_check import main as check_release_policy

        return check_release_policy(argv[1:], os.environ.get("LEVIATHAN_NAMESPACE") or _pod_namespace())
    args = _parser().parse_args(argv)

    # The runbook's promise: the config is read at the start of every tick, before anything else.
    config = read_autonomy_config(config_path_from_env())
    if config.state is not ConfigState.LOADED:
        return config_unusable(config.state, config.problem)
    # What the runbook's "check scheduler logs for config read" finds, on every tick that read a config.
    say(f"Config: {config.source} autonomy_enabled={str(config.autonomy_enabled).lower()}")
    if not config.autonomy_enabled:
        say(DISABLED_LINE)
        say(EXITING_LINE)
        if config.reason:
            say(f"Reason: {config.reason}")
        return EXIT_OK

    from leviathan_scheduler.jobs import tick_slot
    from leviathan_scheduler.tick import TickOptions, run_enabled_tick

    options = TickOptions(
        namespace=args.namespace or os.environ.get("LEVIATHAN_NAMESPACE") or _pod_namespace(),
        slot=tick_slot(os.environ.get("LEVIATHAN_SCHEDULER_JOB_NAME")),
        dry_run=args.dry_run,
        retry_budget_seconds=args.retry_budget,
        service_account=os.environ.get("LEVIATHAN_SERVICE_ACCOUNT"),
        tick_job=os.environ.get("LEVIATHAN_SCHEDULER_JOB_NAME") or None,
        configmap=os.environ.get("LEVIATHAN_CONFIGMAP") or None,
        cronjob=os.environ.get("LEVIATHAN_CRONJOB") or None,
    )
    try:
        return run_enabled_tick(config, options)
    except Exception as exc:  # never a bare traceback as the only output
        say(f"✗ Unexpected error ({type(exc).__name__}: {exc}); stopping without submitting more jobs")
        return EXIT_UNEXPECTED


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="leviathan-scheduler",
        description=f"Run one scheduler tick. Config: ${CONFIG_ENV} (default {DEFAULT_CONFIG_PATH}).",
    )
    parser.add_argument(
        "--namespace",
        help="namespace of the worker Jobs (default: $LEVIATHAN_NAMESPACE, the pod's namespace, "
        "or the kubeconfig context's)",
    )
    parser.add_argument(
        "--dry-run",
        action="store_true",
        help="print the Jobs this tick would create as YAML on stdout; no API call",
    )
    parser.add_argument(
        "--retry-budget",
        type=_retry_budget,
        default=30.0,
        metavar="SECONDS",
        help="how long to keep retrying an unreachable or failing API (default 30)",
    )
    return parser


def _retry_budget(text: str) -> float:
    try:
        seconds = float(text)
    except ValueError:
        seconds = math.nan
    # nan and inf would retry forever: every comparison with nan is false.
    if not (math.isfinite(seconds) and seconds >= 0):
        raise argparse.ArgumentTypeError(f"{text!r} is not a finite number of seconds (0 or more)")
    return seconds


def _pod_namespace() -> str | None:
    try:
        with open(SERVICE_ACCOUNT_NAMESPACE, encoding="utf-8") as namespace_file:
            return namespace_file.read().strip() or None
    except OSError:
        return None


if __name__ == "__main__":
    sys.exit(main())
