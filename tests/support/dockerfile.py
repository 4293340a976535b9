"""A small Dockerfile reader, for static checks of the images without a Docker engine.

    dockerfile = read_dockerfile(Path("images/scheduler/Dockerfile"))
    dockerfile.final.exec_form("ENTRYPOINT")     # ["leviathan-scheduler"]
    dockerfile.stage("builder").pip_installs()   # every `pip install`, with its working directory

Continuation lines are joined and comments dropped, as the builder reads them; build ARGs
declared before the first FROM are substituted into the base image names.
"""

from __future__ import annotations

import json
import posixpath
import re
import shlex
from dataclasses import dataclass, field
from pathlib import Path


@dataclass(frozen=True)
class Instruction:
    keyword: str
    value: str


@dataclass
class Stage:
    base: str
    name: str | None
    instructions: list[Instruction] = field(default_factory=list)

    def all(self, keyword: str) -> list[str]:
        return [i.value for i in self.instructions if i.keyword == keyword]

    def pairs(self, keyword: str) -> dict[str, str]:
        """`KEY=value` pairs of every ENV, LABEL or ARG in the stage, later ones winning."""
        found: dict[str, str] = {}
        for value in self.all(keyword):
            for word in shlex.split(value):
                key, _, item = word.partition("=")
                found[key] = item
        return found

    def exec_form(self, keyword: str) -> list[str] | None:
        values = self.all(keyword)
        if not values:
            return None
        parsed = json.loads(values[-1])  # shell form is not JSON, and would not pass signals or args on
        assert isinstance(parsed, list), f"{keyword} must use the exec (JSON array) form"
        return parsed

    def shell_commands(self) -> list[list[str]]:
        """Every command of every RUN, split on `&&`, as words."""
        return [shlex.split(part) for run in self.all("RUN") for part in run.split("&&")]

    def pip_installs(self) -> list[tuple[int, str, list[str]]]:
        """(instruction index, working directory, arguments after `pip install`) for every pip install."""
        found, workdir = [], "/"
        for index, instruction in enumerate(self.instructions):
            if instruction.keyword == "WORKDIR":
                workdir = posixpath.join(workdir, instruction.value)
            if instruction.keyword != "RUN":
                continue
            for part in instruction.value.split("&&"):
                words = shlex.split(part)
                if words[:2] == ["pip", "install"]:
                    found.append((index, workdir, words[2:]))
                elif words[1:4] == ["-m", "pip", "install"]:
                    found.append((index, workdir, words[4:]))
        return found

    def context_path(self, path: str, workdir: str, before: int) -> str:
        """The build-context path that the COPYs before instruction `before` put at `path` (against `workdir`)."""
        target = posixpath.normpath(posixpath.join(workdir, path))
        source, copy_workdir = None, "/"
        for instruction in self.instructions[:before]:
            if instruction.keyword == "WORKDIR":
                copy_workdir = posixpath.join(copy_workdir, instruction.value)
            if instruction.keyword != "COPY" or "--from=" in instruction.value:
                continue
            *sources, dest = [word for word in shlex.split(instruction.value) if not word.startswith("--")]
            dest_dir = posixpath.normpath(posixpath.join(copy_workdir, dest))
            for src in sources:
                if src.endswith("/"):  # a directory: its contents land in dest
                    if target == dest_dir or target.startswith(dest_dir + "/"):
                        source = posixpath.normpath(posixpath.join(src, posixpath.relpath(target, dest_dir)))
                elif dest.endswith("/"):
                    if target == posixpath.join(dest_dir, posixpath.basename(src)):
                        source = posixpath.normpath(src)
                elif target == dest_dir:
                    source = posixpath.normpath(src)
        assert source is not None, f"nothing in the build context was copied to {target}"
        return source


@dataclass
class Dockerfile:
    args: dict[str, str]
    stages: list[Stage]

    @property
    def final(self) -> Stage:
        return self.stages[-1]

    def stage(self, name: str) -> Stage:
        (stage,) = [s for s in self.stages if s.name == name]
        return stage


def instructions(text: str) -> list[Instruction]:
    """Instructions with continuation lines joined and comments dropped, as the builder reads them."""
    found, buffer = [], []
    for raw in text.splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        if line.endswith("\\"):
            buffer.append(line[:-1].strip())
            continue
        keyword, _, value = " ".join([*buffer, line]).partition(" ")
        found.append(Instruction(keyword.upper(), value.strip()))
        buffer = []
    assert not buffer, "the file ends inside a continuation"
    return found


def substitute(value: str, args: dict[str, str]) -> str:
    return re.sub(r"\$\{(\w+)\}|\$(\w+)", lambda m: args[m.group(1) or m.group(2)], value)


def read_dockerfile(path: Path) -> Dockerfile:
    args: dict[str, str] = {}
    stages: list[Stage] = []
    for instruction in instructions(path.read_text()):
        if instruction.keyword == "FROM":
            words = [w for w in instruction.value.split() if not w.startswith("--platform")]
            name = words[2] if len(words) == 3 and words[1].upper() == "AS" else None
            assert len(words) == (3 if name else 1), f"unexpected FROM {instruction.value}"
            stages.append(Stage(substitute(words[0], args), name))
        elif stages:
            stages[-1].instructions.append(instruction)
        else:
            assert instruction.keyword == "ARG", f"{instruction.keyword} before the first FROM"
            key, _, default = instruction.value.partition("=")
            args[key] = default
    assert stages, "no FROM"
    return Dockerfile(args, stages)
