"""Config files the shared reader refuses, each with a fragment of the problem it reports.

tests/config_reader reads each one with the reader itself; tests/scheduler/test_fail_closed.py
runs a tick on each (exit 4, one line, no API call).
"""

from __future__ import annotations

from leviathan_config import MAX_CONFIG_BYTES

INVALID = {
    "invalid YAML": (b"autonomy_enabled: [\n", "invalid YAML"),
    "quoted false": (b'autonomy_enabled: "false"\n', "autonomy_enabled must be true or false, not the string 'false'"),
    "YAML 1.1 off": (b"autonomy_enabled: off\n", "autonomy_enabled must be true or false"),
    "YAML 1.1 no": (b"autonomy_enabled: no\n", "autonomy_enabled must be true or false"),
    "zero": (b"autonomy_enabled: 0\n", "autonomy_enabled must be true or false"),
    "null": (b"autonomy_enabled:\n", "autonomy_enabled must be true or false, not null"),
    "missing key": (b"reason: forgot the switch\n", "missing key autonomy_enabled"),
    "duplicate key": (b"autonomy_enabled: false\nautonomy_enabled: true\n", "duplicate key"),
    "a list": (b"- autonomy_enabled: true\n", "top level must be a mapping"),
    "a scalar": (b"true\n", "top level must be a mapping"),
    "empty": (b"", "empty"),
    "reason not a string": (b"autonomy_enabled: true\nreason: 42\n", "reason must be a string"),
    "not UTF-8": (b"autonomy_enabled: true\nreason: caf\xe9\n", "not valid UTF-8"),
    "over 64 KiB": (
        b"autonomy_enabled: true\n" + b"#" * MAX_CONFIG_BYTES + b"\n",
        f"larger than {MAX_CONFIG_BYTES // 1024} KiB",
    ),
    # Parsed by PyYAML, but no value can be built from them.
    "impossible date": (b"autonomy_enabled: true\nreviewed: 2024-02-30\n", "ValueError"),
    "list as a key": (b"autonomy_enabled: true\n? [a]\n: 1\n", "unhashable key"),
    "deep nesting": (b"autonomy_enabled: true\nx: " + b"[" * 3000 + b"\n", "nested deeper than 50 levels"),
    # A few hundred bytes that aliases would expand to a billion strings.
    "billion laughs": (
        b"autonomy_enabled: true\nl0: &l0 [lol, lol, lol, lol, lol, lol, lol, lol, lol, lol]\n"
        + b"".join(f"l{n}: &l{n} [{', '.join([f'*l{n - 1}'] * 10)}]\n".encode() for n in range(1, 9)),
        "aliases expand the document past 1024 KiB",
    ),
    "alias to itself": (b"autonomy_enabled: true\nloop: &loop [*loop]\n", "an alias refers to itself"),
}
