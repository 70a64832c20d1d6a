"""Which venue URLs a follower may choose for its own account (SSRF guard).

The service sends signed requests to an account's ``rest_url`` and opens its ``ws_url``: a
follower free to pick them could make it call a metadata endpoint or its own Redis. Only the
admin may set any URL; a follower only one that starts with an entry of
``COPYTRADE_VENUE_URL_ALLOWLIST``, with the same scheme, host and port.
"""

from __future__ import annotations

from urllib.parse import urlsplit


def _origin(url: str) -> tuple[str, str, int | None]:
    parts = urlsplit(url)
    default = {"http": 80, "ws": 80, "https": 443, "wss": 443}.get(parts.scheme)
    return parts.scheme, (parts.hostname or "").lower(), parts.port or default


def url_allowed(url: str, allowlist: list[str]) -> bool:
    """Tell whether ``url`` is within one allowlist entry (same origin, path under it)."""
    origin = _origin(url)
    path = urlsplit(url).path or "/"
    for entry in allowlist:
        if _origin(entry) != origin:
            continue
        prefix = urlsplit(entry).path.rstrip("/")
        if path == prefix or path.startswith(prefix + "/") or not prefix:
            return True
    return False
