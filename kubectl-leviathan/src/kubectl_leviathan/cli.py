"""kubectl leviathan COMMAND [flags]: the runbook's operations, on one cluster or a fleet.

Exit codes: 0 done (and, for a brake, proven); 1 failed (the line says why; in fleet mode, on any
cluster); 2 bad command line; 3 a brake was applied but the API server does NOT refuse new worker Jobs.
"""

from __future__ import annotations

import argparse
import sys
import time

from kubectl_leviathan import fleet, ops, runbook, switch
from kubectl_leviathan.cluster import Cluster, ClusterError, Target
from kubectl_leviathan.names import Names

HELP = {
    "status": "the switch, the stop, who, the chart and the fleet brake record (and whether worker Jobs are refused)",
    "disable": "switch autonomy off (the runbook's kubectl edit of the switch line), with a reason; a brake",
    "enable": "switch autonomy back on, with a reason (--fleet-restore: the state before the fleet brake)",
    "stop": "the emergency stop: suspend the scheduler CronJob; a brake",
    "resume": "unsuspend the scheduler CronJob",
    "halt-workers": "suspend every worker Job (Kubernetes stops their pods, keeps the Jobs); a brake",
    "resume-workers": "resume the suspended worker Jobs, only while autonomy is enabled",
    "paused-tasks": "the pause lines of the scheduler's last tick",
    "who": "who last flipped the switch (the API server's stamp)",
}


def parser() -> argparse.ArgumentParser:
    common = argparse.ArgumentParser(add_help=False)
    kube = common.add_argument_group("kubectl's flags")
    kube.add_argument("--context", help="the kubeconfig context to use")
    kube.add_argument("-n", "--namespace", default="leviathan", help="the release's namespace (default leviathan)")
    kube.add_argument("--kubeconfig", help="path to the kubeconfig file")
    kube.add_argument("--as", dest="as_user", metavar="USER", help="act as this user (impersonation)")
    kube.add_argument("--as-group", dest="as_group", metavar="GROUP", help="act as this group (one)")
    kube.add_argument(
        "--request-timeout",
        dest="timeout",
        type=float,
        default=10.0,
        metavar="SECONDS",
        help="per cluster: how long it may take, retries included (default 10)",
    )
    names = common.add_argument_group("the release")
    names.add_argument("--release", default="leviathan", help="the Helm release (default leviathan)")
    names.add_argument("--env", help="the chart's environment (default: the ConfigMap's one <env>.yaml key)")
    many = common.add_argument_group("fleet mode (every cluster in parallel, then a table)")
    many.add_argument("--contexts", help="comma-separated kube contexts")
    many.add_argument("--all-contexts", action="store_true", help="every context of the kubeconfig")
    many.add_argument("--selector", metavar="PATTERN", help="contexts whose name matches this glob (e.g. 'prod-*')")
    common.add_argument(
        "--show-runbook",
        action="store_true",
        help="print the runbook commands this stands for and exit, without calling any cluster",
    )

    top = argparse.ArgumentParser(
        prog="kubectl leviathan",
        description=__doc__.split("\n\n")[0],
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    commands = top.add_subparsers(dest="action", required=True, metavar="COMMAND")
    for action, text in HELP.items():
        sub = commands.add_parser(action, parents=[common], help=text, description=text)
        if action in ("disable", "enable"):
            sub.add_argument("--reason", required=True, help="why (recorded in the config, the log and the status)")
        if action == "enable":
            sub.add_argument(
                "--fleet-restore",
                action="store_true",
                help="give each cluster back the state its fleet brake recorded (needs a releaser there)",
            )
        if action == "status":
            sub.add_argument(
                "--expect",
                choices=["on", "off"],
                help="exit 1 naming every cluster whose switch is not this (e.g. a GitOps brake not applied yet)",
            )
    return top


def fleet_mode(args: argparse.Namespace) -> bool:
    return bool(args.contexts or args.all_contexts or args.selector)


def target(args: argparse.Namespace, context: str | None) -> Target:
    return Target(
        context=context,
        kubeconfig=args.kubeconfig,
        as_user=args.as_user,
        as_groups=(args.as_group,) if args.as_group else (),
        release=args.release,
        namespace=args.namespace,
        env=args.env,
        timeout=args.timeout,
    )


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    names = Names(args.release, args.namespace, args.env or "dev")
    shown = runbook.commands(args.action, names)
    if args.show_runbook:
        print("\n".join(shown))
        return ops.EXIT_OK
    reason = getattr(args, "reason", None)
    if reason is not None:
        try:
            switch.reason_line(reason)
            if not reason.strip():
                raise switch.BadReason("say why: --reason 'INC-123: runaway retries'")
        except switch.BadReason as exc:
            print(f"kubectl leviathan: {exc}", file=sys.stderr)
            return ops.EXIT_FAILED
    request = ops.Request(
        action=args.action,
        reason=reason,
        fleet=fleet_mode(args) and args.action in ops.BRAKES,
        restore=bool(getattr(args, "fleet_restore", False)),
    )
    for line in shown:
        print(f"runbook: {line}")
    if fleet_mode(args):
        return run_fleet(args, request)
    if request.restore:
        print(
            "kubectl leviathan: --fleet-restore works on a fleet: add --context(s), --all-contexts or --selector",
            file=sys.stderr,
        )
        return ops.EXIT_FAILED
    try:
        cluster = Cluster(target(args, args.context))
    except ClusterError as exc:
        print(f"✗ {target(args, args.context).label}: {exc}", file=sys.stderr)
        return ops.EXIT_FAILED
    outcome = ops.run(cluster, request)
    for line in outcome.lines:
        print(line)
    if outcome.error:
        print(f"✗ {outcome.error}", file=sys.stderr)
    elif outcome.problem:
        print(outcome.problem, file=sys.stderr)
    if args.action == "status" and args.expect and outcome.state and outcome.state.switch != args.expect:
        print(f"✗ autonomy is {outcome.state.switch}, not {args.expect}", file=sys.stderr)
        return ops.EXIT_FAILED
    return outcome.exit_code


def run_fleet(args: argparse.Namespace, request: ops.Request) -> int:
    started = time.monotonic()
    try:
        chosen = fleet.contexts(
            args.kubeconfig, args.contexts.split(",") if args.contexts else None, args.all_contexts, args.selector
        )
        known = {entry["name"] for entry in fleet.config.list_kube_config_contexts(config_file=args.kubeconfig)[0]}
    except ClusterError as exc:
        print(f"✗ {exc}", file=sys.stderr)
        return ops.EXIT_FAILED
    rows = fleet.run([target(args, name) for name in chosen], request, known)
    print(fleet.table(rows, args.action))
    failed = [row for row in rows if row.outcome.exit_code != ops.EXIT_OK]
    if args.action == "status" and args.expect:
        failed += [
            row
            for row in rows
            if not row.outcome.error and row.outcome.state and row.outcome.state.switch != args.expect
        ]
        for row in rows:
            if row.outcome.state and not row.outcome.error and row.outcome.state.switch != args.expect:
                print(
                    f"✗ {row.cluster}: autonomy is {row.outcome.state.switch}, not {args.expect} (not applied yet?)",
                    file=sys.stderr,
                )
    for row in rows:
        if row.outcome.problem:
            print(f"✗ {row.cluster}: {row.outcome.problem.removeprefix('✗ ')}", file=sys.stderr)
    if args.action in ops.BRAKES:
        proven = [row for row in rows if row.outcome.proof and row.outcome.proof.refused and row.outcome.done_at]
        if len(proven) == len(rows):
            last = max(row.outcome.done_at + row.outcome.proof.seconds for row in proven)  # type: ignore[operator]
            print(f"fleet time-to-safe: {(last - started) * 1000:.0f} ms ({len(rows)} of {len(rows)} clusters proven)")
        else:
            print(f"✗ {len(rows) - len(proven)} of {len(rows)} clusters NOT proven safe", file=sys.stderr)
    if not failed:
        return ops.EXIT_OK
    unproven = all(row.outcome.exit_code == ops.EXIT_UNPROVEN for row in failed)
    return ops.EXIT_UNPROVEN if unproven else ops.EXIT_FAILED


if __name__ == "__main__":
    sys.exit(main())
