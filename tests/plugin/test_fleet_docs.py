"""docs/FLEET.md: its manifests parse, its values files do what it says with the real chart, and its
`kubectl leviathan` commands are ones the plugin takes."""

from __future__ import annotations

import re
import shlex
import subprocess

import pytest
import yaml

from leviathan_config import ConfigState, parse_autonomy_config
from support.helm import find, render_chart
from support.paths import REPO, VENV_BIN

FLEET = (REPO / "docs" / "FLEET.md").read_text()
BLOCKS = re.findall(r"```(yaml|bash)\n(.*?)```", FLEET, flags=re.S)


def yaml_file(name: str) -> dict:
    """The yaml block whose first line names it: `# <name>` (and maybe a comment after a colon)."""
    found = [body for lang, body in BLOCKS if lang == "yaml" and re.match(rf"# {re.escape(name)}(:|\n)", body)]
    assert len(found) == 1, name
    return yaml.safe_load(found[0]) or {}


def switch(values: list[dict]) -> tuple[str, str]:
    docs = render_chart(_merge(values), show_only=["templates/configmap.yaml"])
    text = find(docs, "ConfigMap", "leviathan-autonomy-config")["data"]["dev.yaml"]
    assert parse_autonomy_config(text.encode(), "dev.yaml").state is ConfigState.LOADED  # in the switch grammar
    lines = text.splitlines()
    return lines[0], next(line for line in lines if line.startswith("reason:"))


def _merge(values: list[dict]) -> dict:
    """Helm's merge of several values files, the later winning key by key."""

    def merge(base: dict, over: dict) -> dict:
        out = dict(base)
        for key, value in over.items():
            out[key] = merge(out[key], value) if isinstance(value, dict) and isinstance(out.get(key), dict) else value
        return out

    result: dict = {}
    for value in values:
        result = merge(result, value)
    return result


def test_every_manifest_parses():
    blocks = [body for lang, body in BLOCKS if lang == "yaml"]
    assert len(blocks) >= 7
    for body in blocks:
        list(yaml.safe_load_all(body))


def test_the_applicationset_layers_the_brake_last():
    [appset] = [yaml.safe_load(b) for lang, b in BLOCKS if lang == "yaml" and "kind: ApplicationSet" in b]
    files = appset["spec"]["template"]["spec"]["sources"][0]["helm"]["valueFiles"]
    assert files == ["$fleet/clusters/{{.name}}.yaml", "$fleet/brake.yaml"]


@pytest.mark.parametrize("brake", ["normally", "braked"])
def test_argo_values_render_the_clusters_own_switch_or_the_brake(brake):
    """With gitops: true (helm template, as Argo CD renders), an existing Secret and the releasers."""
    own = yaml_file("clusters/eu-1.yaml")
    braked = yaml_file(f"brake.yaml, {brake}")
    first, reason = switch([own, braked])
    if brake == "normally":
        assert (first, reason) == ("autonomy_enabled: true", 'reason: "eu-1 rollout approved (CHG-42)"')
    else:
        assert (first, reason) == ("autonomy_enabled: false", 'reason: "INC-500: runaway retries (fleet brake)"')


def test_flux_values_leave_the_switch_to_the_live_configmap_and_the_brake_turns_it_off():
    own = yaml_file("clusters/eu-1/values.yaml")
    assert "enabled" not in own["autonomy"]
    assert switch([own, yaml_file("brake.yaml, braked")])[0] == "autonomy_enabled: false"


def test_the_commands_are_ones_the_plugin_takes():
    commands = [
        line for lang, body in BLOCKS if lang == "bash" for line in body.splitlines() if "kubectl leviathan" in line
    ]
    assert len(commands) >= 3
    for line in commands:
        command = line[line.index("kubectl leviathan") :].split(" >", 1)[0].split(";", 1)[0]
        args = shlex.split(command)[2:]
        result = subprocess.run([str(VENV_BIN / "kubectl-leviathan"), *args, "--show-runbook"], capture_output=True,
                                text=True, timeout=60)  # fmt: skip
        assert result.returncode == 0, (line, result.stderr)
