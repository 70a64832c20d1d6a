"""The executor side of Copytrade's streams: what an executor (ours or an operator's) reads
and writes. ``messages``: the order message sizing writes to a follower's order stream;
``reports``: the report an executor sends back; ``consumer``: reading a follower's order
stream in a consumer group and writing reports."""
