"""Kubernetes lists read page by page, and each page item by item (issue 20).

A namespace may hold tens of thousands of Jobs, some with very large annotations.
Neither sidecar may hold such a list: both ask for pages of PAGE_SIZE (`limit`,
then `continue`), and each page's body is decoded one item at a time while it
streams in, so what stays in memory is one item and one chunk of the body,
whatever the page or the item holds. The caller reduces each item to what it
keeps (leviathan_config.worker_jobs.JobTally) and lets it go.

An answer that is not a list, an item larger than MAX_ITEM_CHARS, a continue token
the server repeats or more than MAX_PAGES pages raise ListError: the caller fails
closed (the scheduler) or reports a problem (the control plane), never goes on
with part of a list. No API calls here: `fetch` is the caller's.
"""

from __future__ import annotations

import codecs
import json
import re
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from typing import Any

# kubectl's own chunk size: a page of worker Jobs is about 3 MB on the wire.
PAGE_SIZE = 500
# 1,000,000 Jobs; a server that pages on forever is refused rather than followed.
MAX_PAGES = 2000
# etcd refuses objects over 1.5 MB; an item several times that is not a Job from an API server.
MAX_ITEM_CHARS = 8 * 1024 * 1024
CHUNK_BYTES = 64 * 1024

_DECODER = json.JSONDecoder()
_SPACE = re.compile(r"[ \t\n\r]*")


class ListError(ValueError):
    """The answer cannot be read as a complete list; the message says how."""


@dataclass(frozen=True)
class ListRead:
    """How a whole list was read: the number of pages (requests) and of items."""

    pages: int
    items: int


def read_pages(fetch: Callable[[str | None], Iterable[bytes]], on_item: Callable[[dict[str, Any]], None]) -> ListRead:
    """Every page of a list, following `continue` until the last: `fetch(token)` sends one request
    (token None for the first page) and returns its body as chunks of bytes."""
    token: str | None = None
    pages = items = 0
    while True:
        metadata, count = read_list(fetch(token), on_item)
        pages += 1
        items += count
        following = metadata.get("continue") or None
        if following is None:
            return ListRead(pages, items)
        if not isinstance(following, str):
            raise ListError("its continue token is not a string")
        if following == token:
            raise ListError(f"the API server answered page {pages} with the continue token it was sent")
        if pages >= MAX_PAGES:
            raise ListError(f"it goes on past {MAX_PAGES} pages of {PAGE_SIZE}")
        token = following


def read_list(chunks: Iterable[bytes], on_item: Callable[[dict[str, Any]], None]) -> tuple[dict[str, Any], int]:
    """One list answer (`{"kind": ..., "metadata": {...}, "items": [...]}`), streamed: `on_item` is called
    with each item as soon as it is decoded; returns the list's metadata and the number of items."""
    reader = _Reader(chunks)
    try:
        return _read_list(reader, on_item)
    finally:
        reader.close()


def _read_list(reader: _Reader, on_item: Callable[[dict[str, Any]], None]) -> tuple[dict[str, Any], int]:
    metadata: dict[str, Any] = {}
    count = 0
    items_seen = False
    reader.take("{", "it is not a JSON object")
    if reader.peek() == "}":
        raise ListError("it has no items")
    while True:
        key = reader.value()
        if not isinstance(key, str):
            raise ListError("it is not a JSON object")
        reader.take(":", "it is not JSON")
        if key == "items":
            items_seen = True
            reader.take("[", "its items are not a list")
            if reader.peek() == "]":
                reader.skip()
            else:
                while True:
                    item = reader.value()
                    if not isinstance(item, dict):
                        raise ListError(f"its item {count + 1} is not an object")
                    count += 1
                    on_item(item)
                    del item
                    if reader.next_of(",]", "its items are not a list") == "]":
                        break
        else:
            value = reader.value()  # kind, apiVersion, metadata: small
            if key == "metadata":
                if not isinstance(value, dict):
                    raise ListError("its metadata is not an object")
                metadata = value
        if reader.next_of(",}", "it is not JSON") == "}":
            break
    if not items_seen:
        raise ListError("it has no items")
    return metadata, count


class _Reader:
    """JSON values decoded one at a time from a stream of bytes, holding only what is not decoded yet."""

    def __init__(self, chunks: Iterable[bytes]) -> None:
        self._source = chunks
        self._chunks: Iterator[bytes] = iter(chunks)
        self._utf8 = codecs.getincrementaldecoder("utf-8")()
        self._text = ""
        self._pos = 0
        self._ended = False

    def close(self) -> None:
        close = getattr(self._source, "close", None)
        if close is not None:
            close()

    def _fill(self) -> bool:
        """Append the next chunk's text, dropping what was decoded; False at the end of the body."""
        while not self._ended:
            try:
                chunk = next(self._chunks)
            except StopIteration:
                self._ended = True
                chunk = None
            try:
                text = self._utf8.decode(b"", final=True) if chunk is None else self._utf8.decode(chunk)
            except UnicodeDecodeError:
                raise ListError("it is not UTF-8") from None
            if text:
                self._text = self._text[self._pos :] + text
                self._pos = 0
                if len(self._text) > MAX_ITEM_CHARS + CHUNK_BYTES:
                    raise ListError(f"one of its values is larger than {MAX_ITEM_CHARS // (1024 * 1024)} MiB")
                return True
        return False

    def peek(self) -> str:
        """The next character that is not white space."""
        while True:
            self._pos = _SPACE.match(self._text, self._pos).end()  # type: ignore[union-attr]
            if self._pos < len(self._text):
                return self._text[self._pos]
            if not self._fill():
                raise ListError("it ends before the list does")

    def skip(self) -> None:
        self._pos += 1

    def take(self, char: str, problem: str) -> None:
        if self.peek() != char:
            raise ListError(problem)
        self.skip()

    def next_of(self, chars: str, problem: str) -> str:
        found = self.peek()
        if found not in chars:
            raise ListError(problem)
        self.skip()
        return found

    def value(self) -> Any:
        self.peek()
        while True:
            try:
                value, end = _DECODER.raw_decode(self._text, self._pos)
            except json.JSONDecodeError:
                if not self._fill():
                    raise ListError("it is not JSON") from None
                continue
            # A number or literal that ends the text so far may go on in the next chunk.
            if end == len(self._text) and not isinstance(value, dict | list | str) and self._fill():
                continue
            self._pos = end
            return value
