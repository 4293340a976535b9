"""The built images hold what the dev venv holds for them, and run as the chart runs them.

The rest of the suite runs our code from .venv; these tests catch what only an image can get wrong: a file of
a pinned distribution, a module our code imports or a source file that the venv has and the image lacks, and
an entrypoint that fails as user 10001 on a read-only root filesystem with no capabilities.

They need the images `make images` builds (ghcr.io/leviathan/<image>:<appVersion>, or $IMAGE_REGISTRY) and
docker or podman. Where either is missing they skip with the reason; with LEVIATHAN_REQUIRE_IMAGES=1 (CI,
after `make images`) that is a failure instead.
"""

from __future__ import annotations

import json
import os
import subprocess
import time
import urllib.error
import urllib.request
from functools import cache

import container_images
import pytest
import yaml

from support.control_plane import TOKEN, free_port
from support.image_contents import Inventory, imported_modules, missing_files, pins, source_files
from support.kubelet_volume import publish
from support.paths import PYTHON, REPO, VENV_BIN

IMAGES = REPO / "images"
PACKAGES = {"control-plane": "leviathan_control_plane", "scheduler": "leviathan_scheduler"}
SHARED = ("config-reader", "leviathan_config")
DISTRIBUTIONS = {"control-plane": "leviathan-control-plane", "scheduler": "leviathan-scheduler"}
VERSION = yaml.safe_load((REPO / "chart" / "Chart.yaml").read_text())["appVersion"]
REGISTRY = os.environ.get("IMAGE_REGISTRY") or "ghcr.io/leviathan"
# argparse wraps help to the terminal's width: the same width on both sides.
COLUMNS = "100"

image_names = pytest.mark.parametrize("image", sorted(PACKAGES))


def unavailable(reason: str) -> None:
    if os.environ.get("LEVIATHAN_REQUIRE_IMAGES") == "1":
        pytest.fail(f"LEVIATHAN_REQUIRE_IMAGES=1, but {reason}")
    pytest.skip(reason)


@cache
def engine() -> container_images.Engine | str:
    try:
        return container_images.find_engine(install=False)
    except container_images.Refusal as refusal:
        return str(refusal)


def tag(image: str) -> str:
    return f"{REGISTRY}/{image}:{VERSION}"


def built(image: str) -> container_images.Engine:
    """The engine, once the image is known to exist; otherwise skip (or fail under LEVIATHAN_REQUIRE_IMAGES)."""
    found = engine()
    if isinstance(found, str):
        unavailable(found)
    if not found.has(tag(image)):
        unavailable(f"{tag(image)} is not built: run make images")
    return found


def probe_arguments(image: str) -> tuple[list[str], list[str]]:
    """The modules our code for `image` imports, and our packages in it."""
    sources = [IMAGES / SHARED[0] / "src", IMAGES / image / "src"]
    modules = sorted(set().union(*(imported_modules(src) for src in sources)))
    return modules, [SHARED[1], PACKAGES[image]]


@cache
def venv_inventory(image: str) -> Inventory:
    return Inventory.of([str(PYTHON)], *probe_arguments(image))


@cache
def image_inventory(image: str, extra: tuple[str, ...] = ()) -> Inventory:
    command = built(image).run_command(tag(image), extra=("--entrypoint", "python", *extra))
    return Inventory.of(command, *probe_arguments(image))


def needed_distributions(image: str) -> list[str]:
    """The image's pinned requirements and our two packages: what the image is built from."""
    return [*pins(IMAGES / image / "requirements.txt"), "leviathan-config-reader", DISTRIBUTIONS[image]]


# ---- what the image holds -------------------------------------------------------------------------------------


@image_names
def test_every_file_of_the_pinned_distributions_that_the_venv_has_is_in_the_image(image):
    pinned = list(pins(IMAGES / image / "requirements.txt"))
    assert missing_files(pinned, venv_inventory(image), image_inventory(image)) == {}


@image_names
def test_the_image_and_the_venv_run_the_same_pinned_versions(image):
    venv, inside = venv_inventory(image), image_inventory(image)
    for name, version in pins(IMAGES / image / "requirements.txt").items():
        assert (name, venv.version(name), inside.version(name)) == (name, version, version)
    for name in ("leviathan-config-reader", DISTRIBUTIONS[image]):
        assert inside.version(name) == venv.version(name) is not None


@image_names
def test_every_source_file_of_our_packages_is_in_the_image(image):
    sources = source_files(IMAGES / SHARED[0] / "src") | source_files(IMAGES / image / "src")
    assert sorted(sources - image_inventory(image).files) == []


@image_names
def test_every_module_our_code_imports_can_be_found_in_the_image(image):
    """Lazy imports too: the names come from the source, not from what one run happened to import."""
    venv, inside = venv_inventory(image), image_inventory(image)
    assert [name for name, found in venv.findable.items() if not found] == []
    assert [name for name, found in inside.findable.items() if not found] == []


@image_names
def test_every_module_of_our_packages_imports_in_the_image(image):
    assert venv_inventory(image).import_failures == {}
    assert image_inventory(image).import_failures == {}


@image_names
def test_the_console_script_is_installed_in_the_images_venv(image):
    inside = image_inventory(image)
    assert inside.prefix == "/opt/venv"
    # Each console script is named for its distribution (tests/test_images.py checks the ENTRYPOINT is it).
    assert DISTRIBUTIONS[image] in inside.scripts


def test_a_file_missing_from_an_image_is_caught(tmp_path):
    """The checks above can fail: the control-plane image with PyYAML's package hidden under an empty directory."""
    image = "control-plane"
    purelib = image_inventory(image).purelib
    empty = tmp_path / "empty"
    empty.mkdir(mode=0o755)
    hidden = image_inventory(image, (f"--volume={empty}:{purelib}/yaml:ro",))
    missing = missing_files(["pyyaml"], venv_inventory(image), hidden)
    assert {"yaml/__init__.py", "yaml/reader.py"} <= set(missing["pyyaml"])
    assert hidden.findable["yaml"] is False
    assert "leviathan_config" in hidden.import_failures


# ---- how it runs ------------------------------------------------------------------------------------------------


HELP_COMMANDS = [("control-plane", ()), ("control-plane", ("serve",)), ("control-plane", ("check",)), ("scheduler", ())]


@pytest.mark.parametrize(("image", "command"), HELP_COMMANDS, ids=[" ".join((i, *c)) for i, c in HELP_COMMANDS])
def test_the_entrypoint_answers_help_as_the_chart_runs_it_and_as_the_venv_does(image, command):
    engine = built(image)
    run = engine.run_command(tag(image), *command, "--help", extra=("--env", f"COLUMNS={COLUMNS}"))
    inside = subprocess.run(run, capture_output=True, text=True, timeout=60)
    script = VENV_BIN / DISTRIBUTIONS[image]
    venv = subprocess.run(
        [str(script), *command, "--help"], capture_output=True, text=True, timeout=60, env={"COLUMNS": COLUMNS}
    )
    assert (inside.returncode, inside.stderr) == (0, "")
    assert inside.stdout == venv.stdout


@image_names
def test_the_image_runs_as_10001_by_default(image):
    engine = built(image)
    config = json.loads(subprocess.check_output([*engine.command, "image", "inspect", tag(image)], text=True))
    assert config[0]["Config"]["User"] == "10001:10001"
    # No --user: the image's own USER, still with a read-only root filesystem and no capabilities.
    command = [*engine.command, "run", "--rm", "--read-only", "--cap-drop=ALL", "--network=none", *engine.limits]
    ids = "import os; print(os.getuid(), os.getgid(), *os.getgroups())"
    command += ["--entrypoint", "python", tag(image), "-c", ids]
    uid, gid, *groups = subprocess.check_output(command, text=True, timeout=60).split()
    assert (uid, gid, set(groups) - {"10001"}) == ("10001", "10001", set())


def get(url: str, token: str = TOKEN) -> tuple[int, dict]:
    request = urllib.request.Request(url, headers={"Authorization": f"Bearer {token}"})
    try:
        with urllib.request.urlopen(request, timeout=5) as answer:
            return answer.status, json.loads(answer.read())
    except urllib.error.HTTPError as error:
        return error.code, {}


def test_the_control_plane_image_serves_and_follows_a_kubelet_style_mount(tmp_path):
    """`serve` as the chart runs it: the config and token mounted read-only, the switch flipped while it runs."""
    engine = built("control-plane")
    config, token = tmp_path / "autonomy", tmp_path / "token"
    publish(config, {"dev.yaml": "autonomy_enabled: true\n"})
    publish(token, {"control-plane-token": TOKEN}, mode=0o644)
    for mount in (config, token):
        mount.chmod(0o755)
    port, name = free_port(), f"leviathan-image-test-{os.getpid()}"
    extra = ("--detach", f"--name={name}", f"--publish=127.0.0.1:{port}:8000")
    extra += (f"--volume={config}:/etc/leviathan/autonomy:ro", f"--volume={token}:/etc/leviathan/token:ro")
    extra += ("--env=LEVIATHAN_AUTONOMY_CONFIG=/etc/leviathan/autonomy/dev.yaml",)
    extra += ("--env=LEVIATHAN_CONTROL_PLANE_TOKEN_FILE=/etc/leviathan/token/control-plane-token",)
    serve = ("serve", "--host", "0.0.0.0", "--port", "8000")
    run = engine.run_command(tag("control-plane"), *serve, extra=extra, network="bridge")
    started = subprocess.run(run, capture_output=True, text=True, timeout=60)
    assert started.returncode == 0, f"{' '.join(run)} failed ({started.returncode}): {started.stderr}"
    url = f"http://127.0.0.1:{port}/v1/autonomy/status"
    try:
        answers = []
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and (not answers or answers[-1][0] != 200):
            try:
                answers.append(get(url))
            except OSError:
                time.sleep(0.2)
        assert answers and answers[-1][0] == 200, answers
        assert answers[-1][1]["autonomy_enabled"] is True
        assert get(url, token="wrong")[0] == 401
        publish(config, {"dev.yaml": 'autonomy_enabled: false\nreason: "INC-1: image test"\n'})
        deadline = time.monotonic() + 15
        while time.monotonic() < deadline and get(url)[1].get("autonomy_enabled") is not False:
            time.sleep(0.2)
        assert get(url)[1]["autonomy_enabled"] is False
    finally:
        logs = subprocess.run([*engine.command, "logs", name], capture_output=True, text=True, timeout=30)
        subprocess.run([*engine.command, "rm", "--force", name], capture_output=True, timeout=60)
    assert "Traceback" not in logs.stdout + logs.stderr
