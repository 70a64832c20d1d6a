"""Reference executors that consume follower order streams."""
