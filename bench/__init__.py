"""Benchmarks of the real service: `make bench` (or `python -m bench --help`)."""
