"""Postgres: tables, sessions, and the repositories that hold all SQL."""
