"""kubectl leviathan without a cluster: its names, its runbook text, its edit of the switch file, bad input,
and fleet mode against API servers that do not answer. What it does on a real API server is in
tests/e2e/test_plugin.py and tests/e2e/test_fleet.py.
"""

from __future__ import annotations

import json
import re
import subprocess

import pytest

from kubectl_leviathan import ops, runbook, switch
from kubectl_leviathan.cluster import Record, State
from kubectl_leviathan.names import Names
from leviathan_config import ConfigState, parse_autonomy_config
from support.contract import load_contract
from support.control_plane import free_port
from support.helm import find, render_chart
from support.paths import REPO, VENV_BIN

PLUGIN = str(VENV_BIN / "kubectl-leviathan")
RUNBOOK = (REPO / "docs" / "RUNBOOK.md").read_text()


def plugin(*args: str, env: dict[str, str] | None = None, timeout: float = 60) -> subprocess.CompletedProcess[str]:
    return subprocess.run([PLUGIN, *args], capture_output=True, text=True, timeout=timeout, env=env)


def test_the_runbook_text_is_the_contracts_own_file():
    """The package reads tests/contract/runbook.yaml itself (a symlink), so no command is retyped."""
    packaged = REPO / "kubectl-leviathan" / "src" / "kubectl_leviathan" / "runbook.yaml"
    assert packaged.resolve() == (REPO / "tests" / "contract" / "runbook.yaml").resolve()
    contract = load_contract()
    names = Names()
    assert runbook.commands("stop", names) == [
        contract.command("emergency-stop.suspend").run,
        contract.command("emergency-stop.get-cronjob").run,
    ]
    assert runbook.commands("resume", names)[0] == contract.command("re-enable.unsuspend").run
    assert runbook.commands("disable", names)[0] == contract.command("disable.edit-configmap").run
    assert runbook.commands("enable", names)[0] == contract.command("re-enable.edit-configmap").run


def bash_block(heading: str) -> list[str]:
    section = RUNBOOK.split(heading, 1)[1]
    block = re.search(r"```bash\n(.*?)```", section, flags=re.S)
    assert block, heading
    return block.group(1).splitlines()


def test_the_procedures_only_in_our_runbook_are_its_lines():
    names = Names()
    assert runbook.commands("halt-workers", names) == bash_block("### Halt every worker Job")
    assert runbook.commands("resume-workers", names) == bash_block("### Resume them")
    assert runbook.WHO in bash_block("through a port-forward (`make status` runs exactly these")


@pytest.mark.parametrize(("release", "env"), [("leviathan", "dev"), ("ops", "prod"), ("leviathan-b", "staging")])
def test_names_match_the_chart(release, env):
    docs = render_chart({"environment": env}, name=release)
    names = Names(release, "leviathan", env)
    configmap = find(docs, "ConfigMap", names.configmap)
    assert list(configmap["data"]) == [names.config_key]
    # The switch file holds the switch alone, in the grammar the plugin edits.
    assert switch.state_of(configmap["data"][names.config_key]) == "on"
    assert names.cronjob == find(docs, "CronJob")["metadata"]["name"]
    # The worker selector lives in the scheduler's settings ConfigMap, under the same prefix.
    settings = find(docs, "ConfigMap", f"{names.prefix}-scheduler-config")
    assert f"app: {names.worker_app}\n" in settings["data"]["scheduler.yaml"]
    stop = runbook.commands("stop", names)[0]
    assert stop.startswith(f"kubectl patch cronjob {names.cronjob} -n leviathan ")


def chart_text(enabled: bool) -> str:
    docs = render_chart({"autonomy": {"enabled": enabled, "reason": "before"}}, show_only=["templates/configmap.yaml"])
    return find(docs, "ConfigMap", Names().configmap)["data"]["dev.yaml"]


@pytest.mark.parametrize(
    "reason",
    ["INC-9: it's back, 'again'", "50% #1 {not: flow} [nor, list] & *no alias* | > ~ !tag", "  padded  ", ""],
)
def test_the_edit_changes_two_lines_and_the_reader_agrees(reason):
    before = chart_text(True)
    after = switch.with_lines(before, switch.switch_line(False), switch.reason_line(reason))
    changed = [(a, b) for a, b in zip(before.split("\n"), after.split("\n"), strict=True) if a != b]
    assert [a.split(":")[0] for a, _ in changed] == ["autonomy_enabled", "reason"]
    read = parse_autonomy_config(after.encode(), "/etc/leviathan/autonomy/dev.yaml")
    assert read.state is ConfigState.LOADED
    assert read.autonomy_enabled is False
    assert read.document["reason"] == reason
    assert after.encode().isascii()  # the admission policy's form: printable ASCII, reason double-quoted


def lines_of(text: str) -> tuple[str | None, str | None]:
    """The switch line and the reason line as written (None where absent)."""
    found = {
        prefix: next((line for line in text.split("\n") if line.startswith(prefix)), None)
        for prefix in ("autonomy_enabled:", "reason:")
    }
    return found["autonomy_enabled:"], found["reason:"]


def test_the_edit_puts_back_exactly_the_recorded_lines():
    before = chart_text(True)
    switch_line, reason_line = lines_of(before)
    assert (switch_line, reason_line) == ("autonomy_enabled: true", 'reason: "before"')
    braked = switch.with_lines(before, switch.switch_line(False), switch.reason_line("fleet brake"))
    assert switch.state_of(braked) == "off"
    assert switch.with_lines(braked, switch_line, reason_line) == before


@pytest.mark.parametrize(
    "text",
    ["reason: null\n", "", "autonomy_enabled: True\nreason: why\n", 'autonomy_enabled: true\r\nreview_by: "x"\n'],
    ids=["no switch line", "empty", "YAML spelling", "CRLF"],
)
def test_a_brake_over_an_unusable_text_writes_a_usable_off_file(text):
    """The scheduler already refuses an unusable file; the brake leaves one that says off, in the grammar."""
    assert switch.state_of(text) == "unusable"
    assert switch.with_lines(text, switch.switch_line(False), None) == "autonomy_enabled: false\n"
    braked = switch.with_lines(text, switch.switch_line(False), switch.reason_line("INC-3"))
    assert braked == 'autonomy_enabled: false\nreason: "INC-3"\n'
    assert switch.state_of(braked) == "off"


def test_the_edit_keeps_review_by_and_refuses_a_result_outside_the_grammar():
    text = 'autonomy_enabled: false\nreason: "INC-1"\nreview_by: "2026-12-01T09:00:00Z"\n'
    enabled = switch.with_lines(text, switch.switch_line(True), switch.reason_line("INC-1 fixed"))
    assert enabled == 'autonomy_enabled: true\nreason: "INC-1 fixed"\nreview_by: "2026-12-01T09:00:00Z"\n'
    assert switch.with_lines(text, switch.switch_line(True), None).startswith(
        'autonomy_enabled: true\nreason: "INC-1"\n'
    )
    with pytest.raises(ValueError, match="the edited file would be outside the switch file's form"):
        switch.with_lines(text, "autonomy_enabled: maybe", None)


ONE_LINE_OF_ASCII = (
    "the reason must be one line of printable ASCII without double quotes or backslashes "
    "(the switch file's form; e.g. --reason 'INC-123: runaway retries')"
)


@pytest.mark.parametrize(
    "reason", ['say "hi"', "a\\b", "café", "two\nlines", "tab\there", "party \U0001f389", "\x1b[2J", "\u202e"]
)
def test_a_reason_outside_the_grammar_is_refused_before_any_edit(reason):
    with pytest.raises(switch.BadReason) as refused:
        switch.reason_line(reason)
    assert str(refused.value) == ONE_LINE_OF_ASCII


@pytest.mark.parametrize(
    ("reason", "message"),
    [
        ("two\nlines", ONE_LINE_OF_ASCII),
        ("tab\there", ONE_LINE_OF_ASCII),
        ("x" * 301, "at most 300"),
        ("party \U0001f389", ONE_LINE_OF_ASCII),
        ('INC-9: "quoted"', ONE_LINE_OF_ASCII),
        ("C:\\path", ONE_LINE_OF_ASCII),
        ("naïve", ONE_LINE_OF_ASCII),
        ("   ", "say why"),
    ],
)
def test_a_bad_reason_is_one_line_and_changes_nothing(reason, message, tmp_path):
    result = plugin("disable", "--reason", reason, "--kubeconfig", str(tmp_path / "none"))
    assert result.returncode == 1
    assert message in result.stderr
    assert "Traceback" not in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1


def unreachable_kubeconfig(path, names: list[str]) -> str:
    clusters = [{"name": n, "cluster": {"server": f"https://127.0.0.1:{free_port()}"}} for n in names]
    contexts = [{"name": n, "context": {"cluster": n, "user": "u"}} for n in names]
    path.write_text(json.dumps({
        "apiVersion": "v1", "kind": "Config", "clusters": clusters, "contexts": contexts,
        "users": [{"name": "u", "user": {"token": "x"}}], "current-context": names[0],
    }))  # fmt: skip
    return str(path)


def test_one_cluster_that_does_not_answer_is_one_line(tmp_path):
    kubeconfig = unreachable_kubeconfig(tmp_path / "kubeconfig", ["gone"])
    result = plugin("stop", "--kubeconfig", kubeconfig)
    assert result.returncode == 1
    assert result.stdout.splitlines() == [f"runbook: {line}" for line in runbook.commands("stop", Names())]
    [line] = result.stderr.splitlines()
    assert re.fullmatch(r"✗ cannot reach the API server 127\.0\.0\.1:\d+: Connection refused", line), line


def test_fleet_mode_reports_every_cluster_retries_and_fails(tmp_path):
    kubeconfig = unreachable_kubeconfig(tmp_path / "kubeconfig", ["eu-1", "eu-2", "us-1"])
    result = plugin("disable", "--reason", "INC-7", "--selector", "eu-*", "--contexts", "nowhere",
                    "--kubeconfig", kubeconfig, "--request-timeout", "2")  # fmt: skip
    assert result.returncode == 1
    table = [line for line in result.stdout.splitlines() if not line.startswith("runbook: ")]
    assert table[0].split() == ["CLUSTER", "PRIOR", "STATE", "NEW", "STATE", "PROOF", "RECORD", "ERROR"]
    rows = {line.split()[0]: line for line in table[1:]}
    assert sorted(rows) == ["eu-1", "eu-2", "nowhere"]  # us-1 does not match; none is left out silently
    assert "context nowhere is not in the kubeconfig" in rows["nowhere"]
    for name in ("eu-1", "eu-2"):
        assert re.search(
            r"cannot reach the API server 127\.0\.0\.1:\d+: Connection refused \([2-5] attempts in \d\.\d s\)",
            rows[name],
        )
        assert f"✗ {name}: cannot reach the API server" in result.stderr
    assert "✗ 3 of 3 clusters NOT proven safe" in result.stderr
    assert "no answer within" not in result.stdout  # each gave up by itself within its timeout


def test_fleet_restore_needs_a_fleet(tmp_path):
    result = plugin("enable", "--reason", "x", "--fleet-restore", "--kubeconfig", str(tmp_path / "none"))
    assert result.returncode == 1
    assert "--fleet-restore works on a fleet" in result.stderr


def test_no_context_matches_the_selector(tmp_path):
    kubeconfig = unreachable_kubeconfig(tmp_path / "kubeconfig", ["eu-1"])
    result = plugin("status", "--selector", "prod-*", "--kubeconfig", kubeconfig)
    assert result.returncode == 1
    assert "no context matches 'prod-*' (the kubeconfig has eu-1)" in result.stderr


class RecordedCluster:
    """Just enough of a Cluster for ops.restore: a braked switch file and a fleet brake record."""

    def __init__(self, record: Record):
        self.record = record
        self.writes: list[tuple[str, str | None]] = []

    def state(self) -> State:
        return State('autonomy_enabled: false\nreason: "INC-500: fleet brake"\n', "7", False, "carol", None)

    def read_record(self) -> Record:
        return self.record

    def write_switch(self, state: State, switch_line: str, reason_line: str | None, dry_run: bool = False) -> str:
        switch.with_lines(state.text or "", switch_line, reason_line)  # as Cluster.write_switch does
        self.writes.append((switch_line, reason_line))
        return "8"

    def set_suspend(self, suspend: bool, dry_run: bool = False) -> float:
        return 0.0

    def clear_record(self) -> None:
        pass


@pytest.mark.parametrize(
    "prior",
    ["autonomy_enabled: true  # on\n", "autonomy_enabled: true\nreason: on-with-releasers\n"],
    ids=["a comment on the switch line", "an unquoted reason"],
)
def test_a_fleet_record_of_an_unusable_prior_is_a_clear_error_not_a_traceback(prior):
    """A fleet brake records the prior lines as written (a record written before Cluster.keep_record read it through the reader), so a
    hand-edited, unusable prior is recorded as it was; restoring it must end in an outcome, not a crash."""
    switch_line, reason_line = lines_of(prior)
    record = Record(switch_line, reason_line, False, None, switch.reason_of(prior) or "on-with-releasers", "unusable")
    cluster = RecordedCluster(record)
    outcome = ops.run(cluster, ops.Request(action="enable", reason="INC-500 resolved", fleet=True, restore=True))
    if cluster.writes:  # a fix may restore what the prior meant (unusable: the scheduler failed closed)
        assert outcome.error is None
    else:
        assert outcome.error and "switch file's form" in outcome.error


class UnusableCluster(RecordedCluster):
    """A switch file whose first line says on, but which the reader refuses (a second switch line)."""

    def __init__(self):
        super().__init__(None)  # type: ignore[arg-type]
        self.resumed = 0
        self.names = Names()

    def state(self) -> State:
        return State("autonomy_enabled: true\nautonomy_enabled: false\n", "7", False, "carol", None)

    def suspend_workers(self, suspend: bool) -> int:
        self.resumed += 1
        return 2

    def table(self, path: str) -> str:
        return ""


def test_workers_are_resumed_only_while_the_reader_says_on():
    cluster = UnusableCluster()
    assert switch.state_of(cluster.state().text) == "unusable"
    outcome = ops.run(cluster, ops.Request(action="resume-workers", reason=None))
    assert cluster.resumed == 0
    assert outcome.error and "worker Jobs are resumed only while it is" in outcome.error
