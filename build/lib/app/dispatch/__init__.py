"""Stage 3: committed orders into each follower's Redis stream, exactly once per order id."""
