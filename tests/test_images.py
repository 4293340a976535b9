"""The two sidecar images' Dockerfiles: hadolint-clean, pinned, non-root, and in step with their packages.

No Docker engine is needed: hadolint lints the files, and the static checks read them as text.
"""

from __future__ import annotations

import json
import os
import re
import shlex
import subprocess
import tomllib
from pathlib import Path

import pytest

from support.dockerfile import Dockerfile, Stage, read_dockerfile
from support.paths import REPO, VENV_BIN

IMAGES = REPO / "images"
HADOLINT = VENV_BIN / "hadolint"
# The image name, and the console script its ENTRYPOINT runs.
ENTRYPOINTS = {"control-plane": "leviathan-control-plane", "scheduler": "leviathan-scheduler"}
SHARED_PACKAGE = "config-reader"
VENV = "/opt/venv"
USER = "10001:10001"
# The chart runs the control plane with exactly these args (chart/templates/control-plane-deployment.yaml).
CONTROL_PLANE_CMD = ["serve", "--host", "0.0.0.0", "--port", "8000"]
OCI_LABELS = {
    "org.opencontainers.image.title": "text",
    "org.opencontainers.image.description": "text",
    "org.opencontainers.image.source": "url",
    "org.opencontainers.image.licenses": "spdx",
    "org.opencontainers.image.version": "text",  # `${VERSION}` to hadolint, so not checked as semver there
    "org.opencontainers.image.base.name": "text",  # `${PYTHON_IMAGE}`: which base a build used (make images)
}
PINNED_BASE = re.compile(r"python:3\.12\.\d+-slim(-[a-z]+)?(@sha256:[0-9a-f]{64})?")
PINNED_REQUIREMENT = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]*==[A-Za-z0-9][A-Za-z0-9.+!-]*")

image_names = pytest.mark.parametrize("image", sorted(ENTRYPOINTS))


# ---- hadolint -------------------------------------------------------------------------------------------------------


def hadolint(dockerfile: Path, config_dir: Path) -> tuple[int, list[dict]]:
    """Exit code and findings, with any finding at any level (style and up) failing the run.

    An explicit config and no HADOLINT_* variables, so a developer's own hadolint.yaml cannot hide a finding.
    """
    config = config_dir / "hadolint.yaml"
    config.write_text("ignored: []\n")
    env = {key: value for key, value in os.environ.items() if not key.startswith("HADOLINT_")}
    labels = [f"--require-label={name}:{kind}" for name, kind in OCI_LABELS.items()]
    command = [str(HADOLINT), "--config", str(config), "--format", "json", "--failure-threshold", "style"]
    command += ["--strict-labels", *labels, str(dockerfile)]
    result = subprocess.run(command, capture_output=True, text=True, timeout=120, cwd=config_dir, env=env)
    assert result.stdout.strip(), f"hadolint printed nothing (exit {result.returncode}): {result.stderr}"
    return result.returncode, json.loads(result.stdout)


@image_names
def test_hadolint_is_clean(image, tmp_path):
    returncode, findings = hadolint(IMAGES / image / "Dockerfile", tmp_path)
    assert findings == []
    assert returncode == 0


# Every required label, valid: a file that is otherwise clean.
SAMPLE_LABEL_VALUES = {"text": "x", "url": "https://example.org/x", "spdx": "Apache-2.0"}
GOOD_LABELS = "LABEL " + " ".join(f'{name}="{SAMPLE_LABEL_VALUES[kind]}"' for name, kind in OCI_LABELS.items())


@pytest.mark.parametrize(
    ("dockerfile", "expected", "levels"),
    [
        ("FROM python:latest\nRUN apt-get install foo\n", {"DL3007", "DL3008"}, {"warning", "info"}),
        # A style-level finding alone (SC2006: backticks) must fail too, or the clean test's threshold is not "any".
        (
            f"FROM python:3.12.12-slim-bookworm\n{GOOD_LABELS}\nUSER 10001:10001\nRUN echo `date`\n",
            {"SC2006"},
            {"style"},
        ),
    ],
    ids=["latest-and-unpinned-apt", "style-only"],
)
def test_hadolint_flags_a_bad_dockerfile(dockerfile, expected, levels, tmp_path):
    """The clean result above means something: the same invocation rejects known-bad files."""
    bad = tmp_path / "Dockerfile"
    bad.write_text(dockerfile)
    returncode, findings = hadolint(bad, tmp_path)
    assert expected <= {finding["code"] for finding in findings}
    assert {finding["level"] for finding in findings} <= levels
    assert returncode != 0


@image_names
def test_every_hadolint_ignore_gives_a_reason(image):
    lines = (IMAGES / image / "Dockerfile").read_text().splitlines()
    for number, line in enumerate(lines):
        if re.search(r"#\s*hadolint\s+(global\s+)?ignore=", line):
            reason = lines[number - 1].strip() if number else ""
            assert reason.startswith("#") and "hadolint" not in reason, f"line {number + 1}: ignore without a reason"


def pyproject(image: str) -> dict:
    return tomllib.loads((IMAGES / image / "pyproject.toml").read_text())["project"]


def builder(dockerfile: Dockerfile) -> Stage:
    """The stage the final stage copies the venv from."""
    (copy,) = dockerfile.final.all("COPY")
    source = re.fullmatch(r"--from=(\S+) (\S+) (\S+)", copy)
    assert source, f"the final stage copies only the venv, not {copy!r}"
    assert source.group(2) == source.group(3) == VENV
    return dockerfile.stage(source.group(1))


# ---- static checks --------------------------------------------------------------------------------------------------


@image_names
def test_every_base_image_is_pinned(image):
    dockerfile = read_dockerfile(IMAGES / image / "Dockerfile")
    names = set()
    for stage in dockerfile.stages:
        if stage.base not in names:  # FROM an earlier stage needs no tag
            assert "latest" not in stage.base
            assert PINNED_BASE.fullmatch(stage.base), f"{stage.base}: not a python:3.12.<patch>-slim tag"
        if stage.name:
            names.add(stage.name)
    # The venv's interpreter is a symlink into the base image, so both stages must use the same one.
    assert builder(dockerfile).base == dockerfile.final.base


@image_names
def test_builder_installs_the_images_pinned_requirements(image):
    stage = builder(read_dockerfile(IMAGES / image / "Dockerfile"))
    installs = stage.pip_installs()
    requirement_files = [
        stage.context_path(args[i + 1], workdir, index)
        for index, workdir, args in installs
        for i, arg in enumerate(args)
        if arg == "-r"
    ]
    assert requirement_files == [f"{image}/requirements.txt"]
    lines = (IMAGES / image / "requirements.txt").read_text().splitlines()
    pins = [line.strip() for line in lines if line.strip() and not line.lstrip().startswith("#")]
    assert pins
    assert [pin for pin in pins if not PINNED_REQUIREMENT.fullmatch(pin)] == []
    for _index, _workdir, args in installs:
        assert {"--no-cache-dir", "--require-virtualenv"} <= set(args)


@image_names
def test_builder_installs_the_local_packages_without_dependencies(image):
    stage = builder(read_dockerfile(IMAGES / image / "Dockerfile"))
    assert ["python", "-m", "venv", VENV] in stage.shell_commands()
    assert stage.pairs("ENV")["PATH"].startswith(f"{VENV}/bin:")
    (local,) = [install for install in stage.pip_installs() if "--no-deps" in install[2]]
    index, workdir, args = local
    assert not {"-e", "--editable"} & set(args)
    packages = {stage.context_path(arg, workdir, index) for arg in args if not arg.startswith("-")}
    assert packages == {SHARED_PACKAGE, image}
    assert any(words[:3] == ["python", "-m", "compileall"] and VENV in words for words in stage.shell_commands())


@image_names
def test_final_stage_runs_the_venv_as_a_numeric_non_root_user(image):
    final = read_dockerfile(IMAGES / image / "Dockerfile").final
    assert final.all("USER")[-1] == USER
    env = final.pairs("ENV")
    assert env["PATH"] == f"{VENV}/bin:$PATH"
    assert env["PYTHONDONTWRITEBYTECODE"] == "1"
    assert env["PYTHONUNBUFFERED"] == "1"
    commands = final.shell_commands()
    # The user exists for tools that want a name, but nothing depends on a home directory.
    groupadd = [words for words in commands if words[0] == "groupadd"]
    useradd = [words for words in commands if words[0] == "useradd"]
    assert len(groupadd) == len(useradd) == 1
    assert " --gid 10001 " in f" {shlex.join(groupadd[0])} "
    for flag in ("--uid 10001", "--gid 10001", "--no-create-home"):
        assert f" {flag} " in f" {shlex.join(useradd[0])} "
    assert not {"-m", "--create-home"} & set(useradd[0])
    # Nothing is built or installed in the final stage: no package managers, no compilers.
    for words in commands:
        assert not {"apt-get", "apt", "apk", "pip", "gcc", "make"} & set(words), words
    assert final.all("ADD") == []


@image_names
def test_labels_match_the_package(image):
    dockerfile = read_dockerfile(IMAGES / image / "Dockerfile")
    final, project = dockerfile.final, pyproject(image)
    labels = final.pairs("LABEL")
    assert set(OCI_LABELS) <= set(labels)
    assert labels["org.opencontainers.image.title"] == project["name"]
    assert labels["org.opencontainers.image.description"] == project["description"]
    assert labels["org.opencontainers.image.source"].startswith("https://github.com/")
    assert labels["org.opencontainers.image.licenses"] == "Apache-2.0"
    assert labels["org.opencontainers.image.version"] == "${VERSION}"
    assert final.pairs("ARG")["VERSION"] == project["version"]
    # The base the final stage is built on, so `inspect` says which base a build used.
    assert labels["org.opencontainers.image.base.name"] == "${PYTHON_IMAGE}"
    assert "PYTHON_IMAGE" in final.pairs("ARG")


@image_names
def test_entrypoint_is_the_packages_console_script(image):
    final, scripts = read_dockerfile(IMAGES / image / "Dockerfile").final, pyproject(image)["scripts"]
    assert ENTRYPOINTS[image] in scripts
    assert final.exec_form("ENTRYPOINT") == [ENTRYPOINTS[image]]


def test_control_plane_serves_on_8000_by_default():
    final = read_dockerfile(IMAGES / "control-plane" / "Dockerfile").final
    assert final.all("EXPOSE") == ["8000"]
    assert final.exec_form("CMD") == CONTROL_PLANE_CMD


def test_scheduler_exposes_nothing_and_takes_no_default_args():
    final = read_dockerfile(IMAGES / "scheduler" / "Dockerfile").final
    assert final.all("EXPOSE") == []
    assert final.exec_form("CMD") is None


def test_build_command_comment_names_the_images_context():
    for image in ENTRYPOINTS:
        text = (IMAGES / image / "Dockerfile").read_text()
        command = f"docker build -f images/{image}/Dockerfile -t ghcr.io/leviathan/{image}:"
        assert re.search(rf"^#\s+{re.escape(command)}\S+ images$", text, re.MULTILINE), image
