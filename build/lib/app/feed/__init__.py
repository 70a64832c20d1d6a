"""Stage 4: each follower's orders, live, over a websocket."""
