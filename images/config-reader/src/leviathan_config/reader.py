"""Read the autonomy config file into an immutable snapshot.

The file is the ConfigMap key mounted at /etc/leviathan/autonomy/<env>.yaml.
Every way it can be wrong is a normal outcome here, never an exception: the
snapshot says whether the file was loaded, was absent, or could not be used,
and why.
"""

from __future__ import annotations

import enum
import os
import re
from collections import namedtuple
from collections.abc import Mapping

import yaml

# Imports stay minimal (no dataclasses, typing or hashlib at import time): a
# disabled scheduler tick is this module plus two log lines, and its cost is
# measured against `python -c "import yaml"` (make bench).

CONFIG_ENV = "LEVIATHAN_AUTONOMY_CONFIG"
DEFAULT_CONFIG_PATH = "/etc/leviathan/autonomy/dev.yaml"
MAX_CONFIG_BYTES = 64 * 1024

SOURCE_NOT_MOUNTED = "default (config not mounted)"
SOURCE_ERROR = "default (error reading config)"


class ConfigState(enum.Enum):
    LOADED = "loaded"
    NOT_MOUNTED = "not mounted"
    ERROR = "error"


_Fields = namedtuple(
    "_Fields", ["state", "path", "autonomy_enabled", "document", "problem", "raw"], defaults=(None, None, "", b"")
)


class AutonomyConfig(_Fields):
    """What one read of the config file found. Equal snapshots mean the file said the same.

    state:            LOADED, NOT_MOUNTED or ERROR
    path:             the file read
    autonomy_enabled: the switch as written; None unless LOADED
    document:         the whole parsed file when LOADED (the scheduler's settings live there)
    problem:          why the file could not be used; empty when LOADED
    raw:              the bytes read, if any
    """

    __slots__ = ()

    @property
    def source(self) -> str:
        """The runbook's `source` field."""
        if self.state is ConfigState.LOADED:
            return f"configmap:{self.path}"
        if self.state is ConfigState.NOT_MOUNTED:
            return SOURCE_NOT_MOUNTED
        return SOURCE_ERROR

    def enabled_or(self, default: bool) -> bool:
        """The switch, or `default` when the file could not be used."""
        return default if self.autonomy_enabled is None else self.autonomy_enabled

    @property
    def reason(self) -> str:
        return (self.document or {}).get("reason") or ""

    @property
    def sha256(self) -> str:
        """Digest of the bytes read; empty when nothing was read."""
        import hashlib

        return hashlib.sha256(self.raw).hexdigest() if self.raw else ""


def config_path_from_env(environ: Mapping[str, str] = os.environ) -> str:
    return environ.get(CONFIG_ENV) or DEFAULT_CONFIG_PATH


def read_autonomy_config(path: str | os.PathLike[str], previous: AutonomyConfig | None = None) -> AutonomyConfig:
    """Read and validate the config file at `path`.

    With `previous`, the bytes are compared first and `previous` is returned
    when they are the same, skipping the parse: the scheduler re-checks the
    switch before every create, and the control plane re-reads on every event.
    """
    path = os.fspath(path)

    def error(problem: str, raw: bytes = b"") -> AutonomyConfig:
        return AutonomyConfig(ConfigState.ERROR, path, problem=problem, raw=raw)

    try:
        raw = read_mounted_file(path, MAX_CONFIG_BYTES)
    except FileNotFoundError:
        # Also a missing mount directory, or a ..data link pointing nowhere.
        return AutonomyConfig(ConfigState.NOT_MOUNTED, path, problem=f"{path} does not exist")
    except IsADirectoryError:
        return error(f"{path} is a directory, not a file")
    except PermissionError:
        return error(f"permission denied reading {path}")
    except OSError as exc:
        return error(f"cannot read {path}: {exc.strerror or exc}")

    if previous is not None and previous.path == path and previous.raw == raw and raw:
        return previous
    if len(raw) > MAX_CONFIG_BYTES:
        return error(f"{path} is larger than {MAX_CONFIG_BYTES // 1024} KiB", raw)
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        return error(f"{path} is not valid UTF-8 (byte offset {exc.start})", raw)
    try:
        document = yaml.load(text, Loader=_StrictLoader)  # noqa: S506 - a SafeLoader subclass
    except yaml.YAMLError as exc:
        return error(f"invalid YAML in {path}: {_describe_yaml_error(exc)}", raw)
    except Exception as exc:  # every bad file is an outcome, never a crash
        # PyYAML parses these but cannot build values from them: a date such as
        # 2024-02-30, `!!int abc`, `!!timestamp x`, a 5000-digit integer, a list as a key.
        return error(f"invalid YAML in {path}: {type(exc).__name__}: {exc}"[:300], raw)

    problem = _validate(document)
    if problem:
        return error(problem, raw)
    return AutonomyConfig(ConfigState.LOADED, path, document["autonomy_enabled"], document, "", raw)


def read_mounted_file(path: str, limit: int, attempts: int = 3) -> bytes:
    """At most `limit` + 1 bytes of a file in a kubelet-managed volume (so "too big" can be told)."""
    for attempt in range(attempts):
        try:
            with open(path, "rb") as mounted_file:
                return mounted_file.read(limit + 1)
        except FileNotFoundError:
            # kubelet deletes the old ..<timestamp> dir right after renaming the new
            # one over ..data, so a read that began on the old dir can miss. The
            # user-visible link survives a swap: while it exists, read again.
            if attempt == attempts - 1 or not os.path.islink(path):
                raise
    raise AssertionError("unreachable")


def _validate(document: object) -> str:
    if document is None:
        return "the file is empty"
    if not isinstance(document, dict):
        return f"the top level must be a mapping, not {_describe_value(document)}"
    if "autonomy_enabled" not in document:
        return "missing key autonomy_enabled"
    enabled = document["autonomy_enabled"]
    if not isinstance(enabled, bool):
        return f"autonomy_enabled must be true or false, not {_describe_value(enabled)}"
    reason = document.get("reason")
    if reason is not None and not isinstance(reason, str):
        return f"reason must be a string, not {_describe_value(reason)}"
    return ""


def _describe_value(value: object) -> str:
    if value is None:
        return "null"
    if isinstance(value, str):
        shown = value if len(value) <= 20 else value[:20] + "..."
        return f"the string {shown!r}"
    return f"{type(value).__name__} {value!r}"[:60]


def _describe_yaml_error(exc: yaml.YAMLError) -> str:
    mark = getattr(exc, "problem_mark", None)
    parts = (getattr(exc, "context", None), getattr(exc, "problem", None))
    problem = ", ".join(part for part in parts if part) or str(exc).splitlines()[0]
    if mark is not None:
        return f"line {mark.line + 1}, column {mark.column + 1}: {problem}"
    return problem


MAX_NESTING = 50


class _StrictLoader(yaml.SafeLoader):
    """SafeLoader with YAML 1.2 booleans, no duplicate keys and bounded nesting.

    PyYAML follows YAML 1.1, where yes/no/on/off are booleans. An operator
    who types `autonomy_enabled: off` should get an error, not a guess.
    A key written twice is an error too, rather than "the last one wins".
    PyYAML composes nested collections recursively: thousands of `[` can
    exhaust the interpreter's stack (a fatal error, not an exception), so
    nesting is refused long before that.
    """

    _depth = 0

    def compose_node(self, parent: yaml.Node | None, index: object) -> yaml.Node | None:
        self._depth += 1
        try:
            if self._depth > MAX_NESTING:
                mark = self.peek_event().start_mark
                raise yaml.composer.ComposerError(None, None, f"nested deeper than {MAX_NESTING} levels", mark)
            return super().compose_node(parent, index)
        finally:
            self._depth -= 1

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict[object, object]:
        seen: set[object] = set()
        for key_node, _ in node.value:
            key = self.construct_object(key_node, deep=deep)
            try:
                duplicate = key in seen
            except TypeError:
                continue  # an unhashable key: the base class reports it as a YAML error
            if duplicate:
                raise yaml.constructor.ConstructorError(None, None, f"duplicate key {key!r}", key_node.start_mark)
            seen.add(key)
        return super().construct_mapping(node, deep=deep)

    def construct_yaml_bool(self, node: yaml.ScalarNode) -> bool:
        value = self.construct_scalar(node)
        if value.lower() not in ("true", "false"):
            raise yaml.constructor.ConstructorError(None, None, f"{value!r} is not a YAML 1.2 boolean", node.start_mark)
        return value.lower() == "true"


_BOOL_TAG = "tag:yaml.org,2002:bool"
_StrictLoader.yaml_implicit_resolvers = {
    first: [(tag, regexp) for tag, regexp in resolvers if tag != _BOOL_TAG]
    for first, resolvers in yaml.SafeLoader.yaml_implicit_resolvers.items()
}
_StrictLoader.add_implicit_resolver(_BOOL_TAG, re.compile(r"^(?:true|True|TRUE|false|False|FALSE)$"), list("tTfF"))
_StrictLoader.add_constructor(_BOOL_TAG, _StrictLoader.construct_yaml_bool)
