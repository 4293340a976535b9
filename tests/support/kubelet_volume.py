"""Publish files into a directory the way kubelet updates a ConfigMap or Secret volume.

kubelet's atomic writer never touches the user-visible files:

    mount/dev.yaml -> ..data/dev.yaml        (written once)
    mount/..data   -> ..2026_11_26_10_00_00.123456789
    mount/..2026_11_26_10_00_00.123456789/dev.yaml

An update writes a new timestamped directory, points `..data_tmp` at it,
renames `..data_tmp` over `..data` (atomic), adds or removes user-visible
links, and deletes the old directory. `make run`, the tests and the
benchmarks all use this, so the control plane is exercised against the same
sequence of filesystem events it sees in a pod.
"""

from __future__ import annotations

import os
import shutil
import tempfile
import time
from collections.abc import Mapping
from pathlib import Path

DATA = "..data"
DATA_TMP = "..data_tmp"


def publish(mount: Path, files: Mapping[str, bytes | str], mode: int = 0o644) -> None:
    """Atomically replace the whole content of `mount` with `files`."""
    mount.mkdir(parents=True, exist_ok=True)
    stamp = time.strftime("..%Y_%m_%d_%H_%M_%S.", time.gmtime())
    new_dir = Path(tempfile.mkdtemp(prefix=stamp, dir=mount))
    new_dir.chmod(0o755)
    for name, content in files.items():
        target = new_dir / name
        target.write_bytes(content.encode() if isinstance(content, str) else content)
        target.chmod(mode)

    data = mount / DATA
    old_dir = os.readlink(data) if data.is_symlink() else None
    tmp_link = mount / DATA_TMP
    if tmp_link.is_symlink():
        tmp_link.unlink()
    tmp_link.symlink_to(new_dir.name)
    os.rename(tmp_link, data)

    for name in files:
        link = mount / name
        if not link.is_symlink():
            link.symlink_to(f"{DATA}/{name}")
    if old_dir is not None:
        for stale in set(os.listdir(mount / old_dir)) - set(files):
            (mount / stale).unlink(missing_ok=True)
        shutil.rmtree(mount / old_dir, ignore_errors=True)


def remove(mount: Path) -> None:
    """The volume disappears (e.g. the ConfigMap was deleted and the pod restarted)."""
    shutil.rmtree(mount, ignore_errors=True)
