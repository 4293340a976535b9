"""`python -m leviathan_config < FILE`: the shared reader's verdict on a switch file's text.

Prints `on`, `off`, or `unusable: <why>`; exits 0 for on, 1 for off, 2 for unusable. The hack
scripts ask this instead of matching the text themselves: one meaning of "on".
"""

from __future__ import annotations

import sys

from leviathan_config.reader import ConfigState, parse_autonomy_config


def main() -> int:
    config = parse_autonomy_config(sys.stdin.buffer.read(), "<stdin>")
    if config.state is not ConfigState.LOADED:
        print(f"unusable: {config.problem}")
        return 2
    print("on" if config.autonomy_enabled else "off")
    return 0 if config.autonomy_enabled else 1


if __name__ == "__main__":
    sys.exit(main())
