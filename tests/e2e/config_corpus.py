"""Config texts for the admission policy's soundness check: edge cases by hand, plus seeded mutations.

Each text is what `<env>.yaml` in the autonomy ConfigMap could hold. The policy may refuse a
text the shared reader loads, but must never allow one the reader does not load as enabled.
"""

from __future__ import annotations

import random

SWITCH_ON = "autonomy_enabled: true"


def corpus(base: str, seed: int = 10, mutations: int = 160) -> dict[str, str]:
    """Named texts: `base` (the chart's rendered config, switch on) and its variations."""
    lines = base.splitlines()
    assert lines[0] == SWITCH_ON, "the base must start with the switch line"
    rest = "\n".join(lines[1:]) + "\n"
    texts: dict[str, str] = {"base": base, "base without trailing newline": base.rstrip("\n")}

    def add(name: str, text: str) -> None:
        texts[name] = text

    for word in ["True", "TRUE", "false", "False", "yes", "on", "y", "1", "~", "null", '"true"', "'true'",
                 "!!bool true", "&a true", "tRue", "true # on", "true   ", " true", "[true]", "{}", ""]:  # fmt: skip
        add(f"switch word {word!r}", f"autonomy_enabled: {word}\n{rest}")
    for line in ["autonomy_enabled :true", "autonomy_enabled : true", '"autonomy_enabled": true',
                 "'autonomy_enabled': true", "autonomy_enabled:true", " autonomy_enabled: true",
                 "? autonomy_enabled\n: true", "autonomy_enabled:\n  true", "autonomy_enabled: |\n  true",
                 "Autonomy_enabled: true", "autonomy-enabled: true", "autonomy_enabled: true\t"]:  # fmt: skip
        add(f"switch line {line!r}", f"{line}\n{rest}")
    # Where the switch sits, and how often.
    add("switch after a comment", f"# hello\n{base}")
    add("switch after a blank line", f"\n{base}")
    add("switch last", f"{rest}{SWITCH_ON}\n")
    add("switch missing", rest)
    add("switch twice", f"{base}{SWITCH_ON}\n")
    add("switch true then false", f"{base}autonomy_enabled: false\n")
    add("switch false then true", f"autonomy_enabled: false\n{rest}{SWITCH_ON}\n")
    add("switch nested only", f"scheduler_:\n  {SWITCH_ON}\n{rest}")
    add("switch nested, top false", f"autonomy_enabled: false\nextra:\n  {SWITCH_ON}\n{rest}")
    add("switch in a string", f'note: "{SWITCH_ON}"\n{rest}')
    add("switch in a string, top false", f'autonomy_enabled: false\nnote: "{SWITCH_ON}"\n{rest}')
    add("switch in a comment, top false", f"autonomy_enabled: false # {SWITCH_ON}\n{rest}")
    add("switch in a block scalar", f"note: |\n  {SWITCH_ON}\n{rest}")
    add("switch in a block scalar at column 0", f"note: |\n{SWITCH_ON}\n{rest}")
    add("switch in a folded scalar", f"note: >\n  x\n{SWITCH_ON}\n{rest}")
    add("switch in a multi-line plain scalar", f"note: a\n  {SWITCH_ON}\n{rest}")
    add("switch in a multi-line quoted scalar", f'note: "a\n{SWITCH_ON}"\n{rest}')
    add("switch inside a flow mapping", "{autonomy_enabled: true, reason: x}\n")
    add("flow mapping document", '{"autonomy_enabled": true}\n')
    add("json document", '{"autonomy_enabled": true, "reason": ""}')
    add("switch only", f"{SWITCH_ON}\n")
    add("switch only, no newline", SWITCH_ON)
    # Documents and directives.
    add("second document", f"{base}---\nautonomy_enabled: false\n")
    add("empty second document", f"{base}---\n")
    add("document start first", f"---\n{base}")
    add("document end", f"{base}...\n")
    add("directive", f"%YAML 1.1\n---\n{base}")
    add("directive in the middle", f"{base}%YAML 1.1\n")
    # Encodings and line ends.
    add("BOM", "\ufeff" + base)
    add("CRLF", base.replace("\n", "\r\n"))
    add("CR only", base.replace("\n", "\r"))
    add("NEL line ends", base.replace("\n", "\x85"))
    add("line separator", base.replace("\n", "\u2028"))
    add("tab after the colon", base.replace(SWITCH_ON, "autonomy_enabled:\ttrue"))
    add("tab indentation", base.replace("\n  ", "\n\t"))
    add("tab in a value", base + "note: a\tb\n")
    add("NUL", base + "note: a\x00b\n")
    add("non-ASCII value", base + "note: héllo\n")
    add("zero-width space in the key", "autonomy\u200b_enabled: true\n" + rest)
    # Size.
    add("oversize (comments)", base + ("# " + "x" * 98 + "\n") * 700)
    add("just under 64 KiB", base + ("# " + "x" * 98 + "\n") * ((60 * 1024 - len(base)) // 101))
    add("oversize value", base + "note: " + "x" * 70000 + "\n")
    add("many lines", base + "".join(f"k{i}: {i}\n" for i in range(600)))
    # Anchors, aliases, tags, merges.
    add("anchor and alias for the switch", "x: &on true\nautonomy_enabled: *on\n" + rest)
    add("alias value", base + "y: &a 1\nz: *a\n")
    add("merge key", base + "m: &m {a: 1}\nn:\n  <<: *m\n")
    add(
        "billion laughs",
        base
        + "a: &a [x, x, x, x, x, x, x, x, x]\n"
        + "".join(f"{chr(98 + i)}: &{chr(98 + i)} [{', '.join(['*' + chr(97 + i)] * 9)}]\n" for i in range(8)),
    )
    add("tagged int", base + "x: !!int abc\n")
    add("python tag", base + "x: !!python/object:os.system ls\n")
    add("local tag", base + "x: !mine 1\n")
    # Values the reader cannot construct, and reasons it refuses.
    for value in ["2024-02-30", "2024-13-01", "2024-01-01", "2024-01-01T10:00:00Z", "0b_", "0x_", "._", "<<",
                  "=", "1_000", "9" * 5000, "1" + "_1" * 3000, "0x" + "f" * 3000, ".inf", "-.5", "0o17",
                  "12:30:00", "1e400", "-", "?", ":", "'quoted'", '"a\\qb"', '"\\ud800"', '"a\\"b"']:  # fmt: skip
        add(f"value {value[:20]!r}", base + f"x: {value}\n")
    for reason in ["123", "[a]", "{}", "{a: 1}", "null", "~", "''", '""', "plain words", "yes", "true",
                   "2024-01-01", '"INC-1: \\u003cx\\u003e"', "'it''s'", "|\n  multi", ">\n  folded"]:  # fmt: skip
        add(f"reason {reason!r}", f"{SWITCH_ON}\nreason: {reason}\n" + rest.replace('reason: ""\n', ""))
    add("reason twice", f"{SWITCH_ON}\nreason: a\nreason: b\n")
    # Duplicates and keys that collide once read.
    add("duplicate top key", base + "scheduler: {}\n")
    add("duplicate nested key", base.replace("  maxJobsPerTick: 2\n", "  maxJobsPerTick: 2\n  maxJobsPerTick: 3\n"))
    add(
        "duplicate key in a list item",
        base.replace("      name: refresh-index\n", "      name: refresh-index\n      name: again\n"),
    )
    add("duplicate key far apart", base + "worker2: 1\nworker: 2\n")
    add("True and true keys", base + "x:\n  True: 1\n  true: 2\n")
    add("null and Null keys", base + "x:\n  null: 1\n  Null: 2\n")
    add("same key in two items", f"{SWITCH_ON}\nl:\n  - a: 1\n  - a: 2\n")
    add("same key in two mappings", f"{SWITCH_ON}\na:\n  k: 1\nb:\n  k: 2\n")
    add("list as a key", base + "? [a]\n: 1\n")
    # Structure after a valid first line.
    for name, tail in {
        "unclosed flow": "x: [\n",
        "unclosed quote": "x: 'abc\n",
        "bad indentation": "x:\n    a: 1\n  b: 2\n",
        "deeper after a scalar": "x: 1\n  y: 2\n",
        "mapping value in plain": "x: a: b\n",
        "list at top level": "- item\n",
        "list after mapping": "x:\n  a: 1\n  - b\n",
        "mapping after list": "x:\n  - a\n  b: 1\n",
        "list item after indentless list": "x:\n- a\ny: 1\n- b\n",
        "bare scalar line": "x: 1\nword\n",
        "bare scalar nested": "x:\n  word\n",
        "colon only": ": x\n",
        "question key": "? x\n",
        "dash without space": "x:\n  -a\n",
        "lone dash": "x:\n  -\n",
        "nested dash": "x:\n  - - a\n",
        "flow sequence value": "x: [a, b]\n",
        "flow mapping value": "x: {a: 1}\n",
        "empty flow values": "x: []\ny: {}\n",
        "comment after value": "x: 1 # note\n",
        "comment with no space": "x: a#b\n",
        "plain with colon": "x: busybox:1.37.0\n",
        "plain ending in colon": "x: a:\n",
        "indented comment": "x:\n    # note\n  a: 1\n",
        "key with spaces": "a b: 1\n",
        "deep nesting (flow)": "x: " + "[" * 60 + "]" * 60 + "\n",
        "deep nesting (block)": "".join("  " * i + f"k{i}:\n" for i in range(60)),
        "indentless list under a top key": "x:\n- a\n",
        "valid nested": "x:\n  a:\n    b: 1\n  c: 2\n",
        "valid items": "x:\n  - a: 1\n    b: 2\n  - c: 3\n",
        "valid indentless": "x:\n  k:\n  - a\n  - b\n  m: 1\n",
        "trailing spaces": "x: 1   \n",
        "key then dedent": "x:\ny: 1\n",
    }.items():
        add(f"after the switch: {name}", f"{base}{tail}")
    add("invalid YAML after a valid line", f"{SWITCH_ON}\n]\n")
    add("unclosed block after a valid line", f"{SWITCH_ON}\nx: {{\n")
    # Seeded mutations of the base: lines dropped, doubled, swapped, re-indented or edited.
    rng = random.Random(seed)
    tokens = [":", " ", "-", "- ", "#", "'", '"', "[", "]", "{", "}", "&a", "*a", "!", "|", ">", "?", "\t",
              "true", "false", "autonomy_enabled", "  ", "0b_", "2024-02-30", ",", "%", "@", "`", "\\"]  # fmt: skip
    for number in range(mutations):
        mutated = base.splitlines()
        for _ in range(rng.randint(1, 3)):
            index = rng.randrange(len(mutated))
            operation = rng.choice(["drop", "double", "swap", "indent", "dedent", "insert", "replace"])
            line = mutated[index]
            if operation == "drop":
                del mutated[index]
            elif operation == "double":
                mutated.insert(index, line)
            elif operation == "swap" and index + 1 < len(mutated):
                mutated[index], mutated[index + 1] = mutated[index + 1], line
            elif operation == "indent":
                mutated[index] = " " * rng.choice([1, 2, 4]) + line
            elif operation == "dedent":
                mutated[index] = line[rng.choice([1, 2]) :]
            elif operation == "insert":
                at = rng.randint(0, len(line))
                mutated[index] = line[:at] + rng.choice(tokens) + line[at:]
            else:
                at = rng.randrange(max(len(line), 1))
                mutated[index] = line[:at] + rng.choice(tokens) + line[at + 1 :]
            if not mutated:
                mutated = [""]
        add(f"mutation {number}", "\n".join(mutated) + "\n")
    return texts
