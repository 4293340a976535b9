"""Start one container of a pod: the pod agent runs this inside the pod's network namespace.

`ip netns exec` has already given us a private mount namespace with the pod's
/etc/hosts and /etc/resolv.conf. Here the pod's volumes are bound at their
mount paths, the root filesystem is made read-only when the container asks
for it, the user and groups are dropped, and the container's command replaces
this process.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path


def mount(*args: str) -> None:
    subprocess.run(["mount", *args], check=True)


def expose_interpreter(stage: str) -> None:
    """Let the pod's non-root user reach the .venv's interpreter.

    pyenv keeps it under /root, which only root may enter. In this private mount
    namespace, /root (or whichever ancestor is closed) is covered with an empty
    tmpfs that everyone may enter, and only the interpreter's own tree is bound back.
    """
    interpreter = Path(os.path.realpath(sys.executable))
    for closed in reversed(interpreter.parents):
        if closed != Path("/") and not closed.stat().st_mode & 0o001:
            child = interpreter.relative_to(closed).parts[0]
            os.makedirs(stage, exist_ok=True)
            mount("--bind", str(closed / child), stage)
            mount("-t", "tmpfs", "-o", "mode=0755,size=1m", "tmpfs", str(closed))
            os.mkdir(closed / child)
            mount("--bind", stage, str(closed / child))
            return


def main(spec_path: str) -> None:
    with open(spec_path, encoding="utf-8") as spec_file:
        spec = json.load(spec_file)
    # Nothing mounted here may leak back to the machine.
    mount("--make-rprivate", "/")
    if spec["uid"] != 0:
        expose_interpreter(spec["interpreterStage"])
    for volume in spec["mounts"]:
        mount("--bind", volume["source"], volume["target"])
    # Read-only flags last: a bind made after them would inherit them.
    if spec["readOnlyRootFilesystem"]:
        mount("-o", "remount,bind,ro", "/")
    for volume in spec["mounts"]:
        if volume["readOnly"]:
            mount("-o", "remount,bind,ro", volume["target"])
    os.setgroups(spec["groups"])
    os.setgid(spec["gid"])
    os.setuid(spec["uid"])
    os.chdir(spec["workingDir"] or "/")
    os.execve(spec["argv"][0], spec["argv"], spec["env"])  # noqa: S606 - the container's own command, as exec form


if __name__ == "__main__":
    main(sys.argv[1])
