"""Stage 1: leader fills in, from a push websocket or a feed the service connects to."""
