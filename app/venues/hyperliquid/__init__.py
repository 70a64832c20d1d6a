"""Hyperliquid perpetuals: follower orders signed by an API wallet (agent) of the account."""
