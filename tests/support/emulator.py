"""A stateful Kubernetes API emulator (kmock) on loopback, for tests that run real clients against it.

kmock is asyncio-based; the tests are not. `KubeEmulator` runs it on its own
event loop in a background thread and does every read or change of its state
on that loop, so a test can seed objects, install reactions and read the
recorded requests while a subprocess talks to it over real HTTP.

    with KubeEmulator() as emulator:
        emulator.kubeconfig(tmp_path / "kubeconfig")
        emulator.seed(job("old", labels={"app": "x"}))
        emulator.react(lambda k: k["list"][:2] << 500)   # the first two lists answer 500
        ...run the client with KUBECONFIG=tmp_path / "kubeconfig"...
        assert emulator.requests() == [Call("GET", "LIST", "batch/jobs", "leviathan"), ...]

Things to know about kmock 0.8:
- It ignores labelSelector and fieldSelector: a list returns every object of
  the resource in the namespace.
- A create is stored even when a reaction answers it with an error, so an
  error reaction on create models "the server committed it, the reply was lost".
- A sliced reaction (`k["list"][:2]`) counts every matching request the server
  has seen, so install it before the requests it is meant for. `seed()` records
  no request, so it does not shift those counts.
- A callable reaction that returns None only observes the request, which then
  gets the normal answer; use it for side effects.
"""

from __future__ import annotations

import asyncio
import copy
import threading
from collections.abc import Callable, Iterable, Mapping
from pathlib import Path
from typing import Any, NamedTuple, TypeVar

import kmock
import yaml

JOBS = "batch/v1/jobs"
CRONJOBS = "batch/v1/cronjobs"
CONFIGMAPS = "v1/configmaps"
EVENTS = "v1/events"
NAMESPACE = "leviathan"

T = TypeVar("T")


class Call(NamedTuple):
    """One recorded request: ("GET", "LIST", "batch/jobs", "leviathan")."""

    method: str
    action: str | None
    resource: str | None
    namespace: str | None


class KubeEmulator:
    """kmock's KubernetesEmulator serving batch/v1 Jobs (and CronJobs, ConfigMaps, Events) on 127.0.0.1, in a thread."""

    def __init__(self) -> None:
        self._ready = threading.Event()
        self._thread: threading.Thread | None = None
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stop: asyncio.Event | None = None
        self._k: kmock.KubernetesEmulator | None = None
        self._error: BaseException | None = None
        self.url = ""

    # ---- lifecycle -------------------------------------------------------------------

    def start(self) -> KubeEmulator:
        self._thread = threading.Thread(target=self._run, name="kube-emulator", daemon=True)
        self._thread.start()
        if not self._ready.wait(timeout=15) or self._error is not None:
            raise RuntimeError(f"the Kubernetes emulator did not start: {self._error!r}")
        return self

    def stop(self) -> None:
        if self._loop is not None and self._stop is not None and self._thread and self._thread.is_alive():
            self._loop.call_soon_threadsafe(self._stop.set)
            self._thread.join(timeout=15)

    def __enter__(self) -> KubeEmulator:
        return self.start()

    def __exit__(self, *exc_info: object) -> None:
        self.stop()

    def _run(self) -> None:
        async def main() -> None:
            self._loop = asyncio.get_running_loop()
            self._stop = asyncio.Event()
            async with kmock.KubernetesEmulator() as k, kmock.Server(k) as server:
                k.resources[JOBS] = kmock.ResourceInfo(
                    kind="Job", namespaced=True, verbs={"list", "create", "get", "watch", "patch", "delete"}
                )
                k.resources[CONFIGMAPS] = kmock.ResourceInfo(
                    kind="ConfigMap", namespaced=True, verbs={"get", "list", "create", "patch", "delete"}
                )
                k.resources[CRONJOBS] = kmock.ResourceInfo(
                    kind="CronJob", namespaced=True, verbs={"get", "list", "create", "patch", "delete"}
                )
                k.resources[EVENTS] = kmock.ResourceInfo(kind="Event", namespaced=True, verbs={"list", "create", "get"})
                self._k = k
                self.url = str(server.url).rstrip("/")
                self._ready.set()
                await self._stop.wait()

        try:
            asyncio.run(main())
        except BaseException as exc:  # surfaced by start()
            self._error = exc
            self._ready.set()

    # ---- running code on the emulator's loop ----------------------------------------------

    def call(self, function: Callable[[kmock.KubernetesEmulator], T]) -> T:
        """Run `function(k)` on the emulator's loop, where kmock's state lives; return its result."""
        assert self._loop is not None and self._k is not None, "start() the emulator first"
        k = self._k

        async def run() -> T:
            return function(k)

        return asyncio.run_coroutine_threadsafe(run(), self._loop).result(timeout=15)

    def react(self, install: Callable[[kmock.KubernetesEmulator], object]) -> None:
        """Install reactions, e.g. `react(lambda k: k[kmock.action.CREATE] << 403)`."""
        self.call(install)

    # ---- state ------------------------------------------------------------------------------

    def seed(self, *objects: Mapping[str, Any], resource: str = JOBS) -> None:
        """Store objects as if they had been created earlier, without recording a request."""

        def store(k: kmock.KubernetesEmulator) -> None:
            for obj in objects:
                meta = obj["metadata"]
                k.objects[resource, meta.get("namespace", NAMESPACE), meta["name"]] = copy.deepcopy(dict(obj))

        self.call(store)

    def patch(self, name: str, changes: Mapping[str, Any], namespace: str = NAMESPACE, resource: str = JOBS) -> None:
        """Merge `changes` into a stored object (e.g. a status), without recording a request."""
        self.call(lambda k: k.objects[resource, namespace, name].patch(copy.deepcopy(dict(changes))))

    def jobs(self, namespace: str | None = None) -> list[dict[str, Any]]:
        """The stored Jobs (not deleted), in the order they first appeared."""

        def read(k: kmock.KubernetesEmulator) -> list[dict[str, Any]]:
            found = []
            for (resource, ns, _), obj in k.objects.items():
                if resource.plural == "jobs" and not obj.deleted and (namespace is None or ns == namespace):
                    found.append(copy.deepcopy(dict(obj.raw)))
            return found

        return self.call(read)

    def events(self) -> list[dict[str, Any]]:
        """The stored core v1 Events, in the order they first appeared."""

        def read(k: kmock.KubernetesEmulator) -> list[dict[str, Any]]:
            stored = k.objects.items()
            return [copy.deepcopy(dict(o.raw)) for (resource, _, _), o in stored if resource.plural == "events"]

        return self.call(read)

    def requests(self) -> list[Call]:
        """Every request served so far, in order."""

        def read(k: kmock.KubernetesEmulator) -> list[Call]:
            return [_call_of(request) for request in k]

        return self.call(read)

    def bodies(self, action: str = "CREATE") -> list[Any]:
        """The payloads of the recorded requests of one action (e.g. the manifests sent to create)."""

        def read(k: kmock.KubernetesEmulator) -> list[Any]:
            return [copy.deepcopy(r.data) for r in k if r.action is not None and r.action.value == action]

        return self.call(read)

    def params(self, action: str = "LIST") -> list[dict[str, str]]:
        """The query parameters of the recorded requests of one action (e.g. the labelSelector of lists)."""

        def read(k: kmock.KubernetesEmulator) -> list[dict[str, str]]:
            return [dict(r.params) for r in k if r.action is not None and r.action.value == action]

        return self.call(read)

    # ---- clients ------------------------------------------------------------------------------

    def kubeconfig(self, path: Path, namespace: str | None = NAMESPACE) -> Path:
        """Write a kubeconfig for this emulator (token auth, plain HTTP); return `path`."""
        return write_kubeconfig(path, self.url, namespace)


def write_kubeconfig(path: Path, server: str, namespace: str | None = NAMESPACE) -> Path:
    """A kubeconfig with one context pointing at `server`."""
    context: dict[str, Any] = {"cluster": "emu", "user": "tester"}
    if namespace:
        context["namespace"] = namespace
    document = {
        "apiVersion": "v1",
        "kind": "Config",
        "clusters": [{"name": "emu", "cluster": {"server": server}}],
        "users": [{"name": "tester", "user": {"token": "test-token"}}],
        "contexts": [{"name": "emu", "context": context}],
        "current-context": "emu",
    }
    path.write_text(yaml.safe_dump(document, sort_keys=False))
    return path


def _call_of(request: kmock.Request) -> Call:
    resource = request.resource
    described = None
    if resource is not None:
        described = f"{resource.group}/{resource.plural}" if resource.group else resource.plural
    return Call(
        method=request.method.value,
        action=request.action.value if request.action is not None else None,
        resource=described,
        namespace=request.namespace,
    )


# ---- objects ---------------------------------------------------------------------------------


def job(
    name: str,
    labels: Mapping[str, str],
    namespace: str = NAMESPACE,
    finished: str | None = None,
) -> dict[str, Any]:
    """A minimal Job manifest; `finished` is None (active), "Complete" or "Failed"."""
    manifest: dict[str, Any] = {
        "apiVersion": "batch/v1",
        "kind": "Job",
        "metadata": {"name": name, "namespace": namespace, "labels": dict(labels)},
        "spec": {"template": {"spec": {"restartPolicy": "Never", "containers": [{"name": "c", "image": "busybox"}]}}},
    }
    if finished is not None:
        manifest["status"] = finished_status(finished)
    return manifest


def finished_status(condition: str = "Complete") -> dict[str, Any]:
    return {"conditions": [{"type": condition, "status": "True"}]}


def job_list(items: Iterable[Mapping[str, Any]] = ()) -> dict[str, Any]:
    """A JobList body, for callable list reactions."""
    return {"apiVersion": "batch/v1", "kind": "JobList", "metadata": {}, "items": [dict(item) for item in items]}
