"""OKX v5 (perpetual swaps, net mode): the follower's execution client."""
