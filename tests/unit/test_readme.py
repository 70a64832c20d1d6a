"""The README's configuration table is the one generated from the Settings class."""

from __future__ import annotations

import re
from pathlib import Path

from scripts.settings_table import settings_table

README = Path(__file__).resolve().parents[2] / "README.md"


def test_readme_settings_table_matches_settings_class() -> None:
    text = README.read_text()
    match = re.search(
        r"<!-- settings-table:start -->\n(.*?)\n<!-- settings-table:end -->", text, re.S
    )
    assert match, "README.md lost its settings-table markers"
    assert match.group(1) == settings_table(), "run: python scripts/settings_table.py"


def test_ci_runs_the_readme_test_command() -> None:
    ci = (README.parent / ".ci" / "run").read_text()
    assert "make test" in ci
    assert "make test" in README.read_text()
