"""Print the configuration table of README.md from the Settings class, so the two cannot drift."""

from __future__ import annotations

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


if __name__ == "__main__":
    print(settings_table())
