"""The switch grammar (leviathan_config.switch) as properties: one meaning of the file, everywhere.

- A text of the grammar means to PyYAML (and to the settings file's strict loader) exactly what it
  means to the reader, so any YAML tool an operator points at the file reads the same switch.
- Any other text, however close, is unusable: the reader loads a text iff it matches the
  grammar's pattern (the one chart/files/switch-grammar.json carries to CEL and Go), and says which
  line is wrong.
- chart/files/switch-grammar.json is what hack/switch_grammar.py renders from the module.
- `python -m leviathan_config` (what the hack scripts ask) gives the reader's verdict.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml
from hypothesis import example, given, settings
from hypothesis import strategies as st

from leviathan_config import (
    MAX_SWITCH_BYTES,
    PATTERNS,
    ConfigState,
    is_on,
    parse_autonomy_config,
    parse_settings_file,
    parse_switch,
)
from leviathan_config.switch import REASON_SOME, REASON_TEXT, REVIEW_BY_TEXT
from support.config_cases import INVALID
from support.paths import PYTHON, REPO

GRAMMAR_JSON = REPO / "chart" / "files" / "switch-grammar.json"
GENERATOR = REPO / "hack" / "switch_grammar.py"

# printable ASCII without `"` and `\`: what a reason may hold.
REASON_CHARS = "".join(chr(code) for code in range(0x20, 0x7F) if chr(code) not in '"\\')
reasons = st.text(alphabet=REASON_CHARS, max_size=80)
review_bys = st.from_regex(REVIEW_BY_TEXT, fullmatch=True)


@st.composite
def grammar_texts(draw) -> tuple[str, dict[str, object]]:
    """A switch file of the grammar, with the document it was written from."""
    document: dict[str, object] = {"autonomy_enabled": draw(st.booleans())}
    lines = [f"autonomy_enabled: {'true' if document['autonomy_enabled'] else 'false'}"]
    if draw(st.booleans()):
        document["reason"] = draw(reasons)
        lines.append(f'reason: "{document["reason"]}"')
    if draw(st.booleans()):
        document["review_by"] = draw(review_bys)
        lines.append(f'review_by: "{document["review_by"]}"')
    return "\n".join(lines) + draw(st.sampled_from(["\n", ""])), document


def reader(text: str | bytes):
    return parse_autonomy_config(text.encode() if isinstance(text, str) else text, "dev.yaml")


def in_grammar(raw: bytes) -> bool:
    """The grammar as the chart states it: the pattern, over ASCII, within maxBytes."""
    if len(raw) > MAX_SWITCH_BYTES or not raw.isascii():
        return False
    return re.fullmatch(PATTERNS["grammar"], raw.decode("ascii")) is not None


# ---- (1) a text of the grammar means the same to every reader -------------------------------


@given(grammar_texts())
@example(('autonomy_enabled: true\nreason: "INC-1: x # not a comment"\n', {}))
@example(("autonomy_enabled: false\nreason: \"it's: 'quoted' {not flow} [nor a list] &no *alias !tag\"", {}))
@example(('autonomy_enabled: true\nreason: "   "\nreview_by: "2026-12-01T09:00+01:00"\n', {}))
@example(('autonomy_enabled: false\nreason: ""\nreview_by: "2026-12-01T09:00:00.123456789Z"', {}))
def test_pyyaml_reads_a_grammar_text_exactly_as_the_reader_does(case):
    text, written = case
    config = reader(text)
    assert config.state is ConfigState.LOADED, config.problem
    if written:  # the explicit examples only check the agreement below
        assert config.document == written
    assert re.fullmatch(PATTERNS["grammar"], text)
    # Any YAML tool: PyYAML's safe loader, and the settings file's strict YAML 1.2 loader.
    assert yaml.safe_load(text) == config.document
    assert parse_settings_file(text.encode(), "same.yaml").document == config.document
    assert parse_switch(text) == config.document
    assert config.autonomy_enabled is config.document["autonomy_enabled"]


@given(grammar_texts())
def test_on_and_on_with_a_reason_follow_the_document(case):
    text, document = case
    on = document["autonomy_enabled"] is True
    assert is_on(text) is on
    assert (re.fullmatch(PATTERNS["on"], text) is not None) is on
    with_reason = on and str(document.get("reason", "")).strip(" ") != ""
    assert (re.fullmatch(PATTERNS["onWithReason"], text) is not None) is with_reason


@given(reasons)
def test_reason_patterns_are_the_reason_alphabet(reason):
    assert re.fullmatch(REASON_TEXT, reason)
    assert (re.fullmatch(REASON_SOME, reason) is not None) is (reason.strip(" ") != "")


@given(st.from_regex(PATTERNS["grammar"], fullmatch=True))
def test_every_text_the_pattern_admits_is_read_alike(text):
    """Texts drawn from the pattern itself (as CEL and Go match it), not from the builder above."""
    config = reader(text)
    if len(text) > MAX_SWITCH_BYTES:
        assert config.state is ConfigState.ERROR
        return
    assert config.state is ConfigState.LOADED, config.problem
    assert yaml.safe_load(text) == config.document
    assert is_on(text) is config.autonomy_enabled


# ---- (2) anything else is unusable, and the problem names the line ---------------------------

# What turns a switch file into a different YAML meaning, or into bytes tools disagree about.
NASTY = ["\r", "\t", "\n", " ", "#", '"', "'", "\\", ":", "-", "{", "[", "!", "&", "*", "|", ">",
         "T", "Y", "0", "~", "\x00", "\x1b", "\x7f", "\x85", "\u00e9", "\u2028", "\ufeff"]  # fmt: skip


@st.composite
def mutated_texts(draw) -> str:
    """A grammar text after a few small edits: insert, delete, replace, swap case, repeat a line."""
    text, _ = draw(grammar_texts())
    for _ in range(draw(st.integers(1, 3))):
        edit = draw(st.sampled_from(["insert", "delete", "replace", "case", "repeat", "swap", "append"]))
        at = draw(st.integers(0, len(text)))
        char = draw(st.sampled_from(NASTY) | st.characters())
        if edit == "insert":
            text = text[:at] + char + text[at:]
        elif edit == "delete" and text:
            text = text[:at] + text[at + 1 :]
        elif edit == "replace" and at < len(text):
            text = text[:at] + char + text[at + 1 :]
        elif edit == "case":
            text = text[:at] + text[at:].swapcase()
        elif edit in ("repeat", "swap"):
            lines = text.split("\n")
            index = draw(st.integers(0, len(lines) - 1))
            if edit == "repeat":
                lines.insert(index, lines[index])
            else:
                lines[0], lines[index] = lines[index], lines[0]
            text = "\n".join(lines)
        else:
            text += draw(st.sampled_from(["\n", "\n\n", "# note\n", "\nreason: x", "\nx: 1", "\n...", "\r\n"]))
    return text


def assert_reader_agrees_with_the_pattern(raw: bytes) -> None:
    config = reader(raw)
    if in_grammar(raw):
        assert config.state is ConfigState.LOADED, config.problem
        assert yaml.safe_load(raw.decode("ascii")) == config.document
        return
    assert (config.state, config.autonomy_enabled, config.document) == (ConfigState.ERROR, None, None)
    assert config.source == "default (error reading config)"
    # A clear problem: the line that is wrong, or why no line could be read.
    assert re.match(
        r"dev\.yaml(?:: line [0-9]+ \(.*\) is outside the switch file's form: expected "
        r"|: the file is empty| has a byte outside printable ASCII at offset [0-9]+$"
        rf"| is larger than {MAX_SWITCH_BYTES} bytes)",
        config.problem,
    ), config.problem


@settings(max_examples=400)
@given(mutated_texts())
@example("autonomy_enabled: true\n\n")
@example("autonomy_enabled: true\r\n")
@example("\ufeffautonomy_enabled: true\n")
@example('"autonomy_enabled": true\n')
@example("autonomy_enabled: True\n")
@example('autonomy_enabled: true\nreason: "x"\nautonomy_enabled: false\n')
def test_a_mutated_text_is_loaded_iff_it_matches_the_grammar(text):
    assert_reader_agrees_with_the_pattern(text.encode("utf-8", "surrogatepass"))


@settings(max_examples=300)
@given(
    st.one_of(st.binary(max_size=200), st.text(max_size=200).map(lambda text: text.encode("utf-8", "surrogatepass")))
)
def test_any_bytes_are_loaded_iff_they_match_the_grammar(raw):
    assert_reader_agrees_with_the_pattern(raw)


@pytest.mark.parametrize("raw", [body for body, _ in INVALID.values()], ids=list(INVALID))
def test_every_refused_case_is_outside_the_pattern(raw):
    """The corpus of unusable files is unusable by the pattern too (what the chart's CEL matches)."""
    assert not in_grammar(raw)
    assert_reader_agrees_with_the_pattern(raw)


@pytest.mark.parametrize(
    "text",
    [
        "autonomy_enabled: True\n",
        '"autonomy_enabled": true\n',
        "{autonomy_enabled: true}\n",
        "autonomy_enabled: !!bool true\n",
        "autonomy_enabled:\n  true\n",
        "autonomy_enabled: yes\n",
        "---\nautonomy_enabled: true\n",
        "autonomy_enabled: true # on\n",
        "autonomy_enabled: false\nautonomy_enabled: true\n",
    ],
)
def test_yaml_that_says_on_in_another_spelling_is_not_on(text):
    """What YAML 1.1 or 1.2 tools read as a mapping saying on (or, for the duplicate key, on to
    PyYAML's last-wins), but outside the grammar: unusable, so never on."""
    assert yaml.safe_load(text)["autonomy_enabled"] is True
    assert reader(text).state is ConfigState.ERROR
    assert not is_on(text)


# ---- (3) chart/files/switch-grammar.json is generated from the module ------------------------


def run_generator(script: Path, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([str(PYTHON), str(script), *args], capture_output=True, text=True, timeout=60, check=False)


def test_the_chart_carries_the_modules_grammar():
    document = json.loads(GRAMMAR_JSON.read_text())
    assert document["patterns"] == PATTERNS
    assert document["maxBytes"] == MAX_SWITCH_BYTES
    result = run_generator(GENERATOR, "--check")
    assert (result.returncode, result.stdout, result.stderr) == (0, "", "")


@pytest.fixture
def copy_of_the_generator(tmp_path: Path) -> tuple[Path, Path]:
    """hack/switch_grammar.py and chart/files/switch-grammar.json in a tree of their own
    (the script finds its TARGET next to itself), so a test may edit the JSON."""
    script = tmp_path / "hack" / "switch_grammar.py"
    target = tmp_path / "chart" / "files" / "switch-grammar.json"
    script.parent.mkdir(parents=True)
    target.parent.mkdir(parents=True)
    shutil.copy(GENERATOR, script)
    shutil.copy(GRAMMAR_JSON, target)
    return script, target


def _loosen(document: dict) -> None:
    document["patterns"]["on"] = document["patterns"]["on"].replace("true", "(?:true|True)", 1)


def _drop_pattern(document: dict) -> None:
    del document["patterns"]["onWithReason"]


def _bigger(document: dict) -> None:
    document["maxBytes"] = 65536


@pytest.mark.parametrize(
    "edit", [_loosen, _drop_pattern, _bigger], ids=["a looser on", "a pattern dropped", "maxBytes"]
)
def test_an_edited_grammar_json_fails_the_check_until_regenerated(copy_of_the_generator, edit):
    script, target = copy_of_the_generator
    assert run_generator(script, "--check").returncode == 0  # the copy itself is current
    document = json.loads(target.read_text())
    edit(document)
    target.write_text(json.dumps(document, indent=2, sort_keys=True) + "\n")
    result = run_generator(script, "--check")
    assert result.returncode == 1
    assert result.stderr == f"{target} is stale: run python hack/switch_grammar.py --write\n"
    assert run_generator(script, "--write").returncode == 0
    assert target.read_text() == GRAMMAR_JSON.read_text()
    assert run_generator(script, "--check").returncode == 0


def test_a_reformatted_grammar_json_is_stale_too(copy_of_the_generator):
    """The check compares the bytes: the chart's templates read the file as it is."""
    script, target = copy_of_the_generator
    target.write_text(json.dumps(json.loads(target.read_text())) + "\n")
    assert run_generator(script, "--check").returncode == 1


def test_the_generator_refuses_other_arguments(copy_of_the_generator):
    script, target = copy_of_the_generator
    before = target.read_text()
    for args in ((), ("--chek",), ("--check", "--write")):
        result = run_generator(script, *args)
        assert result.returncode == 2
        assert "python hack/switch_grammar.py --check" in result.stderr
    assert target.read_text() == before


# ---- (4) python -m leviathan_config: the verdict the hack scripts ask for --------------------


def verdict(raw: bytes) -> subprocess.CompletedProcess[bytes]:
    return subprocess.run(
        [str(PYTHON), "-m", "leviathan_config"], input=raw, capture_output=True, timeout=60, check=False
    )


@pytest.mark.parametrize(
    ("raw", "stdout", "code"),
    [
        (b"autonomy_enabled: true\n", b"on\n", 0),
        (b'autonomy_enabled: true\nreason: "INC-1"\nreview_by: "2026-12-01T09:00:00Z"', b"on\n", 0),
        (b"autonomy_enabled: false\n", b"off\n", 1),
        (b'autonomy_enabled: false\nreason: "INC-2: braking"\n', b"off\n", 1),
    ],
    ids=["on", "on with reason", "off", "off with reason"],
)
def test_the_module_says_on_or_off(raw, stdout, code):
    result = verdict(raw)
    assert (result.returncode, result.stdout, result.stderr) == (code, stdout, b"")


@pytest.mark.parametrize(
    "name",
    ["empty", "capitalised True", "quoted key", "CRLF", "BOM", "a comment after", f"over {MAX_SWITCH_BYTES} bytes"],
)
def test_the_module_says_unusable_with_the_readers_problem(name):
    raw, problem = INVALID[name]
    result = verdict(raw)
    assert (result.returncode, result.stderr) == (2, b"")
    expected = f"unusable: {parse_autonomy_config(raw, '<stdin>').problem}\n"
    assert result.stdout.decode() == expected
    assert problem in expected
    assert len(result.stdout.splitlines()) == 1  # one line, whatever the file held
