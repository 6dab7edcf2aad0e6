"""The browser: a live monitor and zone editor (``run --web``) and a point annotator
(``streamcount annotate``), served by Starlette and uvicorn (the ``web`` extra).

Everything the pages need (HTML, JS, CSS) ships in ``static/``: no build step, no CDN. The
server binds 127.0.0.1 unless told otherwise; bound to any other address it needs a token,
the same rule as the metrics endpoint.

Example:
    >>> parse_address("8080")
    ('127.0.0.1', 8080)
    >>> parse_address("0.0.0.0:8080")
    ('0.0.0.0', 8080)
    >>> parse_address("[::1]:0")
    ('::1', 0)
"""

from __future__ import annotations

from pathlib import Path

from streamcount import defaults
from streamcount.errors import InputError

STATIC = Path(__file__).resolve().parent / "static"
TOKEN_ENV = "STREAMCOUNT_WEB_TOKEN"


def parse_address(text: str, flag: str = "--web") -> tuple[str, int]:
    """``[HOST:]PORT`` -> ``(host, port)``; the host defaults to 127.0.0.1.

    Raises:
        InputError: not a port from 0 to 65535, or an empty host.

    Example:
        >>> parse_address("localhost:x")  # doctest: +ELLIPSIS
        Traceback (most recent call last):
        ...
        streamcount.errors.InputError: --web localhost:x: ...
    """
    raw = str(text).strip()
    host, sep, port_s = raw.rpartition(":")
    if not sep:
        host = defaults.METRICS_HOST
    host = host.strip()
    if host.startswith("[") and host.endswith("]"):
        host = host[1:-1]
    if sep and not host:
        raise InputError(f"{flag} {raw}: the host before ':' is empty; give HOST:PORT or PORT")
    if not port_s.isdigit() or not 0 <= int(port_s) <= 65535:
        raise InputError(f"{flag} {raw}: expected [HOST:]PORT with a port from 0 to 65535")
    return host, int(port_s)


def check_exposure(host: str, token: str | None, flag: str = "--web",
                   token_flag: str = "--web-token") -> None:
    """Refuse to serve beyond this machine without a token (:mod:`streamcount.exposure`).

    Example:
        >>> check_exposure("127.0.0.1", None)
        >>> check_exposure("0.0.0.0", None)  # doctest: +ELLIPSIS
        Traceback (most recent call last):
        ...
        streamcount.errors.InputError: --web 0.0.0.0 is reachable from other machines: ...
    """
    from streamcount import exposure

    exposure.check_exposure(host, token, flag, token_flag, TOKEN_ENV)


__all__ = ["STATIC", "TOKEN_ENV", "check_exposure", "parse_address"]
