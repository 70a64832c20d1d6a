"""The live dashboard: a static page at ``/`` reading the /v1 API and the order feeds."""
