"""A file whose parsed content is kept current by the watcher.

Requests only read the cached value: no filesystem call on the request path
(a stat per request cost a fifth of the throughput). The watcher calls
`reload()` on every directory event and on its poll, and `reload()` re-reads
the whole file and compares content, never trusting event details.

A read that failed for a passing reason (out of file descriptors, an I/O
hiccup: see leviathan_config.is_transient) says nothing about the file, so
the last value read stays in force and the failure is reported as a problem,
never as a change.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Generic, TypeVar

T = TypeVar("T")


def no_transient_problem(value: object) -> str:
    return ""


class FollowedFile(Generic[T]):
    def __init__(
        self,
        path: str,
        load: Callable[[str, T | None], T],
        on_change: Callable[[T | None, T], None],
        transient_problem: Callable[[T], str] = no_transient_problem,
        on_problem: Callable[[FollowedFile[T], str], None] | None = None,
    ) -> None:
        """`transient_problem(value)` names a passing read failure ("" for none);
        `on_problem(file, problem)` hears when one starts, and with "" when reads work again."""
        self.path = path
        self._load = load
        self._on_change = on_change
        self._transient_problem = transient_problem
        self._on_problem = on_problem
        self._lock = threading.Lock()
        self._value: T | None = None
        # The passing read failure behind the value being kept; "" while reads work.
        self.problem = ""

    def get(self) -> T:
        """The content as of the last reload (the first call loads it)."""
        value = self._value
        if value is None:
            self.reload()
            value = self._value
        assert value is not None
        return value

    def reload(self) -> None:
        with self._lock:
            # The loader gets the current value, so it can skip work when nothing changed.
            value = self._load(self.path, self._value)
            problem = self._transient_problem(value)
            if problem != self.problem:
                self.problem = problem
                if self._on_problem is not None:
                    self._on_problem(self, problem)
            if problem and self._value is not None:
                return  # keep the last value read: the file itself may be fine
            if value != self._value:
                previous, self._value = self._value, value
                self._on_change(previous, value)
