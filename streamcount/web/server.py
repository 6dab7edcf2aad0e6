"""Serving a Starlette app: a token guard, bounded JSON bodies, uvicorn in a background thread.

A token (when set) is accepted as ``Authorization: Bearer TOKEN`` (other tools), or once as
``?token=TOKEN`` in a page address, after which a cookie carries it (browsers). Uvicorn's
access log is off, so no address with a token in it reaches a log.

Example:
    >>> from starlette.applications import Starlette
    >>> srv = BackgroundServer(Starlette(), "127.0.0.1", 0)
    >>> srv.start(); srv.port > 0
    True
    >>> srv.stop()
"""

from __future__ import annotations

import hmac
import json
import logging
import os
import socket
import sys
import threading
import time
from typing import Any

from starlette.requests import Request
from starlette.responses import JSONResponse, Response
from starlette.types import ASGIApp, Receive, Scope, Send

from streamcount.errors import OutputError

logger = logging.getLogger(__name__)

COOKIE = "streamcount_token"
MAX_BODY = 1 << 20  # 1 MiB: a zone file or one frame's points is a few kB


class BadRequest(Exception):
    """A request the server refuses: its status code and one line for the client."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status
        self.message = message


def error(status: int, message: str) -> JSONResponse:
    """``{"error": message}`` with ``status``."""
    return JSONResponse({"error": message}, status_code=status)


async def bad_request_handler(request: Request, exc: Exception) -> Response:
    """Starlette exception handler: a :class:`BadRequest` becomes its JSON error."""
    assert isinstance(exc, BadRequest)
    return error(exc.status, exc.message)


async def http_error_handler(request: Request, exc: Exception) -> Response:
    """Starlette's own 404/405 as ``{"error": ...}`` like every other refusal."""
    from starlette.exceptions import HTTPException

    assert isinstance(exc, HTTPException)
    text = {404: f"no such page or API: {request.url.path[:200]}",
            405: f"{request.method} is not allowed on {request.url.path[:200]}"}
    return error(exc.status_code, text.get(exc.status_code, str(exc.detail)))


def exception_handlers() -> dict[Any, Any]:
    """The handlers both apps use: refusals and routing errors as one JSON line."""
    from starlette.exceptions import HTTPException

    return {BadRequest: bad_request_handler, HTTPException: http_error_handler}


async def read_json(request: Request, limit: int = MAX_BODY) -> Any:
    """The request's JSON body, at most ``limit`` bytes.

    Raises:
        BadRequest: 413 when larger, 400 when not JSON.
    """
    declared = request.headers.get("content-length")
    if declared is not None and (not declared.isdigit() or int(declared) > limit):
        raise BadRequest(413, f"request body over {limit} bytes")
    body = bytearray()
    async for chunk in request.stream():
        body += chunk
        if len(body) > limit:
            raise BadRequest(413, f"request body over {limit} bytes")
    try:
        return json.loads(body.decode("utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise BadRequest(400, f"the body is not JSON: {exc}") from None


class TokenGuard:
    """ASGI middleware: 401 unless the request carries the token (no token: open)."""

    def __init__(self, app: ASGIApp, token: str | None) -> None:
        self.app = app
        self.token = token

    def _ok(self, sent: str | None) -> bool:
        return sent is not None and hmac.compare_digest(sent.encode(), str(self.token).encode())

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan" or not self.token:
            await self.app(scope, receive, send)
            return
        if scope["type"] != "http":  # no websocket route today; never one unguarded
            await send({"type": "websocket.close", "code": 1008})
            return
        req = Request(scope)
        auth = req.headers.get("authorization", "")
        bearer = auth[7:] if auth.lower().startswith("bearer ") else None
        query = req.query_params.get("token")
        if self._ok(bearer) or self._ok(req.cookies.get(COOKIE)):
            await self.app(scope, receive, send)
            return
        if self._ok(query):
            # the cookie carries it from now on; the address loses it (no token in the
            # browser's history or in a link copied from the address bar)
            from starlette.responses import RedirectResponse

            rest = [(k, v) for k, v in req.query_params.multi_items() if k != "token"]
            from urllib.parse import urlencode

            url = req.url.replace(query=urlencode(rest))
            cookie = f"{COOKIE}={self.token}; Path=/; HttpOnly; SameSite=Strict"
            again = RedirectResponse(str(url), status_code=303, headers={"set-cookie": cookie})
            await again(scope, receive, send)
            return
        resp = JSONResponse({"error": "unauthorized: open the page once as /?token=TOKEN or "
                                      "send Authorization: Bearer TOKEN"}, status_code=401,
                            headers={"WWW-Authenticate": "Bearer"})
        await resp(scope, receive, send)


def guarded(app: ASGIApp, token: str | None) -> ASGIApp:
    """``app`` behind a :class:`TokenGuard` when a token is given."""
    return TokenGuard(app, token) if token else app


BACKGROUND_NICE = 10  # how much lower the web threads' CPU priority is than the counting's


def lower_thread_priority(nice: int = BACKGROUND_NICE) -> bool:
    """Give the calling thread a lower CPU priority (Linux: threads have their own nice
    value), so that serving pages yields to counting when the cores are busy.

    Returns:
        Whether the priority was lowered (False on other systems, or where it is refused).

    Example:
        >>> import threading
        >>> t = threading.Thread(target=lower_thread_priority); t.start(); t.join()
    """
    if not sys.platform.startswith("linux"):
        return False
    try:
        tid = threading.get_native_id()
        os.setpriority(os.PRIO_PROCESS, tid, min(19, os.getpriority(os.PRIO_PROCESS, tid) + nice))
    except OSError:
        return False
    return True


class BackgroundServer:
    """Uvicorn serving ``app`` from a daemon thread; :meth:`stop` ends it.

    Args:
        app: An ASGI app.
        host: Address to bind (the socket is bound in :meth:`start`, so a taken port fails
            there, in one :class:`OutputError` line).
        port: TCP port; 0 picks a free one (see :attr:`port` after :meth:`start`).
        what: What it serves, for messages.
    """

    def __init__(self, app: ASGIApp, host: str, port: int, what: str = "web page") -> None:
        self.app = app
        self.host = host
        self.port = port
        self.what = what
        self.server: Any = None
        self.thread: threading.Thread | None = None

    def bind(self) -> socket.socket:
        """A listening socket on ``host:port``."""
        family = socket.AF_INET6 if ":" in self.host else socket.AF_INET
        sock = socket.socket(family, socket.SOCK_STREAM)
        try:
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
            sock.bind((self.host, self.port))
            sock.listen(64)
        except OSError as exc:
            sock.close()
            raise OutputError(f"cannot serve the {self.what} on {self.host}:{self.port}: "
                              f"{exc.strerror or exc}; choose another port") from None
        self.port = int(sock.getsockname()[1])
        return sock

    def config(self) -> Any:
        """The uvicorn config: quiet (no access log: no token in a log), short shutdown."""
        import uvicorn

        return uvicorn.Config(self.app, log_level="warning", access_log=False, lifespan="off",
                              timeout_graceful_shutdown=1, ws="none")

    def start(self) -> None:
        """Bind and serve in the background; returns once the server accepts requests."""
        import uvicorn

        sock = self.bind()
        self.server = uvicorn.Server(self.config())
        self.thread = threading.Thread(target=self._run, args=(sock,), name="web", daemon=True)
        self.thread.start()
        deadline = time.monotonic() + 10
        while not self.server.started and self.thread.is_alive() and time.monotonic() < deadline:
            time.sleep(0.01)
        if not self.server.started:
            self.stop()
            raise OutputError(f"the {self.what} server on {self.host}:{self.port} did not start")

    def _run(self, sock: socket.socket) -> None:
        lower_thread_priority()
        self.server.run(sockets=[sock])

    def serve_forever(self) -> None:
        """Bind and serve in this thread until Ctrl-C (``streamcount annotate``)."""
        import uvicorn

        sock = self.bind()
        self.server = uvicorn.Server(self.config())
        self.server.run(sockets=[sock])

    @property
    def url(self) -> str:
        """``http://host:port/`` (IPv6 hosts in brackets)."""
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.port}/"

    def stop(self) -> None:
        """Stop serving; safe to call twice."""
        if self.server is not None:
            self.server.should_exit = True
        if self.thread is not None:
            self.thread.join(5)
            self.thread = None
        self.server = None
