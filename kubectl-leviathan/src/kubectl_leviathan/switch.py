"""The edit of the switch file `<env>.yaml`, in the one grammar the shared reader and every admission
policy read (leviathan_config.switch): `autonomy_enabled:`, then `reason:`, then `review_by:`.

The plugin never judges the text itself: on, off and unusable are the shared reader's verdicts. An
edit keeps the review_by line of a usable file; a brake over an unusable file (which the scheduler
already refuses) writes a usable one, so the brake always ends in a file that says off.
"""

from __future__ import annotations

import re

from leviathan_config import ConfigState, parse_autonomy_config
from leviathan_config.switch import PATTERNS

SWITCH = "autonomy_enabled:"
REASON = "reason:"
MAX_REASON = 300


class BadReason(ValueError):
    pass


def switch_line(enabled: bool) -> str:
    return f"{SWITCH} {'true' if enabled else 'false'}"


def reason_line(reason: str) -> str:
    if len(reason) > MAX_REASON:
        raise BadReason(f"the reason is {len(reason)} characters long; at most {MAX_REASON}")
    if re.fullmatch(PATTERNS["reasonText"], reason) is None:
        raise BadReason(
            "the reason must be one line of printable ASCII without double quotes or backslashes "
            "(the switch file's form; e.g. --reason 'INC-123: runaway retries')"
        )
    return f'{REASON} "{reason}"'


def with_lines(text: str, switch: str, reason: str | None) -> str:
    """The file with `switch` and `reason` (when given; else the file's own reason, if usable), and the
    file's review_by line if it had one. Refused only when the result would be outside the grammar."""
    document = _document(text) or {}
    lines = [switch]
    if reason is not None:
        lines.append(reason)
    elif "reason" in document:
        lines.append(f'{REASON} "{document["reason"]}"')
    if "review_by" in document:
        lines.append(f'review_by: "{document["review_by"]}"')
    result = "\n".join(lines) + "\n"
    if _document(result) is None:
        raise ValueError(f"the edited file would be outside the switch file's form: {result!r}")
    return result


def state_of(text: str | None) -> str:
    """on, off, unusable (the scheduler fails closed) or missing: the shared reader's verdict."""
    if text is None:
        return "missing"
    document = _document(text)
    if document is None:
        return "unusable"
    return "on" if document["autonomy_enabled"] else "off"


def reason_of(text: str | None) -> str | None:
    document = _document(text or "")
    reason = (document or {}).get("reason")
    return None if reason is None else str(reason)


def _document(text: str) -> dict[str, object] | None:
    config = parse_autonomy_config(text.encode("utf-8", "surrogateescape"), "switch")
    return dict(config.document) if config.state is ConfigState.LOADED else None
