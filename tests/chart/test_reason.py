"""autonomy.reason is printed raw by helm in NOTES and written into the switch file: the schema keeps
it to the switch grammar's printable ASCII (issue 11, issue 19).

The sidecars escape whatever a hand-edited ConfigMap holds; this is the chart's half.
"""

from __future__ import annotations

import pytest
import yaml

from support.helm import HelmError, render_chart


@pytest.mark.parametrize(
    "reason",
    ["INC-1 \x1b[2J\x1b[31mall clear", "INC-1 \u202eevil", "INC-1\x85", "INC-1\ttab", "INC-1\u2028two", "bell\x07"],
    ids=["ansi", "bidi-override", "c1-next-line", "tab", "line-separator", "bell"],
)
def test_control_characters_are_refused(reason):
    with pytest.raises(HelmError) as refused:
        render_chart(extra_args=["--set-literal", f"autonomy.reason={reason}"])
    assert "/autonomy/reason" in refused.value.stderr


def test_printable_ascii_is_kept():
    reason = "INC-42: it's fine # not a comment {x} [y] & ~"
    configmap, _ = render_chart(
        show_only=["templates/configmap.yaml"], extra_args=["--set-literal", f"autonomy.reason={reason}"]
    )
    assert yaml.safe_load(configmap["data"]["dev.yaml"])["reason"] == reason


@pytest.mark.parametrize("reason", ["INC-42: ünïcode", 'say "why"', "a\\b"], ids=["non-ascii", "quote", "backslash"])
def test_outside_the_switch_grammar_is_refused_by_the_schema(reason):
    """The switch file's form (leviathan_config/switch.py) holds printable ASCII without " and \\ only."""
    with pytest.raises(HelmError) as refused:
        render_chart(extra_args=["--set-literal", f"autonomy.reason={reason}"])
    assert "/autonomy/reason" in refused.value.stderr
