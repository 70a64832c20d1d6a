"""One folder per venue, both directions: what it sends us (leader feeds) and what we send it
(follower orders). Every venue folder has the same files:

- ``feed.py``: the leader feed, a ``VenueAdapter`` (``app.venues.feed``): authenticate and
  subscribe the private stream, parse fills, read equity, positions and fill history.
- ``execution.py``: the follower side, an ``ExecutionClient`` (``app.venues.execution``) and
  its ``build(context)``: place and query orders by client id, read the account, stream it.
- ``stream.py``: the follower's private stream and order answers read into the execution
  contract's events (pure functions).
- ``schemas.py``: the venue's wire formats as msgspec Structs.
- ``signing.py``: the venue's one signer, used by ``feed.py`` and ``execution.py`` alike:
  ``sign()``, the venue's signature primitive, and one signer class made from the account's
  ``Credential`` values (``BinanceSigner``, ``BybitSigner``, ``OkxSigner``; Hyperliquid signs
  only orders, with ``L1Signer``, and its leader feed reads public data).
- ``instruments.py``: the venue's public instrument rules (lot, tick, minimums) for sizing.

What only one venue needs sits beside these (Bybit's and OKX's ``errors.py``, OKX's contract
values and client ids, Hyperliquid's price rules and websocket ``post``). What the venues
share is written once here: the leader listener loop (``listener.py``) and which leaders run
on this instance (``leaders.py``); the executor loop (``executor.py``) and which accounts
trade on this instance (``accounts.py``); the one lease round both use (``leases.py``); the
API's models (``configs.py``), the kind -> code registry (``registry.py``), REST plumbing
(``transport.py``, ``limits.py``) and the instrument refresher (``instruments.py``).
"""
