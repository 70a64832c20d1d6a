"""``python -m app``: run the service (same as ``copytrade serve``)."""

from app.cli import main

if __name__ == "__main__":
    main(["serve"])
