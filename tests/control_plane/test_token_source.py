"""The token-source choice (token.token_source), on its own: the followed file wins over the static token."""

from __future__ import annotations

from pathlib import Path

from leviathan_control_plane.token import token_source
from support.kubelet_volume import publish


def test_a_named_token_file_is_followed_and_the_static_token_is_ignored(token_file: Path, token_mount: Path):
    source = token_source(str(token_file), b"static-token")
    assert [followed.path for followed in source.followed] == [str(token_file)]
    assert source.current() == token_file.read_text().strip().encode()
    publish(token_mount, {"control-plane-token": "rotated-token\n"}, mode=0o644)
    source.followed[0].reload()
    assert source.current() == b"rotated-token"


def test_without_a_token_file_the_static_token_is_used_and_nothing_is_followed():
    source = token_source(None, b"static-token")
    assert source.followed == ()
    assert source.current() == b"static-token"
    assert token_source("", None).current() is None
