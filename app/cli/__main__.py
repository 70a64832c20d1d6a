"""``python -m app.cli``: the ``copytrade`` command."""

from app.cli import main

if __name__ == "__main__":
    main()
