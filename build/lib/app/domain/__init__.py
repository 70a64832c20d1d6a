"""Pure core: values in, values out. No I/O, no async, no frameworks (enforced by ruff)."""
