"""Bump the chart and image versions together: make release VERSION=x.y.z.

Sets chart/Chart.yaml `version` and `appVersion` (the images' default tag, so both images move with it),
the tags in its `artifacthub.io/images`, the four Python packages' versions, dates CHANGELOG.md's
Unreleased section as x.y.z and copies that section into `artifacthub.io/changes`. Refuses a version
that is not x.y.z or not above the current one, and an empty Unreleased section, changing nothing.
"""

from __future__ import annotations

import argparse
import datetime
import re
import sys
from pathlib import Path

SEMVER = re.compile(r"^(0|[1-9]\d*)\.(0|[1-9]\d*)\.(0|[1-9]\d*)$")
PACKAGES = ("images/config-reader", "images/control-plane", "images/scheduler", "kubectl-leviathan")
KINDS = {
    "added": "added",
    "changed": "changed",
    "deprecated": "deprecated",
    "removed": "removed",
    "fixed": "fixed",
    "security": "security",
}


class ReleaseError(Exception):
    pass


def key(version: str) -> tuple[int, ...]:
    return tuple(int(part) for part in version.split("."))


def unreleased_changes(changelog: str) -> tuple[str, list[tuple[str, str]]]:
    match = re.search(r"^## \[Unreleased\]\n(.*?)(?=^## \[)", changelog, flags=re.M | re.S)
    if not match:
        raise ReleaseError("CHANGELOG.md has no '## [Unreleased]' section followed by a released one")
    changes, kind = [], None
    for line in match.group(1).splitlines():
        if heading := re.match(r"^### (\w+)", line):
            kind = KINDS.get(heading.group(1).lower())
            if kind is None:
                raise ReleaseError(f"CHANGELOG.md: unknown section '### {heading.group(1)}' (use {', '.join(KINDS)})")
        elif line.startswith("- "):
            if kind is None:
                raise ReleaseError(f"CHANGELOG.md: an entry before any '### Added/Changed/...' heading: {line}")
            changes.append((kind, line[2:].strip()))
    if not changes:
        raise ReleaseError("CHANGELOG.md: the Unreleased section lists no change: write them down first")
    return match.group(1), changes


def yaml_quote(text: str) -> str:
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


def changes_block(changes: list[tuple[str, str]]) -> str:
    lines = []
    for kind, description in changes:
        lines += [f"    - kind: {kind}", f"      description: {yaml_quote(description)}"]
    return "\n".join(lines)


def release(root: Path, version: str, today: datetime.date) -> list[Path]:
    if not SEMVER.match(version):
        raise ReleaseError(f"VERSION={version!r} is not x.y.z (e.g. 0.2.0)")
    chart_path, changelog_path = root / "chart" / "Chart.yaml", root / "CHANGELOG.md"
    chart, changelog = chart_path.read_text(), changelog_path.read_text()
    current = re.search(r'^version: "?([^"\n]+)"?$', chart, flags=re.M).group(1)
    if key(version) <= key(current):
        raise ReleaseError(f"VERSION={version} is not above the chart's current version {current}")
    body, changes = unreleased_changes(changelog)

    chart = re.sub(r"^version: .*$", f"version: {version}", chart, count=1, flags=re.M)
    chart = re.sub(r"^appVersion: .*$", f'appVersion: "{version}"', chart, count=1, flags=re.M)
    chart = re.sub(r"(image: ghcr\.io/leviathan/[a-z-]+:)[^\s\"]+", rf"\g<1>{version}", chart)
    chart, replaced = re.subn(
        r"(^  artifacthub\.io/changes: \|\n)(?:    .*\n)+",
        lambda m: m.group(1) + changes_block(changes) + "\n",
        chart,
        count=1,
        flags=re.M,
    )
    if not replaced:
        raise ReleaseError("chart/Chart.yaml has no 'artifacthub.io/changes: |' annotation to fill")
    changelog = changelog.replace(
        "## [Unreleased]\n" + body, f"## [Unreleased]\n\n## [{version}] - {today.isoformat()}\n" + body, 1
    )
    written = {chart_path: chart, changelog_path: changelog}
    for package in PACKAGES:
        path = root / package / "pyproject.toml"
        text = path.read_text()
        written[path] = re.sub(r'^version = ".*"$', f'version = "{version}"', text, count=1, flags=re.M)
    for path, text in written.items():
        path.write_text(text)
    return list(written)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("version")
    parser.add_argument("--root", type=Path, default=Path(__file__).resolve().parents[1])
    parser.add_argument("--date", type=datetime.date.fromisoformat, default=datetime.date.today())
    args = parser.parse_args(argv)
    try:
        paths = release(args.root, args.version, args.date)
    except ReleaseError as error:
        print(f"make release: {error}", file=sys.stderr)
        return 2
    for path in paths:
        print(f"release {args.version}: {path.relative_to(args.root)}")
    print(f"next: review the diff, commit it, tag v{args.version}, then make package (and helm push)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
