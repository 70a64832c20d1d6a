"""Copytrade: leader fills in, proportional follower orders out."""
