"""`make run`: the control plane and dry-run scheduler ticks on this machine, no cluster needed.

    python hack/local_run.py serve [--env dev] [--port 8000] [--tick-seconds 10]
    python hack/local_run.py set --enabled false [--reason "INC-1: testing"]

`serve` renders the chart's ConfigMap for values/<env>.yaml with `helm
template` (the chart stays the single source of truth), publishes it into
.run/autonomy/ the way kubelet fills a ConfigMap volume, keeps a token in
.run/token, then runs the control plane on 127.0.0.1 and a scheduler
`--dry-run` tick every few seconds. `set` re-renders with the switch flipped
and swaps it in like kubelet does, so both follow it live.
"""

from __future__ import annotations

import argparse
import os
import secrets
import signal
import subprocess
import sys
import threading
from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parents[1]
# The tests' kubelet-style writer: the local mount changes exactly the way the tests change theirs.
sys.path.insert(0, str(REPO / "tests"))

from support.kubelet_volume import publish  # noqa: E402

RUN = Path(os.environ.get("LEVIATHAN_RUN_DIR") or REPO / ".run")
MOUNT = RUN / "autonomy"
SETTINGS_MOUNT = RUN / "scheduler"
TOKEN = RUN / "token"
BIN = REPO / ".venv" / "bin"


def render_config(env: str, overrides: list[str]) -> dict[str, str]:
    """The switch file(s) of the chart's autonomy ConfigMap."""
    return render_configmaps(env, overrides)[0]


def render_configmaps(env: str, overrides: list[str]) -> tuple[dict[str, str], dict[str, str]]:
    """The data of the autonomy ConfigMap and of the scheduler's settings ConfigMap, as the chart renders them."""
    helm = os.environ.get("HELM") or "helm"
    command = [
        helm, "template", "leviathan", str(REPO / "chart"), "--namespace", "leviathan",
        "--values", str(REPO / "values" / f"{env}.yaml"), "--show-only", "templates/configmap.yaml", *overrides,
    ]  # fmt: skip
    result = subprocess.run(command, capture_output=True, text=True)
    if result.returncode != 0:
        sys.exit(f"helm template failed:\n{result.stderr}")
    switch, settings = (document["data"] for document in yaml.safe_load_all(result.stdout) if document)
    return switch, settings


def ensure_token() -> str:
    RUN.mkdir(exist_ok=True)
    if not TOKEN.exists() or not TOKEN.read_text().strip():
        TOKEN.write_text(secrets.token_urlsafe(32) + "\n")
        TOKEN.chmod(0o600)
    return TOKEN.read_text().strip()


def pump(stream, prefix: str) -> None:
    for line in iter(stream.readline, ""):
        print(f"{prefix} {line}", end="", flush=True)


def scheduler_ticks(env: str, interval: float, stop: threading.Event) -> None:
    config = {
        **os.environ,
        "LEVIATHAN_AUTONOMY_CONFIG": str(MOUNT / f"{env}.yaml"),
        "LEVIATHAN_SCHEDULER_CONFIG": str(SETTINGS_MOUNT / "scheduler.yaml"),
    }
    while not stop.is_set():
        tick = subprocess.run(
            [str(BIN / "leviathan-scheduler"), "--dry-run", "--namespace", "leviathan"],
            env=config,
            capture_output=True,
            text=True,
        )
        for line in tick.stderr.splitlines():
            print(f"[scheduler]     {line}", flush=True)
        stop.wait(interval)


def serve(args: argparse.Namespace) -> int:
    files, settings = render_configmaps(args.env, [])
    publish(MOUNT, files)
    publish(SETTINGS_MOUNT, settings)
    token = ensure_token()
    config_path = MOUNT / f"{args.env}.yaml"
    env = {
        **os.environ,
        "LEVIATHAN_AUTONOMY_CONFIG": str(config_path),
        "LEVIATHAN_CONTROL_PLANE_TOKEN_FILE": str(TOKEN),
        "LEVIATHAN_SCHEDULER_CONFIG": str(SETTINGS_MOUNT / "scheduler.yaml"),
    }
    server = subprocess.Popen(
        [str(BIN / "leviathan-control-plane"), "serve", "--host", "127.0.0.1", "--port", str(args.port)],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    threading.Thread(target=pump, args=(server.stdout, "[control-plane]"), daemon=True).start()
    stop = threading.Event()
    threading.Thread(target=scheduler_ticks, args=(args.env, args.tick_seconds, stop), daemon=True).start()

    print(
        f"""
Leviathan running locally on the chart's values/{args.env}.yaml
  config:  {config_path} (kubelet-style mount)
  token:   {TOKEN}

Query the status:
  curl -H "Authorization: Bearer $(cat {os.path.relpath(TOKEN)})" http://127.0.0.1:{args.port}/v1/autonomy/status

Flip the switch the way kubelet delivers a ConfigMap edit (in another terminal):
  make local-disable REASON="trying it out"
  make local-enable

Ctrl-C stops both.
""",
        flush=True,
    )
    del token  # printed nowhere: read it from the token file

    def shutdown(signum: int, frame: object) -> None:
        stop.set()
        server.terminate()

    signal.signal(signal.SIGINT, shutdown)
    signal.signal(signal.SIGTERM, shutdown)
    code = server.wait()
    stop.set()
    return 0 if code in (0, -signal.SIGTERM) else code


def set_switch(args: argparse.Namespace) -> int:
    overrides = ["--set", f"autonomy.enabled={args.enabled}", "--set-literal", f"autonomy.reason={args.reason}"]
    publish(MOUNT, render_config(args.env, overrides))
    print(f"{MOUNT / f'{args.env}.yaml'}: autonomy_enabled: {args.enabled} (swapped in like a kubelet update)")
    return 0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    commands = parser.add_subparsers(dest="command", required=True)
    serve_parser = commands.add_parser("serve")
    serve_parser.add_argument("--env", default="dev")
    serve_parser.add_argument("--port", type=int, default=8000)
    serve_parser.add_argument("--tick-seconds", type=float, default=10.0)
    set_parser = commands.add_parser("set")
    set_parser.add_argument("--env", default="dev")
    set_parser.add_argument("--enabled", choices=["true", "false"], required=True)
    set_parser.add_argument("--reason", default="")
    args = parser.parse_args()
    return serve(args) if args.command == "serve" else set_switch(args)


if __name__ == "__main__":
    sys.exit(main())
