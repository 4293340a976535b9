"""Autonomy off: the runbook's two log lines, exit 0, and no contact with the API at all."""

from __future__ import annotations

import json
import shutil
import socket
from pathlib import Path

import pytest

from support.emulator import write_kubeconfig
from support.paths import PYTHON
from support.scheduler import DISABLED_LINES, assert_no_traceback, lines, settings_path_for, worker_jobs

RUN_MAIN = "from leviathan_scheduler.cli import main; raise SystemExit(main())"


@pytest.mark.parametrize("args", [(), ("--dry-run",), ("--namespace", "elsewhere", "--retry-budget", "1")])
def test_disabled_prints_exactly_the_runbook_lines(publish_config, run_scheduler, emulator, args):
    publish_config({"autonomy": {"enabled": False}})
    result = run_scheduler(*args)
    assert result.returncode == 0
    assert lines(result.stderr) == DISABLED_LINES
    assert result.stdout == ""
    assert emulator.requests() == []
    assert worker_jobs(emulator) == []


@pytest.mark.parametrize("reason", ["INC-1234: runaway workers", "maintenance window"])
def test_disabled_with_a_reason_adds_it_as_a_third_line(publish_config, run_scheduler, emulator, reason):
    publish_config({"autonomy": {"enabled": False, "reason": reason}})
    result = run_scheduler()
    assert result.returncode == 0
    assert lines(result.stderr) == [*DISABLED_LINES, f"Reason: {reason}"]
    assert result.stdout == ""
    assert emulator.requests() == []


FORGERY = (
    "INC-1\n✓ Tick done: submitted 9, already existed 0; active workers before the tick 0/5"
    "\r\x1b[2J\x1b]0;owned\x07\u202eevil\x85\u2028\t\x00"
)


OFF_WITH_REASON = 'autonomy_enabled: false\nreason: "'


@pytest.mark.parametrize(
    ("reason", "problem"),
    [
        # The characters themselves, inside the quotes: the first byte outside ASCII (the ✓) is refused.
        (FORGERY, f"has a byte outside printable ASCII at offset {len(OFF_WITH_REASON) + len('INC-1') + 1}"),
        # As YAML escapes (what json.dumps writes): a backslash is outside the reason's characters.
        (json.dumps(FORGERY)[1:-1], "line 2 ('reason: \"INC-1"),
    ],
    ids=["raw", "escaped"],
)
def test_a_reason_cannot_forge_lines_or_reach_the_terminal_raw(
    publish_config, run_scheduler, emulator, reason, problem
):
    """`kubectl edit` bypasses the chart schema: a reason with newlines, ANSI or bidi controls, written raw or
    as YAML escapes, is outside the switch grammar (issue 19). The tick fails closed in one printable line
    that forges nothing, and the reason never reaches the terminal raw (issue 11)."""
    publish_config(raw=f'{OFF_WITH_REASON}{reason}"\n')
    result = run_scheduler()
    assert result.returncode == 4, result.stderr
    [line] = result.stderr.splitlines()
    assert line.isprintable(), line
    assert line.startswith("✗ Error reading config"), line
    assert problem in line, line
    assert line.endswith("failing closed without submitting jobs"), line
    assert "owned" not in line and "evil" not in line
    assert result.stdout == ""
    assert emulator.requests() == []


@pytest.mark.parametrize(
    "settings",
    [
        None,
        # Off wins even when the settings would not make a valid tick, or are not mounted at all.
        "scheduler:\n  tasks: [{name: x}]\n",
        "scheduler: [\n",
        "missing",
    ],
    ids=["chart settings", "invalid settings", "settings not YAML", "settings not mounted"],
)
def test_a_hand_edited_off_switch_is_honoured(publish_config, run_scheduler, emulator, config_path, settings):
    publish_config(raw="autonomy_enabled: false\n", settings=None if settings == "missing" else settings)
    if settings == "missing":
        shutil.rmtree(settings_path_for(config_path).parent)
    result = run_scheduler()
    assert (result.returncode, lines(result.stderr), result.stdout) == (0, DISABLED_LINES, "")
    assert emulator.requests() == []


@pytest.mark.parametrize(
    ("body", "problem"),
    [
        # YAML would read these as off; the switch grammar reads them as unusable, and the tick fails closed.
        ("autonomy_enabled: False  # INC-7, edited by hand\n", "line 1 ('autonomy_enabled: False  # INC-7"),
        ("autonomy_enabled: false  # INC-7, edited by hand\n", "line 1 ('autonomy_enabled: false  # INC-7"),
        ("autonomy_enabled: false\nscheduler:\n  tasks: [{name: x}]\n", "line 2 ('scheduler:')"),
    ],
    ids=["capitalised with a comment", "with a comment", "settings in the switch file"],
)
def test_a_hand_edited_switch_outside_the_grammar_fails_closed(publish_config, run_scheduler, emulator, body, problem):
    publish_config(raw=body)
    result = run_scheduler()
    assert result.returncode == 4, result.stderr
    [line] = lines(result.stderr)
    assert line.startswith("✗ Error reading config"), line
    assert f"{problem}" in line and "is outside the switch file's form" in line, line
    assert line.endswith("failing closed without submitting jobs"), line
    assert result.stdout == ""
    assert emulator.requests() == []


@pytest.fixture
def listener():
    """A plain TCP socket that only records whether anybody connected."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.bind(("127.0.0.1", 0))
    sock.listen(8)
    yield sock
    sock.close()


def connections(sock: socket.socket) -> int:
    sock.setblocking(False)
    count = 0
    while True:
        try:
            peer, _ = sock.accept()
        except BlockingIOError:
            return count
        peer.close()
        count += 1


def test_disabled_never_connects_to_the_api_server(publish_config, run_scheduler, listener, tmp_path: Path):
    host, port = listener.getsockname()
    kubeconfig = write_kubeconfig(tmp_path / "listener-kubeconfig", f"http://{host}:{port}")
    publish_config({"autonomy": {"enabled": False}})
    result = run_scheduler(kubeconfig=kubeconfig)
    assert (result.returncode, lines(result.stderr)) == (0, DISABLED_LINES)
    assert connections(listener) == 0


def test_the_listener_does_see_an_enabled_tick(publish_config, run_scheduler, listener, tmp_path: Path):
    """The control for the test above: the same setup with autonomy on does connect."""
    host, port = listener.getsockname()
    kubeconfig = write_kubeconfig(tmp_path / "listener-kubeconfig", f"http://{host}:{port}")
    publish_config()
    # The listener never answers, so the tick times out after its (short) retry budget.
    result = run_scheduler("--retry-budget", "1", kubeconfig=kubeconfig)
    assert result.returncode == 5
    assert_no_traceback(result)
    assert connections(listener) >= 1


def imported_modules(stderr: str) -> set[str]:
    """Module names from `python -X importtime` lines: 'import time: self | cumulative | name'."""
    names = set()
    for line in lines(stderr):
        if line.startswith("import time:") and line.count("|") == 2:
            names.add(line.split("|")[2].strip())
    names.discard("imported package")  # the header line
    return names


def heavy(modules: set[str]) -> set[str]:
    return {name for name in modules if name.split(".")[0] in ("kubernetes", "urllib3")}


def test_disabled_never_imports_the_kubernetes_client(publish_config, run_scheduler):
    publish_config({"autonomy": {"enabled": False}})
    result = run_scheduler(command=[str(PYTHON), "-X", "importtime", "-c", RUN_MAIN])
    assert result.returncode == 0
    modules = imported_modules(result.stderr)
    assert "leviathan_scheduler.cli" in modules
    assert heavy(modules) == set()
    assert [line for line in lines(result.stderr) if not line.startswith("import time:")] == DISABLED_LINES


def test_an_enabled_tick_does_import_it(publish_config, run_scheduler):
    """The control for the test above: the import check notices the client when it is loaded."""
    publish_config()
    result = run_scheduler(command=[str(PYTHON), "-X", "importtime", "-c", RUN_MAIN])
    assert result.returncode == 0
    assert {"kubernetes", "urllib3"} <= {name.split(".")[0] for name in heavy(imported_modules(result.stderr))}
