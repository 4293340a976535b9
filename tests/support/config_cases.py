"""Config files the shared reader refuses, each with a fragment of the problem it reports.

INVALID holds switch files (`<env>.yaml`): anything outside the switch grammar
(leviathan_config.switch) is unusable, and the problem names the first wrong line. Many of
them are valid YAML that once meant something (a comment, `True`, a quoted key, the old
layout's extra keys); none does now. INVALID_SETTINGS holds scheduler settings files, which
are strict YAML: what PyYAML would take, but the reader refuses.

tests/config_reader reads each one with the reader itself; tests/control_plane serves each
switch file (`default (error reading config)`); tests/scheduler/test_fail_closed.py runs a
tick on each (exit 4, one line, no API call).
"""

from __future__ import annotations

from leviathan_config import MAX_CONFIG_BYTES, MAX_SWITCH_BYTES

_EXPECTED_SWITCH = "expected autonomy_enabled: true or autonomy_enabled: false"
_EXPECTED_AFTER_SWITCH = 'expected reason: "..." (printable ASCII in double quotes, no " or \\) or review_by:'


def _line(number: int, shown: str) -> str:
    """The fragment naming line `number`, as the reader shows it (repr of the line)."""
    return f"line {number} ({shown!r}) is outside the switch file's form"


# A few hundred bytes that aliases would expand to a billion strings.
_BILLION_LAUGHS = b"l0: &l0 [lol, lol, lol, lol, lol, lol, lol, lol, lol, lol]\n" + b"".join(
    f"l{n}: &l{n} [{', '.join([f'*l{n - 1}'] * 10)}]\n".encode() for n in range(1, 9)
)

INVALID = {
    # The switch line itself, in every spelling but the one.
    "invalid YAML": (b"autonomy_enabled: [\n", _line(1, "autonomy_enabled: [")),
    "quoted false": (b'autonomy_enabled: "false"\n', _line(1, 'autonomy_enabled: "false"')),
    "YAML 1.1 off": (b"autonomy_enabled: off\n", _line(1, "autonomy_enabled: off")),
    "YAML 1.1 no": (b"autonomy_enabled: no\n", _line(1, "autonomy_enabled: no")),
    "YAML 1.1 yes": (b"autonomy_enabled: yes\n", _line(1, "autonomy_enabled: yes")),
    "capitalised True": (b"autonomy_enabled: True\n", _line(1, "autonomy_enabled: True")),
    "upper-case FALSE": (b"autonomy_enabled: FALSE\n", _line(1, "autonomy_enabled: FALSE")),
    "zero": (b"autonomy_enabled: 0\n", _line(1, "autonomy_enabled: 0")),
    "null": (b"autonomy_enabled:\n", _line(1, "autonomy_enabled:")),
    "tag": (b"autonomy_enabled: !!bool true\n", _line(1, "autonomy_enabled: !!bool true")),
    "quoted key": (b'"autonomy_enabled": true\n', _line(1, '"autonomy_enabled": true')),
    "flow style": (b"{autonomy_enabled: true}\n", _line(1, "{autonomy_enabled: true}")),
    "value on the next line": (b"autonomy_enabled:\n  true\n", _line(1, "autonomy_enabled:")),
    "two spaces": (b"autonomy_enabled:  false\n", _line(1, "autonomy_enabled:  false")),
    "indented": (b" autonomy_enabled: false\n", _line(1, " autonomy_enabled: false")),
    "trailing space": (b"autonomy_enabled: false \n", _line(1, "autonomy_enabled: false ")),
    "trailing comment": (b"autonomy_enabled: false  # INC-1\n", _line(1, "autonomy_enabled: false  # INC-1")),
    "a comment first": (b"# edited by hand\nautonomy_enabled: false\n", _line(1, "# edited by hand")),
    "a comment after": (b"autonomy_enabled: false\n# INC-1\n", _line(2, "# INC-1")),
    "document start": (b"---\nautonomy_enabled: true\n", _line(1, "---")),
    "document end": (b"autonomy_enabled: true\n...\n", _line(2, "...")),
    "missing key": (
        b'reason: "forgot the switch"\n',
        _line(1, 'reason: "forgot the switch"') + ": " + _EXPECTED_SWITCH,
    ),
    "duplicate key": (
        b"autonomy_enabled: false\nautonomy_enabled: true\n",
        _line(2, "autonomy_enabled: true") + ": " + _EXPECTED_AFTER_SWITCH,
    ),
    "a list": (b"- autonomy_enabled: true\n", _line(1, "- autonomy_enabled: true")),
    "a scalar": (b"true\n", _line(1, "true")),
    "empty": (b"", "the file is empty"),
    "only a newline": (b"\n", _line(1, "")),
    "a blank line at the end": (b"autonomy_enabled: false\n\n", _line(2, "")),
    # CR, tab, BOM, controls and anything outside ASCII: bytes YAML tools disagree about.
    "CRLF": (b'autonomy_enabled: false\r\nreason: "INC-1"\r\n', "line 1 ('autonomy_enabled: false\\"),
    "tab": (b"autonomy_enabled:\tfalse\n", "line 1 ('autonomy_enabled:\\"),
    "NUL": (b"autonomy_enabled: false\x00\n", "line 1 ('autonomy_enabled: false\\"),
    "BOM": (b"\xef\xbb\xbfautonomy_enabled: false\n", "has a byte outside printable ASCII at offset 0"),
    "not UTF-8": (b'autonomy_enabled: true\nreason: "caf\xe9"\n', "has a byte outside printable ASCII at offset 35"),
    "non-ASCII reason": (
        'autonomy_enabled: true\nreason: "café"\n'.encode(),
        "has a byte outside printable ASCII at offset 35",
    ),
    # The reason and review_by lines: double-quoted printable ASCII, no escapes, nothing else.
    "reason not a string": (b"autonomy_enabled: true\nreason: 42\n", _line(2, "reason: 42")),
    "unquoted reason": (b"autonomy_enabled: true\nreason: INC-1\n", _line(2, "reason: INC-1")),
    "single-quoted reason": (b"autonomy_enabled: true\nreason: 'INC-1'\n", _line(2, "reason: 'INC-1'")),
    # (The line is shown escaped; see test_reader's test of how a line with a backslash is shown.)
    "escaped reason": (b'autonomy_enabled: true\nreason: "caf\\u00e9"\n', "line 2 ('reason: \"caf\\"),
    "block scalar reason": (b"autonomy_enabled: true\nreason: |\n  INC-1\n", _line(2, "reason: |")),
    "two reasons": (b'autonomy_enabled: true\nreason: "a"\nreason: "b"\n', _line(3, 'reason: "b"')),
    "out of order": (
        b'autonomy_enabled: true\nreview_by: "2026-12-01T09:00:00Z"\nreason: "INC-1"\n',
        _line(3, 'reason: "INC-1"') + ": expected nothing more",
    ),
    "review_by without a zone": (
        b'autonomy_enabled: false\nreview_by: "2026-12-01T09:00:00"\n',
        _line(2, 'review_by: "2026-12-01T09:00:00"'),
    ),
    "review_by unquoted": (
        b"autonomy_enabled: false\nreview_by: 2026-12-01T09:00:00Z\n",
        _line(2, "review_by: 2026-12-01T09:00:00Z"),
    ),
    # The old layout: tasks and guardrails now live in the scheduler's settings file.
    "settings in the switch file": (
        b"autonomy_enabled: true\nscheduler:\n  tasks: []\n",
        _line(2, "scheduler:") + ": " + _EXPECTED_AFTER_SWITCH,
    ),
    f"over {MAX_SWITCH_BYTES} bytes": (
        b"autonomy_enabled: true\n" + b"#" * MAX_SWITCH_BYTES + b"\n",
        f"is larger than {MAX_SWITCH_BYTES} bytes",
    ),
    # YAML that once crashed or hung a parser: now plainly a line outside the form, never parsed.
    "impossible date": (b"autonomy_enabled: true\nreviewed: 2024-02-30\n", _line(2, "reviewed: 2024-02-30")),
    "list as a key": (b"autonomy_enabled: true\n? [a]\n: 1\n", _line(2, "? [a]")),
    "deep nesting": (b"autonomy_enabled: true\nx: " + b"[" * 3000 + b"\n", _line(2, "x: " + "[" * 57 + "...")),
    "billion laughs": (
        b"autonomy_enabled: true\n" + _BILLION_LAUGHS,
        _line(2, _BILLION_LAUGHS.split(b"\n")[0].decode()),
    ),
    "alias to itself": (b"autonomy_enabled: true\nloop: &loop [*loop]\n", _line(2, "loop: &loop [*loop]")),
}

INVALID_SETTINGS = {
    "invalid YAML": (b"scheduler: [\n", "invalid YAML"),
    "duplicate key": (b"scheduler: {}\nscheduler: {}\n", "duplicate key 'scheduler'"),
    "a list": (b"- scheduler: {}\n", "top level must be a mapping"),
    "a scalar": (b"true\n", "top level must be a mapping, not bool True"),
    "empty": (b"", "top level must be a mapping, not null"),
    "not UTF-8": (b"scheduler:\n  note: caf\xe9\n", "not valid UTF-8 (byte offset 22)"),
    "over 64 KiB": (
        b"scheduler: {}\n" + b"#" * MAX_CONFIG_BYTES + b"\n",
        f"larger than {MAX_CONFIG_BYTES // 1024} KiB",
    ),
    # Parsed by PyYAML, but no value can be built from them.
    "impossible date": (b"reviewed: 2024-02-30\n", "ValueError: day is out of range"),
    "int tag": (b"x: !!int abc\n", "ValueError"),
    "timestamp tag": (b"x: !!timestamp x\n", "AttributeError"),
    "set tag": (b"x: !!set [1]\n", "TypeError"),
    "a 5000-digit integer": (b"x: " + b"9" * 5000 + b"\n", "ValueError"),
    "list as a key": (b"? [a]\n: 1\n", "unhashable key"),
    "deep nesting": (b"x: " + b"[" * 3000 + b"\n", "nested deeper than 50 levels"),
    "billion laughs": (_BILLION_LAUGHS, "aliases expand the document past 1024 KiB"),
    "alias to itself": (b"loop: &loop [*loop]\n", "an alias refers to itself"),
    "YAML 1.1 boolean tag": (b"x: !!bool yes\n", "'yes' is not a YAML 1.2 boolean"),
}
