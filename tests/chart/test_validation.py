"""Every rendered object against the real Kubernetes schemas, and checkov on the whole output."""

from __future__ import annotations

import json
import os
import re
import subprocess
from pathlib import Path

import kubernetes_validate
import pytest
import yaml

from support.helm import KUBERNETES_VERSIONS, render_manifest
from support.paths import REPO, VALUES_DIR, values_files

# "releasers": dev.yaml with autonomy.releasers set, which adds the release policy and its `helm test` objects.
VALUES = [None, *values_files(), "releasers"]
RELEASERS = {"autonomy": {"releasers": {"users": ["carol"], "serviceAccounts": ["ops/deployer"]}}}


def label(values_file: Path | str | None) -> str:
    return "defaults" if values_file is None else getattr(values_file, "name", values_file)


def rendered(values_file: Path | str | None) -> str:
    if values_file == "releasers":
        return render_manifest(RELEASERS, values_files=[VALUES_DIR / "dev.yaml"])
    return render_manifest(values_files=[] if values_file is None else [values_file])


@pytest.mark.parametrize("version", KUBERNETES_VERSIONS)
@pytest.mark.parametrize("values_file", VALUES, ids=label)
def test_every_object_passes_strict_schema_validation(values_file, version):
    docs = [doc for doc in yaml.safe_load_all(rendered(values_file)) if doc]
    assert len(docs) >= 10
    for doc in docs:
        if doc["kind"].startswith("ValidatingAdmissionPolicy") and version == "1.27.0":
            continue  # admissionregistration.k8s.io/v1 policies start at 1.30; the release policy needs them
        kubernetes_validate.validate(doc, version, strict=True)


def checkov_binary() -> str:
    binary = os.environ.get("CHECKOV") or str(REPO / ".tools" / "checkov" / "bin" / "checkov")
    if not Path(binary).exists():
        pytest.fail(f"checkov not found at {binary}: run the suite with `make test`, which installs it")
    return binary


@pytest.mark.parametrize("values_file", VALUES, ids=label)
def test_checkov_reports_no_failed_check(values_file, tmp_path):
    (tmp_path / "rendered.yaml").write_text(rendered(values_file))
    result = subprocess.run(
        [
            checkov_binary(),
            "--directory", str(tmp_path),
            "--config-file", str(REPO / ".checkov.yaml"),
            "--output", "json",
            "--quiet", "--compact",
        ],
        capture_output=True, text=True, timeout=300,
    )  # fmt: skip
    assert result.returncode in (0, 1), result.stderr
    report = json.loads(result.stdout)
    summary = report["summary"]
    failed = [f"{c['check_id']} {c['resource']}" for c in report["results"]["failed_checks"]]
    assert summary["failed"] == 0, failed
    assert summary["passed"] > 200
    assert summary["parsing_errors"] == 0


def test_every_checkov_skip_has_a_reason():
    lines = (REPO / ".checkov.yaml").read_text().splitlines()
    skips = [line for line in lines if re.match(r"\s*- CKV", line)]
    assert skips
    for line in skips:
        check, _, reason = line.partition("#")
        assert len(reason.strip()) > 30, f"{check.strip()} needs a written reason"
