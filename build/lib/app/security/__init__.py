"""Secrets at rest: encryption of exchange credentials."""
