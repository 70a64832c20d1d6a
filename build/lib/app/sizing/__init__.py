"""Stage 2: turn one leader fill into one order per active subscription."""
