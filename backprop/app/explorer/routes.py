"""The explorer's web app: the static page, and a JSON API over a ``Session``.

Routes (every ``/api/`` answer is JSON; an error is ``{"error": "..."}`` with
status 400 for a bad request, 404/405 for a wrong route or method, 413 for a
body over ``MAX_BODY_BYTES``, 500 for a bug, and the server keeps serving):

==========================  ===================================================
``GET /``                   the page (``static/index.html``)
``GET /static/...``         its CSS and JavaScript
``GET /api/model``          sizes, dtype, class names, source, steps taken,
                            ``max_body_bytes``
``GET /api/history``        ``{"history": [...]}``: the run's epochs
``POST /api/predict``       body: an image file (any type but JSON), or JSON
                            ``{"pixels": [784 numbers in [0, 1]]}``; answer:
                            ``prepared`` (784), ``probabilities`` (C),
                            ``prediction``, ``logits`` (C), ``hidden`` (one
                            list per hidden layer), ``steps``
``POST /api/backward``      JSON ``{"pixels": [784], "label": k}``; answer:
                            ``loss``, ``probabilities``, ``grad_logits`` (C),
                            ``grad_hidden`` (per hidden layer), ``units``
                            (``unit``, ``grad_weights`` (784), ``weights``
                            (784) of the most responsible first-layer units)
``POST /api/step``          JSON ``{"pixels": [784], "label": k}``: one Adam
                            step; answer: ``loss_before``,
                            ``probabilities_before``, ``loss``, and what
                            predict answers, after the step
``POST /api/reset``         forget the steps; answer ``{"steps": 0}``
==========================  ===================================================

Every response carries a Content-Security-Policy that lets the page load and
fetch from this server alone, so the browser itself refuses anything remote.
"""

from __future__ import annotations

import json
import sys
import traceback
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import FileResponse, JSONResponse, Response
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles

from backprop.app.explorer.session import Session, check_pixels, prepare
from backprop.errors import BackpropError

STATIC = Path(__file__).parent / "static"
MAX_BODY_BYTES = 8 * 1024 * 1024  # 8 MiB: a phone photo fits
CSP = (
    "default-src 'self'; img-src 'self' data: blob:; object-src 'none'; "
    "base-uri 'none'; form-action 'none'; frame-ancestors 'none'"
)


class TooLarge(Exception):
    """The request body is over ``MAX_BODY_BYTES``."""


class BadRequest(Exception):
    """The request is malformed (bad JSON, a missing field)."""


async def read_body(request: Request, limit: int = MAX_BODY_BYTES) -> bytes:
    """The request body, refusing more than ``limit`` bytes before reading it all.

    Raises:
        TooLarge: the body (or its declared Content-Length) is over ``limit``.
    """
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > limit:
        raise TooLarge
    chunks, size = [], 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise TooLarge
        chunks.append(chunk)
    return b"".join(chunks)


def parse_json(body: bytes) -> dict[str, Any]:
    """A JSON object from a request body.

    Raises:
        BadRequest: the body is not a JSON object.
    """
    try:
        value = json.loads(body)
    except (ValueError, RecursionError):  # JSONDecodeError, bad UTF-8, nesting
        raise BadRequest("the body is not valid JSON") from None
    if not isinstance(value, dict):
        raise BadRequest('expected a JSON object like {"pixels": [...]}')
    return value


def is_json(request: Request) -> bool:
    """True when the request says its body is JSON."""
    kind = request.headers.get("content-type", "").split(";")[0].strip().lower()
    return kind == "application/json"


def error(status: int, message: str) -> JSONResponse:
    """``{"error": message}`` with ``status``."""
    return JSONResponse({"error": message}, status_code=status)


Handler = Callable[[Request], Awaitable[Any]]


def api(handler: Handler) -> Callable[[Request], Awaitable[Response]]:
    """Turn a handler's result into JSON and its errors into ``{"error"}``."""

    async def endpoint(request: Request) -> Response:
        try:
            return JSONResponse(await handler(request))
        except TooLarge:
            return error(
                413, f"the request body is over the limit of {MAX_BODY_BYTES} bytes"
            )
        except (BadRequest, BackpropError) as exc:
            return error(400, str(exc))
        except Exception as exc:  # a bug: say so, log it, keep serving
            traceback.print_exc(file=sys.stderr)
            return error(500, f"internal error: {type(exc).__name__}: {exc}")

    return endpoint


def create_app(session: Session) -> SecurityHeaders:
    """The explorer's ASGI app around one session (Starlette, with headers)."""

    async def example(request: Request) -> tuple[Any, int]:
        """The prepared input and label of a backward or step request."""
        body = parse_json(await read_body(request))
        if "label" not in body:
            raise BadRequest("missing 'label': the true class")
        return check_pixels(body.get("pixels")), body["label"]

    async def predict(request: Request) -> dict:
        body = await read_body(request)
        if is_json(request):
            x = check_pixels(parse_json(body).get("pixels"))
        elif not body:
            raise BadRequest('send an image file, or JSON {"pixels": [...]}')
        else:
            x = await run_in_threadpool(prepare, body, session.recipe)
        return await run_in_threadpool(session.predict, x)

    async def backward(request: Request) -> dict:
        return await run_in_threadpool(session.backward, *await example(request))

    async def step(request: Request) -> dict:
        return await run_in_threadpool(session.step, *await example(request))

    async def reset(request: Request) -> dict:
        await read_body(request)  # refuse a huge body like every route
        return await run_in_threadpool(session.reset)

    async def info(request: Request) -> dict:
        return {**session.info(), "max_body_bytes": MAX_BODY_BYTES}

    async def history(request: Request) -> dict:
        return {"history": session.history}

    async def page(request: Request) -> Response:
        return FileResponse(STATIC / "index.html")

    async def http_error(request: Request, exc: Exception) -> Response:
        status = getattr(exc, "status_code", 500)
        return error(status, str(getattr(exc, "detail", "")) or "error")

    routes = [
        Route("/", page),
        Route("/api/model", api(info)),
        Route("/api/history", api(history)),
        Route("/api/predict", api(predict), methods=["POST"]),
        Route("/api/backward", api(backward), methods=["POST"]),
        Route("/api/step", api(step), methods=["POST"]),
        Route("/api/reset", api(reset), methods=["POST"]),
        Mount("/static", StaticFiles(directory=STATIC), name="static"),
    ]
    app = Starlette(routes=routes, exception_handlers={HTTPException: http_error})
    return SecurityHeaders(app)


class SecurityHeaders:
    """ASGI middleware: the Content-Security-Policy, and no caching, on every answer.

    Args:
        app: the app to wrap.
    """

    def __init__(self, app: Any) -> None:
        self.app = app

    async def __call__(self, scope: dict, receive: Any, send: Any) -> None:
        """Pass the request on; add the headers to the response's start."""
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return

        async def send_with_headers(message: dict) -> None:
            if message["type"] == "http.response.start":
                headers = list(message.get("headers", []))
                headers.append((b"content-security-policy", CSP.encode()))
                headers.append((b"cache-control", b"no-store"))
                headers.append((b"x-content-type-options", b"nosniff"))
                message = {**message, "headers": headers}
            await send(message)

        await self.app(scope, receive, send_with_headers)
