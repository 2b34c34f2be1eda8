"""The explorer's app behind Starlette's ``TestClient``: requests without a server."""

from __future__ import annotations

import warnings
from typing import Any

from backprop.app.explorer.routes import create_app

BASE = "http://127.0.0.1:8000"


def explorer_client(
    session: Any, names: tuple[str, ...] = ("127.0.0.1", "localhost")
) -> Any:
    """A ``TestClient`` of ``create_app(session)`` served as ``BASE``.

    Args:
        session: the explorer's ``Session``.
        names: the host names the app answers to.
    """
    with warnings.catch_warnings():  # starlette 1.x prefers httpx2; httpx works
        warnings.simplefilter("ignore")
        from starlette.testclient import TestClient

    app = create_app(session, names=names, port=8000)
    return TestClient(app, base_url=BASE)
