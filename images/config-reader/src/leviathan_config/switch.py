"""The switch file's one grammar: what `<env>.yaml` may say, and what "on" means.

The file holds the switch and its context, and nothing else, one line each, in this order:

    autonomy_enabled: true            (or false; always the first line)
    reason: "INC-123: why"            (optional; printable ASCII, no " and no backslash)
    review_by: "2026-12-01T09:00:00Z" (optional; a date and time with a zone)

with a final newline or without. Any other text (a comment, a second switch line, another
key, quoting or flow style, a tag, a CR, a tab, a block scalar) is unusable: the scheduler
fails closed, the control plane answers `default (error reading config)`, and the worker
admission policy refuses. Each such text is also valid or invalid YAML that some tool would read
differently from the next; only this grammar is read the same way everywhere.

These patterns are the one definition. The reader below uses them; the chart's admission
policies, `_state.tpl`, NOTES and the stamp read them from `chart/files/switch-grammar.json`,
which `hack/switch_grammar.py --write` generates from this module (a test keeps the two equal).
They use only what Python's `re` and RE2 (CEL's `matches`, Go's `regexp`) read alike: literals,
bracketed ranges, `(?:...)`, `?` and `*`; anchors are added by each user (`fullmatch` here,
`^(?:...)$` in CEL and Go).
"""

from __future__ import annotations

import re

# The whole file is at most this long: three short lines and a long reason.
MAX_SWITCH_BYTES = 4096

# A reason's characters: printable ASCII without `"` and `\`, so its YAML meaning is the text itself.
REASON_TEXT = r"[ !#-\[\]-~]*"
# A reason with something in it (releasing needs one): at least one character that is not a space.
REASON_SOME = r"[ !#-\[\]-~]*[!#-\[\]-~][ !#-\[\]-~]*"
REVIEW_BY_TEXT = (
    r"[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}(?::[0-9]{2}(?:[.][0-9]{1,9})?)?(?:Z|[+-][0-9]{2}:[0-9]{2})"
)

# Each line once; the file patterns below, the parse and the mismatch report are built from these.
_SWITCH_LINE = "autonomy_enabled: (?:true|false)"
_REASON_LINE = f'reason: "{REASON_TEXT}"'
_REVIEW_BY_LINE = f'review_by: "{REVIEW_BY_TEXT}"'
_TAIL = f"(?:\n{_REASON_LINE})?(?:\n{_REVIEW_BY_LINE})?\n?"

PATTERNS: dict[str, str] = {
    # Any usable switch file, on or off.
    "grammar": f"{_SWITCH_LINE}{_TAIL}",
    # A usable file that says on: the only text any check calls "on".
    "on": f"autonomy_enabled: true{_TAIL}",
    # On, with a reason that is not blank: what a release must write.
    "onWithReason": f'autonomy_enabled: true\nreason: "{REASON_SOME}"(?:\n{_REVIEW_BY_LINE})?\n?',
    # What a reason and a review_by may hold (the chart checks its values against them).
    "reasonText": REASON_TEXT,
    "reviewByText": REVIEW_BY_TEXT,
}

_GRAMMAR = re.compile(PATTERNS["grammar"])
_LINES = (
    ("autonomy_enabled", re.compile(_SWITCH_LINE), "autonomy_enabled: true or autonomy_enabled: false"),
    ("reason", re.compile(_REASON_LINE), 'reason: "..." (printable ASCII in double quotes, no " or \\)'),
    ("review_by", re.compile(_REVIEW_BY_LINE), 'review_by: "2026-12-01T09:00:00Z"'),
)


def parse_switch(text: str) -> dict[str, object] | None:
    """The file's meaning ({"autonomy_enabled": bool, "reason"?: str, "review_by"?: str}), or None."""
    if _GRAMMAR.fullmatch(text) is None:
        return None
    # In the grammar, every line is `KEY: VALUE`, the values after the first in double quotes.
    first, *rest = text.rstrip("\n").split("\n")
    document: dict[str, object] = {"autonomy_enabled": first == "autonomy_enabled: true"}
    for line in rest:
        key, value = line.split(": ", 1)
        document[key] = value[1:-1]
    return document


_ON = re.compile(PATTERNS["on"])


def is_on(text: str) -> bool:
    """The one meaning of "on"."""
    return _ON.fullmatch(text) is not None


def describe_mismatch(text: str) -> str:
    """Why `text` is outside the grammar: the first line that is wrong, and what it should be."""
    lines = text.split("\n")
    if lines and lines[-1] == "":
        lines.pop()
    if not lines:
        return "the file is empty (the first line must be autonomy_enabled: true or autonomy_enabled: false)"
    expected = 0
    for number, line in enumerate(lines, start=1):
        for index in range(expected, len(_LINES)):
            _, pattern, _ = _LINES[index]
            if pattern.fullmatch(line) and (index == 0) == (number == 1):
                expected = index + 1
                break
        else:
            shown = ascii(line if len(line) <= 60 else line[:60] + "...")
            if number == 1:
                want = _LINES[0][2]
            else:
                want = " or ".join(hint for _, _, hint in _LINES[max(expected, 1) :]) or "nothing more"
            return (
                f"line {number} ({shown}) is outside the switch file's form: expected {want}"
                " (the file holds only autonomy_enabled, reason and review_by, one line each, in that order;"
                " no comments)"
            )
    return "the file is outside the switch file's form"
