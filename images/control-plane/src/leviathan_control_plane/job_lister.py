"""The control plane's Job list, in a process of its own (issue 20).

Listing thousands of Jobs is work that holds the GIL: reading the bodies and decoding
them. In the server process, every request to /v1/autonomy/status would wait for it
(1.8 s for 10,000 Jobs with one json.loads; 28 ms when the server's API thread still
read the bodies and copied them to a decoder). So this process does the whole list:
the requests for each page (`limit`/`continue`), reading each body as it streams in,
decoding it item by item (leviathan_config.job_list) and reducing each Job into a
JobTally; it answers with the paused tasks alone. The server's API thread (cluster.py)
only sends one small request line per poll and reads one small answer line.

The connection comes from the server, which loads the credentials the one way both
sidecars do (leviathan_config.kube_credentials.load_configuration): the API server's
URL, the CA, client certificate and key files, and the authorization header as the
kubernetes client would send it, fresh for each list (a service-account token is
re-read as it rotates). So this process needs no kubernetes client (46 MiB): HTTP is
the standard library's, and it stays at about 15 MiB.

On stdin, one JSON line per list:

  {"call": "tally", "api": {"host": URL, "headers": {...}, "ca_file": ..., "cert_file": ...,
   "key_file": ..., "verify": true, "server_name": ...}, "namespace": ..., "label_selector": ...,
   "worker_selector": {...}, "tasks": [...], "pause_after_failures": N}

On stdout, one JSON line for each:

  {"paused": [[task, consecutive_failures, last_failed_job], ...], "jobs": N, "pages": N}
  {"problem": "..."}   the list could not be read to its last page; nothing else was decided

The first line, before any request, is {"ready": true}. It exits when stdin closes,
so it never outlives the server.
"""

from __future__ import annotations

import contextlib
import http.client
import json
import os
import signal
import ssl
import sys
from collections.abc import Iterator
from typing import Any
from urllib.parse import quote, urlencode, urlsplit

from leviathan_config.job_list import CHUNK_BYTES, PAGE_SIZE, ListError, read_pages
from leviathan_config.worker_jobs import JobTally, PauseRule

LISTER_NICENESS = 10
# (connect, read) seconds for one API call, here and in the server's: the next poll is the retry.
REQUEST_TIMEOUT = (3.0, 5.0)
WHAT = "list jobs.batch"
# Names this process's requests in the API server's audit log.
USER_AGENT = "leviathan-control-plane-job-lister"
# A refusal's body (a Status) is read up to this much, then the connection is dropped.
ERROR_BODY_BYTES = 64 * 1024


class Problem(Exception):
    """The list cannot be read to its end; the message says why, as GET /v1/autonomy shows it."""


def answered(what: str, namespace: str, status: int, reason: str) -> str:
    """The problem for an API answer that is not a success, for every call the control plane makes."""
    hint = ": check the control plane's Role" if status in (401, 403) else ""
    if status == 410 and what.startswith("list"):
        hint = (
            ": the list changed too much while it was read page by page (its continue token expired); "
            "the next poll lists again"
        )
    return f"Kubernetes API answered {what} in namespace {namespace} with {status} {reason}{hint}"


class _TlsConnection(http.client.HTTPConnection):
    """HTTPS, with the certificate checked against `server_name` (the kubeconfig's tls-server-name, else the host)."""

    default_port = 443

    def __init__(self, host: str, port: int | None, context: ssl.SSLContext, server_name: str) -> None:
        super().__init__(host, port, timeout=REQUEST_TIMEOUT[0])
        self._tls, self._server_name = context, server_name

    def connect(self) -> None:
        super().connect()
        self.sock = self._tls.wrap_socket(self.sock, server_hostname=self._server_name)


def _connection(api: dict[str, Any]) -> tuple[http.client.HTTPConnection, str]:
    """A connection to the API server (opened by its first request), and the URL path it is served under."""
    url = urlsplit(api["host"])
    if url.scheme not in ("http", "https") or not url.hostname:
        raise Problem(f"the Kubernetes API's address is not an http(s) URL: {api['host']!r}"[:300])
    if url.scheme == "http":
        return http.client.HTTPConnection(url.hostname, url.port, timeout=REQUEST_TIMEOUT[0]), url.path.rstrip("/")
    try:
        context = ssl.create_default_context(cafile=api.get("ca_file") or None)
        if not api.get("verify", True):
            context.check_hostname = False
            context.verify_mode = ssl.CERT_NONE
        if api.get("cert_file"):
            context.load_cert_chain(api["cert_file"], api.get("key_file") or None)
    except (OSError, ssl.SSLError) as exc:
        raise Problem(f"cannot load the Kubernetes API's TLS files: {exc}"[:300]) from None
    server_name = api.get("server_name") or url.hostname
    return _TlsConnection(url.hostname, url.port, context, server_name), url.path.rstrip("/")


def tally(request: dict[str, Any]) -> dict[str, Any]:
    rule = PauseRule(tuple(request["tasks"]), request["worker_selector"], request["pause_after_failures"])
    namespace = str(request["namespace"])
    headers = {**request["api"]["headers"], "Accept": "application/json", "User-Agent": USER_AGENT}
    jobs = JobTally(rule.selector, rule.tasks)
    try:
        connection, prefix = _connection(request["api"])
    except Problem as exc:
        return {"problem": str(exc)}
    path = f"{prefix}/apis/batch/v1/namespaces/{quote(namespace, safe='')}/jobs"

    def fetch(token: str | None) -> Iterator[bytes]:
        query = {"labelSelector": request["label_selector"], "limit": PAGE_SIZE}
        if token:
            query["continue"] = token
        try:
            connection.request("GET", f"{path}?{urlencode(query)}", headers=headers)
            if connection.sock is not None:
                connection.sock.settimeout(REQUEST_TIMEOUT[1])
            response = connection.getresponse()
        except (OSError, http.client.HTTPException) as exc:
            raise Problem(f"cannot reach the Kubernetes API for {WHAT}: {type(exc).__name__}") from None
        if response.status != 200:
            with contextlib.suppress(OSError, http.client.HTTPException):
                response.read(ERROR_BODY_BYTES)
            connection.close()
            raise Problem(answered(WHAT, namespace, response.status, response.reason))
        return _body(response)

    try:
        read = read_pages(fetch, jobs.add)
    except Problem as exc:
        return {"problem": str(exc)}
    except ListError as exc:
        return {"problem": f"the Kubernetes API answered {WHAT} with something that is not a Job list ({exc})"}
    finally:
        connection.close()
    paused = [[p.task, p.consecutive_failures, p.last_failed_job] for p in jobs.paused(rule)]
    return {"paused": paused, "jobs": read.items, "pages": read.pages}


def _body(response: http.client.HTTPResponse) -> Iterator[bytes]:
    """A page's body in chunks as it streams in (chunked or not); a break-off or a stall is a Problem."""
    while True:
        try:
            chunk = response.read(CHUNK_BYTES)
        except (OSError, http.client.HTTPException) as exc:
            raise Problem(f"the Kubernetes API broke off {WHAT} while it was read: {type(exc).__name__}") from None
        if not chunk:
            return
        yield chunk


def say(message: dict[str, Any]) -> None:
    sys.stdout.write(json.dumps(message) + "\n")
    sys.stdout.flush()


def main() -> int:
    # Ctrl-C in a terminal reaches the whole process group: the server stops, and this one with it (stdin closes).
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    # Below the server on a busy node: a status request must not wait for a core while a list is read.
    with contextlib.suppress(OSError):
        os.nice(LISTER_NICENESS)
    say({"ready": True})
    while line := sys.stdin.buffer.readline():
        try:
            request = json.loads(line)
            if not isinstance(request, dict) or request.get("call") != "tally":
                raise ValueError("not a tally request")
            say(tally(request))
        except (ValueError, KeyError, TypeError) as exc:  # a bug in the server's side: an answer, never a dead lister
            say({"problem": f"the Job-list process got a request it cannot use: {exc}"[:300]})
    return 0


if __name__ == "__main__":
    sys.exit(main())
