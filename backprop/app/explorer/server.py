"""Serving the explorer: bind a socket, run the app on uvicorn, open a browser.

The socket is bound here, before uvicorn starts, so a port in use is one
clear error, and ``--port 0`` (any free port) can say which port it got.
``host_names`` says which ``Host`` names the app answers to (``request_checks``),
from the address the socket got: on loopback, that address and
``localhost``; on one other address, that address (and the name given);
on every interface (0.0.0.0), loopback and this machine's own name and
addresses, which the command prints.
"""

from __future__ import annotations

import ipaddress
import socket
import threading
import time
import webbrowser
from typing import Any

from backprop.errors import ConfigError

LOOPBACK = "127.0.0.1"


def is_loopback(host: str) -> bool:
    """True for ``localhost`` and loopback addresses (127.0.0.0/8, ::1)."""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:  # a host name
        return False


def is_everywhere(host: str) -> bool:
    """True for the addresses that listen on every interface (0.0.0.0, ::)."""
    try:
        return ipaddress.ip_address(host).is_unspecified
    except ValueError:
        return False


def bind(host: str, port: int) -> socket.socket:
    """A listening TCP socket on ``host:port`` (port 0: any free port).

    Raises:
        ConfigError: no address given, or it cannot be bound (in use, not
            this machine's).
    """
    if not host.strip():
        raise ConfigError(
            "--host '' names no address: give 127.0.0.1 (this machine only) "
            "or 0.0.0.0 (every interface, on purpose)"
        )
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
    except (OSError, OverflowError) as exc:
        sock.close()
        reason = getattr(exc, "strerror", None) or str(exc)
        raise ConfigError(f"cannot serve on {host}:{port}: {reason}") from None
    sock.listen(128)
    sock.set_inheritable(True)
    return sock


def bound_address(sock: socket.socket) -> str:
    """The address a socket is bound to (``127.1`` was bound as 127.0.0.1)."""
    return sock.getsockname()[0]


def url_of(sock: socket.socket) -> str:
    """``http://host:port/`` of a bound socket (loopback's, if it is everywhere)."""
    host, port = sock.getsockname()[:2]
    if is_everywhere(host):
        host = "::1" if ":" in host else LOOPBACK
    host = f"[{host}]" if ":" in host else host
    return f"http://{host}:{port}/"


def host_names(given: str, sock: socket.socket) -> tuple[str, ...]:
    """The ``Host`` names the app answers to, for a socket bound to ``given``.

    Args:
        given: the ``--host`` the user gave (``localhost``, ``127.1``, ...).
        sock: from ``bind``.
    """
    bound = bound_address(sock)
    names = {given.strip("[]").lower(), bound}
    if is_loopback(bound) or is_everywhere(bound):
        names |= {"localhost", LOOPBACK if ":" not in bound else "::1"}
    if is_everywhere(bound):  # this machine's names and the addresses they have
        machine = {socket.gethostname(), socket.getfqdn()}
        for name in sorted(machine):
            try:
                found = socket.getaddrinfo(name, None, proto=socket.IPPROTO_TCP)
            except OSError:
                continue
            names |= {str(info[4][0]).split("%")[0] for info in found}
        names |= {name.lower() for name in machine}
    return tuple(sorted(names))


def serve(app: Any, sock: socket.socket, *, open_browser: bool) -> None:
    """Serve ``app`` on ``sock`` until Ctrl-C; open the page once it is up.

    Args:
        app: the ASGI app (``backprop.app.explorer.routes.create_app``).
        sock: from ``bind``.
        open_browser: open the page in the default browser.
    """
    import uvicorn

    config = uvicorn.Config(app, log_level="warning", access_log=False)
    server = uvicorn.Server(config)
    if open_browser:
        url = url_of(sock)

        def open_when_started() -> None:
            while not server.started and not server.should_exit:
                time.sleep(0.05)
            if server.started:
                webbrowser.open(url)

        threading.Thread(target=open_when_started, daemon=True).start()
    server.run(sockets=[sock])
