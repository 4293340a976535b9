"""`make images`: build both sidecar images with docker or podman, as the chart runs them.

    python3 hack/container_images.py build [--registry ghcr.io/leviathan] [--version 0.1.0]
    python3 hack/container_images.py engine     # the engine and flags the tests run images with, as JSON
    python3 hack/container_images.py load --containerd SOCKET --version 0.1.0 --pause-image TAG
                                               # both images and a pause image into a containerd (make cluster-up)

The engine is docker when its daemon answers, else podman; where neither can build, podman and
runc are installed with apt-get (one line says why it cannot be, when it cannot). The base is the
Dockerfiles' own `python:3.12.<patch>-slim-bookworm` when it is present or can be pulled. When it
cannot be pulled, a base is made from Debian bookworm's packages (mmdebstrap, then `import`), the
same Dockerfiles build on it through `--build-arg PYTHON_IMAGE`, and the output says so: never a
silent change of base. Each image's size, build time and cold start (`--help`, run as 10001 with a
read-only root filesystem and no capabilities, as the chart runs it) are printed at the end.

Standard library only: it runs on the system Python before any venv exists.
"""

from __future__ import annotations

import argparse
import configparser
import hashlib
import json
import os
import re
import shlex
import shutil
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
CONTEXT = REPO / "images"
IMAGES = ("control-plane", "scheduler")
# The Debian base: the suite the Dockerfiles' python image is built on, and what the Dockerfiles use
# from a base (python and its venv module, groupadd/useradd). No apt, docs, man pages or locales.
DEBIAN_SUITE = "bookworm"
DEBIAN_PACKAGES = ("passwd", "python3", "python3-venv", "python-is-python3")
MMDEBSTRAP_OPTIONS = (
    "--variant=essential",
    "--hook-dir=/usr/share/mmdebstrap/hooks/merged-usr",  # merged /usr without usrmerge (and its perl)
    "--dpkgopt=path-exclude=/usr/share/man/*",
    "--dpkgopt=path-exclude=/usr/share/doc/*",
    "--dpkgopt=path-include=/usr/share/doc/*/copyright",
    "--dpkgopt=path-exclude=/usr/share/locale/*",
    "--dpkgopt=path-exclude=/usr/share/info/*",
)
# podman's default rlimits (nofile 1048576) are above what some machines let a process raise its
# own to (runc then fails with "error setting rlimit ...: operation not permitted"); these fit.
PODMAN_ULIMITS = ("--ulimit", "nofile=4096:4096", "--ulimit", "nproc=4096:4096")
# How the chart runs the sidecars: user 10001, read-only root filesystem, no capabilities.
RUN_AS_THE_CHART = (
    "--rm",
    "--read-only",
    "--cap-drop=ALL",
    "--security-opt=no-new-privileges",
    "--user=10001:10001",
)
PIP_CONFIG_FILES = ("/etc/xdg/pip/pip.conf", "/etc/pip.conf", "~/.pip/pip.conf", "~/.config/pip/pip.conf")


class Refusal(Exception):
    """One line for the user: what is missing, and what to do."""


def say(line: str) -> None:
    print(f"make images: {line}", file=sys.stderr, flush=True)


def last_line(text: str) -> str:
    lines = [line.strip() for line in text.strip().splitlines() if line.strip()]
    return lines[-1] if lines else "no output"


def run(command: list[str], *, timeout: float = 120, **kwargs) -> subprocess.CompletedProcess[str]:
    return subprocess.run(command, capture_output=True, text=True, timeout=timeout, **kwargs)


@dataclass
class Engine:
    name: str  # docker or podman
    command: list[str] = field(default_factory=list)  # the binary and its global flags

    @property
    def limits(self) -> list[str]:
        return list(PODMAN_ULIMITS) if self.name == "podman" else []

    def run_command(self, image: str, *args: str, extra: tuple[str, ...] = (), network: str = "none") -> list[str]:
        """`<engine> run` as the chart runs the image, with `args` after the image."""
        return [*self.command, "run", *RUN_AS_THE_CHART, f"--network={network}", *self.limits, *extra, image, *args]

    def has(self, image: str) -> bool:
        return run([*self.command, "image", "inspect", image]).returncode == 0

    def as_json(self) -> str:
        return json.dumps({"name": self.name, "command": self.command, "limits": self.limits})


def answers(binary: str) -> tuple[bool, str]:
    """Whether `<binary> info` works, and why not."""
    try:
        result = run([binary, "info"], timeout=60)
    except subprocess.TimeoutExpired:
        return False, "`info` did not answer in 60 s"
    return result.returncode == 0, last_line(result.stderr)


def cgroup_hybrid() -> bool:
    """cgroup v1 controllers with a cgroup2 `unified` mount: crun refuses this layout, runc runs on it."""
    return Path("/sys/fs/cgroup/unified").is_mount() and not Path("/sys/fs/cgroup/cgroup.controllers").exists()


def podman(binary: str) -> Engine:
    engine = Engine("podman", [binary])
    runtime = run([binary, "info", "--format", "{{.Host.OCIRuntime.Name}}"]).stdout.strip()
    if runtime == "crun" and cgroup_hybrid() and shutil.which("runc"):
        say("podman's runtime crun does not run on this machine's hybrid cgroups: using runc")
        engine.command += ["--runtime", "runc"]
    return engine


def apt_install(packages: list[str], why: str) -> None:
    """Install Debian packages, or refuse in one line naming what is missing."""
    missing = " and ".join(packages)
    if not shutil.which("apt-get"):
        raise Refusal(f"{why}, and there is no apt-get here to install {missing}: install {missing} yourself")
    prefix = [] if os.geteuid() == 0 else ["sudo", "-n"]
    if prefix and not shutil.which("sudo"):
        raise Refusal(f"{why}; installing {missing} with apt-get needs root: run `apt-get install {missing}` as root")
    say(f"{why}: installing {missing} with apt-get")
    install = [*prefix, "apt-get", "install", "-y", "-q", "--no-install-recommends", *packages]
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    result = run(install, timeout=900, env=env)
    if result.returncode != 0:  # stale package lists: refresh once
        run([*prefix, "apt-get", "update", "-q"], timeout=900, env=env)
        result = run(install, timeout=900, env=env)
    if result.returncode != 0:
        raise Refusal(f"{why}, and `apt-get install {' '.join(packages)}` failed: {last_line(result.stderr)}")


def find_engine(*, install: bool) -> Engine:
    """docker if its daemon answers, else podman; with `install`, podman is installed where neither works."""
    chosen = os.environ.get("CONTAINER_ENGINE", "").strip()
    if chosen:
        binary = shutil.which(chosen)
        if not binary:
            raise Refusal(f"CONTAINER_ENGINE={chosen} is not installed")
        ok, reason = answers(binary)
        if not ok:
            raise Refusal(f"CONTAINER_ENGINE={chosen} is installed but cannot reach its engine: {reason}")
        return podman(binary) if Path(binary).name.startswith("podman") else Engine("docker", [binary])
    problems = []
    for name in ("docker", "podman"):
        binary = shutil.which(name)
        if not binary:
            continue
        ok, reason = answers(binary)
        if ok:
            return Engine("docker", [binary]) if name == "docker" else podman(binary)
        problems.append(f"{name} is installed but cannot reach its engine ({reason})")
    why = "; ".join(problems) if problems else "neither docker nor podman is installed"
    if not install:
        raise Refusal(f"no container engine: {why}")
    apt_install(["podman", "runc"], f"make images needs docker or podman, but {why}")
    binary = shutil.which("podman")
    ok, reason = answers(binary) if binary else (False, "not on PATH after installing")
    if not ok:
        raise Refusal(f"podman was installed but does not work: {reason}")
    return podman(binary)


# ---- the base ---------------------------------------------------------------------------------------------------


def dockerfile_base() -> str:
    """The `ARG PYTHON_IMAGE=` default, the same in both Dockerfiles."""
    bases = set()
    for image in IMAGES:
        text = (CONTEXT / image / "Dockerfile").read_text()
        bases.update(re.findall(r"^ARG PYTHON_IMAGE=(\S+)$", text, re.MULTILINE))
    if len(bases) != 1:
        raise Refusal(f"the Dockerfiles disagree on their base (ARG PYTHON_IMAGE): {sorted(bases)}")
    return bases.pop()


def pull(engine: Engine, image: str) -> tuple[bool, str]:
    try:
        result = run([*engine.command, "pull", image], timeout=600)
    except subprocess.TimeoutExpired:
        return False, "no answer in 600 s"
    return result.returncode == 0, last_line(result.stderr)


def debian_base_tag() -> str:
    recipe = json.dumps([DEBIAN_SUITE, DEBIAN_PACKAGES, MMDEBSTRAP_OPTIONS])
    return f"localhost/leviathan-python-base:{DEBIAN_SUITE}-{hashlib.sha256(recipe.encode()).hexdigest()[:12]}"


def debian_base(engine: Engine) -> str:
    """A base image from Debian packages: mmdebstrap's root filesystem tar, streamed into `import`."""
    tag = debian_base_tag()
    if engine.has(tag):
        say(f"{tag} was built before from Debian {DEBIAN_SUITE} packages: using it")
        return tag
    if not shutil.which("mmdebstrap"):
        apt_install(["mmdebstrap"], "a base from Debian packages needs mmdebstrap")
    packages = f"--include={','.join(DEBIAN_PACKAGES)}"
    command = ["mmdebstrap", "--quiet", *MMDEBSTRAP_OPTIONS, packages, DEBIAN_SUITE, "-"]
    say(f"building {tag}: {shlex.join(command)} | {engine.name} import - {tag}")
    started = time.monotonic()
    with tempfile.TemporaryFile() as log, subprocess.Popen(command, stdout=subprocess.PIPE, stderr=log) as rootfs:
        imported = subprocess.run(
            [*engine.command, "import", "-", tag], stdin=rootfs.stdout, capture_output=True, text=True
        )
        rootfs.stdout.close()
        rootfs.wait()
        log.seek(0)
        errors = log.read().decode(errors="replace")
    if rootfs.returncode != 0:
        run([*engine.command, "rmi", tag])
        raise Refusal(f"mmdebstrap could not make a Debian {DEBIAN_SUITE} root filesystem: {last_line(errors)}")
    if imported.returncode != 0:
        raise Refusal(f"{engine.name} import of the Debian root filesystem failed: {last_line(imported.stderr)}")
    say(f"built {tag} in {time.monotonic() - started:.0f} s")
    return tag


def choose_base(engine: Engine) -> tuple[str, str]:
    """The base image to build on, and a sentence on where it came from."""
    wanted = os.environ.get("PYTHON_IMAGE", "").strip()
    if wanted:
        if not engine.has(wanted):
            ok, reason = pull(engine, wanted)
            if not ok:
                raise Refusal(f"PYTHON_IMAGE={wanted} cannot be pulled: {reason}")
        return wanted, "PYTHON_IMAGE"
    default = dockerfile_base()
    if engine.has(default):
        return default, "the Dockerfiles' base, present locally"
    ok, reason = pull(engine, default)
    if ok:
        return default, "the Dockerfiles' base, pulled"
    say(f"the Dockerfiles' base {default} cannot be pulled ({reason}); building on Debian {DEBIAN_SUITE} packages")
    tag = debian_base(engine)
    version = run([*engine.run_command(tag, "python3", "-c", "import platform; print(platform.python_version())")])
    python = version.stdout.strip() or "unknown"
    return tag, f"Debian {DEBIAN_SUITE} packages, Python {python}, because {default} cannot be pulled"


# ---- pip's CA bundle --------------------------------------------------------------------------------------------


def pip_cert() -> Path | None:
    """pip's own `cert` setting (PIP_CERT, else pip.conf), for a build behind a TLS-inspecting proxy."""
    value = os.environ.get("PIP_CERT", "")
    if not value:
        files = [*PIP_CONFIG_FILES, os.environ.get("PIP_CONFIG_FILE", "")]
        config = configparser.ConfigParser(interpolation=None)
        config.read([os.path.expanduser(name) for name in files if name])
        for section in ("global", "install"):
            value = config.get(section, "cert", fallback=value)
    path = Path(value).expanduser() if value else None
    return path if path and path.is_file() else None


# ---- build ------------------------------------------------------------------------------------------------------


def image_size(engine: Engine, image: str) -> int:
    return int(run([*engine.command, "image", "inspect", "--format", "{{.Size}}", image]).stdout.strip())


def cold_start(engine: Engine, image: str) -> float:
    """Seconds for the first `--help` of a fresh container, run as the chart runs it."""
    started = time.monotonic()
    result = run(engine.run_command(image, "--help"), env={**os.environ, "COLUMNS": "100"})
    elapsed = time.monotonic() - started
    if result.returncode != 0 or not result.stdout.startswith("usage: "):
        raise Refusal(f"{image} --help failed as user 10001, read-only, no capabilities: {last_line(result.stderr)}")
    return elapsed


def build(registry: str, version: str) -> None:
    engine = find_engine(install=True)
    say(f"engine: {shlex.join(engine.command)}")
    base, origin = choose_base(engine)
    secret = []
    cert = pip_cert()
    if cert:
        say(f"pip in the build gets pip's CA bundle {cert} as the build secret pip-cert")
        secret = ["--secret", f"id=pip-cert,src={cert}"]
    rows = []
    for image in IMAGES:
        tag = f"{registry}/{image}:{version}"
        command = [*engine.command, "build", *engine.limits, *secret, "--build-arg", f"PYTHON_IMAGE={base}"]
        command += ["--build-arg", f"VERSION={version}", "-f", str(CONTEXT / image / "Dockerfile"), "-t", tag]
        command.append(str(CONTEXT))
        print(shlex.join(command), flush=True)
        started = time.monotonic()
        if subprocess.run(command).returncode != 0:
            raise Refusal(f"building {tag} on {base} failed (its output is above)")
        built = time.monotonic() - started
        rows.append((tag, image_size(engine, tag), built, cold_start(engine, tag)))
    print(f"\nbase: {base} ({origin})")
    print(f"{'image':<44} {'size':>8} {'build':>8} {'cold --help':>12}")
    for tag, size, built, start in rows:
        print(f"{tag:<44} {size / 1e6:>5.0f} MB {built:>6.0f} s {start:>10.2f} s")
    print("(--help as the chart runs them: user 10001, read-only root filesystem, all capabilities dropped)")


def load(containerd: str, registry: str, version: str, pause_image: str) -> None:
    """Import both images, and a pause image built on their base, into containerd's k8s.io namespace."""
    engine = find_engine(install=False)
    tags = [f"{registry}/{image}:{version}" for image in IMAGES]
    missing = [tag for tag in tags if run([*engine.command, "image", "inspect", tag]).returncode != 0]
    if missing:
        raise Refusal(f"{', '.join(missing)} not built: run make images first")
    base, origin = choose_base(engine)
    pause = f'FROM {base}\nUSER 65535:65535\nENTRYPOINT ["sleep", "infinity"]\n'
    built = subprocess.run(
        [*engine.command, "build", *engine.limits, "-t", pause_image, "-f", "-", str(CONTEXT)],
        input=pause.encode(),
        capture_output=True,
    )
    if built.returncode != 0:
        raise Refusal(f"building the pause image on {base} failed: {last_line(built.stderr.decode())}")
    ctr = shutil.which("ctr")
    if not ctr:
        raise Refusal("ctr (containerd's client) is not installed: apt-get install containerd")
    with tempfile.TemporaryDirectory(prefix="leviathan-images-") as scratch:
        for tag in [pause_image, *tags]:
            started = time.monotonic()
            archive = Path(scratch) / "image.tar"
            saved = run([*engine.command, "save", "--format", "docker-archive", "-o", str(archive), tag], timeout=600)
            if saved.returncode != 0:
                raise Refusal(f"saving {tag} failed: {last_line(saved.stderr)}")
            loaded = run([ctr, "--address", containerd, "-n", "k8s.io", "images", "import", str(archive)], timeout=600)
            if loaded.returncode != 0:
                raise Refusal(f"importing {tag} into containerd failed: {last_line(loaded.stderr)}")
            archive.unlink()
            say(f"{tag} loaded into containerd in {time.monotonic() - started:.1f} s")
    say(f"pause image {pause_image} built on {base} ({origin})")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    commands = parser.add_subparsers(dest="command", required=True)
    build_parser = commands.add_parser("build", help="build both images")
    build_parser.add_argument("--registry", default="ghcr.io/leviathan")
    build_parser.add_argument("--version", required=True)
    commands.add_parser("engine", help="print the engine that runs the images, as JSON (never installs one)")
    load_parser = commands.add_parser("load", help="import both images and a pause image into containerd")
    load_parser.add_argument("--containerd", required=True, help="containerd's socket")
    load_parser.add_argument("--registry", default="ghcr.io/leviathan")
    load_parser.add_argument("--version", required=True)
    load_parser.add_argument("--pause-image", required=True, help="the tag of the pod sandbox image to build")
    args = parser.parse_args(argv)
    try:
        if args.command == "engine":
            print(find_engine(install=False).as_json())
        elif args.command == "load":
            load(args.containerd, args.registry, args.version, args.pause_image)
        else:
            build(args.registry, args.version)
    except Refusal as refusal:
        say(str(refusal))
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
