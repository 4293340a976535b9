"""`make cluster-up` refuses clearly, and leaves nothing half-started, when it cannot start.

These run the real script with a cluster index of their own (9), so they never touch a
cluster that is up for `make e2e` (index 0).
"""

from __future__ import annotations

import os
import socket
import subprocess

import pytest

from support.paths import REPO

INDEX = "9"
API_PORT = 16400 + 100 * int(INDEX) + 43
UP = REPO / "hack" / "cluster" / "up.sh"
RUN_DIR = REPO / ".run" / "cluster-test-up"

pytestmark = pytest.mark.skipif(os.geteuid() != 0, reason="cluster-up needs root (network namespaces)")


def cluster_up(env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    environment = {**os.environ, "LEVIATHAN_CLUSTER_INDEX": INDEX, "LEVIATHAN_CLUSTER_DIR": str(RUN_DIR), **env}
    return subprocess.run([str(UP)], capture_output=True, text=True, timeout=120, env=environment, cwd=REPO)


def nothing_started() -> None:
    assert not (RUN_DIR / "pids").exists() or not any((RUN_DIR / "pids").iterdir())
    links = subprocess.run(["ip", "link", "show", f"lev{INDEX}"], capture_output=True, text=True)
    assert links.returncode != 0, "the bridge was left behind"


def test_an_occupied_port_is_named_and_nothing_starts():
    with socket.socket() as listener:
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listener.bind(("127.0.0.1", API_PORT))
        listener.listen()
        result = cluster_up({})
    assert result.returncode == 1
    assert result.stderr.strip().splitlines()[-1] == (
        f"cluster-up: port {API_PORT} on 127.0.0.1 is in use; "
        f"free it or move the cluster with LEVIATHAN_CLUSTER_INDEX (now {INDEX})"
    )
    nothing_started()


def test_a_missing_go_toolchain_is_named_and_nothing_starts(tmp_path):
    # Everything cluster-up needs but Go: a PATH without /usr/local/go/bin.
    path = ":".join(p for p in os.environ["PATH"].split(":") if not os.path.exists(os.path.join(p, "go")))
    result = cluster_up({"PATH": path, "CLUSTER_BIN": str(tmp_path / "bin")})
    assert result.returncode == 1
    assert "Go is not installed" in result.stderr
    assert result.stderr.strip().splitlines()[-1].startswith("cluster-up: building the cluster binaries failed")
    nothing_started()


def test_a_component_that_dies_is_named_with_its_last_lines(tmp_path):
    """What cluster-up prints instead of a timeout when a component exits while it waits."""
    script = f"""
        cd {REPO}
        source hack/cluster/lib.sh
        mkdir -p "$RUN/logs" "$RUN/pids"
        start kube-apiserver bash -c 'echo "E1127 bind: address already in use"; exit 1'
        wait_for kube-apiserver 30 false
    """
    env = {**os.environ, "LEVIATHAN_CLUSTER_INDEX": INDEX, "LEVIATHAN_CLUSTER_DIR": str(tmp_path / "run")}
    result = subprocess.run(["bash", "-c", script], capture_output=True, text=True, timeout=60, env=env)
    assert result.returncode == 1
    assert result.stderr.splitlines() == [
        "cluster-up: kube-apiserver exited while waiting for kube-apiserver; its last lines:",
        "  kube-apiserver| E1127 bind: address already in use",
    ]


def test_a_refused_start_leaves_the_running_cluster_alone():
    """The second `make cluster-up` is refused, and the cluster that runs keeps running."""
    (RUN_DIR / "pids").mkdir(parents=True, exist_ok=True)
    component = subprocess.Popen(["sleep", "60"])
    try:
        (RUN_DIR / "pids" / "kube-apiserver").write_text(str(component.pid))
        result = cluster_up({})
        assert result.returncode == 1
        assert result.stderr.strip().splitlines()[-1] == (
            f"cluster-up: a cluster is already running (pids in {RUN_DIR}/pids): make cluster-down first"
        )
        assert component.poll() is None, "the refused start stopped the running cluster's component"
        assert (RUN_DIR / "pids" / "kube-apiserver").exists()
    finally:
        component.kill()
        component.wait()
        (RUN_DIR / "pids" / "kube-apiserver").unlink(missing_ok=True)


def test_a_timeout_shows_the_log_of_the_component_it_waited_on(tmp_path):
    """Not the newest one's: kubelet's node never gets Ready while CoreDNS, started after it, runs."""
    script = f"""
        cd {REPO}
        source hack/cluster/lib.sh
        mkdir -p "$RUN/logs" "$RUN/pids"
        start kubelet bash -c 'echo "E1203 node not registered"; exec sleep 30'
        start coredns bash -c 'echo "CoreDNS-1.12.4"; exec sleep 30'
        sleep 0.5
        wait_for "kubelet: node local-node-9 Ready" 1 false
        status=$?
        kill $(cat "$RUN"/pids/*)
        exit $status
    """
    env = {**os.environ, "LEVIATHAN_CLUSTER_INDEX": INDEX, "LEVIATHAN_CLUSTER_DIR": str(tmp_path / "run")}
    result = subprocess.run(["bash", "-c", script], capture_output=True, text=True, timeout=60, env=env)
    assert result.returncode == 1
    assert result.stderr.splitlines() == [
        "cluster-up: timed out after 1s waiting for kubelet: node local-node-9 Ready; the last lines of kubelet:",
        "  kubelet| E1203 node not registered",
    ]


@pytest.mark.parametrize(
    ("requested", "message"),
    [
        ("1.99", "KUBE_VERSION=1.99: no pin for that minor in hack/cluster/pins.env (pinned: 1.34 1.35 1.36 1.37 )"),
        ("latest", "KUBE_VERSION=latest: not a Kubernetes version (say 1.37 or v1.37.2)"),
    ],
)
def test_a_kube_version_without_a_pin_is_refused_and_nothing_starts(requested, message):
    result = cluster_up({"KUBE_VERSION": requested})
    assert result.returncode == 2
    assert result.stderr.strip().splitlines()[0] == message
    nothing_started()


@pytest.mark.parametrize(
    ("requested", "version", "bin_dir"),
    [("", "v1.35.4", "/shared/bin"), ("1.37", "v1.37.2", ".tools/cluster/v1.37.2/bin"), ("v1.34.1", "v1.34.1", None)],
)
def test_kube_version_picks_the_pin_and_its_own_binaries(requested, version, bin_dir):
    """The default pin may come from a shared CLUSTER_BIN; another version always has binaries of its own."""
    script = "source hack/cluster/pins.env && source hack/cluster/kube-version.sh && echo $KUBE_VERSION $BIN"
    env = {**os.environ, "KUBE_VERSION": requested, "CLUSTER_BIN": "/shared/bin"}
    result = subprocess.run(["bash", "-c", script], capture_output=True, text=True, timeout=30, env=env, cwd=REPO)
    assert result.stdout.split() == [version, bin_dir or f".tools/cluster/{version}/bin"]
