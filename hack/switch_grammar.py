"""Write or check chart/files/switch-grammar.json: the switch grammar of
images/config-reader/src/leviathan_config/switch.py, for the chart's templates and CEL.

    python hack/switch_grammar.py --write   regenerate it
    python hack/switch_grammar.py --check   exit 1 when it differs from the module
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

from leviathan_config.switch import MAX_SWITCH_BYTES, PATTERNS

TARGET = Path(__file__).resolve().parent.parent / "chart" / "files" / "switch-grammar.json"


def render() -> str:
    document = {
        "_generated": "by hack/switch_grammar.py from leviathan_config/switch.py; do not edit",
        "maxBytes": MAX_SWITCH_BYTES,
        "patterns": PATTERNS,
    }
    return json.dumps(document, indent=2, sort_keys=True) + "\n"


def main(argv: list[str]) -> int:
    if argv == ["--write"]:
        TARGET.write_text(render())
        return 0
    if argv == ["--check"]:
        if TARGET.read_text() != render():
            print(f"{TARGET} is stale: run python hack/switch_grammar.py --write", file=sys.stderr)
            return 1
        return 0
    print(__doc__, file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
