"""The control plane's Kubernetes API calls, in a process of their own (issue 20).

The server process never loads the kubernetes client and never decodes an API
answer: decoding a list of thousands of Jobs holds the GIL for as long as it takes,
and every request to /v1/autonomy/status would wait for it. This process, started
by ClusterWatch (cluster.py) with `python -m leviathan_control_plane.api_process`,
makes the calls and answers with the little the control plane keeps: the ConfigMap's
resourceVersion and stamp, the paused tasks, whether an Event was created. The Job
list is read in pages, each Job reduced as it streams in (leviathan_config.job_list),
so its memory does not grow with the namespace either.

One JSON object a line on stdin, one answer a line on stdout:

  {"call": "read", "configmap": NAME, "jobs": null or
     {"selector": "k=v,...", "worker_selector": {...}, "tasks": [...], "pause_after_failures": N}}
    -> {"configmap": null or {"metadata": {"resourceVersion": ..., "annotations": {STAMP: ...}}},
        "paused": null or [[task, consecutive_failures, last_failed_job], ...], "jobs": N, "pages": N}
  {"call": "event", "event": {...}}  -> {"created": true or false}

and {"problem": "..."} for any call that failed. The first line, before any request, is
{"namespace": NS} or {"problem": ...} (then it exits). It exits when stdin closes, so it
never outlives the server.
"""

from __future__ import annotations

import argparse
import json
import signal
import sys
from collections.abc import Iterator
from typing import Any

from leviathan_config.job_list import CHUNK_BYTES, PAGE_SIZE, ListError, ListRead, read_pages
from leviathan_config.kube_credentials import (
    CredentialsError,
    in_cluster,
    kubeconfig_namespace,
    load_configuration,
    pod_namespace,
)
from leviathan_config.worker_jobs import JobTally, PauseRule

NAMESPACE_ENV = "LEVIATHAN_NAMESPACE"
STAMP_ANNOTATION = "autonomy.leviathan.io/switched-by"
# (connect, read) seconds for one API call: the next poll is the retry.
REQUEST_TIMEOUT = (3.0, 5.0)


class ApiProblem(Exception):
    def __init__(self, problem: str) -> None:
        super().__init__(problem)
        self.problem = problem


class Api:
    """The calls, with the official client; JSON in and out (no model classes)."""

    def __init__(self, api_client: Any, namespace: str) -> None:
        from kubernetes import client

        self._core = client.CoreV1Api(api_client)
        self._batch = client.BatchV1Api(api_client)
        self.namespace = namespace

    @classmethod
    def connect(cls, namespace: str | None) -> Api:
        try:
            from kubernetes import client
        except ImportError as exc:
            raise ApiProblem(f"the kubernetes client is not installed: {exc}") from None
        try:
            configuration = load_configuration()  # no retries of its own: the next poll is the retry
        except CredentialsError as exc:
            raise ApiProblem(f"cannot load Kubernetes credentials: {exc}"[:300]) from None
        namespace = namespace or (pod_namespace() if in_cluster() else kubeconfig_namespace())
        if not namespace:
            raise ApiProblem(f"cannot tell the namespace: set {NAMESPACE_ENV}")
        return cls(client.ApiClient(configuration), namespace)

    def get_configmap(self, name: str) -> dict[str, Any] | None:
        response = self._call(
            f"get configmaps/{name}",
            lambda: self._core.read_namespaced_config_map(
                name, self.namespace, _preload_content=False, _request_timeout=REQUEST_TIMEOUT
            ),
            missing_ok=True,
        )
        return None if response is None else self._json(f"get configmaps/{name}", response)

    def tally_jobs(self, selector: str, tally: JobTally) -> ListRead:
        """Every Job the selector matches, page by page, each reduced into `tally` as it streams in."""
        what = "list jobs.batch"

        def fetch(token: str | None) -> Iterator[bytes]:
            response = self._call(
                what,
                lambda: self._batch.list_namespaced_job(
                    self.namespace,
                    label_selector=selector,
                    limit=PAGE_SIZE,
                    **({"_continue": token} if token else {}),
                    _preload_content=False,
                    _request_timeout=REQUEST_TIMEOUT,
                ),
            )
            return _body(response)

        try:
            return read_pages(fetch, tally.add)
        except ListError as exc:
            raise ApiProblem(
                f"the Kubernetes API answered {what} with something that is not a Job list ({exc})"
            ) from None
        except ApiProblem:
            raise
        except Exception as exc:  # urllib3 and socket errors while the body streams in
            reason = getattr(exc, "reason", None) or exc
            raise ApiProblem(
                f"the Kubernetes API broke off {what} while it was read: {type(reason).__name__}"[:300]
            ) from None

    def create_event(self, event: dict[str, Any]) -> bool:
        """True when created; False when another replica already recorded this change."""
        response = self._call(
            "create events",
            lambda: self._core.create_namespaced_event(
                self.namespace, event, _preload_content=False, _request_timeout=REQUEST_TIMEOUT
            ),
            exists_ok=True,
        )
        if response is None:
            return False
        response.drain_conn()
        response.release_conn()
        return True

    def _call(self, what: str, request: Any, missing_ok: bool = False, exists_ok: bool = False) -> Any:
        from kubernetes.client.exceptions import ApiException

        try:
            return request()
        except ApiException as exc:
            if (exc.status == 404 and missing_ok) or (exc.status == 409 and exists_ok):
                return None
            hint = ": check the control plane's Role" if exc.status in (401, 403) else ""
            if exc.status == 410 and what.startswith("list"):
                hint = (
                    ": the list changed too much while it was read page by page (its continue token expired); "
                    "the next poll lists again"
                )
            raise ApiProblem(
                f"Kubernetes API answered {what} in namespace {self.namespace} with {exc.status} {exc.reason}{hint}"
            ) from None
        except Exception as exc:  # urllib3 and socket errors: the API is unreachable
            reason = getattr(exc, "reason", None) or exc
            raise ApiProblem(f"cannot reach the Kubernetes API for {what}: {type(reason).__name__}"[:300]) from None

    @staticmethod
    def _json(what: str, response: Any) -> Any:
        try:
            return json.loads(response.data)
        except Exception:  # not JSON, or the body broke off
            raise ApiProblem(f"the Kubernetes API answered {what} with something that is not JSON") from None
        finally:
            response.release_conn()


def _body(response: Any) -> Iterator[bytes]:
    """A response's body in chunks; the connection goes back to the pool only when read to the end."""
    finished = False
    try:
        yield from response.stream(CHUNK_BYTES)
        finished = True
    finally:
        if finished:
            response.release_conn()
        else:
            response.close()


def read(api: Api, request: dict[str, Any]) -> dict[str, Any]:
    configmap = api.get_configmap(request["configmap"])
    kept: dict[str, Any] | None = None
    if configmap is not None:
        metadata = configmap.get("metadata") or {}
        annotations = metadata.get("annotations") or {}
        kept = {"metadata": {"resourceVersion": metadata.get("resourceVersion", "")}}
        if STAMP_ANNOTATION in annotations:
            kept["metadata"]["annotations"] = {STAMP_ANNOTATION: annotations[STAMP_ANNOTATION]}
    del configmap
    answer: dict[str, Any] = {"configmap": kept, "paused": None, "jobs": None, "pages": None}
    jobs = request.get("jobs")
    if jobs is not None:
        rule = PauseRule(tuple(jobs["tasks"]), jobs["worker_selector"], jobs["pause_after_failures"])
        tally = JobTally(rule.selector, rule.tasks)
        listed = api.tally_jobs(jobs["selector"], tally)
        answer["paused"] = [[p.task, p.consecutive_failures, p.last_failed_job] for p in tally.paused(rule)]
        answer["jobs"], answer["pages"] = listed.items, listed.pages
    return answer


def answer(api: Api, request: dict[str, Any]) -> dict[str, Any]:
    try:
        if request.get("call") == "read":
            return read(api, request)
        if request.get("call") == "event":
            return {"created": api.create_event(request["event"])}
        return {"problem": f"unknown call {request.get('call')!r}"}
    except ApiProblem as exc:
        return {"problem": exc.problem}
    except Exception as exc:  # a bug or odd input: an answer, never a dead reader
        return {"problem": f"{type(exc).__name__}: {exc}"[:300]}


def _say(message: dict[str, Any]) -> None:
    sys.stdout.write(json.dumps(message) + "\n")
    sys.stdout.flush()


def main(argv: list[str] | None = None) -> int:
    # Ctrl-C in a terminal reaches the whole process group: the server stops, and this one with it (stdin closes).
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    parser = argparse.ArgumentParser(prog="python -m leviathan_control_plane.api_process")
    parser.add_argument("--namespace", default="")
    arguments = parser.parse_args(argv)
    try:
        api = Api.connect(arguments.namespace or None)
    except ApiProblem as exc:
        _say({"problem": exc.problem})
        return 1
    _say({"namespace": api.namespace})
    for line in sys.stdin:
        try:
            request = json.loads(line)
        except ValueError:
            _say({"problem": "the control plane sent a request that is not JSON"})
            continue
        _say(answer(api, request) if isinstance(request, dict) else {"problem": "a request is not an object"})
    return 0


if __name__ == "__main__":
    sys.exit(main())
