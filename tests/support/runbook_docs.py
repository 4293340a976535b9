"""Check an operators' document (docs/RUNBOOK.md, README.md, rendered NOTES.txt) against the contract.

docs/RUNBOOK.md marks where each contract step lives with an HTML comment, invisible when rendered:

    <!-- contract: disable/verify-configmap -->     one step
    <!-- contract: quick-reference -->              a whole procedure in one place (a table)

A step's region runs from its marker to the next marker or the next `##`/`###` heading. Inside it,
each of the step's commands is present verbatim (a line of a ```bash block, `\\`-continuations
joined, or a whole inline code span), or the step says why not, in one line:

    > **Differs from the reference runbook** (`<command id>`): <reason>

README.md and NOTES.txt carry the quick reference only: its commands, verbatim or marked the same way.
"""

from __future__ import annotations

import re
import textwrap
from collections.abc import Iterable
from dataclasses import dataclass

from support.contract import Command, Contract, Expect, Procedure, Step

MARKER = re.compile(r"^<!-- contract: (?P<procedure>[\w-]+)(?:/(?P<step>[\w-]+))? -->$", re.M)
DEVIATION = re.compile(r"Differs from the reference runbook\**\s*\(`?(?P<id>[\w.-]+)`?\):(?P<reason>.*)$", re.M)
FENCE = re.compile(r"^(?P<indent>[ \t]*)```(?P<lang>\w*)\n(?P<body>.*?)^(?P=indent)```$", re.M | re.S)
INLINE = re.compile(r"(?<!`)`([^`\n]+)`(?!`)")
VARIABLE = re.compile(r"\$\{?([A-Z_][A-Z0-9_]*)")
DEFINITION = re.compile(r"\bexport ([A-Z_][A-Z0-9_]*)=")


@dataclass(frozen=True)
class Block:
    lang: str
    body: str
    start: int


def blocks(text: str) -> list[Block]:
    """Fenced blocks, also inside list items (their indentation removed)."""
    return [Block(m.group("lang"), textwrap.dedent(m.group("body")), m.start()) for m in FENCE.finditer(text)]


def shell_lines(body: str) -> list[str]:
    """The logical lines of a shell block: continuations joined, blank lines dropped."""
    joined = re.sub(r"\s*\\\n\s*", " ", body)
    return [line.rstrip() for line in joined.splitlines() if line.strip()]


def inline_spans(text: str) -> list[tuple[int, str]]:
    """Inline code outside fenced blocks, with `\\|` (escaped in tables) read as `|`."""
    outside = FENCE.sub(lambda m: " " * len(m.group(0)), text)
    return [(m.start(), m.group(1).replace("\\|", "|")) for m in INLINE.finditer(outside)]


def command_positions(text: str) -> list[tuple[int, str]]:
    """Every place a markdown text shows a command: shell block lines and inline code."""
    found: list[tuple[int, str]] = []
    for block in blocks(text):
        if block.lang in ("bash", "sh", "shell"):
            found += [(block.start + index, line) for index, line in enumerate(shell_lines(block.body))]
    return sorted(found + inline_spans(text))


def occurrences(text: str, command: str, markdown: bool) -> list[int]:
    """Where `command` appears verbatim: as a whole shell line or inline code span (markdown), or, in
    plain text (NOTES), anywhere on a line, ending the line or followed by blanks."""
    if markdown:
        return [pos for pos, candidate in command_positions(text) if candidate.strip() == command]
    return [m.start(1) for m in re.finditer(rf"(?:^|\s)({re.escape(command)})(?=\s|$)", text, flags=re.M)]


def runnable_lines(text: str) -> list[str]:
    """Lines that run when a shell block is pasted (comments are not)."""
    lines: list[str] = []
    for block in blocks(text):
        if block.lang in ("bash", "sh", "shell"):
            lines += [line.strip() for line in shell_lines(block.body) if not line.strip().startswith("#")]
    return lines


@dataclass(frozen=True)
class Region:
    procedure: str
    step: str | None
    start: int
    text: str


def regions(text: str) -> list[Region]:
    markers = list(MARKER.finditer(text))
    found = []
    for index, marker in enumerate(markers):
        end = markers[index + 1].start() if index + 1 < len(markers) else len(text)
        heading = re.search(r"^#{2,3} ", text[marker.end() : end], flags=re.M)
        if heading:
            end = marker.end() + heading.start()
        region = text[marker.start() : end]
        found.append(Region(marker.group("procedure"), marker.group("step"), marker.start(), region))
    return found


def deviations(text: str) -> dict[str, str]:
    return {m.group("id"): m.group("reason").strip() for m in DEVIATION.finditer(text)}


def _commands_in_order(commands: Iterable[Command], text: str, markdown: bool, where: str) -> list[str]:
    """Each command present verbatim (in order) or marked as a deviation in `text`."""
    problems = []
    marked = deviations(text)
    cursor = -1
    for command in commands:
        if command.id in marked:
            if not marked[command.id]:
                problems.append(f"{where}: the deviation marker for {command.id} gives no reason")
            continue
        found = occurrences(text, command.run, markdown)
        after = [pos for pos in found if pos > cursor]
        if after:
            cursor = after[0]
        elif found:
            problems.append(f"{where}: {command.id} is out of the contract's order: {command.run}")
        else:
            problems.append(f"{where}: {command.id} is neither verbatim nor marked as a deviation: {command.run}")
    return problems


def _outputs(step: Step, region: Region, contract: Contract) -> list[str]:
    """The outputs the region shows must be the contract's; every expected output must be shown."""
    problems = []
    shown = [block for block in blocks(region.text) if block.lang not in ("bash", "sh", "shell", "yaml")]
    json_blocks = [block for block in shown if block.lang == "json"]
    plain = [block for block in shown if block.lang == ""]
    where = f"{region.procedure}/{step.id}"
    for expect in step.expects:
        if expect.json is not None:
            if not json_blocks:
                problems.append(f"{where}: the expected JSON answer is not shown")
            for block in json_blocks:
                problems += [f"{where}: {p}" for p in Expect(json=expect.json).mismatches(block.body)]
        if expect.lines and all(Expect(lines=expect.lines).mismatches(block.body) for block in plain):
            problems.append(f"{where}: no block shows exactly {list(expect.lines)}")
        if expect.table is not None:
            problems += _tables(expect, plain, contract, where)
        if expect.logs_present:
            shown_lines = "\n".join(block.body for block in plain)
            problems += [f"{where}: {p}" for p in Expect(logs_present=expect.logs_present).mismatches(shown_lines)]
    return problems


def _tables(expect: Expect, plain: list[Block], contract: Contract, where: str) -> list[str]:
    """One expected table per server version range, each with the contract's fixed cells."""
    problems = []
    tables = [block for block in plain if block.body.lstrip().startswith("NAME ")]
    for versions, columns in contract.table_columns.items():
        matching = [block for block in tables if block.body.split("\n", 1)[0].split() == " ".join(columns).split()]
        if not matching:
            problems.append(f"{where}: no `kubectl get cronjob` table for servers {versions}: {columns}")
        for block in matching:
            problems += [f"{where} ({versions}): {p}" for p in expect.mismatches(block.body, contract.table_columns)]
    for block in tables:
        problems += [f"{where}: {p}" for p in expect.mismatches(block.body, contract.table_columns)]
    return sorted(set(problems))


def _shell_variables(text: str, markdown: bool) -> list[str]:
    """Every $VARIABLE a command uses is exported in the same document."""
    defined = set(DEFINITION.findall(text))
    if markdown:
        commands = [c for _, c in command_positions(text) if c.split(" ", 1)[0] in ("kubectl", "curl", "helm", "echo")]
    else:
        commands = text.splitlines()
    used = {name for command in commands for name in VARIABLE.findall(command)}
    return [f"${name} is used but never set (export {name}=...)" for name in sorted(used - defined)]


def _destructive(text: str, contract: Contract, markdown: bool) -> list[str]:
    """A destructive command never runs when a block is pasted: it is commented out, or absent."""
    problems = []
    for command in contract.commands():
        if not command.destructive:
            continue
        if markdown:
            runs = command.run in runnable_lines(text)
        else:
            runs = any(
                not line.lstrip().startswith("#") and occurrences(line, command.run, False)
                for line in text.splitlines()
            )
        if runs:
            problems.append(f"{command.id} runs when pasted; it must be commented out: {command.run}")
    return problems


def _markers_known(text: str, contract: Contract, region_of: dict[str, Region] | None) -> list[str]:
    problems = []
    ids = {command.id: command for command in contract.commands()}
    for match in DEVIATION.finditer(text):
        command = ids.get(match.group("id"))
        if command is None:
            problems.append(f"deviation marker names no contract command: {match.group('id')}")
        elif region_of is not None:
            region = region_of.get(f"{command.procedure}/{command.step}") or region_of.get(command.procedure)
            inside = region is not None and region.start <= match.start() < region.start + len(region.text)
            if not inside:
                problems.append(f"the deviation marker for {command.id} is not at its step")
    return problems


def runbook_violations(text: str, contract: Contract) -> list[str]:
    """Everything in docs/RUNBOOK.md that breaks the contract; empty when it keeps it."""
    problems = []
    found = regions(text)
    region_of = {f"{r.procedure}/{r.step}" if r.step else r.procedure: r for r in found}
    seen = [key for key in (f"{r.procedure}/{r.step}" if r.step else r.procedure for r in found)]
    for duplicate in sorted({key for key in seen if seen.count(key) > 1}):
        problems.append(f"{duplicate} is marked more than once")
    for procedure in contract.procedures:
        problems += _procedure(procedure, region_of, found, contract)
    known = {p.id for p in contract.procedures}
    for region in found:
        if region.procedure not in known or (
            region.step and region.step not in {s.id for s in contract.procedure(region.procedure).steps}
        ):
            problems.append(f"marker for a step the contract does not have: {region.procedure}/{region.step}")
    problems += _markers_known(text, contract, region_of)
    problems += _destructive(text, contract, markdown=True)
    problems += _shell_variables(text, markdown=True)
    problems += pinned_string_violations(text, contract)
    problems += table_violations(text, contract)
    return problems


# A pinned value must end where a name would end: `leviathan-autonomy-configs` is not the ConfigMap.
_NAME_GOES_ON = re.compile(r"[\w-]")


def pinned_string_violations(text: str, contract: Contract) -> list[str]:
    """Where a contract string's stem occurs in code (inline spans, so table cells and headings too, and
    code blocks), the contract string itself follows, whole."""
    pieces = [span for _, span in inline_spans(text)] + [block.body for block in blocks(text)]
    problems = []
    for stem, values in contract.pins:
        for piece in pieces:
            for match in re.finditer(re.escape(stem), piece):
                rest = piece[match.start() :]
                if not any(rest.startswith(v) and not _NAME_GOES_ON.match(rest[len(v) : len(v) + 1]) for v in values):
                    shown = rest.split("\n", 1)[0][: max(len(v) for v in values) + 10]
                    problems.append(f"`{shown}` is not the contract's {' or '.join(repr(v) for v in values)}")
    return sorted(set(problems))


def table_violations(text: str, contract: Contract) -> list[str]:
    """Each pinned table: the first table under its heading has exactly the contract's first cells, in order."""
    problems = []
    for heading, cells in contract.tables:
        found = re.search(rf"^#{{2,4}} {re.escape(heading)}\s*$", text, flags=re.M)
        if found is None:
            problems.append(f"no heading {heading!r} with the contract's table")
            continue
        rows: list[str] = []
        for line in text[found.end() :].splitlines():
            if line.startswith("|"):
                rows.append(line)
            elif rows or line.startswith("#"):
                break  # the table ended, or the section has none
        body = [row for row in rows[1:] if not re.fullmatch(r"\|[\s:|-]+\|?", row)]
        first = [row.strip("|").split(" | ", 1)[0].strip().strip("`") for row in body]
        if first != list(cells):
            problems.append(f"the table under {heading!r} lists {first}, not the contract's {list(cells)}")
    return problems


def _procedure(procedure: Procedure, region_of: dict[str, Region], found: list[Region], contract: Contract):
    problems = []
    whole = region_of.get(procedure.id)
    if whole is not None:
        commands = [command for step in procedure.steps for command in step.commands]
        return _commands_in_order(commands, whole.text, True, procedure.id)
    order = []
    for step in procedure.steps:
        region = region_of.get(f"{procedure.id}/{step.id}")
        if region is None:
            problems.append(f"{procedure.id}/{step.id} ({step.title}) is missing")
            continue
        order.append(found.index(region))
        problems += _commands_in_order(step.commands, region.text, True, f"{procedure.id}/{step.id}")
        problems += _outputs(step, region, contract)
    if order != sorted(order):
        problems.append(f"{procedure.id}: the steps are not in the contract's order")
    return problems


def quick_reference_violations(text: str, contract: Contract, markdown: bool) -> list[str]:
    """README.md / NOTES.txt: the quick reference's commands, in order, and nothing unsafe to paste."""
    quick = contract.procedure("quick-reference")
    problems = []
    for step in quick.steps:
        # A row's commands appear in the contract's order on one line (a table row or a NOTES line).
        if len(step.commands) > 1:
            rows = [line for line in text.splitlines() if _row_has(line, step.commands[-1], markdown)]
            if not any(not _commands_in_order(step.commands, row, markdown, step.id) for row in rows):
                problems.append(
                    f"quick reference {step.id}: no line has, in order, " + " then ".join(c.run for c in step.commands)
                )
        else:
            problems += _commands_in_order(step.commands, text, markdown, f"quick reference {step.id}")
    problems += _markers_known(text, contract, None)
    problems += _destructive(text, contract, markdown)
    problems += _shell_variables(text, markdown)
    return problems


def _row_has(line: str, command: Command, markdown: bool) -> bool:
    return bool(occurrences(line, command.run, markdown)) or command.id in deviations(line)


def table_rows(text: str, heading: str) -> list[list[str]]:
    """The cells of the first table under `heading` (a whole heading line), header and rule excluded."""
    section = text.split(f"\n{heading}\n", 1)[1]
    rows = []
    for line in section.splitlines():
        if line.startswith("## "):
            break
        if line.startswith("|"):
            cells = re.split(r"(?<!\\)\|", line.strip())[1:-1]
            rows.append([cell.strip() for cell in cells])
    return [row for row in rows[1:] if not set("".join(row)) <= set("- ")]


def code_spans(cell: str) -> list[str]:
    """Inline code in a table cell, with `\\|` read as `|`."""
    return [span for _, span in inline_spans(cell)]
