"""Log lines go to stderr, one per event, so stdout carries only --dry-run YAML.

The runbook's two lines of a disabled tick, and the fail-closed line, are written here only.
"""

import sys

from leviathan_config import ConfigState, printable
from leviathan_scheduler.exit_codes import CONFIG_EXIT_CODES

DISABLED_LINE = "⚠ Autonomy disabled in configuration (autonomy_enabled: false)"
EXITING_LINE = "✓ Scheduler exiting cleanly without submitting jobs"
FAILING_CLOSED = "failing closed without submitting jobs"
_CONFIG_PROBLEMS = {ConfigState.NOT_MOUNTED: "✗ Config not mounted", ConfigState.ERROR: "✗ Error reading config"}


def say(line: str) -> None:
    """One log line. Control characters are escaped: a `reason` or an API message
    quoted in it can neither start a forged line (`✓ Tick done`) nor reach a terminal raw."""
    print(printable(line), file=sys.stderr, flush=True)


def config_unusable(state: ConfigState, problem: str, tick: bool = True) -> int:
    """Say why the config cannot be used (a tick adds that it fails closed); the exit code for it."""
    line = f"{_CONFIG_PROBLEMS[state]}: {problem}"
    say(f"{line}; {FAILING_CLOSED}" if tick else line)
    return CONFIG_EXIT_CODES[state]
