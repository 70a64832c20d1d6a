"""Bybit v5: the venue's public instrument rules, and the follower's execution client."""
