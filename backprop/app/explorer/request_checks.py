"""Who may use the explorer: the Host it answers to, and the pages it obeys.

The explorer listens on this machine's loopback address, but a web page on
any other site, open in the same browser, can still send it requests:

* **DNS rebinding.** A page on ``evil.example`` makes its own name resolve to
  127.0.0.1, and then reads ``/api/`` as if it were same-origin. Its requests
  say ``Host: evil.example:8000``. Starlette's ``TrustedHostMiddleware``
  refuses every ``Host`` name but the ones given; ``Guard`` refuses any port
  but the one served.
* **Cross-site requests.** A page on another origin (another site, or
  another port of 127.0.0.1) can ``fetch(..., {mode: "no-cors"})`` or submit
  a form: the browser sends the request (it only hides the answer), with an
  ``Origin`` header. ``Guard`` refuses every request but GET and HEAD whose
  ``Origin`` is not one of this server's own, and, where a request carries
  no ``Origin``, those whose ``Sec-Fetch-Site`` says ``cross-site`` or
  ``same-site`` (a site's other ports are the same site).
  The app itself takes JSON only as ``application/json`` (a type a page on
  another origin cannot send without asking first, in a CORS preflight that
  this server never grants).

A client that sends no ``Origin`` and no ``Sec-Fetch-Site`` (curl, a script)
is not a browser page, and passes once its ``Host`` is right.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from starlette.datastructures import Headers
from starlette.middleware import Middleware
from starlette.middleware.trustedhost import TrustedHostMiddleware
from starlette.responses import JSONResponse

SAFE_METHODS = ("GET", "HEAD")
FOREIGN_SITES = ("cross-site", "same-site")  # Sec-Fetch-Site of another origin


def host_name(address: str) -> str:
    """How a ``Host`` header names an address: IPv6 in brackets, lowercase."""
    address = address.lower()
    return f"[{address}]" if ":" in address and not address.startswith("[") else address


def port_of(host: str) -> int | None:
    """The port a ``Host`` header names (``None``: none, so 80 for http).

    ``127.0.0.1:8000`` -> 8000, ``[::1]:8000`` -> 8000, ``localhost`` -> None;
    a port that is not a number is -1, which matches no served port.
    """
    name_end = host.rfind("]") + 1  # past an IPv6 literal's brackets
    _, colon, port = host[name_end:].rpartition(":")
    if not colon:
        return None
    return int(port) if port.isdigit() and len(port) <= 5 else -1


def origins_of(names: Iterable[str], port: int) -> set[str]:
    """The ``Origin`` values of pages this server serves, ``http://name:port``."""
    suffix = "" if port == 80 else f":{port}"
    return {f"http://{host_name(name)}{suffix}" for name in names}


def refusal(status: int, message: str) -> JSONResponse:
    """The explorer's error answer, ``{"error": message}``."""
    return JSONResponse({"error": message}, status_code=status)


class Guard:
    """ASGI middleware: the served port, and the Origin of state-changing requests.

    Args:
        app: the app to wrap.
        names: the ``Host`` names this server answers to (``TrustedHostMiddleware``
            checks them; here they make the allowed origins).
        port: the port it serves.
    """

    def __init__(self, app: Any, names: Iterable[str], port: int) -> None:
        self.app = app
        self.port = port
        self.origins = origins_of(names, port)

    async def __call__(self, scope: dict, receive: Any, send: Any) -> None:
        """Refuse a request for another port, or from another origin; pass the rest."""
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = Headers(scope=scope)
        problem = self.problem(scope["method"], headers)
        if problem:
            await refusal(*problem)(scope, receive, send)
            return
        await self.app(scope, receive, send)

    def problem(self, method: str, headers: Headers) -> tuple[int, str] | None:
        """Why a request is refused, as (status, message), or ``None``."""
        port = port_of(headers.get("host", ""))
        if (80 if port is None else port) != self.port:
            return 400, f"this server answers requests for port {self.port} only"
        if method in SAFE_METHODS:
            return None
        origin = headers.get("origin")
        if origin is not None and origin.lower() not in self.origins:
            return 403, (
                f"refused a {method} from the page at {origin[:100]}: the explorer "
                "takes steps only for its own page"
            )
        site = headers.get("sec-fetch-site", "").lower()
        if origin is None and site in FOREIGN_SITES:
            return 403, f"refused a {site} {method}: the explorer obeys its own page"
        return None


def guards(names: Iterable[str], port: int) -> list[Middleware]:
    """Starlette's ``middleware=`` list: the Host names, then ``Guard``.

    Args:
        names: the ``Host`` names this server answers to, e.g. ``127.0.0.1``
            and ``localhost``; an IPv6 address is given bare (``::1``).
        port: the port it serves.
    """
    names = sorted({name.lower() for name in names})
    return [
        Middleware(
            TrustedHostMiddleware,
            allowed_hosts=[host_name(n) for n in names],
            www_redirect=False,
        ),
        Middleware(Guard, names=names, port=port),
    ]
