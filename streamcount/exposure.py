"""The one rule for every server streamcount starts (metrics, web pages): loopback by default,
anything reachable from other machines only with a token.

Example:
    >>> is_loopback("127.0.0.1"), is_loopback("0.0.0.0")
    (True, False)
    >>> check_exposure("0.0.0.0", None, "--web", "--web-token",
    ...                "STREAMCOUNT_WEB_TOKEN")  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    ...
    streamcount.errors.InputError: --web 0.0.0.0 is reachable from other machines: ...
"""

from __future__ import annotations

import ipaddress

from streamcount.errors import InputError


def is_loopback(host: str) -> bool:
    """True for addresses only this machine can reach (127.0.0.0/8, ::1, localhost)."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def check_exposure(host: str, token: str | None, flag: str, token_flag: str, env: str) -> None:
    """Refuse to serve on ``host`` beyond this machine without a token.

    Raises:
        InputError: ``host`` is not a loopback address and no token is given.
    """
    if not is_loopback(host) and not token:
        raise InputError(f"{flag} {host} is reachable from other machines: give {token_flag} "
                         f"(or {env}) that clients send as a bearer token, or keep the default "
                         "127.0.0.1")
