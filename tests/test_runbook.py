"""The operators' docs keep the contract (tests/contract/runbook.yaml), and so do the chart and the code.

Docs: docs/RUNBOOK.md step by step, README.md and the rendered NOTES.txt by their quick
reference; mutated copies of the runbook prove the checker rejects each kind of drift.
Chart and code: the contract's names, labels, paths, port, Secret, JSON answer and log lines,
and the contract's own commands run for real where no cluster is needed (curl against the
real control plane, `grep` over the chart's objects, the troubleshooting grep over real ticks).
"""

from __future__ import annotations

import json
import os
import re
import shlex
import subprocess
from collections.abc import Callable
from functools import cache
from pathlib import Path

import pytest
import yaml

from support.contract import (
    CONFIG_PATH,
    CONTRACT_FILE,
    DISABLED_LINE,
    EXITING_LINE,
    SOURCE_ERROR,
    SOURCE_NOT_MOUNTED,
    Expect,
    configmap_source,
    load_contract,
)
from support.control_plane import TOKEN, ControlPlaneServer
from support.helm import helm, pod_spec, render_chart
from support.kubelet_volume import publish
from support.paths import CHART, REPO, SCHEDULER, VALUES_DIR
from support.runbook_docs import (
    blocks,
    deviations,
    quick_reference_violations,
    regions,
    runbook_violations,
    runnable_lines,
    shell_lines,
)

CONTRACT = load_contract()
RUNBOOK = (REPO / "docs" / "RUNBOOK.md").read_text()
README = (REPO / "README.md").read_text()
KINDS = {
    "configmap": "ConfigMap",
    "cronjob": "CronJob",
    "deployment": "Deployment",
    "secret": "Secret",
    "svc": "Service",
}


@cache
def notes() -> str:
    """NOTES.txt as helm renders it for release leviathan in namespace leviathan with values/dev.yaml."""
    result = helm(
        "install", "leviathan", str(CHART), "-n", "leviathan", "--dry-run=client", "-f", str(VALUES_DIR / "dev.yaml")
    )
    assert result.returncode == 0, result.stderr
    return result.stdout.split("NOTES:", 1)[1]


# ---- docs/RUNBOOK.md, README.md, NOTES.txt against the contract ------------------------------------


def test_the_runbook_keeps_the_contract():
    assert runbook_violations(RUNBOOK, CONTRACT) == []


def test_the_readme_quick_reference_keeps_the_contract():
    assert quick_reference_violations(README, CONTRACT, markdown=True) == []


def test_the_notes_quick_reference_keeps_the_contract():
    assert quick_reference_violations(notes(), CONTRACT, markdown=False) == []


def test_every_deviation_is_one_line_with_a_reason():
    for text in (RUNBOOK, README, notes()):
        for command_id, reason in deviations(text).items():
            assert len(reason.split()) >= 5, f"{command_id}: say why"


def delete_region(text: str, marker: str) -> str:
    [region] = [r for r in regions(text) if r.text.startswith(f"<!-- contract: {marker} -->")]
    return text.replace(region.text, "", 1)


def replace(old: str, new: str, after: str = "") -> Callable[[str], str]:
    """Edit the first `old` that follows `after`."""

    def edit(text: str) -> str:
        start = text.index(after) if after else 0
        at = text.index(old, start)
        return text[:at] + new + text[at + len(old) :]

    return edit


def swap_sections(first: str, second: str, end: str) -> Callable[[str], str]:
    """Swap the section from heading `first` to `second` with the one from `second` to `end`."""

    def edit(text: str) -> str:
        a, b, c = text.index(first), text.index(second), text.index(end)
        return text[:a] + text[b:c] + text[a:b] + text[c:]

    return edit


def move_to_the_end(line_start: str) -> Callable[[str], str]:
    def edit(text: str) -> str:
        line = next(line for line in text.splitlines(keepends=True) if line.startswith(line_start))
        return text.replace(line, "", 1) + "\n" + line

    return edit


PATCH_TRUE = """-p '{"spec":{"suspend":true}}'"""
STEP_4 = "<!-- contract: disable/verify-disabled -->"

MUTATIONS: dict[str, Callable[[str], str]] = {
    "deleted step": lambda text: delete_region(text, "emergency-stop/verify-suspended"),
    "deleted optional step": lambda text: delete_region(text, "emergency-stop/delete-workers"),
    "inverted patch": replace(PATCH_TRUE, PATCH_TRUE.replace("true", "false")),
    "inverted patch in the quick reference": replace(PATCH_TRUE, PATCH_TRUE.replace("true", "false"), "## Quick"),
    "inverted unsuspend": replace("""'{"spec":{"suspend":false}}'""", """'{"spec":{"suspend":true}}'"""),
    "changed log line": replace(DISABLED_LINE, "⚠ Autonomy switched off (autonomy_enabled: false)", STEP_4),
    "truncated log line": replace(EXITING_LINE, "✓ Scheduler exiting cleanly", STEP_4),
    "changed log line while waiting": replace(DISABLED_LINE, DISABLED_LINE.replace("⚠", "✗")),
    "wrong label selector": replace("-l app=leviathan-worker", "-l app=leviathan-workers"),
    "wrong scheduler label": replace("-l app=leviathan-dev-scheduler --tail=50", "-l app=scheduler --tail=50"),
    "renamed source": replace('"source": "configmap:', '"origin": "configmap:'),
    "changed source": replace(f'"source": "{configmap_source(CONFIG_PATH)}"', '"source": "configmap"'),
    "changed JSON answer": replace('"autonomy_enabled": false', '"autonomy_enabled": true'),
    "extra JSON field": replace('"autonomy_enabled": true,', '"autonomy_enabled": true, "reason": "",'),
    "wrong namespace": replace(
        "kubectl get cronjob leviathan-dev-scheduler -n leviathan",
        "kubectl get cronjob leviathan-dev-scheduler -n default",
    ),
    "changed grep output": replace("    autonomy_enabled: false\n", '    autonomy_enabled: "false"\n'),
    "suspend shown False after a stop": replace("*/5 * * * *   True ", "*/5 * * * *   False"),
    "only the 1.30+ table": lambda text: re.sub(
        r"Before Kubernetes 1.30:\n\n```\nNAME +SCHEDULE +SUSPEND.*?```\n", "", text, count=1, flags=re.S
    ),
    "re-enable in the wrong order": swap_sections(
        "### Step 1: update the ConfigMap", "### Step 2: unsuspend", "### Step 3: verify re-enablement"
    ),
    "bulk delete runs when pasted": replace("# kubectl delete jobs -n leviathan", "kubectl delete jobs -n leviathan"),
    "deviation without a reason": replace(
        "(`not-mounted.apply-manifests`): this chart", "(`not-mounted.apply-manifests`):\n\nthis chart"
    ),
    "deviation marker away from its step": move_to_the_end(
        "> **Differs from the reference runbook** (`not-mounted.apply-manifests`)"
    ),
    "expected JSON not shown": lambda text: text.replace(
        f'```json\n{{\n  "autonomy_enabled": false,\n  "source": "{configmap_source(CONFIG_PATH)}"\n}}\n```\n',
        "",
        1,
    ),
    "look-for lines not shown": replace(f"```\n{DISABLED_LINE}\n{EXITING_LINE}\n```\n", "", STEP_4),
    "unset token variable": replace('"Authorization: Bearer $CONTROL_PLANE_TOKEN"', '"Authorization: Bearer $TOKEN"'),
    "deviation unmarked": replace("> **Differs from the reference runbook** (`config-errors.grep-errors`)", "> Note"),
    # Item 9 of issue 19: the source table and every contract string, tables and headings included.
    "renamed source in the table": replace("| `default (config not mounted)` |", "| `default (config missing)` |"),
    "source in the table without its parenthesis": replace(
        "| `default (config not mounted)` |", "| `default config not mounted` |"
    ),
    "source rows swapped": replace(
        "| `default (config not mounted)` |", "| `default (error reading config)` |", "### Source values"
    ),
    "source row dropped": lambda text: re.sub(
        r"^\| `default \(error reading config\)` \|.*\n", "", text, count=1, flags=re.M
    ),
    "source row added": replace(
        "| `default (error reading config)` |", "| `default (unknown)` | x | y |\n| `default (error reading config)` |"
    ),
    "renamed source in a heading": replace(
        "returns `default (config not mounted)`", "returns `default (no config mounted)`"
    ),
    "renamed source in the failure modes": replace(
        "with source `default (error reading config)`", "with source `default (config error)`"
    ),
    "log line typo in prose": replace(
        "⚠ Autonomy disabled in configuration (autonomy_enabled: false)",
        "⚠ Autonomy disabled in configuration (autonomy_enabled: off)",
    ),
    "ConfigMap name typo in prose": replace(
        "ConfigMap leviathan-autonomy-config is missing", "ConfigMap leviathan-autonomy-configs is missing"
    ),
    "config path typo in a table": replace(
        "| `configmap:/etc/leviathan/autonomy/dev.yaml` |", "| `configmap:/etc/leviathan/autonomy/dev.yml` |"
    ),
}


def test_the_source_table_is_pinned_to_the_contract():
    """Item 9 of issue 19: the table of `source` values lists exactly the contract's, in its order."""
    table = section("Source values").split("\n|", 1)[1].split("\n\n", 1)[0]
    table = ["|" + row if not row.startswith("|") else row for row in table.splitlines()]
    assert table[0].startswith("| `source` |")
    assert [row.split(" | ", 1)[0].strip("| `") for row in table[2:]] == list(CONTRACT.tables[0][1])
    assert CONTRACT.tables[0][1] == (configmap_source(CONFIG_PATH), SOURCE_NOT_MOUNTED, SOURCE_ERROR)


def test_the_deviations_are_the_decided_ones():
    """A new deviation is a decision (docs/DECISIONS.md), not a way to quiet the checker."""
    assert sorted(deviations(RUNBOOK)) == [
        "config-errors.grep-errors",
        "emergency-stop.delete-all-workers",
        "not-mounted.apply-manifests",
        "query-status.set-token",
        "quick-reference.query-status",
        "unauthorized.echo-token",
    ]
    assert sorted(deviations(README)) == sorted(deviations(notes())) == ["quick-reference.query-status"]


def test_the_unmodified_copy_is_accepted():
    assert runbook_violations(str(RUNBOOK), CONTRACT) == []


@pytest.mark.parametrize("mutation", MUTATIONS.values(), ids=MUTATIONS.keys())
def test_a_copy_with_one_contract_breaking_edit_is_rejected(mutation):
    mutated = mutation(RUNBOOK)
    assert mutated != RUNBOOK, "the edit did not apply"
    assert runbook_violations(mutated, CONTRACT) != []


@pytest.mark.parametrize(
    ("document", "old", "new"),
    [
        (
            "readme",
            "kubectl get jobs -n leviathan -l app=leviathan-worker`",
            "kubectl get jobs -n default -l app=leviathan-worker`",
        ),
        ("readme", PATCH_TRUE, PATCH_TRUE.replace("true", "false")),
        ("readme", "Bearer $CONTROL_PLANE_TOKEN", "Bearer $TOKEN"),
        ("notes", "--tail=50", "--tail=5"),
        ("notes", PATCH_TRUE, PATCH_TRUE.replace("true", "false")),
        (
            "notes",
            "kubectl edit configmap leviathan-autonomy-config -n leviathan   -> set autonomy_enabled: true",
            "set autonomy_enabled: true",
        ),
    ],
)
def test_a_quick_reference_with_one_edit_is_rejected(document, old, new):
    text, markdown = (README, True) if document == "readme" else (notes(), False)
    assert old in text
    assert quick_reference_violations(text.replace(old, new, 1), CONTRACT, markdown) != []


# ---- What each finding of issue 13 became ------------------------------------------------------------


def section(title: str) -> str:
    """The runbook's section whose heading (## or ###) matches `title`, up to the next heading as high."""
    heading = re.search(rf"^(#{{2,3}}) .*{title}.*$", RUNBOOK, flags=re.M | re.I)
    assert heading, title
    level = len(heading.group(1))
    end = re.search(rf"^#{{2,{level}}} ", RUNBOOK[heading.end() :], flags=re.M)
    return RUNBOOK[heading.start() : heading.end() + end.start() if end else None]


def test_the_emergency_stop_runs_no_helm_upgrade():
    """Item 1: the stop is the contract's patch; a helm upgrade could write the values' switch back."""
    for title in ("Emergency stop", "CronJob suspended"):
        assert [line for line in runnable_lines(section(title)) if line.startswith("helm ")] == []
    for text in (README, notes()):
        row = next(line for line in text.splitlines() if "Emergency stop" in line)
        assert "helm" not in row


def test_pasting_the_worker_step_cannot_delete_every_worker_job():
    """Item 2: the bulk delete is commented out, with the reference's caution kept."""
    step = section("Emergency stop")
    assert "kubectl delete jobs -n leviathan -l app=leviathan-worker" not in runnable_lines(step)
    assert "# kubectl delete jobs -n leviathan -l app=leviathan-worker" in step
    assert "(use with caution)" in step


def test_every_token_variable_is_the_exported_one():
    """Item 3: `$TOKEN` is set nowhere; every document uses `$CONTROL_PLANE_TOKEN`."""
    for text in (RUNBOOK, README, notes()):
        assert "Bearer $TOKEN" not in text
        assert "Bearer $CONTROL_PLANE_TOKEN" in text


def helm_commands(text: str) -> list[str]:
    found = re.findall(r"^\s*(helm (?:upgrade|install)\b.*)$", text, flags=re.M)
    found += [c.replace("\\|", "|") for c in re.findall(r"`(helm (?:upgrade|install)\b[^`]*)`", text)]
    return [command for command in found if " -n " in command]  # not prose such as "a routine `helm upgrade`"


def helm_chart_problems(text: str) -> list[str]:
    """Helm upgrades name the chart by $LEVIATHAN_CHART, and the doc says which Helm it needs."""
    problems = [c for c in helm_commands(text) if shlex.split(c)[4 if "--install" in c else 3] != "$LEVIATHAN_CHART"]
    problems += [
        f"-f {p}" for c in helm_commands(text) for p in re.findall(r" -f (\S+)", c) if "$LEVIATHAN_CHART" not in p
    ]
    return problems


def test_helm_commands_work_from_any_directory():
    """Item 5: no relative `chart` (or values) path; the chart's checkout is named, and Helm's version stated."""
    for text in (RUNBOOK, README):
        assert helm_commands(text)
        assert helm_chart_problems(text) == []
        assert helm_chart_problems(text.replace('"$LEVIATHAN_CHART" -n', "chart -n", 1)) != []
        assert "export LEVIATHAN_CHART=" in text
        assert "Helm v3.14 or newer" in text
    assert helm_chart_problems(notes()) == []


def test_the_troubleshooting_grep_catches_every_failure_line(tmp_path):
    """Item 6: the runbook's grep, run for real over what failing ticks print."""
    [command] = [
        line
        for line in runnable_lines(section("errors reading"))
        if line.startswith("kubectl logs -n leviathan -l app=leviathan-dev-scheduler") and "grep" in line
    ]
    pipeline = command.split(" | ", 1)[1]
    failures = failing_tick_lines(tmp_path)
    assert len(failures) >= 4
    caught = subprocess.run(["bash", "-c", pipeline], input="\n".join(failures), capture_output=True, text=True)
    assert caught.stdout.splitlines() == failures


def failing_tick_lines(tmp_path: Path) -> list[str]:
    """The one ✗ line of each way a tick fails without a cluster: config missing, invalid, API unreachable."""
    mount = tmp_path / "autonomy"
    kubeconfig = tmp_path / "kubeconfig"
    kubeconfig.write_text(
        "apiVersion: v1\nkind: Config\nclusters: [{name: c, cluster: {server: 'http://127.0.0.1:9'}}]\n"
        "users: [{name: u, user: {token: x}}]\ncontexts: [{name: c, context: {cluster: c, user: u, namespace: n}}]\n"
        "current-context: c\n"
    )
    ticks = [None, "autonomy_enabled: maybe\n", "autonomy_enabled: [\n", "autonomy_enabled: true\nscheduler: 3\n"]
    enabled = render_chart(values_files=[VALUES_DIR / "dev.yaml"], show_only=["templates/configmap.yaml"])
    ticks.append(enabled[0]["data"]["dev.yaml"])
    lines = []
    for body in ticks:
        if body is not None:
            publish(mount, {"dev.yaml": body})
        env = {"PATH": os.environ["PATH"], "HOME": str(tmp_path), "KUBECONFIG": str(kubeconfig)}
        env["LEVIATHAN_AUTONOMY_CONFIG"] = str(mount / "dev.yaml")
        result = subprocess.run(
            [str(SCHEDULER), "--retry-budget", "0.2"], env=env, capture_output=True, text=True, timeout=60
        )
        assert result.returncode != 0, result.stderr
        lines += [line for line in result.stderr.splitlines() if line.startswith("✗")]
    return lines


def test_re_enable_sets_the_config_before_it_unsuspends():
    """Item 8: the reference's order, in the runbook, the README and NOTES."""
    edit = "kubectl edit configmap leviathan-autonomy-config -n leviathan"
    unsuspend = """kubectl patch cronjob leviathan-dev-scheduler -n leviathan -p '{"spec":{"suspend":false}}'"""
    text = section("Re-enable autonomy")
    assert text.index(edit) < text.index(unsuspend)
    for text in (README, notes()):
        row = next(line for line in text.splitlines() if "Re-enable" in line and unsuspend in line)
        assert edit in row.split(unsuspend)[0]


def test_the_cronjob_table_is_shown_for_every_supported_server():
    """Item 9: servers before 1.30 print no TIMEZONE column; the chart supports 1.27+."""
    assert yaml.safe_load((CHART / "Chart.yaml").read_text())["kubeVersion"] == ">=1.27.0-0"
    text = section("Emergency stop")
    for columns in CONTRACT.table_columns.values():
        header = re.search("^" + r"\s+".join(map(re.escape, columns)) + "$", text, flags=re.M)
        assert header, columns
        table = text[header.start() :].split("```", 1)[0]
        assert CONTRACT.command("emergency-stop.get-cronjob").expect.mismatches(table, CONTRACT.table_columns) == []


def test_no_doc_relies_on_the_configmap_annotations():
    """Item 10: a `kubectl edit` leaves annotations stale; the ConfigMap's data is the only truth.
    The one exception is the API server's own stamp (issue 14), which no edit can leave stale."""
    for path in ("docs/RUNBOOK.md", "README.md", "chart/templates/NOTES.txt", "Makefile"):
        text = (REPO / path).read_text()
        assert "leviathan.io/autonomy-" not in text, path
        for paragraph in text.split("\n\n"):
            if "annotation" in paragraph.lower():
                # (kubectl's jsonpath escapes the dots)
                assert "autonomy.leviathan.io/switched-by" in paragraph.replace("\\.", "."), (path, paragraph)


def test_every_exit_code_has_its_row():
    """Item 11: the exit-code table lists every code the scheduler defines, 1 with the code's own words."""
    source = (REPO / "images/scheduler/src/leviathan_scheduler/exit_codes.py").read_text()
    codes = dict(re.findall(r"^EXIT_\w+ = (\d+)  # (.+)$", source, flags=re.M))
    rows = dict(re.findall(r"^\| (\d+) \| (.+?) \|", RUNBOOK, flags=re.M))
    assert set(codes) | {"2"} == set(rows)
    assert rows["1"] == codes["1"]


def test_the_config_read_line_is_the_one_the_scheduler_prints():
    """Item 12: the runbook shows the line every tick starts with, in the scheduler's format."""
    cli = (REPO / "images/scheduler/src/leviathan_scheduler/cli.py").read_text()
    assert 'say(f"Config: {config.source} autonomy_enabled=' in cli
    shown = re.findall(r"^\s*(Config: \S+ autonomy_enabled=(?:true|false))$", section("still creating"), re.M)
    assert shown == [f"Config: {configmap_source(CONFIG_PATH)} autonomy_enabled=true"]


# ---- The chart against the contract ------------------------------------------------------------------


@cache
def chart() -> dict:
    docs = render_chart(values_files=[VALUES_DIR / "dev.yaml"])
    return {(d["kind"], d["metadata"]["name"]): d for d in docs}


def run_pipeline(command: str, stdin: str) -> str:
    """The part of a contract command after its first `|`, run for real by bash over `stdin`."""
    result = subprocess.run(["bash", "-c", command.split(" | ", 1)[1]], input=stdin, capture_output=True, text=True)
    return result.stdout


class KubectlDumper(yaml.SafeDumper):
    """YAML as `kubectl get -o yaml` prints it: multi-line strings as literal blocks."""


KubectlDumper.add_representer(
    str,
    lambda dumper, data: dumper.represent_scalar("tag:yaml.org,2002:str", data, style="|" if "\n" in data else None),
)


def as_kubectl_yaml(obj: dict) -> str:
    return yaml.dump(obj, Dumper=KubectlDumper, sort_keys=True, default_flow_style=False)


def test_the_chart_makes_the_contract_names():
    names = CONTRACT.names
    objects = chart()
    configmap = objects[("ConfigMap", names["configmap"])]
    assert list(configmap["data"]) == [names["config_key"]]
    for kind in ("Deployment", "Service"):
        assert (kind, names["control_plane"]) in objects
    service = objects[("Service", names["control_plane"])]
    assert [port["port"] for port in service["spec"]["ports"]] == [names["service_port"]]
    cronjob = objects[("CronJob", names["scheduler"])]
    assert cronjob["spec"]["schedule"] == names["schedule"]
    assert cronjob["spec"]["suspend"] is False
    secret = objects[("Secret", names["secret"])]
    assert list(secret["data"]) == [names["secret_key"]]


def test_pods_carry_the_contract_labels():
    key, value = CONTRACT.names["scheduler_selector"].split("=")
    cronjob = chart()[("CronJob", CONTRACT.names["scheduler"])]
    assert cronjob["spec"]["jobTemplate"]["spec"]["template"]["metadata"]["labels"][key] == value
    settings = chart()[("ConfigMap", "leviathan-scheduler-config")]["data"]["scheduler.yaml"]
    config = yaml.safe_load(settings)
    key, value = CONTRACT.names["worker_selector"].split("=")
    assert config["worker"]["selector"][key] == value


def test_both_sidecars_read_the_contract_path():
    for kind, name in (("Deployment", CONTRACT.names["control_plane"]), ("CronJob", CONTRACT.names["scheduler"])):
        [container] = pod_spec(chart()[(kind, name)])["containers"]
        env = {e["name"]: e.get("value") for e in container["env"]}
        assert env["LEVIATHAN_AUTONOMY_CONFIG"] == CONTRACT.names["config_path"]


@pytest.mark.parametrize("enabled", [True, False])
def test_the_contract_grep_prints_the_contract_line(enabled):
    configmap = render_chart(
        {"autonomy": {"enabled": enabled}},
        values_files=[VALUES_DIR / "dev.yaml"],
        show_only=["templates/configmap.yaml"],
    )[0]
    command = CONTRACT.command("disable.grep-configmap")
    output = run_pipeline(command.run, as_kubectl_yaml(configmap))
    expected = command.expect if not enabled else Expect(lines=("autonomy_enabled: true",))
    assert expected.mismatches(output) == []


@pytest.mark.parametrize(("edit_id", "start"), [("disable.edit-configmap", True), ("re-enable.edit-configmap", False)])
def test_the_edit_done_by_kube_editor_is_the_contract_edit(tmp_path, edit_id, start):
    """What the e2e suite runs instead of a person: kubectl runs `sh -c "$KUBE_EDITOR <file>"` on the object's YAML."""
    configmap = render_chart(
        {"autonomy": {"enabled": start}}, values_files=[VALUES_DIR / "dev.yaml"], show_only=["templates/configmap.yaml"]
    )[0]
    edited = tmp_path / "configmap.yaml"
    edited.write_text(as_kubectl_yaml(configmap))
    editor = CONTRACT.command(edit_id).kube_editor
    subprocess.run(["sh", "-c", f"{editor} {edited}"], check=True)
    after = yaml.safe_load(edited.read_text())
    assert after["data"]["dev.yaml"] == configmap["data"]["dev.yaml"].replace(
        f"autonomy_enabled: {str(start).lower()}", f"autonomy_enabled: {str(not start).lower()}", 1
    )
    grep = run_pipeline(CONTRACT.command("disable.grep-configmap").run, edited.read_text())
    assert grep.strip() == f"autonomy_enabled: {str(not start).lower()}"


@pytest.mark.parametrize(
    ("command_id", "kind"),
    [("not-mounted.deployment-volumes", "Deployment"), ("config-errors.cronjob-volumes", "CronJob")],
)
def test_the_contract_volume_greps_find_the_configmap(command_id, kind):
    command = CONTRACT.command(command_id)
    name = CONTRACT.names["control_plane"] if kind == "Deployment" else CONTRACT.names["scheduler"]
    output = run_pipeline(command.run, as_kubectl_yaml(chart()[(kind, name)]))
    assert command.expect.mismatches(output) == []


# ---- The control plane and the scheduler against the contract ----------------------------------------


@pytest.fixture
def control_plane(tmp_path):
    mount, token_mount = tmp_path / "autonomy", tmp_path / "token"
    publish(token_mount, {"control-plane-token": TOKEN + "\n"})
    servers = []

    def start(body: str | None) -> tuple[ControlPlaneServer, Path]:
        if body is not None:
            publish(mount, {"dev.yaml": body})
        server = ControlPlaneServer(mount / "dev.yaml", token_mount / "control-plane-token", tmp_path / "cp.log")
        servers.append(server)
        return server, mount / "dev.yaml"

    yield start
    for server in servers:
        server.stop()


def run_curl(command: str, server: ControlPlaneServer, token: str = TOKEN) -> str:
    """The contract's curl, verbatim but for the Service address, against the real control plane."""
    local = command.replace("http://leviathan-control-plane:8000", server.url)
    env = {"PATH": os.environ["PATH"], "CONTROL_PLANE_TOKEN": token}
    return subprocess.run(["bash", "-c", local + " -sS"], env=env, capture_output=True, text=True, timeout=30).stdout


@pytest.mark.parametrize(
    ("command_id", "body"),
    [
        ("query-status.curl", "autonomy_enabled: true\n"),
        ("disable.curl", 'autonomy_enabled: false\nreason: "INC-1"\n'),
        ("re-enable.curl", "autonomy_enabled: true\n"),
    ],
)
def test_the_contract_curl_gets_the_contract_answer(control_plane, command_id, body):
    server, path = control_plane(body)
    command = CONTRACT.command(command_id)
    answer = run_curl(command.run, server).replace(str(path), CONTRACT.names["config_path"])
    assert command.expect.mismatches(answer) == []


@pytest.mark.parametrize(
    ("body", "source"), [(None, "not_mounted"), ("autonomy_enabled: maybe\n", "error")], ids=["not mounted", "invalid"]
)
def test_the_documented_default_sources(control_plane, body, source):
    server, _ = control_plane(body)
    answer = json.loads(run_curl(CONTRACT.command("query-status.curl").run, server))
    expected = {"autonomy_enabled": CONTRACT.status_api["default_when_unavailable"]}
    assert answer == {**expected, "source": CONTRACT.status_api["sources"][source]}
    assert RUNBOOK.count(f"`{CONTRACT.status_api['sources'][source]}`") >= 1


def test_a_missing_token_gets_401(control_plane):
    server, _ = control_plane("autonomy_enabled: true\n")
    command = CONTRACT.command("query-status.curl").run.replace("curl ", "curl -o /dev/null -w '%{http_code}' ", 1)
    assert run_curl(command, server, token="") == "401"


def test_the_scheduler_logs_the_contract_lines_when_disabled(tmp_path):
    mount = tmp_path / "autonomy"
    publish(mount, {"dev.yaml": "autonomy_enabled: false\n"})
    env = {"PATH": os.environ["PATH"], "HOME": str(tmp_path), "LEVIATHAN_AUTONOMY_CONFIG": str(mount / "dev.yaml")}
    result = subprocess.run([str(SCHEDULER)], env=env, capture_output=True, text=True, timeout=60)
    assert result.returncode == 0
    step = CONTRACT.procedure("disable").step("verify-disabled")
    assert step.commands[0].expect.mismatches(result.stderr) == []
    assert CONTRACT.procedure("re-enable").step("verify-enabled").commands[1].expect.mismatches(result.stderr) != []


# ---- Every other command in the docs uses the chart's real names ---------------------------------------


def doc_commands(tool: str) -> list[str]:
    found = []
    for text, markdown in ((RUNBOOK, True), (README, True), (notes(), False)):
        if markdown:
            for block in re.findall(r"```bash\n(.*?)```", text, flags=re.S):
                found += [
                    line.strip().rstrip("&").strip()
                    for line in re.sub(r"\s*\\\n\s*", " ", block).splitlines()
                    if line.strip().startswith(tool + " ")
                ]
            found += [c.replace("\\|", "|") for c in re.findall(r"`(" + tool + r" [^`\n]+)`", text) if " -n " in c]
        else:
            found += re.findall(r"(?:^|\s)(" + tool + r" .+?)(?:\s{2,}|$)", text, flags=re.M)
    return sorted({c for c in found if "<" not in c.split(" -n ")[0] or "<job-name>" in c})


@pytest.mark.parametrize("command", doc_commands("kubectl"))
def test_kubectl_command_matches_the_chart(command):
    tokens = shlex.split(command.split(" | ")[0].split(" & ")[0].replace("<job-name>", "JOBNAME").replace("$(", ""))
    objects = chart()
    assert tokens[tokens.index("-n") + 1] == "leviathan", "every command names the release namespace"
    if "-l" in tokens:
        # The app= requirement of the selector (a task's Jobs add leviathan.io/task=<name>).
        value = tokens[tokens.index("-l") + 1].split(",")[0].partition("=")[2]
        assert value in (CONTRACT.names["scheduler"], "leviathan-worker", CONTRACT.names["control_plane"]), command
    verb = tokens[1]
    target = tokens[3:5] if verb == "rollout" else tokens[2:4]
    if verb == "port-forward":
        resource = next(index for index, token in enumerate(tokens) if token.startswith("svc/"))
        kind, name = tokens[resource].split("/")
        port = objects[(KINDS[kind], name)]["spec"]["ports"][0]["port"]
        assert int(tokens[resource + 1].split(":")[1]) == port
    elif target and target[0] in KINDS and not target[1].startswith("-"):
        assert (KINDS[target[0]], target[1]) in objects, f"no {target[0]} {target[1]} in the chart"


def test_the_docs_have_commands_to_check():
    assert len(doc_commands("kubectl")) >= 15
    assert len(doc_commands("curl")) >= 3


@pytest.mark.parametrize("command", [c for c in helm_commands(RUNBOOK) if "$(" not in c])
def test_helm_values_pass_the_chart_schema(command):
    tokens = shlex.split(command.replace('"$rv"', "4711"))  # the resourceVersion the block reads
    values = []
    for index, token in enumerate(tokens):
        if token in ("--set", "--set-literal"):
            values += [token, tokens[index + 1]]
    result = helm("template", "leviathan", str(CHART), "-n", "leviathan", *values)
    assert result.returncode == 0, result.stderr


def test_quoted_log_lines_are_what_the_scheduler_prints():
    """The scheduler's lines, and the few the kubectl plugin prints (its brake's proof)."""
    sources = [REPO / "images" / "scheduler" / "src", REPO / "kubectl-leviathan" / "src"]
    source = "\n".join(p.read_text() for directory in sources for p in directory.rglob("*.py"))
    quoted = re.findall(r"^\s*([⚠✓✗] [^`\n]+?)\s*$", RUNBOOK, flags=re.M)
    quoted += re.findall(r"`([⚠✓✗] [^`]+)`", RUNBOOK)
    assert len(quoted) >= 4
    for line in quoted:
        head = re.split(r"\.\.\.|<|\d|leviathan-|:", line)[0].rstrip()
        assert head in source, f"the scheduler never prints {head!r}"


def test_make_targets_exist():
    makefile = (REPO / "Makefile").read_text()
    for text in (RUNBOOK, README, notes()):
        for target in set(re.findall(r"make ([a-z][a-z-]+)", text)):
            assert re.search(rf"^{target}:", makefile, flags=re.M), f"make {target} does not exist"


def test_the_contract_file_is_where_the_docs_say():
    assert CONTRACT_FILE == REPO / "tests" / "contract" / "runbook.yaml"
    assert "tests/contract/runbook.yaml" in RUNBOOK


# ---- What the docs say about Helm, against the chart as it is (issue 9) ---------------------------------

CHART_README = (CHART / "README.md").read_text()
SWITCH_SUITE = yaml.safe_load((CHART / "tests" / "switch_test.yaml").read_text())
READ_RESOURCE_VERSION = (
    "rv=$(kubectl get configmap leviathan-autonomy-config -n leviathan -o jsonpath='{.metadata.resourceVersion}')"
)
CONFIRM = '--set autonomy.confirmEnable="$rv"'


def enable_blocks(text: str) -> list[list[str]]:
    """The shell blocks with a `helm upgrade` that sets autonomy.enabled=true, as logical lines."""
    found = []
    for block in blocks(text):
        lines = [line for line in shell_lines(block.body) if not line.startswith("#")]
        enables = [line for line in lines if line.startswith("helm upgrade") and "autonomy.enabled=true" in line]
        if block.lang == "bash" and enables:
            found.append(lines)
    return found


def test_every_helm_enable_confirms_the_resource_version_it_just_read():
    """The chart refuses `autonomy.enabled=true` over a live false without the ConfigMap's resourceVersion."""
    for text in (RUNBOOK, CHART_README):
        [lines] = enable_blocks(text)
        upgrade = next(line for line in lines if "autonomy.enabled=true" in line)
        assert lines[lines.index(upgrade) - 1] == READ_RESOURCE_VERSION
        assert CONFIRM in upgrade
    row = next(line for line in RUNBOOK.splitlines() if line.startswith("| Re-enable, with a reason"))
    assert row.index(f"`{READ_RESOURCE_VERSION}`") < row.index(CONFIRM)
    for text in (RUNBOOK, README, CHART_README, notes(), (REPO / "Makefile").read_text()):
        for line in text.splitlines():
            if "autonomy.enabled=true" in line and line.lstrip().startswith("helm upgrade"):
                assert "autonomy.confirmEnable=" in line, line


def test_the_docs_confirm_the_way_the_chart_suite_proves_it_works():
    """chart/tests/switch_test.yaml (helm-unittest, `make unittest`) holds the chart's side: refused without
    the live resourceVersion, naming the flag; on with it; and on over a live true whatever it says."""
    cases = {case["it"]: case for case in SWITCH_SUITE["tests"]}
    refused = [c for c in cases.values() if "failedTemplate" in str(c["asserts"]) and "confirmEnable" in str(c)]
    assert any("--set autonomy.confirmEnable=4711" in str(c["asserts"]) for c in refused)
    live_version = SWITCH_SUITE["tests"][0]["kubernetesProvider"]["objects"][0]["metadata"]["resourceVersion"]
    accepted = [
        c for c in cases.values()
        if str(c.get("set", {}).get("autonomy.confirmEnable")) == live_version and "failedTemplate" not in str(c)
    ]  # fmt: skip
    assert accepted and all(c["set"]["autonomy.enabled"] is True for c in accepted)
    assert any("already on" in name for name in cases)


def chart_messages() -> list[re.Pattern[str]]:
    """The chart's refusals (`fail` in chart/templates), each as a pattern over its printf verbs."""
    source = "\n".join(path.read_text() for path in (CHART / "templates").glob("*.tpl"))
    formats = re.findall(r'fail (?:\(printf )?"((?:[^"\\]|\\.)*)"', source)
    return [re.compile(re.escape(f.replace('\\"', '"')).replace("%s", ".+").replace("%q", '".+"')) for f in formats]


def test_quoted_chart_refusals_are_the_charts():
    quoted = [
        block.body.strip()
        for block in blocks(RUNBOOK)
        if block.lang == "" and re.match(r"(autonomy is off|the live ConfigMap|the scheduler CronJob)", block.body)
    ]
    assert len(quoted) >= 2
    patterns = chart_messages()
    for message in quoted:
        assert any(p.fullmatch(message) for p in patterns), message
    assert not any(p.fullmatch(quoted[0].replace("confirmEnable", "confirm")) for p in patterns)


@pytest.mark.parametrize(("enabled", "suspend"), [(True, False), (False, True)])
def test_the_rollback_check_shows_the_switch_and_the_stop_of_a_revision(enabled, suspend):
    """`helm get manifest` prints the revision's stored manifest without hooks, as `helm template --no-hooks` does."""
    [command] = [line for line in runnable_lines(section("Helm and")) if line.startswith("helm get manifest")]
    values = ["--set", f"autonomy.enabled={str(enabled).lower()}", "--set", f"scheduler.suspend={str(suspend).lower()}"]
    manifest = helm("template", "leviathan", str(CHART), "-n", "leviathan", "--no-hooks", *values)
    assert manifest.returncode == 0, manifest.stderr
    assert run_pipeline(command, manifest.stdout).split() == [
        "autonomy_enabled:", str(enabled).lower(), "suspend:", str(suspend).lower()
    ]  # fmt: skip


def test_no_pasted_command_sets_the_suspend_through_helm():
    """The stop and the resume are `kubectl patch` alone; a stored scheduler.suspend would outlive them."""
    makefile = (REPO / "Makefile").read_text()
    for text in (RUNBOOK, README, CHART_README):
        assert [line for line in runnable_lines(text) if "scheduler.suspend" in line] == []
    assert "scheduler.suspend" not in makefile
    assert "scheduler.suspend=" not in notes()
