"""The REST API and its websocket endpoints."""
