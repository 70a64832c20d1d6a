"""Bybit v5 (unified account, linear contracts): the follower's execution client."""
