"""Unpack a chart package safely on every Python the project supports.

`TarFile.extractall(filter="data")` exists from Python 3.11.4 (and in 3.8.17+, 3.9.17+, 3.10.12+ backports);
Debian 12's python3 is 3.11.2, which has no `filter` argument. There the members are checked by hand with
the same rules that matter for a chart package: regular files and directories only, every path inside `dest`.
"""

from __future__ import annotations

import tarfile
from pathlib import Path


class UnsafeArchive(Exception):
    pass


def safe_extract(archive: tarfile.TarFile, dest: Path) -> None:
    if hasattr(tarfile, "data_filter"):
        archive.extractall(dest, filter="data")
        return
    root = dest.resolve()
    members = archive.getmembers()
    for member in members:
        if not (member.isfile() or member.isdir()):
            raise UnsafeArchive(f"{member.name}: not a regular file or directory")
        if Path(member.name).is_absolute() or not (root / member.name).resolve().is_relative_to(root):
            raise UnsafeArchive(f"{member.name}: outside {dest}")
    archive.extractall(dest, members=members)  # noqa: S202 - every member checked above
