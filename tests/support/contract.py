"""The operators' reference runbook as data: load tests/contract/runbook.yaml and compare outputs with it.

    contract = load_contract()
    for procedure in contract.procedures:
        for step in procedure.steps:
            for command in step.commands:
                if command.cluster and not command.in_cluster_network:
                    output = run(command.run)            # e.g. the e2e suite
                    assert command.expect.mismatches(output) == []

`Expect.mismatches` is the one comparison of an output with the contract, used for the
real commands' output (e2e) and for the outputs our docs show (tests/test_runbook.py).
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import Any

import yaml

CONTRACT_FILE = Path(__file__).resolve().parents[1] / "contract" / "runbook.yaml"


def parse_table(text: str) -> tuple[list[str], list[dict[str, str]]]:
    """kubectl's column output: the header's names, and each row as {column: cell}.

    Column names may contain one space ("LAST SCHEDULE") and cells may too ("*/5 * * * *"),
    so cells are cut at the offsets where the header's names start, as kubectl aligns them.
    """
    lines = [line.rstrip() for line in text.splitlines() if line.strip()]
    if not lines:
        return [], []
    header = lines[0]
    starts = [match.start() for match in re.finditer(r"(?:^|(?<=\s\s))\S", header)]
    names = [header[start:end].strip() for start, end in zip(starts, [*starts[1:], None], strict=True)]
    rows = []
    for line in lines[1:]:
        cells = [line[start:end].strip() for start, end in zip(starts, [*starts[1:], None], strict=True)]
        rows.append(dict(zip(names, cells, strict=True)))
    return names, rows


@dataclass(frozen=True)
class Expect:
    """What the contract says a command (or a step) prints. Empty fields expect nothing.

    `no_new_rows` (no worker Job appears) needs the output before and after a tick, so the
    caller compares those; `mismatches` checks everything else.
    """

    json: Mapping[str, Any] | None = None
    lines: tuple[str, ...] = ()
    table: Mapping[str, str] | None = None
    logs_present: tuple[str, ...] = ()
    logs_absent: tuple[str, ...] = ()
    contains: tuple[str, ...] = ()
    nonempty: bool = False
    no_new_rows: bool = False

    @classmethod
    def from_data(cls, data: Mapping[str, Any] | None) -> Expect:
        data = data or {}
        logs = data.get("logs") or {}
        return cls(
            json=data.get("json"),
            lines=tuple(data.get("lines") or ()),
            table=data.get("table"),
            logs_present=tuple(logs.get("present") or ()),
            logs_absent=tuple(logs.get("absent") or ()),
            contains=tuple(data.get("contains") or ()),
            nonempty=bool(data.get("nonempty")),
            no_new_rows=bool(data.get("no_new_rows")),
        )

    def __bool__(self) -> bool:
        return any(
            (self.json, self.lines, self.table, self.logs_present, self.logs_absent, self.contains, self.nonempty)
        )

    def mismatches(self, output: str, table_columns: Mapping[str, Sequence[str]] | None = None) -> list[str]:
        """How `output` differs from the contract; empty when it matches.

        `table_columns` maps a server version range to kubectl's header for it; a table
        must show one of them (the contract's `cronjob_table.columns`).
        """
        problems: list[str] = []
        stripped = [line.strip() for line in output.splitlines() if line.strip()]
        if self.json is not None:
            try:
                answer = json.loads(output)
            except ValueError:
                problems.append(f"not JSON: {output[:80]!r}")
            else:
                if answer != self.json:
                    problems.append(f"JSON {answer} is not {dict(self.json)}")
        if self.lines and stripped != list(self.lines):
            problems.append(f"lines {stripped} are not {list(self.lines)}")
        if self.table is not None:
            problems += self._table_mismatches(output, table_columns or {})
        for line in self.logs_present:
            if line not in stripped:
                problems.append(f"log line missing: {line!r}")
        for fragment in self.logs_absent:
            if any(fragment in line for line in stripped):
                problems.append(f"log mentions {fragment!r}")
        for fragment in self.contains:
            if fragment not in output:
                problems.append(f"output lacks {fragment!r}")
        if self.nonempty and not output.strip():
            problems.append("output is empty")
        return problems

    def _table_mismatches(self, output: str, table_columns: Mapping[str, Sequence[str]]) -> list[str]:
        assert self.table is not None
        names, rows = parse_table(output)
        if table_columns and names not in [list(columns) for columns in table_columns.values()]:
            return [f"table columns {names} match no server version's {dict(table_columns)}"]
        if len(rows) != 1:
            return [f"expected one table row, found {len(rows)}"]
        return [
            f"{column} is {rows[0].get(column)!r}, not {value!r}"
            for column, value in self.table.items()
            if column in names and rows[0].get(column) != value
        ]


@dataclass(frozen=True)
class Command:
    """One command of the contract, verbatim, with what it needs to run and what it prints."""

    id: str
    run: str
    cluster: bool
    in_cluster_network: bool = False
    interactive: bool = False
    destructive: bool = False
    edit: Mapping[str, str] | None = None
    placeholders: Mapping[str, str] = field(default_factory=dict)
    expect: Expect = Expect()
    procedure: str = ""
    step: str = ""

    @property
    def kube_editor(self) -> str | None:
        """For a `kubectl edit`: a KUBE_EDITOR value that makes the contract's edit without a person,
        so the command itself runs verbatim: KUBE_EDITOR="<this>" kubectl edit configmap ..."""
        if not self.edit:
            return None
        return f"sed -i 's/^\\( *\\){self.edit['from']}$/\\1{self.edit['to']}/'"

    @property
    def tool(self) -> str:
        """The program the command starts with: kubectl, curl, helm, export, echo."""
        return self.run.split()[0]


@dataclass(frozen=True)
class Step:
    id: str
    title: str
    commands: tuple[Command, ...]
    optional: bool = False
    expect: Expect = Expect()

    @property
    def expects(self) -> tuple[Expect, ...]:
        """The step's own expectation and its commands', non-empty ones only."""
        return tuple(e for e in (self.expect, *(c.expect for c in self.commands)) if e)


@dataclass(frozen=True)
class Procedure:
    id: str
    title: str
    steps: tuple[Step, ...]

    def step(self, step_id: str) -> Step:
        return next(step for step in self.steps if step.id == step_id)


@dataclass(frozen=True)
class Contract:
    version: str
    release: str
    namespace: str
    names: Mapping[str, Any]
    status_api: Mapping[str, Any]
    log_lines: Mapping[str, str]
    cronjob_table: Mapping[str, Any]
    procedures: tuple[Procedure, ...]
    # (stem, values): where the stem occurs in a doc's code, one of the values follows it whole.
    pins: tuple[tuple[str, tuple[str, ...]], ...] = ()
    # (heading, first cells): the table under that heading lists exactly these.
    tables: tuple[tuple[str, tuple[str, ...]], ...] = ()

    def procedure(self, procedure_id: str) -> Procedure:
        return next(procedure for procedure in self.procedures if procedure.id == procedure_id)

    def commands(self) -> Iterator[Command]:
        """Every command, in the contract's order."""
        for procedure in self.procedures:
            for step in procedure.steps:
                yield from step.commands

    def command(self, command_id: str) -> Command:
        return next(command for command in self.commands() if command.id == command_id)

    @property
    def table_columns(self) -> Mapping[str, Sequence[str]]:
        """kubectl's `get cronjob` header by API server version range."""
        return self.cronjob_table["columns"]


def _resolve(data: Mapping[str, Any], dotted: str) -> str:
    """A contract string named by its dotted path in the data file (`<path>`: names.config_path)."""
    value: Any = data
    for key in dotted.split("."):
        if not isinstance(value, Mapping) or key not in value:
            raise KeyError(f"{CONTRACT_FILE.name}: {dotted} names no entry")
        value = value[key]
    if not isinstance(value, str):
        raise TypeError(f"{CONTRACT_FILE.name}: {dotted} is not a string")
    return value.replace("<path>", data["names"]["config_path"])


def _command(data: Mapping[str, Any], procedure: str, step: str) -> Command:
    return Command(
        id=data["id"],
        run=data["run"],
        cluster=bool(data["cluster"]),
        in_cluster_network=bool(data.get("in_cluster_network")),
        interactive=bool(data.get("interactive")),
        destructive=bool(data.get("destructive")),
        edit=data.get("edit"),
        placeholders=data.get("placeholders") or {},
        expect=Expect.from_data(data.get("expect")),
        procedure=procedure,
        step=step,
    )


@cache
def load_contract(path: Path = CONTRACT_FILE) -> Contract:
    """The contract from its data file; procedures, steps and commands keep the contract's order."""
    data = yaml.safe_load(path.read_text(encoding="utf-8"))
    procedures = tuple(
        Procedure(
            id=procedure["id"],
            title=procedure["title"],
            steps=tuple(
                Step(
                    id=step["id"],
                    title=step["title"],
                    commands=tuple(_command(c, procedure["id"], step["id"]) for c in step["commands"]),
                    optional=bool(step.get("optional")),
                    expect=Expect.from_data(step.get("expect")),
                )
                for step in procedure["steps"]
            ),
        )
        for procedure in data["procedures"]
    )
    return Contract(
        version=str(data["version"]),
        release=data["release"],
        namespace=data["namespace"],
        names=data["names"],
        status_api=data["status_api"],
        log_lines=data["log_lines"],
        cronjob_table=data["cronjob_table"],
        procedures=procedures,
        pins=tuple(
            (pin["stem"], tuple(_resolve(data, dotted) for dotted in pin["values"])) for pin in data.get("pins") or ()
        ),
        tables=tuple(
            (table["heading"], tuple(_resolve(data, dotted) for dotted in table["first_column"]))
            for table in data.get("tables") or ()
        ),
    )


# The contract's strings that tests compare the sidecars' output with, each written once (in the
# data file). tests/test_contract_data.py pins them to the reference runbook's text, and the
# sidecars' own definitions to them.
CONFIG_PATH: str = load_contract().names["config_path"]
SOURCE_NOT_MOUNTED: str = load_contract().status_api["sources"]["not_mounted"]
SOURCE_ERROR: str = load_contract().status_api["sources"]["error"]
DISABLED_LINE: str = load_contract().log_lines["disabled"]
EXITING_LINE: str = load_contract().log_lines["exiting"]


def configmap_source(path: object) -> str:
    """The contract's `configmap:<path>` source for a config mounted at `path`."""
    return load_contract().status_api["sources"]["loaded"].replace("<path>", str(path))
