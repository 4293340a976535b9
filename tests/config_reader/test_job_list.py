"""The streamed list reader (leviathan_config.job_list): the same items as json.loads, one at a time,
whatever the chunking; anything that is not a whole list is a ListError."""

from __future__ import annotations

import json

import pytest

from leviathan_config import job_list
from leviathan_config.job_list import ListError, read_list, read_pages

BODY = {
    "kind": "JobList",
    "apiVersion": "batch/v1",
    "metadata": {"resourceVersion": "12345", "continue": "tok", "remainingItemCount": 7},
    "items": [
        {"metadata": {"name": "a", "labels": {"x": "é ✓ 𝄞"}}, "status": {"succeeded": 1, "ready": 0}},
        {"metadata": {"name": "b"}, "spec": {"n": 1.5e3, "t": True, "f": False, "z": None}},
        {},
    ],
}


def chunked(data: bytes, size: int) -> list[bytes]:
    return [data[i : i + size] for i in range(0, len(data), size)]


@pytest.mark.parametrize("size", [1, 2, 3, 7, 1 << 16])
@pytest.mark.parametrize("indent", [None, 2])
def test_items_and_metadata_match_json_loads_whatever_the_chunks(size, indent):
    data = json.dumps(BODY, indent=indent, ensure_ascii=False).encode()
    seen: list[dict] = []
    metadata, count = read_list(chunked(data, size), seen.append)
    assert seen == BODY["items"] and count == 3
    assert metadata == BODY["metadata"]


def test_metadata_after_the_items_and_an_empty_list():
    data = json.dumps({"items": [], "metadata": {"continue": "x"}, "kind": "JobList"}).encode()
    assert read_list([data], lambda item: pytest.fail("no items")) == ({"continue": "x"}, 0)


def test_a_number_split_across_chunks_is_read_whole():
    seen: list = []
    read_list([b'{"items": [{"n": 12', b"34}], ", b'"metadata": {"remainingItemCount": 5', b"67}}"], seen.append)
    assert seen == [{"n": 1234}]


@pytest.mark.parametrize(
    ("body", "problem"),
    [
        (b"", "it ends before the list does"),
        (b"[]", "it is not a JSON object"),
        (b"{}", "it has no items"),
        (b'{"kind": "Status"}', "it has no items"),
        (b'{"items": null}', "its items are not a list"),
        (b'{"items": [1]}', "its item 1 is not an object"),
        (b'{"items": [{}] "x": 1}', "it is not JSON"),
        (b'{"items": [{"a": }]}', "it is not JSON"),
        (b'{"items": [{}], "metadata": []}', "its metadata is not an object"),
        (b'{"items": [{}]', "it ends before the list does"),
        (b'{"items": [{"a": "\xff"}]}', "it is not UTF-8"),
        (b"<html>maintenance</html>", "it is not a JSON object"),
    ],
)
def test_what_is_not_a_whole_list_is_a_list_error(body, problem):
    with pytest.raises(ListError, match=f"^{problem}$"):
        read_list(chunked(body, 3), lambda item: None)


def test_an_item_larger_than_the_limit_is_refused_before_it_is_held(monkeypatch):
    monkeypatch.setattr(job_list, "MAX_ITEM_CHARS", 1000)
    monkeypatch.setattr(job_list, "CHUNK_BYTES", 100)
    data = json.dumps({"items": [{"a": "x" * 100}, {"big": "y" * 5000}]}).encode()
    seen: list = []
    with pytest.raises(ListError, match="larger than"):
        read_list(chunked(data, 100), seen.append)
    assert seen == [{"a": "x" * 100}]  # the items before it were handed over, the big one never held


def test_the_body_is_closed_even_when_reading_fails():
    closed = []

    def body():
        try:
            yield b'{"items": [1'
            yield b"]}"
        finally:
            closed.append(True)

    with pytest.raises(ListError):
        read_list(body(), lambda item: None)
    assert closed == [True]


def test_pages_are_followed_to_the_last_and_counted():
    pages = {None: ([{"n": 1}, {"n": 2}], "p2"), "p2": ([], "p3"), "p3": ([{"n": 3}], None)}
    asked: list = []

    def fetch(token):
        asked.append(token)
        items, following = pages[token]
        return [json.dumps({"metadata": {"continue": following} if following else {}, "items": items}).encode()]

    seen: list = []
    read = read_pages(fetch, seen.append)
    assert (read.pages, read.items) == (3, 3)
    assert asked == [None, "p2", "p3"] and seen == [{"n": 1}, {"n": 2}, {"n": 3}]


def test_a_repeated_token_or_endless_pages_are_refused(monkeypatch):
    def same(token):
        return [b'{"metadata": {"continue": "again"}, "items": []}']

    with pytest.raises(ListError, match="page 2 with the continue token it was sent"):
        read_pages(same, lambda item: None)

    monkeypatch.setattr(job_list, "MAX_PAGES", 5)
    counter = iter(range(100))

    def endless(token):
        return [json.dumps({"metadata": {"continue": f"t{next(counter)}"}, "items": []}).encode()]

    with pytest.raises(ListError, match="past 5 pages"):
        read_pages(endless, lambda item: None)
