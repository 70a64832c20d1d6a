"""Print (or, with --write, update in README.md) the configuration table generated from the
Settings class, so the two cannot drift."""

from __future__ import annotations

import sys
from pathlib import Path

from app.settings import Settings


def settings_table() -> str:
    rows = ["| variable | default | meaning |", "|---|---|---|"]
    for name, field in Settings.model_fields.items():
        default = field.default
        if hasattr(default, "get_secret_value"):
            default = default.get_secret_value()
        shown = f"`{default}`" if default not in ("", None) else "(empty)"
        rows.append(f"| `COPYTRADE_{name.upper()}` | {shown} | {field.description or ''} |")
    return "\n".join(rows)


def write_readme(readme: Path = Path(__file__).resolve().parent.parent / "README.md") -> None:
    """Replace the table between the README's settings-table markers."""
    text = readme.read_text()
    start, end = "<!-- settings-table:start -->\n", "\n<!-- settings-table:end -->"
    head, _, rest = text.partition(start)
    _, _, tail = rest.partition(end)
    readme.write_text(f"{head}{start}{settings_table()}{end}{tail}")


if __name__ == "__main__":
    if "--write" in sys.argv:
        write_readme()
    else:
        print(settings_table())
