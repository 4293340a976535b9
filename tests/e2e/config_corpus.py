"""Switch-file texts for the policies' agreement check: edge cases by hand, plus seeded mutations.

Each text is what `<env>.yaml` in the autonomy ConfigMap could hold. Every policy must call a text
"on" exactly when the shared reader loads it as enabled (tests/e2e/test_zz_enforcement.py).
"""

from __future__ import annotations

import random

SWITCH_ON = "autonomy_enabled: true"


def corpus(base: str, seed: int = 10, mutations: int = 120) -> dict[str, str]:
    """Named texts: `base` (the chart's rendered switch file, on) and its variations."""
    lines = base.splitlines()
    assert lines[0] == SWITCH_ON, "the base must start with the switch line"
    rest = "\n".join(lines[1:]) + "\n"
    texts: dict[str, str] = {"base": base, "base without trailing newline": base.rstrip("\n")}

    def add(name: str, text: str) -> None:
        texts[name] = text

    reason = 'reason: "INC-1: done"\n'
    review = 'review_by: "2026-12-01T09:00:00Z"\n'
    add("switch only", f"{SWITCH_ON}\n")
    add("switch only, no newline", SWITCH_ON)
    add("off", "autonomy_enabled: false\n" + rest)
    add("with a reason", SWITCH_ON + "\n" + reason)
    add("with a reason and review_by", SWITCH_ON + "\n" + reason + review)
    add("review_by only", SWITCH_ON + "\n" + review)
    add("review_by before reason", SWITCH_ON + "\n" + review + reason)
    add("reason twice", SWITCH_ON + "\n" + reason + reason)
    add("empty reason", SWITCH_ON + '\nreason: ""\n')
    add("blank reason", SWITCH_ON + '\nreason: "   "\n')
    for word in ["True", "TRUE", "false", "False", "yes", "on", "y", "1", "~", "null", '"true"', "'true'",
                 "!!bool true", "&a true", "tRue", "true # on", "true   ", " true", "[true]", "{}", ""]:  # fmt: skip
        add(f"switch word {word!r}", f"autonomy_enabled: {word}\n{rest}")
    for line in ["autonomy_enabled :true", "autonomy_enabled : true", '"autonomy_enabled": true',
                 "'autonomy_enabled': true", "autonomy_enabled:true", " autonomy_enabled: true",
                 "? autonomy_enabled\n: true", "autonomy_enabled:\n  true", "autonomy_enabled: |\n  true",
                 "autonomy_enabled: >-\n  true", "Autonomy_enabled: true", "autonomy-enabled: true",
                 "autonomy_enabled: true\t", "!!map {autonomy_enabled: true}"]:  # fmt: skip
        add(f"switch line {line!r}", f"{line}\n{rest}")
    add("switch after a comment", f"# hello\n{base}")
    add("comment after the switch", f"{SWITCH_ON}\n# note\n{rest}")
    add("trailing comment on the switch", f"{SWITCH_ON} # note\n{rest}")
    add("switch after a blank line", f"\n{base}")
    add("blank line after the switch", f"{SWITCH_ON}\n\n{rest}")
    add("two trailing newlines", base + "\n")
    add("switch last", f"{rest}{SWITCH_ON}\n")
    add("switch missing", rest)
    add("switch twice", f"{base}{SWITCH_ON}\n")
    add("switch true then false", f"{base}autonomy_enabled: false\n")
    add("switch false then true", f"autonomy_enabled: false\n{rest}{SWITCH_ON}\n")
    add("quoted key second", 'autonomy_enabled: false\n"autonomy_enabled": true\n')
    add("flow mapping", "{autonomy_enabled: true, reason: x}\n")
    add("json document", '{"autonomy_enabled": true, "reason": "x"}')
    add("second document", f"{base}---\nautonomy_enabled: false\n")
    add("document start first", f"---\n{base}")
    add("document end", f"{base}...\n")
    add("directive", f"%YAML 1.1\n---\n{base}")
    add("BOM", "\ufeff" + base)
    add("CRLF", base.replace("\n", "\r\n"))
    add("CR only", base.replace("\n", "\r"))
    add("NEL line ends", base.replace("\n", "\x85"))
    add("line separator", base.replace("\n", "\u2028"))
    add("tab after the colon", base.replace(SWITCH_ON, "autonomy_enabled:\ttrue"))
    add("NUL", base + "x\x00")
    add("other key", base + "scheduler: {}\n")
    add("worker selector", base + "worker:\n  selector:\n    app: leviathan-worker-x\n")
    add("anchor and alias", "x: &on true\nautonomy_enabled: *on\n")
    add("tagged reason", SWITCH_ON + "\nreason: !!str x\n")
    add("single-quoted reason", SWITCH_ON + "\nreason: 'x'\n")
    add("plain reason", SWITCH_ON + "\nreason: x\n")
    add("escaped reason", SWITCH_ON + '\nreason: "a\\u0041"\n')
    add("reason with a quote", SWITCH_ON + '\nreason: "a"b"\n')
    add("non-ASCII reason", SWITCH_ON + '\nreason: "héllo"\n')
    add("reason block scalar", SWITCH_ON + "\nreason: |\n  multi\n")
    add("reason continued", SWITCH_ON + '\nreason: "a\n  b"\n')
    add("review_by without zone", SWITCH_ON + '\nreview_by: "2026-12-01T09:00:00"\n')
    add("review_by unquoted", SWITCH_ON + "\nreview_by: 2026-12-01T09:00:00Z\n")
    add("longest reason", SWITCH_ON + '\nreason: "' + "x" * (4096 - 40) + '"\n')
    add("oversize reason", SWITCH_ON + '\nreason: "' + "x" * 4096 + '"\n')
    rng = random.Random(seed)
    tokens = [":", " ", "-", "- ", "#", "'", '"', "[", "]", "{", "}", "&a", "*a", "!", "|", ">", "?", "\t", "\r",
              "true", "false", "autonomy_enabled", "  ", ",", "%", "\\", "\n"]  # fmt: skip
    seed_lines = [SWITCH_ON, 'reason: "INC-1: done"', 'review_by: "2026-12-01T09:00:00Z"']
    for number in range(mutations):
        mutated = list(seed_lines)
        for _ in range(rng.randint(1, 3)):
            index = rng.randrange(len(mutated))
            operation = rng.choice(["drop", "double", "swap", "indent", "insert", "replace"])
            line = mutated[index]
            if operation == "drop" and len(mutated) > 1:
                del mutated[index]
            elif operation == "double":
                mutated.insert(index, line)
            elif operation == "swap" and index + 1 < len(mutated):
                mutated[index], mutated[index + 1] = mutated[index + 1], line
            elif operation == "indent":
                mutated[index] = " " * rng.choice([1, 2]) + line
            elif operation == "insert":
                at = rng.randint(0, len(line))
                mutated[index] = line[:at] + rng.choice(tokens) + line[at:]
            else:
                at = rng.randrange(max(len(line), 1))
                mutated[index] = line[:at] + rng.choice(tokens) + line[at + 1 :]
        add(f"mutation {number}", "\n".join(mutated) + "\n")
    return texts
