"""What an image holds, read from inside it, beside what the dev venv holds.

    inventory = Inventory.of([python])                 # the dev venv (.venv/bin/python)
    inventory = Inventory.of(engine.run_command(...))  # an image, run with `--entrypoint python`
    missing_files(needed, venv, image)                 # {distribution: [files the venv has and the image lacks]}

The same probe runs in both places: the files under site-packages (bytecode aside), each installed
distribution's version and RECORD, the console scripts, which of the modules that our code imports can be
found, and which of our own modules fail to import.
"""

from __future__ import annotations

import ast
import json
import re
import subprocess
from dataclasses import dataclass
from pathlib import Path

PROBE = r"""
import importlib, importlib.metadata as md, importlib.util, json, os, pkgutil, sys, sysconfig
modules, packages = sys.argv[1].split(","), sys.argv[2].split(",")
purelib = sysconfig.get_paths()["purelib"]
files = []
for root, dirs, names in os.walk(purelib):
    dirs[:] = [d for d in dirs if d != "__pycache__"]
    files += [os.path.relpath(os.path.join(root, name), purelib) for name in names]
def record(dist):
    return [str(f) for f in dist.files or [] if "__pycache__" not in str(f) and not str(f).endswith(".pyc")]
def findable(name):
    # A directory without its files would still be found, as a namespace package: it has no origin.
    try:
        spec = importlib.util.find_spec(name)
    except (ImportError, ValueError):
        return False
    return spec is not None and spec.origin is not None
failed = {}
for package in packages:
    try:
        module = importlib.import_module(package)
    except Exception as error:
        failed[package] = repr(error)
        continue
    for info in pkgutil.walk_packages(module.__path__, package + "."):
        try:
            importlib.import_module(info.name)
        except Exception as error:
            failed[info.name] = repr(error)
print(json.dumps({
    "python": "%d.%d" % sys.version_info[:2],
    "prefix": sys.prefix,
    "purelib": purelib,
    "files": files,
    "distributions": {
        d.metadata["Name"].lower().replace("_", "-"): {"version": d.version, "record": record(d)}
        for d in md.distributions()
    },
    "scripts": sorted(os.listdir(os.path.join(sys.prefix, "bin"))),
    "findable": {name: findable(name) for name in modules},
    "import_failures": failed,
}))
"""

# A compiled extension's ABI tag names the Python version: cp311 in the venv may be cp312 in an image.
ABI_TAG = re.compile(r"\.cpython-\d+[a-z]*-[^.]+(?=\.so$)")


def normalize(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


@dataclass(frozen=True)
class Inventory:
    python: str
    prefix: str
    purelib: str
    files: frozenset[str]
    distributions: dict[str, dict]
    scripts: list[str]
    findable: dict[str, bool]
    import_failures: dict[str, str]

    @classmethod
    def of(cls, python: list[str], modules: list[str], packages: list[str]) -> Inventory:
        """Run the probe with `python` (a command line ending in an interpreter that takes `-c`)."""
        command = [*python, "-c", PROBE, ",".join(modules), ",".join(packages)]
        result = subprocess.run(command, capture_output=True, text=True, timeout=120)
        assert result.returncode == 0, f"the probe failed ({result.returncode}): {result.stderr[-2000:]}"
        data = json.loads(result.stdout)
        return cls(**{**data, "files": frozenset(ABI_TAG.sub("", f) for f in data["files"])})

    def version(self, distribution: str) -> str | None:
        found = self.distributions.get(normalize(distribution))
        return found["version"] if found else None


def pins(requirements: Path) -> dict[str, str]:
    """{normalized name: version} of a requirements file of `name==version` lines."""
    found = {}
    for line in requirements.read_text().splitlines():
        line = line.split("#", 1)[0].strip()
        if line:
            name, _, version = line.partition("==")
            found[normalize(name)] = version
    return found


def missing_files(needed: list[str], venv: Inventory, image: Inventory) -> dict[str, list[str]]:
    """Per distribution: the files its venv RECORD lists (outside its dist-info and bin/) that the image lacks."""
    missing = {}
    for name in needed:
        record = venv.distributions[normalize(name)]["record"]
        wanted = {ABI_TAG.sub("", f) for f in record if not f.startswith("..") and ".dist-info/" not in f}
        if lacking := sorted(wanted - image.files):
            missing[name] = lacking
    return missing


def source_files(src: Path) -> set[str]:
    """A local package's files as installed: paths under site-packages, bytecode aside."""
    return {
        str(path.relative_to(src))
        for path in src.rglob("*")
        if path.is_file() and "__pycache__" not in path.parts and ".egg-info" not in str(path)
    }


def imported_modules(src: Path) -> set[str]:
    """The top-level modules that any file under `src` imports (absolute imports; lazy ones too)."""
    found = set()
    for path in src.rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if isinstance(node, ast.Import):
                found.update(alias.name.split(".")[0] for alias in node.names)
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                found.add(node.module.split(".")[0])
    return found - {"__future__"}
