"""The control plane's Job-list decoder, in a process of its own (issue 20).

Decoding a list of thousands of Jobs is CPU work that holds the GIL: in the server
process, every request to /v1/autonomy/status would wait for it (1.8 s for 10,000
Jobs before this). So the server's API thread (cluster.py) makes the requests and
only copies each page's body, as it streams in, to this process, which decodes it
item by item (leviathan_config.job_list), reduces each Job into a JobTally and
answers with the paused tasks. It imports neither the kubernetes client nor the
server: a few MiB.

On stdin, a request line, then for each page this process asks for, the page's
body as frames (4-byte big-endian length, then that many bytes; length 0 ends the
body, ABORT means the request failed and the list stops):

  {"call": "tally", "worker_selector": {...}, "tasks": [...], "pause_after_failures": N}

On stdout, one JSON line at a time:

  {"fetch": null or TOKEN}   send the page for this continue token (null: the first)
  {"paused": [[task, consecutive_failures, last_failed_job], ...], "jobs": N, "pages": N}
  {"problem": "..."}         the answer is not a whole Job list; nothing else was decided
  {"aborted": true}          after an ABORT frame

The first line, before any request, is {"ready": true}. It exits when stdin closes,
so it never outlives the server.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import sys
from collections.abc import Iterator
from typing import Any, BinaryIO

from leviathan_config.job_list import ListError, read_pages
from leviathan_config.worker_jobs import JobTally, PauseRule

END = 0
ABORT = 0xFFFFFFFF
DECODER_NICENESS = 10


class Aborted(Exception):
    """The server's request for a page failed: the list stops without an answer of its own."""


class Closed(Exception):
    """stdin closed mid-list: the server is gone."""


def _exactly(stream: BinaryIO, size: int) -> bytes:
    data = stream.read(size)
    if data is None or len(data) < size:
        raise Closed()
    return data


def frames(stream: BinaryIO) -> Iterator[bytes]:
    """One body's frames, up to its end; read to the end even when the reader stops early."""
    done = False
    try:
        while True:
            size = int.from_bytes(_exactly(stream, 4), "big")
            if size == END:
                done = True
                return
            if size == ABORT:
                done = True
                raise Aborted()
            yield _exactly(stream, size)
    finally:
        while not done:  # the decoder gave up on this body: skip the rest of it, to stay in step
            size = int.from_bytes(_exactly(stream, 4), "big")
            if size in (END, ABORT):
                done = True
            else:
                _exactly(stream, size)


def tally(request: dict[str, Any], stdin: BinaryIO) -> dict[str, Any]:
    rule = PauseRule(tuple(request["tasks"]), request["worker_selector"], request["pause_after_failures"])
    jobs = JobTally(rule.selector, rule.tasks)

    def fetch(token: str | None) -> Iterator[bytes]:
        say({"fetch": token})
        return frames(stdin)

    try:
        read = read_pages(fetch, jobs.add)
    except ListError as exc:
        return {"problem": f"the Kubernetes API answered list jobs.batch with something that is not a Job list ({exc})"}
    except Aborted:
        return {"aborted": True}
    paused = [[p.task, p.consecutive_failures, p.last_failed_job] for p in jobs.paused(rule)]
    return {"paused": paused, "jobs": read.items, "pages": read.pages}


def say(message: dict[str, Any]) -> None:
    sys.stdout.write(json.dumps(message) + "\n")
    sys.stdout.flush()


def main() -> int:
    # Ctrl-C in a terminal reaches the whole process group: the server stops, and this one with it (stdin closes).
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    # Below the server on a busy node: a status request must not wait for a core while a list is decoded.
    with contextlib.suppress(OSError):
        os.nice(DECODER_NICENESS)
    stdin = sys.stdin.buffer
    say({"ready": True})
    while line := stdin.readline():
        try:
            request = json.loads(line)
            if not isinstance(request, dict) or request.get("call") != "tally":
                raise ValueError("not a tally request")
            say(tally(request, stdin))
        except Closed:
            return 0
        except (ValueError, KeyError, TypeError) as exc:  # a bug in the server's side: an answer, never a dead decoder
            say({"problem": f"the Job-list decoder got a request it cannot use: {exc}"[:300]})
    return 0


if __name__ == "__main__":
    sys.exit(main())
