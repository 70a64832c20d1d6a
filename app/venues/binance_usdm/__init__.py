"""Binance USD-M futures: the venue's public instrument rules."""
