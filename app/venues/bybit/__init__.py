"""Bybit v5: the venue's public instrument rules."""
