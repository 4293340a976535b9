"""Keep followed files current: directory events first, a poll as the safety net.

kubelet never touches `dev.yaml` itself. It writes a new `..<timestamp>`
directory, points `..data_tmp` at it, renames that over `..data` and deletes
the old directory, so the events to watch for happen in the mount directory.
The watch is non-recursive on that directory, and any event there triggers a
full re-read and content comparison of every followed file.

The poller re-reads everything twice a second, whatever the events said, and
re-arms the observer when its thread has died or the mount directory was
removed and came back.
"""

from __future__ import annotations

import contextlib
import logging
import os
import threading
from collections.abc import Sequence

from watchdog.events import FileSystemEvent, FileSystemEventHandler
from watchdog.observers import Observer
from watchdog.observers.api import BaseObserver, ObservedWatch

from leviathan_control_plane.followed_file import FollowedFile

log = logging.getLogger(__name__)

# Bounds how stale an answer can get if an event is missed or the observer dies.
POLL_INTERVAL_SECONDS = 0.5


class _ReloadOnEvent(FileSystemEventHandler):
    """One case per event kind that can mean new content."""

    def __init__(self, watcher: DirectoryWatcher) -> None:
        self._watcher = watcher

    def on_moved(self, event: FileSystemEvent) -> None:
        # kubelet's swap: `..data_tmp` renamed over `..data` switches every key at once.
        self._watcher.reload_all()

    def on_created(self, event: FileSystemEvent) -> None:
        # A new `..<timestamp>` dir, or a file re-created after a delete.
        self._watcher.reload_all()

    def on_deleted(self, event: FileSystemEvent) -> None:
        # The old `..<timestamp>` dir cleaned up, a file removed, or the mount itself gone.
        if event.src_path in self._watcher.directories:
            self._watcher.forget_directory(os.fsdecode(event.src_path))
        self._watcher.reload_all()

    def on_modified(self, event: FileSystemEvent) -> None:
        # An in-place write: local runs, or volumes that are not swapped atomically.
        self._watcher.reload_all()

    def on_closed(self, event: FileSystemEvent) -> None:
        # A writer closed the file, so its write is complete.
        self._watcher.reload_all()

    # on_opened, on_closed_no_write and on_accessed stay no-ops: our own reads
    # cause them, and reacting would loop.


class DirectoryWatcher:
    def __init__(
        self,
        files: Sequence[FollowedFile[object]],
        poll_interval: float = POLL_INTERVAL_SECONDS,
    ) -> None:
        self._files = list(files)
        self.directories = sorted({os.path.dirname(os.path.abspath(f.path)) for f in self._files})
        self._poll_interval = poll_interval
        self._handler = _ReloadOnEvent(self)
        self._arm_lock = threading.Lock()
        self._observer: BaseObserver | None = None
        # directory -> (watch, inode of the directory when the watch was made)
        self._watches: dict[str, tuple[ObservedWatch, int]] = {}
        self._removed: set[str] = set()
        self._stopping = threading.Event()
        self._poller: threading.Thread | None = None

    def start(self) -> None:
        self.reload_all()
        self._arm()
        self._poller = threading.Thread(target=self._poll, name="config-poller", daemon=True)
        self._poller.start()

    def stop(self) -> None:
        self._stopping.set()
        if self._poller is not None:
            self._poller.join(timeout=5)
        with self._arm_lock:
            if self._observer is not None:
                self._observer.stop()
                self._observer.join(timeout=5)
                self._observer = None
            self._watches.clear()

    @property
    def healthy(self) -> bool:
        """The poller runs and every existing directory has a live watch."""
        if self._poller is None or not self._poller.is_alive():
            return False
        if self._observer is None or not self._observer.is_alive():
            return not any(os.path.isdir(d) for d in self.directories)
        return all(d in self._watches and d not in self._removed for d in self.directories if os.path.isdir(d))

    def reload_all(self) -> None:
        for followed in self._files:
            followed.reload()

    def forget_directory(self, directory: str) -> None:
        """The directory was removed: the poller replaces its watch.

        Called from the observer's dispatch thread, which holds the
        observer's lock, so this only leaves a note; touching the observer
        here could deadlock against the poller.
        """
        self._removed.add(directory)

    def _poll(self) -> None:
        while not self._stopping.wait(self._poll_interval):
            try:
                self._arm()
                self.reload_all()
            except Exception:  # keep the safety net alive whatever happens
                log.exception("config poll failed; retrying in %.1fs", self._poll_interval)

    def _arm(self) -> None:
        with self._arm_lock:
            if self._stopping.is_set():
                return
            if self._observer is not None and not self._observer.is_alive():
                log.warning("file observer thread died; starting a new one")
                self._observer = None
                self._watches.clear()
            if self._observer is None:
                self._observer = Observer()
                self._observer.daemon = True
                self._observer.start()
            for directory in self.directories:
                self._arm_directory(self._observer, directory)

    def _arm_directory(self, observer: BaseObserver, directory: str) -> None:
        try:
            inode = os.stat(directory).st_ino
        except OSError:
            inode = None
        current = self._watches.get(directory)
        # A removed directory can come back with the same inode number.
        if current is not None and current[1] == inode and directory not in self._removed:
            return
        self._removed.discard(directory)
        if current is not None:
            self._watches.pop(directory)
            with contextlib.suppress(KeyError, OSError):
                observer.unschedule(current[0])
        if inode is None:
            return
        try:
            watch = observer.schedule(self._handler, directory, recursive=False)
        except OSError as exc:
            log.warning("cannot watch %s yet: %s", directory, exc.strerror or exc)
            return
        self._watches[directory] = (watch, inode)
        if current is not None or self._poller is not None:
            log.info("watching %s", directory)
        # The directory may have appeared together with the files in it.
        self.reload_all()
