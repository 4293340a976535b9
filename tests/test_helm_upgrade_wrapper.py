"""hack/helm-upgrade.sh (make disable / make enable): the Helm brake does not fail on Helm 4's
server-side apply conflict after a kubectl edit; it repeats the upgrade as the one command that works.

A stand-in `helm` on PATH records its calls and answers as Helm 3 or 4 would.
"""

from __future__ import annotations

import os
import subprocess

import pytest

from support.paths import REPO

CONFLICT = (
    "Error: UPGRADE FAILED: conflict occurred while applying object leviathan/leviathan-autonomy-config /v1, "
    'Kind=ConfigMap: Apply failed with 1 conflict: conflict with "kubectl-edit" using v1: .data.dev.yaml'
)


def fake_helm(tmp_path, version: str, fail_first_with: str) -> dict[str, str]:
    log = tmp_path / "calls"
    script = tmp_path / "bin" / "helm"
    script.parent.mkdir()
    script.write_text(
        f"""#!/usr/bin/env bash
if [[ $1 == version ]]; then echo {version}; exit 0; fi
echo "$*" >>{log}
if [[ $(wc -l <{log}) -eq 1 && -n "{fail_first_with}" ]]; then echo '{fail_first_with}' >&2; exit 1; fi
echo "Release upgraded"
"""
    )
    script.chmod(0o755)
    return {**os.environ, "PATH": f"{script.parent}:{os.environ['PATH']}"}


def run(env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    args = ["leviathan", "/chart", "-n", "leviathan", "--reset-then-reuse-values", "--set", "autonomy.enabled=false"]
    return subprocess.run(
        [str(REPO / "hack/helm-upgrade.sh"), *args], env=env, capture_output=True, text=True, timeout=30
    )


def calls(tmp_path) -> list[str]:
    return (tmp_path / "calls").read_text().splitlines()


def test_helm4_conflict_is_repeated_with_force_conflicts_and_says_so(tmp_path):
    result = run(fake_helm(tmp_path, "v4.1.4+g1", CONFLICT))
    assert result.returncode == 0, result.stderr
    first, second = calls(tmp_path)
    assert first == "upgrade leviathan /chart -n leviathan --reset-then-reuse-values --set autonomy.enabled=false"
    assert second == first + " --server-side=true --force-conflicts"
    assert "the one command that works" in result.stderr and "--force-conflicts" in result.stderr


@pytest.mark.parametrize(
    ("version", "error"),
    [("v3.21.3+g1", CONFLICT), ("v4.1.4+g1", "Error: UPGRADE FAILED: autonomy is off in the live ConfigMap")],
    ids=["helm3-has-no-such-flag", "another-error"],
)
def test_anything_else_fails_as_helm_failed(tmp_path, version, error):
    result = run(fake_helm(tmp_path, version, error))
    assert result.returncode == 1
    assert len(calls(tmp_path)) == 1
    assert error in result.stderr


def test_success_is_one_call(tmp_path):
    result = run(fake_helm(tmp_path, "v4.1.4+g1", ""))
    assert result.returncode == 0 and "Release upgraded" in result.stdout
    assert len(calls(tmp_path)) == 1
