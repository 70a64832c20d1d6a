"""OKX client order ids: a Copytrade order id as a ``clOrdId`` (pure).

OKX takes 1-32 case-sensitive alphanumerics; Copytrade's order ids are 24 characters of
``[A-Za-z0-9_-]`` (app.domain.ids). The id's characters are read as the digits of a base-64
number behind a leading 1 (which keeps the length: "0a" and "a" differ), written in base 62.
That is a bijection, not a hash: two order ids never share a clOrdId, and a clOrdId seen on
the stream turns back into its order id (``order_id_of``). A 24-character id gives 25
characters; ids up to 31 characters fit in 32.
"""

from __future__ import annotations

import string
from typing import Final

ORDER_ID_ALPHABET: Final = string.ascii_uppercase + string.ascii_lowercase + string.digits + "-_"
CL_ORD_ID_ALPHABET: Final = string.digits + string.ascii_uppercase + string.ascii_lowercase
MAX_CL_ORD_ID: Final = 32
_IN: Final = {char: value for value, char in enumerate(ORDER_ID_ALPHABET)}
_OUT: Final = {char: value for value, char in enumerate(CL_ORD_ID_ALPHABET)}


def cl_ord_id(order_id: str) -> str:
    """The clOrdId of ``order_id``; ValueError if it is not a Copytrade-shaped id or too long."""
    number = 1
    for char in order_id:
        digit = _IN.get(char)
        if digit is None:
            raise ValueError(f"order id {order_id!r}: {char!r} is not in [A-Za-z0-9_-]")
        number = number * 64 + digit
    digits: list[str] = []
    while number:
        number, digit = divmod(number, 62)
        digits.append(CL_ORD_ID_ALPHABET[digit])
    result = "".join(reversed(digits))
    if len(result) > MAX_CL_ORD_ID:
        raise ValueError(f"order id {order_id!r} is too long for an OKX clOrdId")
    return result


def order_id_of(client_id: str) -> str:
    """The order id a clOrdId was made from; ValueError if no order id makes it."""
    number = 0
    for char in client_id:
        digit = _OUT.get(char)
        if digit is None:
            raise ValueError(f"clOrdId {client_id!r}: {char!r} is not alphanumeric")
        number = number * 62 + digit
    chars: list[str] = []
    while number > 1:
        number, digit = divmod(number, 64)
        chars.append(ORDER_ID_ALPHABET[digit])
    if number != 1 or not client_id or client_id[0] == "0":
        raise ValueError(f"clOrdId {client_id!r} was not made from an order id")
    return "".join(reversed(chars))
