"""Every exit code the scheduler can return is in the runbook's table, and only those."""

from __future__ import annotations

import re

from leviathan_scheduler import exit_codes
from support.paths import REPO

RUNBOOK = (REPO / "docs" / "RUNBOOK.md").read_text()


def test_the_runbook_table_lists_every_exit_code():
    header = RUNBOOK.index("| Exit | Meaning | Jobs submitted |")
    table = RUNBOOK[header:].split("\n\n", 1)[0]
    documented = {int(code) for code in re.findall(r"^\| (\d+) \|", table, flags=re.M)}
    returned = {value for name, value in vars(exit_codes).items() if name.startswith("EXIT_")}
    argparse_usage = 2
    assert documented == returned | {argparse_usage}
