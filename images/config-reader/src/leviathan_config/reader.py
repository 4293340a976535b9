"""Read the autonomy config file into an immutable snapshot.

The file is the ConfigMap key mounted at /etc/leviathan/autonomy/<env>.yaml.
Every way it can be wrong is a normal outcome here, never an exception: the
snapshot says whether the file was loaded, was absent, or could not be used,
and why.
"""

from __future__ import annotations

import enum
import hashlib
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import yaml

CONFIG_ENV = "LEVIATHAN_AUTONOMY_CONFIG"
DEFAULT_CONFIG_PATH = "/etc/leviathan/autonomy/dev.yaml"
MAX_CONFIG_BYTES = 64 * 1024

SOURCE_NOT_MOUNTED = "default (config not mounted)"
SOURCE_ERROR = "default (error reading config)"


class ConfigState(enum.Enum):
    LOADED = "loaded"
    NOT_MOUNTED = "not mounted"
    ERROR = "error"


@dataclass(frozen=True)
class AutonomyConfig:
    """What one read of the config file found."""

    state: ConfigState
    path: str
    # The switch as written in the file; None unless the file was loaded.
    autonomy_enabled: bool | None = None
    # The whole parsed file when loaded, for the scheduler's task settings.
    document: Mapping[str, Any] = field(default_factory=dict, compare=False)
    # Why the file could not be used; empty when loaded.
    problem: str = ""
    # sha256 of the bytes read; empty when nothing was read.
    sha256: str = ""
    # Modification time of the file read (seconds since the epoch), if any.
    mtime: float | None = field(default=None, compare=False)

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
        return self.document.get("reason") or ""


def config_path_from_env(environ: Mapping[str, str] = os.environ) -> str:
    return environ.get(CONFIG_ENV) or DEFAULT_CONFIG_PATH


def read_autonomy_config(path: str | os.PathLike[str]) -> AutonomyConfig:
    """Read and validate the config file at `path`."""
    path = os.fspath(path)

    def error(problem: str, raw: bytes = b"", mtime: float | None = None) -> AutonomyConfig:
        digest = hashlib.sha256(raw).hexdigest() if raw else ""
        return AutonomyConfig(ConfigState.ERROR, path, problem=problem, sha256=digest, mtime=mtime)

    try:
        with open(path, "rb") as config_file:
            mtime = os.fstat(config_file.fileno()).st_mtime
            raw = config_file.read(MAX_CONFIG_BYTES + 1)
    except FileNotFoundError:
        # Also a dangling ..data link or a missing mount directory.
        return AutonomyConfig(ConfigState.NOT_MOUNTED, path, problem=f"{path} does not exist")
    except IsADirectoryError:
        return error(f"{path} is a directory, not a file")
    except PermissionError:
        return error(f"permission denied reading {path}")
    except OSError as exc:
        return error(f"cannot read {path}: {exc.strerror or exc}")

    if len(raw) > MAX_CONFIG_BYTES:
        return error(f"{path} is larger than {MAX_CONFIG_BYTES // 1024} KiB", raw, mtime)
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        return error(f"{path} is not valid UTF-8 (byte offset {exc.start})", raw, mtime)
    try:
        document = yaml.load(text, Loader=_StrictLoader)  # noqa: S506 - a SafeLoader subclass
    except yaml.YAMLError as exc:
        return error(f"invalid YAML in {path}: {_describe_yaml_error(exc)}", raw, mtime)

    problem = _validate(document)
    if problem:
        return error(problem, raw, mtime)
    return AutonomyConfig(
        ConfigState.LOADED,
        path,
        autonomy_enabled=document["autonomy_enabled"],
        document=document,
        sha256=hashlib.sha256(raw).hexdigest(),
        mtime=mtime,
    )


def _validate(document: Any) -> str:
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


def _describe_value(value: Any) -> str:
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


class _StrictLoader(yaml.SafeLoader):
    """SafeLoader with YAML 1.2 booleans and no duplicate keys.

    PyYAML follows YAML 1.1, where yes/no/on/off are booleans. An operator
    who types `autonomy_enabled: off` should get an error, not a guess.
    A key written twice is an error too, rather than "the last one wins".
    """

    def construct_mapping(self, node: yaml.MappingNode, deep: bool = False) -> dict[Any, Any]:
        seen: set[Any] = set()
        for key_node, _ in node.value:
            key = self.construct_object(key_node, deep=deep)
            if isinstance(key, (str, int, float, bool)) and key in seen:
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
