"""Read the autonomy config file into an immutable snapshot.

The switch file is the ConfigMap key mounted at /etc/leviathan/autonomy/<env>.yaml, read by the
one grammar of leviathan_config.switch; the scheduler's settings file (tasks, guardrails, worker)
is strict YAML, mounted from a ConfigMap of its own.
Every way it can be wrong is a normal outcome here, never an exception: the
snapshot says whether the file was loaded, was absent, or could not be used,
and why.
"""

from __future__ import annotations

import enum
import errno
import os
import re
import stat
from collections import namedtuple
from collections.abc import Mapping
from typing import TypeVar

import yaml

from leviathan_config.switch import MAX_SWITCH_BYTES, describe_mismatch, parse_switch

# Imports stay minimal (no dataclasses, typing or hashlib at import time): a
# disabled scheduler tick is this module plus two log lines, and its cost is
# measured against `python -c "import yaml"` (make bench).

CONFIG_ENV = "LEVIATHAN_AUTONOMY_CONFIG"
DEFAULT_CONFIG_PATH = "/etc/leviathan/autonomy/dev.yaml"
# The scheduler's settings (tasks, guardrails, worker): their own ConfigMap, mounted beside the switch.
SETTINGS_ENV = "LEVIATHAN_SCHEDULER_CONFIG"
DEFAULT_SETTINGS_PATH = "/etc/leviathan/scheduler/scheduler.yaml"
MAX_CONFIG_BYTES = 64 * 1024
# What aliases may expand a document to: nodes plus scalar characters. A file
# without aliases stays under twice its size; "billion laughs" goes far past this.
MAX_EXPANDED_SIZE = 1024 * 1024

# OS errors that say nothing about the file, only about this moment: out of file
# descriptors or memory, an I/O hiccup, an interrupted or would-block call.
TRANSIENT_ERRNOS = frozenset(
    {
        errno.EMFILE,
        errno.ENFILE,
        errno.ENOMEM,
        errno.ENOBUFS,
        errno.EIO,
        errno.EAGAIN,
        errno.EINTR,
        errno.EBUSY,
        errno.ETIMEDOUT,
        errno.ESTALE,
    }
)

# The runbook's three `source` values: configmap_source(path), and the two defaults.
SOURCE_NOT_MOUNTED = "default (config not mounted)"
SOURCE_ERROR = "default (error reading config)"


def configmap_source(path: str) -> str:
    """The `source` of a config read from the mounted ConfigMap at `path`."""
    return f"configmap:{path}"


class ConfigState(enum.Enum):
    LOADED = "loaded"
    NOT_MOUNTED = "not mounted"
    ERROR = "error"


_Fields = namedtuple(
    "_Fields",
    ["state", "path", "autonomy_enabled", "document", "problem", "raw", "transient"],
    defaults=(None, None, "", b"", False),
)


class NotARegularFile(OSError):
    """A FIFO, socket, device or directory where a file was expected."""


def is_transient(exc: BaseException) -> bool:
    """True when a read failed for a reason that can pass (the file may well be fine)."""
    return isinstance(exc, MemoryError) or (isinstance(exc, OSError) and exc.errno in TRANSIENT_ERRNOS)


def printable(text: str) -> str:
    """`text` with every non-printable character escaped, so it cannot forge or split a log line.

    Newlines, tabs, ANSI escapes, other C0/C1 controls and bidi overrides
    become `\\n`, `\\x1b`, `\\u202e`...; a backslash stays as it is.
    """
    if text.isprintable():
        return text
    return "".join(char if char.isprintable() else char.encode("unicode_escape").decode("ascii") for char in text)


class AutonomyConfig(_Fields):
    """What one read of the config file found. Equal snapshots mean the file said the same.

    state:            LOADED, NOT_MOUNTED or ERROR
    path:             the file read
    autonomy_enabled: the switch as written; None unless LOADED
    document:         the file's meaning when LOADED: autonomy_enabled, and reason and review_by if written
    problem:          why the file could not be used; empty when LOADED
    raw:              the bytes read, if any
    transient:        ERROR came from a passing condition (see is_transient), not from the file
    """

    __slots__ = ()

    @property
    def source(self) -> str:
        """The runbook's `source` field."""
        if self.state is ConfigState.LOADED:
            return configmap_source(self.path)
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

    raw, state, problem, transient = _read(path, MAX_SWITCH_BYTES)
    if raw is None:
        return AutonomyConfig(state, path, problem=problem, transient=transient)
    if (same := _unchanged(previous, path, raw)) is not None:
        return same
    return parse_autonomy_config(raw, path)


def parse_autonomy_config(raw: bytes, path: str) -> AutonomyConfig:
    """Validate switch-file bytes read from anywhere (the mounted file, or the ConfigMap through the API).

    The file must match the switch grammar (leviathan_config.switch), the one definition of what
    it may say and of "on". `path` names where the bytes came from in the snapshot and its problems.
    """

    def error(problem: str) -> AutonomyConfig:
        return AutonomyConfig(ConfigState.ERROR, path, problem=problem, raw=raw)

    if len(raw) > MAX_SWITCH_BYTES:
        return error(f"{path} is larger than {MAX_SWITCH_BYTES} bytes (it holds only the switch and its reason)")
    try:
        text = raw.decode("ascii")
    except UnicodeDecodeError as exc:
        return error(f"{path} has a byte outside printable ASCII at offset {exc.start}")
    document = parse_switch(text)
    if document is None:
        return error(f"{path}: {describe_mismatch(text)}")
    return AutonomyConfig(ConfigState.LOADED, path, document["autonomy_enabled"], document, "", raw)


class SettingsFile(
    namedtuple("SettingsFile", ["state", "path", "document", "problem", "raw"], defaults=(None, "", b""))
):
    """What one read of the scheduler's settings file (tasks, guardrails, worker) found."""

    __slots__ = ()


_Snapshot = TypeVar("_Snapshot", AutonomyConfig, SettingsFile)


def _unchanged(previous: _Snapshot | None, path: str, raw: bytes) -> _Snapshot | None:
    """`previous` when it was made from these very bytes at this path (it stands without a new parse).

    Never for empty bytes: a failed read's are empty too, so an empty file is always parsed.
    """
    if previous is not None and raw and previous.path == path and previous.raw == raw:
        return previous
    return None


def settings_path_from_env(environ: Mapping[str, str] = os.environ) -> str:
    return environ.get(SETTINGS_ENV) or DEFAULT_SETTINGS_PATH


def read_settings_file(path: str | os.PathLike[str], previous: SettingsFile | None = None) -> SettingsFile:
    """Read the settings file: a strict YAML mapping (YAML 1.2 booleans, no duplicate keys, bounded).

    With `previous` (an earlier read), the same bytes at the same path give `previous` back
    unparsed: a re-read that finds no change costs a file read, not a YAML parse.
    """
    path = os.fspath(path)
    raw, state, problem, _ = _read(path, MAX_CONFIG_BYTES)
    if raw is None:
        return SettingsFile(state, path, problem=problem)
    if (same := _unchanged(previous, path, raw)) is not None:
        return same
    return parse_settings_file(raw, path)


def parse_settings_file(raw: bytes, path: str) -> SettingsFile:
    def error(problem: str) -> SettingsFile:
        return SettingsFile(ConfigState.ERROR, path, problem=problem, raw=raw)

    if len(raw) > MAX_CONFIG_BYTES:
        return error(f"{path} is larger than {MAX_CONFIG_BYTES // 1024} KiB")
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        return error(f"{path} is not valid UTF-8 (byte offset {exc.start})")
    try:
        document = yaml.load(text, Loader=_StrictLoader)  # noqa: S506 - a SafeLoader subclass
    except yaml.YAMLError as exc:
        return error(f"invalid YAML in {path}: {_describe_yaml_error(exc)}")
    except MemoryError:
        return error(f"cannot parse {path}: out of memory")
    except Exception as exc:  # every bad file is an outcome, never a crash
        # PyYAML parses these but cannot build values from them: a date such as
        # 2024-02-30, `!!int abc`, `!!timestamp x`, a 5000-digit integer, a list as a key.
        return error(f"invalid YAML in {path}: {type(exc).__name__}: {exc}"[:300])
    if not isinstance(document, dict):
        return error(f"{path}: the top level must be a mapping, not {_describe_value(document)}")
    return SettingsFile(ConfigState.LOADED, path, document, "", raw)


def _read(path: str, limit: int) -> tuple[bytes | None, ConfigState, str, bool]:
    """(bytes, LOADED, "", False), or (None, NOT_MOUNTED or ERROR, why, whether that can pass)."""
    try:
        return read_mounted_file(path, limit), ConfigState.LOADED, "", False
    except FileNotFoundError:
        # Also a missing mount directory, or a ..data link pointing nowhere.
        return None, ConfigState.NOT_MOUNTED, f"{path} does not exist", False
    except NotARegularFile as exc:
        return None, ConfigState.ERROR, f"{path} is {exc.strerror}, not a regular file", False
    except PermissionError:
        return None, ConfigState.ERROR, f"permission denied reading {path}", False
    except (OSError, MemoryError) as exc:
        why = getattr(exc, "strerror", None) or type(exc).__name__
        return None, ConfigState.ERROR, f"cannot read {path}: {why}", is_transient(exc)


def read_mounted_file(path: str, limit: int, attempts: int = 3) -> bytes:
    """At most `limit` + 1 bytes of a file in a kubelet-managed volume (so "too big" can be told).

    Only a regular file is read: a FIFO, socket or device at the path raises
    NotARegularFile at once instead of blocking the reader for good.
    """
    for attempt in range(attempts):
        try:
            return _read_regular_file(path, limit + 1)
        except FileNotFoundError:
            # kubelet deletes the old ..<timestamp> dir right after renaming the new
            # one over ..data, so a read that began on the old dir can miss. The
            # user-visible link survives a swap: while it exists, read again.
            if attempt == attempts - 1 or not os.path.islink(path):
                raise
    raise AssertionError("unreachable")


_KINDS = {
    stat.S_IFDIR: "a directory",
    stat.S_IFIFO: "a FIFO",
    stat.S_IFSOCK: "a socket",
    stat.S_IFCHR: "a character device",
    stat.S_IFBLK: "a block device",
}


def _read_regular_file(path: str, size: int) -> bytes:
    # O_NONBLOCK: opening a FIFO without a writer would otherwise wait forever.
    # A socket cannot be opened at all (ENXIO), which is refused below as well.
    try:
        fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC)
    except OSError as exc:
        if exc.errno == errno.ENXIO:
            raise NotARegularFile(errno.ENXIO, "a socket or a device without a driver") from None
        raise
    try:
        kind = stat.S_IFMT(os.fstat(fd).st_mode)
        if kind != stat.S_IFREG:
            raise NotARegularFile(errno.EINVAL, _KINDS.get(kind, "a special file"))
        chunks = []
        while size > 0:
            chunk = os.read(fd, size)
            if not chunk:
                break
            chunks.append(chunk)
            size -= len(chunk)
        return b"".join(chunks)
    finally:
        os.close(fd)


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


def _check_expansion(root: yaml.Node) -> None:
    """Refuse a document whose aliases expand past MAX_EXPANDED_SIZE, or refer to themselves.

    Sizes are memoised per node, so this costs one visit per distinct node
    however large the expansion would be.
    """
    sizes: dict[int, int] = {}
    open_nodes: set[int] = set()  # the ancestors of the node being visited
    stack: list[tuple[yaml.Node, bool]] = [(root, False)]
    while stack:
        node, children_done = stack.pop()
        key = id(node)
        children = _children(node)
        if children_done:
            open_nodes.discard(key)
            size = 1 + sum(sizes[id(child)] for child in children)
            if size > MAX_EXPANDED_SIZE:
                raise yaml.composer.ComposerError(
                    None, None, f"aliases expand the document past {MAX_EXPANDED_SIZE // 1024} KiB", node.start_mark
                )
            sizes[key] = size
        elif key not in sizes:
            if key in open_nodes:
                raise yaml.composer.ComposerError(None, None, "an alias refers to itself", node.start_mark)
            if not children:
                sizes[key] = 1 + len(node.value)
                continue
            open_nodes.add(key)
            stack.append((node, True))
            stack.extend((child, False) for child in children if id(child) not in sizes)


def _children(node: yaml.Node) -> list[yaml.Node]:
    if isinstance(node, yaml.SequenceNode):
        return node.value
    if isinstance(node, yaml.MappingNode):
        return [item for pair in node.value for item in pair]
    return []


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

    def compose_document(self) -> yaml.Node | None:
        node = super().compose_document()
        if node is not None:
            _check_expansion(node)
        return node

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
_StrictLoader.add_implicit_resolver(_BOOL_TAG, re.compile(r"(?:true|True|TRUE|false|False|FALSE)\Z"), list("tTfF"))
_StrictLoader.add_constructor(_BOOL_TAG, _StrictLoader.construct_yaml_bool)
