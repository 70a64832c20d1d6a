"""Binance USD-M Futures: the venue's public instrument rules, and the follower side (orders,
account, user data stream)."""
