"""The line edit of the switch file `<env>.yaml`: only its `autonomy_enabled:` and `reason:` lines.

Every other line stays byte for byte (the comments, review_by, whatever else the file holds), so the
edit is what an operator's `kubectl edit` of those two lines would be. The reason is written
double-quoted and ASCII-escaped, the one form both the worker admission policy and the release
policy check (`reason: "..."`).
"""

from __future__ import annotations

import json

import yaml

SWITCH = "autonomy_enabled:"
REASON = "reason:"
MAX_REASON = 300


class BadReason(ValueError):
    pass


def switch_line(enabled: bool) -> str:
    return f"{SWITCH} {'true' if enabled else 'false'}"


def reason_line(reason: str) -> str:
    if any(ord(c) < 0x20 or ord(c) == 0x7F for c in reason):
        raise BadReason("the reason must be one line of text (no tabs, newlines or control characters)")
    if any(ord(c) > 0xFFFF for c in reason):
        raise BadReason("the reason must not contain characters outside the Basic Multilingual Plane (emoji)")
    if len(reason) > MAX_REASON:
        raise BadReason(f"the reason is {len(reason)} characters long; at most {MAX_REASON}")
    return f"{REASON} {json.dumps(reason)}"


def lines_of(text: str) -> tuple[str | None, str | None]:
    """The switch line and the reason line as written (None where absent)."""
    switch = reason = None
    for line in text.split("\n"):
        if switch is None and line.startswith(SWITCH):
            switch = line
        elif reason is None and line.startswith(REASON):
            reason = line
    return switch, reason


def with_lines(text: str, switch: str, reason: str | None) -> str:
    """`text` with its switch line (and reason line, when given) replaced; a missing reason line goes
    right after the switch. A text without a switch line is refused: that is not the chart's file."""
    lines = text.split("\n")
    at = next((i for i, line in enumerate(lines) if line.startswith(SWITCH)), None)
    if at is None:
        raise ValueError("the config has no autonomy_enabled: line")
    lines[at] = switch
    if reason is not None:
        where = next((i for i, line in enumerate(lines) if line.startswith(REASON)), None)
        if where is None:
            lines.insert(at + 1, reason)
        else:
            lines[where] = reason
    return "\n".join(lines)


def state_of(text: str | None) -> str:
    """on, off or unusable: what the file says (the scheduler fails closed on anything but a boolean)."""
    if text is None:
        return "missing"
    try:
        document = yaml.safe_load(text)
    except yaml.YAMLError:
        return "unusable"
    value = document.get("autonomy_enabled") if isinstance(document, dict) else None
    return {True: "on", False: "off"}.get(value, "unusable") if isinstance(value, bool) else "unusable"


def reason_of(text: str | None) -> str | None:
    try:
        document = yaml.safe_load(text or "")
    except yaml.YAMLError:
        return None
    reason = document.get("reason") if isinstance(document, dict) else None
    return None if reason is None else str(reason)
