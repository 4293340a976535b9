"""values.yaml documents every key, and chart/README.md's table agrees with it."""

from __future__ import annotations

import yaml
from values_table import END, START, lookup, parameters, render_table, undocumented

from support.paths import CHART

VALUES_TEXT = (CHART / "values.yaml").read_text()


def test_every_key_has_a_param_comment():
    documented = {p.path for p in parameters(VALUES_TEXT)}
    assert len(documented) > 50
    assert undocumented(yaml.safe_load(VALUES_TEXT), documented) == []


def test_every_param_comment_names_a_real_key():
    values = yaml.safe_load(VALUES_TEXT)
    for parameter in parameters(VALUES_TEXT):
        lookup(values, parameter.path)  # KeyError names the stale comment


def test_readme_table_matches_values():
    readme = (CHART / "README.md").read_text()
    start, end = readme.index(START), readme.index(END) + len(END)
    assert readme[start:end] == render_table(VALUES_TEXT), "run `make docs` to regenerate the table"
