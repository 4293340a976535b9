"""A file whose parsed content is kept current.

`get()` is the cheap check on the request path: one stat() that follows the
symlinks kubelet uses, and a re-read only when the stat result changed.
`reload()` re-reads the whole file and compares content; the watcher calls it
on every directory event and once a second as a safety net.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable
from typing import Generic, TypeVar

T = TypeVar("T")

Signature = tuple[object, ...]


def file_signature(path: str) -> Signature:
    """Identity and version of the file behind `path`, following symlinks.

    A kubelet swap points `..data` at a new directory, so the inode changes;
    an in-place write changes size or mtime; chmod changes ctime.
    """
    try:
        stat = os.stat(path)
    except FileNotFoundError:
        return ("missing",)
    except OSError as exc:
        return ("error", exc.errno)
    return (stat.st_dev, stat.st_ino, stat.st_size, stat.st_mtime_ns, stat.st_ctime_ns)


class FollowedFile(Generic[T]):
    def __init__(
        self,
        path: str,
        load: Callable[[str], T],
        on_change: Callable[[T | None, T], None],
    ) -> None:
        self.path = path
        self._load = load
        self._on_change = on_change
        self._lock = threading.Lock()
        self._signature: Signature | None = None
        self._value: T | None = None

    def get(self) -> T:
        if self._value is None or file_signature(self.path) != self._signature:
            self.reload()
        assert self._value is not None
        return self._value

    def reload(self) -> None:
        with self._lock:
            # Stat before reading: a write that lands mid-read leaves a stale
            # signature behind, so the next check reads again.
            signature = file_signature(self.path)
            value = self._load(self.path)
            self._signature = signature
            if value != self._value:
                previous, self._value = self._value, value
                self._on_change(previous, value)
