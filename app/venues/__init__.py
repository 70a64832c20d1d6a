"""One folder per venue, both directions: what it sends us (leader feeds) and what we send it
(follower orders). What the venues share (the execution contract, the loops) sits beside them."""
