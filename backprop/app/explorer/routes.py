"""The explorer's web app: the static page, and a JSON API over a ``Session``.

Routes (every ``/api/`` answer is JSON; an error is ``{"error": "..."}`` with
status 400 for a bad request, 403 for a request from another origin
(``request_checks``), 404/405 for a wrong route or method, 413 for a body over
``MAX_BODY_BYTES``, 415 for a body of the wrong type, 500 for a bug, and the
server keeps serving; a request whose ``Host`` is not this server's gets
Starlette's plain-text 400):

==========================  ===================================================
``GET /``                   the page (``static/index.html``)
``GET /static/...``         its CSS and JavaScript
``GET /api/model``          ``model`` (``"mlp"`` or ``"cnn"``), sizes,
                            dtype, class names, the run's folder name
                            (never its path), steps taken,
                            ``max_body_bytes``, ``max_pixels``; a CNN's
                            ``conv`` (``feature_maps.conv_info``)
``GET /api/history``        ``{"history": [...]}``: the run's epochs
``POST /api/predict``       body: an image file (``image/*`` or
                            ``application/octet-stream``, at most
                            ``MAX_PIXELS`` pixels), or JSON
                            ``{"pixels": [784 numbers in [0, 1]]}``; answer:
                            ``prepared`` (784), ``probabilities`` (C),
                            ``prediction``, ``logits`` (C), ``hidden`` (one
                            list per hidden layer; a CNN: ``maps`` (F,
                            OH*OW) and ``kernels`` (F, KH*KW) instead),
                            ``losses`` and ``complement`` (C, float64:
                            ``session.precise``), ``steps``
``POST /api/backward``      JSON ``{"pixels": [784], "label": k}``; answer:
                            ``loss``, ``probabilities``, ``losses``,
                            ``complement``, ``grad_logits`` (C),
                            ``grad_hidden`` (per hidden layer), ``units``
                            (``unit``, ``grad_weights`` (784), ``weights``
                            (784) of the most responsible first-layer units;
                            a CNN: no ``grad_hidden``, and one unit per
                            kernel, ``grad_weights`` and ``weights`` (KH*KW))
``POST /api/step``          JSON ``{"pixels": [784], "label": k}``: one Adam
                            step; answer: ``loss_before``,
                            ``probabilities_before``, ``losses_before``,
                            ``complement_before``, ``loss``, and what
                            predict answers, after the step
``POST /api/reset``         JSON ``{}``: forget the steps; answer
                            ``{"steps": 0}``
==========================  ===================================================

Every response carries a Content-Security-Policy that lets the page load and
fetch from this server alone, so the browser itself refuses anything remote.
Every POST body but an image must be ``application/json``, so that a page on
another origin can send none without a CORS preflight (never granted); with
``request_checks``' checks of ``Host`` and ``Origin``, no other site can take steps,
reset, or read the API. At most ``DECODE_SLOTS`` images are decoded at once.
"""

from __future__ import annotations

import json
import sys
import threading
import traceback
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

from starlette.applications import Starlette
from starlette.concurrency import run_in_threadpool
from starlette.exceptions import HTTPException
from starlette.middleware import Middleware
from starlette.requests import ClientDisconnect, Request
from starlette.responses import FileResponse, JSONResponse, Response
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles

from backprop.app.explorer.request_checks import guards
from backprop.app.explorer.session import Session, check_pixels
from backprop.app.explorer.uploads import MAX_PIXELS, prepare
from backprop.errors import BackpropError

STATIC = Path(__file__).parent / "static"
MAX_BODY_BYTES = 8 * 1024 * 1024  # 8 MiB: a phone photo fits
DECODE_SLOTS = 2  # images decoded at once; more wait their turn
IMAGE_TYPES = ("application/octet-stream",)  # and every image/...
CSP = (
    "default-src 'self'; img-src 'self' data: blob:; object-src 'none'; "
    "base-uri 'none'; form-action 'none'; frame-ancestors 'none'"
)


class TooLarge(Exception):
    """The request body is over ``MAX_BODY_BYTES``."""


class BadRequest(Exception):
    """The request is malformed (bad JSON, a missing field)."""


class WrongType(Exception):
    """The body's Content-Type is not one the route takes."""


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


def content_type(request: Request) -> str:
    """The request's Content-Type, without parameters, lowercase."""
    return request.headers.get("content-type", "").split(";")[0].strip().lower()


def is_json(request: Request) -> bool:
    """True when the request says its body is JSON."""
    return content_type(request) == "application/json"


def is_image(request: Request) -> bool:
    """True when the request says its body is an image file."""
    kind = content_type(request)
    return kind.startswith("image/") or kind in IMAGE_TYPES


async def read_json(request: Request) -> dict[str, Any]:
    """The body of a request that must be ``application/json``, as an object.

    Raises:
        WrongType: another Content-Type (a form, ``text/plain``): refused
            before the body is read.
        TooLarge, BadRequest: from ``read_body`` and ``parse_json``.
    """
    if not is_json(request):
        raise WrongType("application/json")
    return parse_json(await read_body(request))


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
        except WrongType as exc:
            got = content_type(request)[:80] or "no Content-Type"
            return error(415, f"expected a body of type {exc}, got {got}")
        except ClientDisconnect:  # nobody to answer: one line in the log
            print(
                f"explorer: the client went away during {request.method} "
                f"{request.url.path}, before sending its whole request",
                file=sys.stderr,
                flush=True,
            )
            return Response(status_code=400)
        except (BadRequest, BackpropError) as exc:
            return error(400, str(exc))
        except Exception as exc:  # a bug: say so, log it, keep serving
            traceback.print_exc(file=sys.stderr)
            return error(500, f"internal error: {type(exc).__name__}: {exc}")

    return endpoint


def create_app(
    session: Session,
    *,
    names: tuple[str, ...] = ("127.0.0.1", "localhost"),
    port: int = 8000,
) -> Starlette:
    """The explorer's ASGI app around one session (Starlette, with headers).

    Args:
        session: the model and its steps.
        names: the ``Host`` names it answers to (``request_checks``): the address it
            serves, and ``localhost`` on loopback.
        port: the port it serves.
    """
    decoding = threading.BoundedSemaphore(DECODE_SLOTS)

    def decode(body: bytes) -> Any:
        """``prepare`` an image, at most ``DECODE_SLOTS`` at a time (a thread)."""
        with decoding:
            return prepare(body, session.recipe)

    async def example(request: Request) -> tuple[Any, int]:
        """The prepared input and label of a backward or step request."""
        body = await read_json(request)
        if "label" not in body:
            raise BadRequest("missing 'label': the true class")
        return check_pixels(body.get("pixels")), body["label"]

    async def predict(request: Request) -> dict:
        if is_json(request):
            x = check_pixels((await read_json(request)).get("pixels"))
        elif not is_image(request):
            raise WrongType("image/... or application/json")
        else:
            body = await read_body(request)
            if not body:
                raise BadRequest('send an image file, or JSON {"pixels": [...]}')
            x = await run_in_threadpool(decode, body)
        return await run_in_threadpool(session.predict, x)

    async def backward(request: Request) -> dict:
        return await run_in_threadpool(session.backward, *await example(request))

    async def step(request: Request) -> dict:
        return await run_in_threadpool(session.step, *await example(request))

    async def reset(request: Request) -> dict:
        await read_json(request)  # JSON only: a form cannot reset
        return await run_in_threadpool(session.reset)

    async def info(request: Request) -> dict:
        return {
            **session.info(),
            "max_body_bytes": MAX_BODY_BYTES,
            "max_pixels": MAX_PIXELS,
        }

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
    middleware = [Middleware(SecurityHeaders), *guards(names, port)]
    return Starlette(
        routes=routes,
        middleware=middleware,
        exception_handlers={HTTPException: http_error},
    )


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
