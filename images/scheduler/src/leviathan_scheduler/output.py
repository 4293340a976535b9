"""Log lines go to stderr, one per event, so stdout carries only --dry-run YAML."""

import sys

from leviathan_config import printable


def say(line: str) -> None:
    """One log line. Control characters are escaped: a `reason` or an API message
    quoted in it can neither start a forged line (`✓ Tick done`) nor reach a terminal raw."""
    print(printable(line), file=sys.stderr, flush=True)
