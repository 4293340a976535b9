"""Log lines go to stderr, one per event, so stdout carries only --dry-run YAML."""

import sys


def say(line: str) -> None:
    print(line, file=sys.stderr, flush=True)
