"""Binance USD-M Futures: the follower side (orders, account, user data stream)."""
