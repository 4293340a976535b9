"""The contract data file (tests/contract/runbook.yaml) and its loader: consistent, and the reference verbatim."""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

import leviathan_config
from leviathan_control_plane.token import TOKEN_ENV
from leviathan_scheduler import output
from support import contract
from support.contract import load_contract, parse_table

CONTRACT = load_contract()
REFERENCE = Path("/work/shared/reference/autonomy-runbook.md")


def test_command_ids_are_unique_and_name_their_procedure():
    ids = [command.id for command in CONTRACT.commands()]
    assert len(ids) == len(set(ids)) >= 30
    assert all(command.id.startswith(command.procedure + ".") for command in CONTRACT.commands())


def test_cluster_commands_address_the_release_namespace():
    for command in CONTRACT.commands():
        assert command.cluster == (command.tool in ("kubectl", "curl", "helm")), command.id
        if command.tool == "kubectl" and " apply -f " not in command.run:
            assert " -n leviathan" in command.run, command.id
        assert command.in_cluster_network == ("http://leviathan-control-plane:8000" in command.run), command.id


@pytest.mark.skipif(not REFERENCE.exists(), reason=f"the reference runbook is not at {REFERENCE}")
def test_the_data_is_the_reference_verbatim():
    """Every command, log line and table header of the data file is in the reference as written."""
    reference = re.sub(r"\s*\\\n\s*", " ", REFERENCE.read_text())
    for command in CONTRACT.commands():
        assert command.run in reference, command.id
    for line in CONTRACT.log_lines.values():
        assert line in reference
    for source in CONTRACT.status_api["sources"].values():
        assert f"`{source}`" in reference
    assert "   ".join(CONTRACT.table_columns["<1.30"]).replace(" ", "") in reference.replace(" ", "")
    assert f"# Leviathan Autonomy Operations Runbook\n\n**Version:** {CONTRACT.version}" in reference
    answers = [json.loads(block) for block in re.findall(r"```json\n(.*?)```", reference, flags=re.S)]
    for command in CONTRACT.commands():
        if command.expect.json is not None:
            assert dict(command.expect.json) in answers, command.id


@pytest.mark.skipif(not REFERENCE.exists(), reason=f"the reference runbook is not at {REFERENCE}")
def test_procedures_and_steps_are_in_the_reference_order():
    reference = REFERENCE.read_text()
    cursor = 0
    for procedure in CONTRACT.procedures:
        cursor = reference.index(procedure.title, cursor)
        for step in procedure.steps:
            cursor = reference.index(step.title, cursor) + len(step.title)


def test_the_table_parser_reads_what_kubectl_prints():
    """The e2e suite compares real `kubectl get cronjob` output with parse_table; the reference's own table parses."""
    table = """NAME                        SCHEDULE      SUSPEND   ACTIVE   LAST SCHEDULE   AGE
leviathan-dev-scheduler     */5 * * * *   True      0        2m              1d
"""
    assert parse_table(table)[1] == [
        {"NAME": "leviathan-dev-scheduler", "SCHEDULE": "*/5 * * * *", "SUSPEND": "True", "ACTIVE": "0",
         "LAST SCHEDULE": "2m", "AGE": "1d"}
    ]  # fmt: skip
    expect = CONTRACT.command("emergency-stop.get-cronjob").expect
    assert expect.mismatches(table, CONTRACT.table_columns) == []
    assert expect.mismatches(table.replace("True ", "False"), CONTRACT.table_columns) != []


@pytest.mark.skipif(not REFERENCE.exists(), reason=f"the reference runbook is not at {REFERENCE}")
def test_the_tests_contract_strings_are_the_references():
    """The one place a test's expected source, log line or path comes from is the reference's text."""
    reference = REFERENCE.read_text()
    assert f'"source": "{contract.configmap_source(contract.CONFIG_PATH)}"' in reference
    for text in (contract.SOURCE_NOT_MOUNTED, contract.SOURCE_ERROR, contract.DISABLED_LINE, contract.EXITING_LINE):
        assert f"`{text}`" in reference or f"\n{text}\n" in reference, text
    assert f"jsonpath='{{.data.{CONTRACT.names['secret_key']}}}'" in reference


def test_the_sidecars_define_each_contract_string_as_the_contract_does():
    """Each sidecar string of the runbook has one definition in images/; all of them are the contract's."""
    assert leviathan_config.configmap_source("/m/dev.yaml") == contract.configmap_source("/m/dev.yaml")
    assert leviathan_config.SOURCE_NOT_MOUNTED == contract.SOURCE_NOT_MOUNTED
    assert leviathan_config.SOURCE_ERROR == contract.SOURCE_ERROR
    assert leviathan_config.DEFAULT_CONFIG_PATH == contract.CONFIG_PATH
    assert output.DISABLED_LINE == contract.DISABLED_LINE
    assert output.EXITING_LINE == contract.EXITING_LINE
    assert CONTRACT.names["secret_key"] == TOKEN_ENV
