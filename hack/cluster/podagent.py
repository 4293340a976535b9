"""A small kubelet for the local cluster: runs the pods of our own images as local processes.

There is no container runtime here. kwok keeps the node alive and fakes the pods of
other images; this agent takes the pods whose every image is one of ours, and:

- gives each a network namespace on the cluster bridge, with /etc/hosts naming the Services;
- writes its ConfigMap, Secret, projected (service-account token) and downward-API volumes
  the way kubelet does (a `..<timestamp>` dir, `..data_tmp` renamed over `..data`, the old
  dir removed), and re-syncs them every --sync-period seconds;
- runs each container's command, with the image's entrypoint mapped to the .venv console
  script, its env (values, Secret/ConfigMap keys, downward API), user and groups;
- reports the pod's phase, readiness (its readinessProbe) and exit codes, serves its output
  to `kubectl logs` through kwok's Logs objects and `kubectl port-forward` through PortForward;
- answers Service ClusterIPs (a user-space kube-proxy) with a ready endpoint.

It acts as the node (system:node:<name>), so the API server's Node authorizer limits it to
what a kubelet may read.
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import contextlib
import ipaddress
import json
import logging
import os
import random
import re
import shutil
import signal
import subprocess
import sys
import threading
import time
import urllib.request
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from kubernetes import client, config
from kubernetes.client.exceptions import ApiException

log = logging.getLogger("podagent")
REPO = Path(__file__).resolve().parents[2]
VENV_BIN = REPO / ".venv" / "bin"


def now_rfc3339() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


# ---- images -------------------------------------------------------------------------


@dataclass(frozen=True)
class Image:
    entrypoint: list[str]
    cmd: list[str]
    user: tuple[int, int]


def read_images() -> dict[str, Image]:
    """Our images, from their Dockerfiles: repository name -> entrypoint, default args and user."""
    images = {}
    for dockerfile in sorted((REPO / "images").glob("*/Dockerfile")):
        entrypoint: list[str] = []
        cmd: list[str] = []
        user = (0, 0)
        for line in dockerfile.read_text(encoding="utf-8").splitlines():
            if line.startswith("ENTRYPOINT "):
                entrypoint = json.loads(line.split(" ", 1)[1])
            elif line.startswith("CMD "):
                cmd = json.loads(line.split(" ", 1)[1])
            elif line.startswith("USER "):
                uid, _, gid = line.split(" ", 1)[1].strip().partition(":")
                user = (int(uid), int(gid or uid))
        # The console script lives in the .venv that `make venv` made.
        entrypoint = [str(VENV_BIN / entrypoint[0]), *entrypoint[1:]] if entrypoint else []
        images[dockerfile.parent.name] = Image(entrypoint, cmd, user)
    return images


# ---- the kubelet-style volume writer ----------------------------------------------


def write_volume(directory: Path, files: dict[str, bytes], mode: int, owner: tuple[int, int] | None) -> bool:
    """Publish `files` in `directory` as kubelet does; False when the content is unchanged."""
    directory.mkdir(parents=True, exist_ok=True)
    data = directory / "..data"
    if data.is_symlink():
        current = directory / os.readlink(data)
        if _read_tree(current) == files:
            return False
    else:
        current = None
    stamp = directory / f"..{datetime.now(UTC).strftime('%Y_%m_%d_%H_%M_%S.%f')}"
    stamp.mkdir()
    for relative, content in files.items():
        target = stamp / relative
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_bytes(content)
        target.chmod(mode)
        if owner is not None:
            os.chown(target, *owner)
    stamp.chmod(0o755)
    tmp = directory / "..data_tmp"
    with contextlib.suppress(FileNotFoundError):
        tmp.unlink()
    tmp.symlink_to(stamp.name)
    os.rename(tmp, data)
    # The user-visible names point through ..data, so one rename switches every key at once.
    for top in {relative.split("/", 1)[0] for relative in files}:
        link = directory / top
        if not link.is_symlink():
            link.symlink_to(f"..data/{top}")
    for entry in directory.iterdir():
        if (
            entry.is_symlink()
            and not entry.name.startswith("..")
            and entry.name not in {r.split("/", 1)[0] for r in files}
        ):
            entry.unlink()
    if current is not None:
        shutil.rmtree(current, ignore_errors=True)
    return True


def _read_tree(root: Path) -> dict[str, bytes]:
    return {str(path.relative_to(root)): path.read_bytes() for path in root.rglob("*") if path.is_file()}


# ---- pods -----------------------------------------------------------------------------


class Unavailable(Exception):
    """Something the pod needs is not there yet (kubelet keeps the pod in ContainerCreating)."""


@dataclass
class Container:
    name: str
    process: subprocess.Popen[bytes] | None = None
    restarts: int = 0
    ready: bool = False
    exit_code: int | None = None
    started_at: str = ""
    finished_at: str = ""
    probe_failures: int = 0
    next_start: float = 0.0


@dataclass
class PodRun:
    uid: str
    name: str
    namespace: str
    ip: str
    netns: str
    root: Path
    containers: dict[str, Container] = field(default_factory=dict)
    last_sync: float = 0.0
    terminating: bool = False
    done: bool = False
    reported: str = ""


class Agent:
    def __init__(self, args: argparse.Namespace) -> None:
        self.args = args
        self.node = args.node
        self.run_dir = Path(args.run_dir).resolve()
        self.images = read_images()
        self.image_pattern = re.compile(args.images)
        configuration = client.Configuration()
        config.load_kube_config(args.kubeconfig, client_configuration=configuration)
        self.api_client = client.ApiClient(configuration)
        self.core = client.CoreV1Api(self.api_client)
        self.custom = client.CustomObjectsApi(self.api_client)
        self.discovery = client.DiscoveryV1Api(self.api_client)
        self.pods: dict[str, PodRun] = {}
        self.pool = ipaddress.ip_network(args.pod_cidr)
        self.used_ips: set[str] = {args.bridge_ip}
        self.services = ServiceProxy(self)
        self.stopping = threading.Event()

    # -- main loop: list this node's pods, act on each; a plain poll keeps it simple --

    def run(self) -> None:
        threading.Thread(target=self.services.run, name="services", daemon=True).start()
        (self.run_dir / "podagent.ready").touch()
        while not self.stopping.is_set():
            try:
                self.sync_once()
            except Exception:
                log.exception("sync failed; retrying")
            self.stopping.wait(0.3)
        for run in list(self.pods.values()):
            self.stop_pod(run, grace=2)

    def sync_once(self) -> None:
        pods = self.core.list_pod_for_all_namespaces(field_selector=f"spec.nodeName={self.node}").items
        seen = set()
        for pod in pods:
            if not self.is_ours(pod):
                continue
            seen.add(pod.metadata.uid)
            try:
                self.sync_pod(pod)
            except Exception as exc:
                log.exception("pod %s/%s: %s", pod.metadata.namespace, pod.metadata.name, exc)
        for uid in list(self.pods):
            if uid not in seen:  # deleted from the API: stop and forget it
                self.stop_pod(self.pods[uid], grace=0)
                self.cleanup(self.pods.pop(uid))

    def is_ours(self, pod: client.V1Pod) -> bool:
        containers = list(pod.spec.containers or []) + list(pod.spec.init_containers or [])
        return all(self.image_pattern.search(c.image or "") for c in containers)

    def sync_pod(self, pod: client.V1Pod) -> None:
        uid = pod.metadata.uid
        run = self.pods.get(uid)
        if run is None:
            if pod.status.phase in ("Succeeded", "Failed") or pod.metadata.deletion_timestamp:
                if pod.metadata.deletion_timestamp:
                    self.finish_delete(pod)
                return
            run = self.pods[uid] = self.setup(pod)
        if pod.metadata.deletion_timestamp:
            if not run.terminating:
                run.terminating = True
                grace = pod.metadata.deletion_grace_period_seconds or 0
                threading.Thread(target=self._terminate, args=(run, pod, grace), daemon=True).start()
            return
        if run.done:
            return
        if time.monotonic() - run.last_sync >= self.args.sync_period:
            try:
                self.write_volumes(pod, run)
            except Unavailable as exc:
                if not run.containers:
                    self.report(pod, run, waiting=str(exc))
                    return
                log.warning("pod %s: volume re-sync: %s", pod.metadata.name, exc)
            run.last_sync = time.monotonic()
        try:
            self.drive_containers(pod, run)
        except Unavailable as exc:
            # kubelet's CreateContainerConfigError: a missing key or an env form it cannot build.
            self.report(pod, run, waiting=str(exc))
            return
        self.report(pod, run)

    def _terminate(self, run: PodRun, pod: client.V1Pod, grace: int) -> None:
        try:
            self.stop_pod(run, grace=grace)
            run.done = True
            self.report(pod, run)
        except Exception:
            log.exception("pod %s/%s: stopping failed", run.namespace, run.name)
        self.finish_delete(pod)

    def finish_delete(self, pod: client.V1Pod) -> None:
        """What kubelet does last: delete the pod object for good once its containers are gone."""
        run = self.pods.pop(pod.metadata.uid, None)
        if run is not None:
            self.cleanup(run)
        try:
            # The grace period goes in the body: with a body, the API server ignores the query's.
            options = client.V1DeleteOptions(
                grace_period_seconds=0, preconditions=client.V1Preconditions(uid=pod.metadata.uid)
            )
            self.core.delete_namespaced_pod(pod.metadata.name, pod.metadata.namespace, body=options)
        except ApiException as exc:
            if exc.status != 404:
                log.warning(
                    "pod %s/%s: final delete failed: %s %s",
                    pod.metadata.namespace,
                    pod.metadata.name,
                    exc.status,
                    exc.body,
                )

    # -- setting a pod up and down --

    def setup(self, pod: client.V1Pod) -> PodRun:
        ip = self.allocate_ip()
        netns = self.args.netns_prefix + pod.metadata.uid[:8]
        root = self.run_dir / "pods" / pod.metadata.uid
        (root / "pids").mkdir(parents=True, exist_ok=True)
        (root / "logs").mkdir(exist_ok=True)
        run = PodRun(pod.metadata.uid, pod.metadata.name, pod.metadata.namespace, ip, netns, root)
        host_veth = self.host_veth(run.uid)
        commands = [
            ["ip", "netns", "add", netns],
            ["ip", "link", "add", host_veth, "type", "veth", "peer", "name", "eth0", "netns", netns],
            ["ip", "link", "set", host_veth, "master", self.args.bridge, "up"],
            ["ip", "-n", netns, "addr", "add", f"{ip}/{self.pool.prefixlen - 1}", "dev", "eth0"],
            ["ip", "-n", netns, "link", "set", "eth0", "up"],
            ["ip", "-n", netns, "link", "set", "lo", "up"],
            ["ip", "-n", netns, "route", "add", "default", "via", self.args.bridge_ip],
        ]
        for command in commands:
            subprocess.run(command, check=True, capture_output=True)
        self.write_hosts(run)
        log.info("pod %s/%s: namespace %s, address %s", run.namespace, run.name, netns, ip)
        self.register_kwok_objects(pod, run)
        return run

    def host_veth(self, uid: str) -> str:
        # Interface names are at most 15 characters: the bridge's name, then the pod's uid.
        return f"{self.args.bridge}{uid[:8]}"

    def allocate_ip(self) -> str:
        for address in self.pool.hosts():
            text = str(address)
            if text not in self.used_ips and int(address) & 0xFF >= 10:
                self.used_ips.add(text)
                return text
        raise RuntimeError("pod address pool exhausted")

    def write_hosts(self, run: PodRun) -> None:
        etc = Path("/etc/netns") / run.netns
        etc.mkdir(parents=True, exist_ok=True)
        lines = ["127.0.0.1 localhost", f"{run.ip} {run.name}"]
        for (namespace, name), ip in sorted(self.services.cluster_ips.items()):
            names = [f"{name}.{namespace}", f"{name}.{namespace}.svc", f"{name}.{namespace}.svc.cluster.local"]
            if namespace == run.namespace:
                names.insert(0, name)
            lines.append(f"{ip} {' '.join(names)}")
        text = "\n".join(lines) + "\n"
        hosts = etc / "hosts"
        if not hosts.exists() or hosts.read_text() != text:
            # In place: running pods see /etc/hosts through a bind mount of this very file.
            with open(hosts, "w", encoding="utf-8") as hosts_file:
                hosts_file.write(text)
        resolv = etc / "resolv.conf"
        if not resolv.exists():
            resolv.write_text(f"search {run.namespace}.svc.cluster.local svc.cluster.local cluster.local\n")

    def register_kwok_objects(self, pod: client.V1Pod, run: PodRun) -> None:
        """kwok serves `kubectl logs` and `port-forward` from these; they go with the pod (owner reference)."""
        owner = [{"apiVersion": "v1", "kind": "Pod", "name": pod.metadata.name, "uid": pod.metadata.uid}]
        logs = [
            {"containers": [c.name], "logsFile": str(run.root / "logs" / f"{c.name}.log")} for c in pod.spec.containers
        ]
        ports = sorted({p.container_port for c in pod.spec.containers for p in (c.ports or [])})
        objects = [("logs", {"logs": logs})]
        if ports:
            forwards = [{"ports": [port], "target": {"port": port, "address": run.ip}} for port in ports]
            objects.append(("portforwards", {"forwards": forwards}))
        for plural, spec in objects:
            body = {
                "apiVersion": "kwok.x-k8s.io/v1alpha1",
                "kind": "Logs" if plural == "logs" else "PortForward",
                "metadata": {"name": pod.metadata.name, "namespace": run.namespace, "ownerReferences": owner},
                "spec": spec,
            }
            for c in pod.spec.containers:
                (run.root / "logs" / f"{c.name}.log").touch()
            with contextlib.suppress(ApiException):
                self.custom.delete_namespaced_custom_object(
                    "kwok.x-k8s.io", "v1alpha1", run.namespace, plural, pod.metadata.name
                )
            self.custom.create_namespaced_custom_object("kwok.x-k8s.io", "v1alpha1", run.namespace, plural, body)

    def stop_pod(self, run: PodRun, grace: float) -> None:
        processes = [c.process for c in run.containers.values() if c.process and c.process.poll() is None]
        for process in processes:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, signal.SIGTERM)
        deadline = time.monotonic() + max(grace, 0.5)
        for process in processes:
            try:
                process.wait(timeout=max(0.0, deadline - time.monotonic()))
            except subprocess.TimeoutExpired:
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(process.pid, signal.SIGKILL)
                process.wait()
        for container in run.containers.values():
            if container.process is not None and container.exit_code is None:
                code = container.process.returncode
                container.exit_code = code if code >= 0 else 128 - code
                container.finished_at = now_rfc3339()

    def cleanup(self, run: PodRun) -> None:
        subprocess.run(["ip", "netns", "del", run.netns], capture_output=True)
        subprocess.run(["ip", "link", "del", self.host_veth(run.uid)], capture_output=True)
        shutil.rmtree(Path("/etc/netns") / run.netns, ignore_errors=True)
        shutil.rmtree(run.root, ignore_errors=True)
        self.used_ips.discard(run.ip)
        log.info("pod %s/%s: cleaned up", run.namespace, run.name)

    # -- volumes --

    def write_volumes(self, pod: client.V1Pod, run: PodRun) -> None:
        fs_group = (pod.spec.security_context and pod.spec.security_context.fs_group) or None
        for volume in pod.spec.volumes or []:
            directory = run.root / "volumes" / volume.name
            if volume.empty_dir is not None:
                if not directory.exists():
                    directory.mkdir(parents=True)
                    directory.chmod(0o1777)
                continue
            files, mode = self.volume_files(pod, run, volume)
            if files is None:
                continue
            owner = (0, fs_group) if fs_group is not None else None
            if write_volume(directory, files, mode, owner):
                log.info("pod %s/%s: volume %s written", run.namespace, run.name, volume.name)

    def volume_files(self, pod: client.V1Pod, run: PodRun, volume: Any) -> tuple[dict[str, bytes] | None, int]:
        if volume.config_map is not None:
            source = volume.config_map
            data = self.config_map_data(run.namespace, source.name, source.optional)
            return self.select_items(data, source.items), source.default_mode or 0o644
        if volume.secret is not None:
            source = volume.secret
            data = self.secret_data(run.namespace, source.secret_name, source.optional)
            return self.select_items(data, source.items), source.default_mode or 0o644
        if volume.downward_api is not None:
            files = {
                item.path: self.field_value(pod, run, item.field_ref).encode() for item in volume.downward_api.items
            }
            return files, volume.downward_api.default_mode or 0o644
        if volume.projected is not None:
            files: dict[str, bytes] = {}
            for source in volume.projected.sources:
                if source.service_account_token is not None:
                    files[source.service_account_token.path] = self.pod_token(pod, source.service_account_token)
                elif source.config_map is not None:
                    data = self.config_map_data(run.namespace, source.config_map.name, source.config_map.optional)
                    files.update(self.select_items(data, source.config_map.items))
                elif source.secret is not None:
                    data = self.secret_data(run.namespace, source.secret.name, source.secret.optional)
                    files.update(self.select_items(data, source.secret.items))
                elif source.downward_api is not None:
                    for item in source.downward_api.items:
                        files[item.path] = self.field_value(pod, run, item.field_ref).encode()
            return files, volume.projected.default_mode or 0o644
        log.warning("pod %s: volume %s has a kind this agent does not support", run.name, volume.name)
        return None, 0

    def config_map_data(self, namespace: str, name: str, optional: bool | None) -> dict[str, bytes]:
        config_map = self.read_source("configmap", self.core.read_namespaced_config_map, namespace, name, optional)
        if config_map is None:
            return {}
        data = {key: value.encode() for key, value in (config_map.data or {}).items()}
        data.update({key: base64.b64decode(value) for key, value in (config_map.binary_data or {}).items()})
        return data

    def secret_data(self, namespace: str, name: str, optional: bool | None) -> dict[str, bytes]:
        secret = self.read_source("secret", self.core.read_namespaced_secret, namespace, name, optional)
        if secret is None:
            return {}
        return {key: base64.b64decode(value) for key, value in (secret.data or {}).items()}

    @staticmethod
    def read_source(kind: str, read: Any, namespace: str, name: str, optional: bool | None) -> Any:
        """The ConfigMap or Secret a volume or env refers to; None when it is absent and optional."""
        try:
            return read(name, namespace)
        except ApiException as exc:
            if exc.status == 404 and optional:
                return None
            raise Unavailable(f'{kind} "{name}" not found') from None

    @staticmethod
    def select_items(data: dict[str, bytes], items: list[Any] | None) -> dict[str, bytes]:
        if not items:
            return data
        return {item.path: data[item.key] for item in items if item.key in data}

    def pod_token(self, pod: client.V1Pod, source: Any) -> bytes:
        request = client.AuthenticationV1TokenRequest(
            spec=client.V1TokenRequestSpec(
                audiences=[source.audience] if source.audience else [],
                expiration_seconds=source.expiration_seconds or 3607,
                bound_object_ref=client.V1BoundObjectReference(
                    api_version="v1", kind="Pod", name=pod.metadata.name, uid=pod.metadata.uid
                ),
            )
        )
        account = pod.spec.service_account_name or "default"
        answer = self.core.create_namespaced_service_account_token(account, pod.metadata.namespace, request)
        return answer.status.token.encode()

    def field_value(self, pod: client.V1Pod, run: PodRun, field_ref: Any) -> str:
        path = field_ref.field_path
        simple = {
            "metadata.name": pod.metadata.name,
            "metadata.namespace": pod.metadata.namespace,
            "metadata.uid": pod.metadata.uid,
            "spec.nodeName": pod.spec.node_name,
            "spec.serviceAccountName": pod.spec.service_account_name or "default",
            "status.podIP": run.ip,
            "status.hostIP": "127.0.0.1",
        }
        if path in simple:
            return simple[path] or ""
        match = re.fullmatch(r"metadata\.(labels|annotations)\['(.+)'\]", path)
        if match:
            values = (pod.metadata.labels if match.group(1) == "labels" else pod.metadata.annotations) or {}
            return values.get(match.group(2), "")
        raise Unavailable(f"unsupported fieldRef {path}")

    # -- containers --

    def drive_containers(self, pod: client.V1Pod, run: PodRun) -> None:
        restart = pod.spec.restart_policy or "Always"
        for spec in pod.spec.containers:
            container = run.containers.setdefault(spec.name, Container(spec.name))
            process = container.process
            if process is None:
                if time.monotonic() >= container.next_start:
                    self.start_container(pod, run, spec, container)
                continue
            code = process.poll()
            if code is None:
                self.probe(pod, run, spec, container)
                continue
            if container.exit_code is None:
                container.exit_code = code if code >= 0 else 128 - code  # killed by a signal, as a runtime reports it
                container.finished_at = now_rfc3339()
                container.ready = False
                log.info("pod %s/%s: container %s exited with %d", run.namespace, run.name, spec.name, code)
            if restart == "Always" or (restart == "OnFailure" and code != 0):
                # Back off like kubelet, but briefly: 1 s doubling to 10 s.
                container.next_start = time.monotonic() + min(10.0, 2.0**container.restarts)
                container.restarts += 1
                container.process = None
        finished = run.containers and all(
            c.process is not None and c.exit_code is not None for c in run.containers.values()
        )
        succeeded = all(c.exit_code == 0 for c in run.containers.values())
        if finished and (restart == "Never" or (restart == "OnFailure" and succeeded)):
            run.done = True

    def start_container(self, pod: client.V1Pod, run: PodRun, spec: Any, container: Container) -> None:
        image = self.images[self.image_name(spec.image)]
        argv = list(spec.command or image.entrypoint)
        argv += list(spec.args if spec.args is not None else ([] if spec.command else image.cmd))
        if argv and "/" not in argv[0] and (VENV_BIN / argv[0]).exists():
            argv[0] = str(VENV_BIN / argv[0])
        env = self.container_env(pod, run, spec)
        security = spec.security_context
        pod_security = pod.spec.security_context
        uid = (security and security.run_as_user) or (pod_security and pod_security.run_as_user) or image.user[0]
        gid = (security and security.run_as_group) or (pod_security and pod_security.run_as_group) or image.user[1]
        groups = [gid] + ([pod_security.fs_group] if pod_security and pod_security.fs_group else [])
        mounts = []
        for mount in spec.volume_mounts or []:
            target = mount.mount_path
            self.ensure_mountpoint(target)
            mounts.append(
                {"source": str(run.root / "volumes" / mount.name), "target": target, "readOnly": bool(mount.read_only)}
            )
        launch = {
            "argv": argv,
            "env": env,
            "uid": int(uid),
            "gid": int(gid),
            "groups": sorted(set(groups)),
            "workingDir": spec.working_dir or "",
            "mounts": mounts,
            "readOnlyRootFilesystem": bool(security and security.read_only_root_filesystem),
            "interpreterStage": str(run.root / "interpreter"),
        }
        launch_file = run.root / f"{spec.name}.launch.json"
        launch_file.write_text(json.dumps(launch))
        log_path = run.root / "logs" / f"{spec.name}.log"
        process = subprocess.Popen(
            [
                "ip",
                "netns",
                "exec",
                run.netns,
                sys.executable,
                str(Path(__file__).with_name("podexec.py")),
                str(launch_file),
            ],
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
        )
        (run.root / "pids" / spec.name).write_text(str(process.pid))
        for stream, pipe in (("stdout", process.stdout), ("stderr", process.stderr)):
            threading.Thread(target=copy_log, args=(pipe, log_path, stream), daemon=True).start()
        container.process = process
        container.exit_code = None
        container.ready = False
        container.probe_failures = 0
        container.started_at = now_rfc3339()
        log.info("pod %s/%s: started %s: %s", run.namespace, run.name, spec.name, " ".join(argv))

    def image_name(self, image: str) -> str:
        return re.split(r"[:@]", image.rsplit("/", 1)[-1], maxsplit=1)[0]

    @staticmethod
    def ensure_mountpoint(target: str) -> None:
        """An empty directory on the host to bind the volume over, inside the pod's own mount namespace.

        It is never removed: rmdir on a mount point detaches the mounts on it in every namespace.
        """
        Path(target).mkdir(parents=True, exist_ok=True)

    def container_env(self, pod: client.V1Pod, run: PodRun, spec: Any) -> dict[str, str]:
        env = {
            "PATH": f"{VENV_BIN}:/usr/local/bin:/usr/bin:/bin",
            "HOSTNAME": pod.metadata.name,
            "KUBERNETES_SERVICE_HOST": self.services.api_ip,
            "KUBERNETES_SERVICE_PORT": "443",
            "KUBERNETES_SERVICE_PORT_HTTPS": "443",
            "PYTHONDONTWRITEBYTECODE": "1",
        }
        for source in spec.env_from or []:
            prefix = source.prefix or ""
            if source.config_map_ref is not None:
                data = self.config_map_data(run.namespace, source.config_map_ref.name, source.config_map_ref.optional)
            else:
                data = self.secret_data(run.namespace, source.secret_ref.name, source.secret_ref.optional)
            env.update({prefix + key: value.decode() for key, value in data.items()})
        for variable in spec.env or []:
            if variable.value_from is None:
                env[variable.name] = re.sub(
                    r"\$\((\w+)\)", lambda m: env.get(m.group(1), m.group(0)), variable.value or ""
                )
                continue
            source = variable.value_from
            if source.field_ref is not None:
                env[variable.name] = self.field_value(pod, run, source.field_ref)
            elif source.secret_key_ref is not None or source.config_map_key_ref is not None:
                ref = source.secret_key_ref or source.config_map_key_ref
                kind, read = (
                    ("secret", self.secret_data) if source.secret_key_ref else ("configmap", self.config_map_data)
                )
                data = read(run.namespace, ref.name, ref.optional)
                if ref.key in data:
                    env[variable.name] = data[ref.key].decode()
                elif not ref.optional:
                    raise Unavailable(f'{kind} "{ref.name}" has no key {ref.key}')
            else:
                # resourceFieldRef: no chart pod uses it, and a made-up number would be worse than a clear stop.
                raise Unavailable(
                    f"env {variable.name}: this agent supports value, fieldRef, secretKeyRef and configMapKeyRef"
                )
        return env

    def probe(self, pod: client.V1Pod, run: PodRun, spec: Any, container: Container) -> None:
        for kind in ("readiness", "liveness"):
            probe = getattr(spec, f"{kind}_probe")
            if probe is None:
                if kind == "readiness":
                    container.ready = True
                continue
            if probe.http_get is None:
                container.ready = True
                continue
            port = probe.http_get.port
            if isinstance(port, str):
                port = next(p.container_port for p in spec.ports or [] if p.name == port)
            url = f"http://{run.ip}:{port}{probe.http_get.path or '/'}"
            try:
                with urllib.request.urlopen(url, timeout=probe.timeout_seconds or 1) as answer:
                    ok = 200 <= answer.status < 400
            except Exception:
                ok = False
            if kind == "readiness":
                container.ready = ok
            elif ok:
                container.probe_failures = 0
            else:
                container.probe_failures += 1
                if container.probe_failures >= (probe.failure_threshold or 3):
                    log.warning("pod %s: %s failed its liveness probe; restarting", run.name, spec.name)
                    with contextlib.suppress(ProcessLookupError):
                        os.killpg(container.process.pid, signal.SIGKILL)

    # -- status --

    def report(self, pod: client.V1Pod, run: PodRun, waiting: str = "") -> None:
        containers = []
        for spec in pod.spec.containers:
            container = run.containers.get(spec.name)
            status: dict[str, Any] = {"name": spec.name, "image": spec.image, "imageID": "", "restartCount": 0}
            if container is None or (container.process is None and container.exit_code is None):
                reason = "CreateContainerConfigError" if waiting else "ContainerCreating"
                status.update(ready=False, started=False, state={"waiting": {"reason": reason, "message": waiting}})
            elif container.exit_code is not None:
                terminated = {
                    "exitCode": container.exit_code,
                    "reason": "Completed" if container.exit_code == 0 else "Error",
                    "startedAt": container.started_at,
                    "finishedAt": container.finished_at,
                }
                status.update(ready=False, started=False, state={"terminated": terminated})
            else:
                status.update(
                    ready=container.ready, started=True, state={"running": {"startedAt": container.started_at}}
                )
            status["restartCount"] = container.restarts if container else 0
            status["containerID"] = f"podagent://{run.uid}/{spec.name}"
            containers.append(status)
        exits = [c["state"]["terminated"]["exitCode"] for c in containers if "terminated" in c["state"]]
        if run.done and len(exits) == len(containers):
            phase = "Succeeded" if all(code == 0 for code in exits) else "Failed"
        elif any("running" in c["state"] for c in containers) or exits:
            phase = "Running"
        else:
            phase = "Pending"
        ready = phase == "Running" and all(c["ready"] for c in containers)
        moment = now_rfc3339()

        def condition(kind: str, value: bool) -> dict[str, str]:
            return {"type": kind, "status": "True" if value else "False", "lastTransitionTime": moment}

        body = {
            "phase": phase,
            "hostIP": "127.0.0.1",
            "podIP": run.ip,
            "podIPs": [{"ip": run.ip}],
            "startTime": pod.status.start_time.strftime("%Y-%m-%dT%H:%M:%SZ") if pod.status.start_time else moment,
            "conditions": [
                condition("Initialized", True),
                condition("ContainersReady", ready),
                condition("Ready", ready),
            ],
            "containerStatuses": containers,
        }
        summary = json.dumps([phase, ready, [(c["state"], c["restartCount"]) for c in containers]], default=str)
        if summary == run.reported:
            return
        # Keep transition times when the condition did not change.
        for old in pod.status.conditions or []:
            for new in body["conditions"]:
                if new["type"] == old.type and new["status"] == old.status and old.last_transition_time:
                    new["lastTransitionTime"] = old.last_transition_time.strftime("%Y-%m-%dT%H:%M:%SZ")
        try:
            self.core.patch_namespaced_pod_status(run.name, run.namespace, {"status": body})
            run.reported = summary
        except ApiException as exc:
            if exc.status != 404:
                log.warning("pod %s: status update failed: %s %s", run.name, exc.status, exc.reason)


def copy_log(pipe: Any, path: Path, stream: str) -> None:
    """Container output in the CRI log format that kwok's `kubectl logs` reads."""
    with open(path, "ab", buffering=0) as log_file:
        for line in iter(pipe.readline, b""):
            stamp = datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ").encode()
            log_file.write(stamp + b" " + stream.encode() + b" F " + line.rstrip(b"\n") + b"\n")


# ---- Services -------------------------------------------------------------------------


class ServiceProxy:
    """A user-space kube-proxy: each ClusterIP:port answers with a ready endpoint of its Service."""

    def __init__(self, agent: Agent) -> None:
        self.agent = agent
        self.cluster_ips: dict[tuple[str, str], str] = {}
        self.api_ip = ""
        # (ip, port) -> list of (address, port) backends
        self.backends: dict[tuple[str, int], list[tuple[str, int]]] = {}
        self.servers: dict[tuple[str, int], asyncio.base_events.Server] = {}
        self.loop = asyncio.new_event_loop()
        api = agent.core.read_namespaced_service("kubernetes", "default")
        self.api_ip = api.spec.cluster_ip

    def run(self) -> None:
        asyncio.set_event_loop(self.loop)
        self.loop.run_until_complete(self.refresh_forever())

    async def refresh_forever(self) -> None:
        while True:
            try:
                await self.loop.run_in_executor(None, self.read_services)
                await self.apply()
            except Exception:
                log.exception("service refresh failed")
            await asyncio.sleep(0.5)

    def read_services(self) -> None:
        services = self.agent.core.list_service_for_all_namespaces().items
        slices = self.agent.discovery.list_endpoint_slice_for_all_namespaces().items
        ready: dict[tuple[str, str], list[Any]] = {}
        for endpoint_slice in slices:
            owner = (endpoint_slice.metadata.labels or {}).get("kubernetes.io/service-name")
            if owner:
                ready.setdefault((endpoint_slice.metadata.namespace, owner), []).append(endpoint_slice)
        cluster_ips = {}
        backends = {}
        for service in services:
            ip = service.spec.cluster_ip
            if not ip or ip == "None":
                continue
            key = (service.metadata.namespace, service.metadata.name)
            cluster_ips[key] = ip
            for port in service.spec.ports or []:
                if (port.protocol or "TCP") != "TCP":
                    continue
                if key == ("default", "kubernetes"):
                    host, _, api_port = self.agent.args.api_server.rpartition(":")
                    backends[(ip, port.port)] = [(host, int(api_port))]
                    continue
                targets = []
                for endpoint_slice in ready.get(key, []):
                    numbers = [p.port for p in endpoint_slice.ports or [] if (p.name or "") == (port.name or "")]
                    for endpoint in endpoint_slice.endpoints or []:
                        if endpoint.conditions and endpoint.conditions.ready is False:
                            continue
                        targets += [(address, number) for address in endpoint.addresses for number in numbers]
                backends[(ip, port.port)] = targets
        changed = cluster_ips != self.cluster_ips
        self.cluster_ips = cluster_ips
        self.backends = backends
        if changed:
            for run in list(self.agent.pods.values()):
                self.agent.write_hosts(run)
            self.write_cluster_hosts()

    def write_cluster_hosts(self) -> None:
        """Service names for commands run "inside the cluster" from this machine (hack/cluster/incluster.sh)."""
        lines = [
            f"{ip} {name}.{ns} {name}.{ns}.svc {name}.{ns}.svc.cluster.local #{ns} {name}"
            for (ns, name), ip in sorted(self.cluster_ips.items())
        ]
        (self.agent.run_dir / "services.hosts").write_text("\n".join(lines) + "\n")

    async def apply(self) -> None:
        for key in list(self.servers):
            if key not in self.backends:
                self.servers.pop(key).close()
        for key in self.backends:
            if key in self.servers:
                continue
            ip, port = key
            subprocess.run(["ip", "addr", "replace", f"{ip}/32", "dev", self.agent.args.bridge], capture_output=True)
            try:
                self.servers[key] = await asyncio.start_server(
                    lambda r, w, key=key: self.forward(key, r, w), ip, port, reuse_address=True
                )
            except OSError as exc:
                log.warning("cannot serve %s:%d: %s", ip, port, exc)

    async def forward(self, key: tuple[str, int], reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        targets = self.backends.get(key) or []
        if not targets:
            writer.close()
            return
        host, port = random.choice(targets)  # noqa: S311 - load spreading, not security
        try:
            upstream_reader, upstream_writer = await asyncio.wait_for(asyncio.open_connection(host, port), 5)
        except (OSError, TimeoutError):
            writer.close()
            return

        async def pipe(source: asyncio.StreamReader, sink: asyncio.StreamWriter) -> None:
            try:
                while data := await source.read(65536):
                    sink.write(data)
                    await sink.drain()
            except (ConnectionError, OSError):
                pass
            finally:
                with contextlib.suppress(Exception):
                    sink.close()

        await asyncio.gather(pipe(reader, upstream_writer), pipe(upstream_reader, writer))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--kubeconfig", required=True)
    parser.add_argument("--node", required=True)
    parser.add_argument("--run-dir", required=True)
    parser.add_argument("--bridge", required=True)
    parser.add_argument("--bridge-ip", required=True)
    parser.add_argument("--pod-cidr", required=True)
    parser.add_argument("--netns-prefix", required=True, help="network namespaces of pods are named PREFIX<uid>")
    parser.add_argument(
        "--api-server", required=True, help="host:port of the API server, behind the kubernetes Service"
    )
    parser.add_argument("--images", default=r"^ghcr[.]io/leviathan/(control-plane|scheduler)[:@]")
    parser.add_argument(
        "--sync-period", type=float, default=5.0, help="seconds between volume re-syncs (kubelet's period)"
    )
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s", stream=sys.stdout)
    agent = Agent(args)
    signal.signal(signal.SIGTERM, lambda *_: agent.stopping.set())
    agent.run()


if __name__ == "__main__":
    main()
