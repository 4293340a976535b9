"""tests/support/archive.py: the package unpacking works without `extractall(filter=...)` and refuses escapes."""

from __future__ import annotations

import io
import tarfile

import pytest

from support.archive import UnsafeArchive, safe_extract


def tarball(*members: tarfile.TarInfo) -> tarfile.TarFile:
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w") as out:
        for member in members:
            out.addfile(member, io.BytesIO(b"x" * member.size) if member.isfile() else None)
    buffer.seek(0)
    return tarfile.open(fileobj=buffer)


def file(name: str) -> tarfile.TarInfo:
    info = tarfile.TarInfo(name)
    info.size = 1
    return info


def link(name: str, target: str) -> tarfile.TarInfo:
    info = tarfile.TarInfo(name)
    info.type = tarfile.SYMTYPE
    info.linkname = target
    return info


@pytest.fixture(params=["with data_filter", "without data_filter (Python < 3.11.4)"])
def python(request, monkeypatch):
    if request.param.startswith("without"):
        monkeypatch.delattr(tarfile, "data_filter", raising=False)
    elif not hasattr(tarfile, "data_filter"):
        pytest.skip("this Python has no tarfile.data_filter (3.11.4+)")
    return request.param


def test_a_chart_package_unpacks(python, tmp_path):
    safe_extract(tarball(file("leviathan/Chart.yaml"), file("leviathan/templates/a.yaml")), tmp_path)
    assert (tmp_path / "leviathan" / "templates" / "a.yaml").read_text() == "x"


@pytest.mark.parametrize("member", [file("../escape"), link("leviathan/l", "/etc/passwd")])
def test_an_escaping_member_is_refused(python, tmp_path, member):
    with pytest.raises((UnsafeArchive, tarfile.FilterError) if hasattr(tarfile, "FilterError") else UnsafeArchive):
        safe_extract(tarball(member), tmp_path / "dest")
    assert not (tmp_path / "escape").exists()
