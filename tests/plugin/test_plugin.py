"""kubectl leviathan without a cluster: its names, its runbook text, its edit of the switch file, bad input,
and fleet mode against API servers that do not answer. What it does on a real API server is in
tests/e2e/test_plugin.py and tests/e2e/test_fleet.py.
"""

from __future__ import annotations

import json
import re
import subprocess

import pytest

from kubectl_leviathan import runbook, switch
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
    configmap = find(docs, "ConfigMap")
    assert names.configmap == configmap["metadata"]["name"]
    assert names.config_key in configmap["data"]
    assert names.cronjob == find(docs, "CronJob")["metadata"]["name"]
    assert f"app: {names.worker_app}\n" in configmap["data"][names.config_key]
    stop = runbook.commands("stop", names)[0]
    assert stop.startswith(f"kubectl patch cronjob {names.cronjob} -n leviathan ")


def chart_text(enabled: bool) -> str:
    docs = render_chart({"autonomy": {"enabled": enabled, "reason": "before"}}, show_only=["templates/configmap.yaml"])
    return find(docs, "ConfigMap")["data"]["dev.yaml"]


@pytest.mark.parametrize("reason", ['INC-9: it\'s back, "again"', "Grüße, naïve café", "a\\b"])
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


def test_the_edit_puts_back_exactly_the_recorded_lines():
    before = chart_text(True)
    switch_line, reason_line = switch.lines_of(before)
    assert (switch_line, reason_line) == ("autonomy_enabled: true", 'reason: "before"')
    braked = switch.with_lines(before, switch.switch_line(False), switch.reason_line("fleet brake"))
    assert switch.state_of(braked) == "off"
    assert switch.with_lines(braked, switch_line, reason_line) == before


def test_a_text_without_a_switch_line_is_refused():
    with pytest.raises(ValueError, match="no autonomy_enabled: line"):
        switch.with_lines("reason: null\n", switch.switch_line(False), None)


@pytest.mark.parametrize(
    ("reason", "message"),
    [
        ("two\nlines", "one line of text"),
        ("tab\there", "one line of text"),
        ("x" * 301, "at most 300"),
        ("party \U0001f389", "outside the Basic Multilingual Plane"),
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
