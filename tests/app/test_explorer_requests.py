"""The explorer is safe to leave running: what a hostile page or client gets.

Each test sends what the hostile review sent (another ``Host`` after DNS
rebinding, another page's ``Origin``, a ``text/plain`` no-cors body, a form,
a PNG that declares 13,300 x 13,300 pixels, a 401-digit pixel, a client that
hangs up mid-body) and checks the refusal, and that the model took no step.
The same attack from a real page in Chromium is in
``test_explorer_browser.py``.
"""

from __future__ import annotations

import asyncio
import io
import json
import re
import selectors
import socket
import struct
import subprocess
import sys
import threading
import time
import warnings
import zlib

import numpy as np
import pytest

pytest.importorskip("starlette", reason="the explorer extra is not installed")
pytest.importorskip("httpx", reason="starlette's TestClient needs httpx")
pytest.importorskip("PIL", reason="the explorer prepares images with Pillow")

from explorer_client import BASE, explorer_client  # noqa: E402
from PIL import Image  # noqa: E402

from backprop.app.commands import explore  # noqa: E402
from backprop.app.explorer import routes as app_module  # noqa: E402
from backprop.app.explorer import server, uploads  # noqa: E402
from backprop.app.explorer.request_checks import origins_of, port_of  # noqa: E402
from backprop.app.explorer.routes import DECODE_SLOTS  # noqa: E402
from backprop.app.explorer.session import Session  # noqa: E402
from backprop.app.explorer.uploads import MAX_PIXELS, prepare  # noqa: E402
from backprop.errors import DataError  # noqa: E402
from backprop.model import MLP  # noqa: E402

PIXELS = [0.0] * 300 + [1.0] * 184 + [0.0] * 300
STEP = {"pixels": PIXELS, "label": 3}


@pytest.fixture
def model() -> MLP:
    return MLP([784, 16, 10], seed=0)


@pytest.fixture
def client(model):
    s = Session(model, [str(d) for d in range(10)], source="run")
    test_client = explorer_client(s)
    test_client.session = s
    return test_client


def steps(client) -> int:
    return client.get("/api/model").json()["steps"]


def png(width: int, height: int) -> bytes:
    """A valid 1-bit PNG of ``width x height`` white pixels, made cheaply.

    Its rows of zeros compress a thousandfold: 13,300 x 13,300 takes ~22 kB,
    though Pillow would need 177 MB to decode it (2 GB once turned to RGBA
    and floats, as the hostile review measured for its 3.1 MB PNG).
    """

    def chunk(kind: bytes, data: bytes) -> bytes:
        body = kind + data
        return struct.pack(">I", len(data)) + body + struct.pack(">I", zlib.crc32(body))

    row = b"\0" * (1 + (width + 7) // 8)  # filter byte, then the bits
    packer = zlib.compressobj(9)
    idat = b"".join(packer.compress(row) for _ in range(height)) + packer.flush()
    ihdr = struct.pack(">IIBBBBB", width, height, 1, 0, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", ihdr)
        + chunk(b"IDAT", idat)
        + chunk(b"IEND", b"")
    )


# --- Host: DNS rebinding ------------------------------------------------------


@pytest.mark.parametrize(
    "host", ["evil.example:8000", "evil.example", "127.0.0.1:9000", "localhost:80"]
)
def test_requests_for_another_host_or_port_are_refused(client, host):
    r = client.get("/api/model", headers={"host": host})
    assert r.status_code == 400 and "sizes" not in r.text
    r = client.post("/api/step", json=STEP, headers={"host": host})
    assert r.status_code == 400 and steps(client) == 0


@pytest.mark.parametrize("host", ["127.0.0.1:8000", "localhost:8000", "LOCALHOST:8000"])
def test_its_own_names_are_answered(client, host):
    assert client.get("/api/model", headers={"host": host}).status_code == 200


def test_host_parsing():
    assert port_of("127.0.0.1:8000") == 8000 and port_of("[::1]:8000") == 8000
    assert port_of("localhost") is None and port_of("[::1]") is None
    assert port_of("x:80a") == -1 and port_of("x:123456") == -1
    assert origins_of(["::1", "localhost"], 8000) == {
        "http://[::1]:8000",
        "http://localhost:8000",
    }


def test_the_model_answer_holds_no_path(tmp_path):
    from backprop.app.runs import Checkpoint, save_checkpoint

    folder = tmp_path / "my-run"
    folder.mkdir()
    save_checkpoint(folder / "model.npz", Checkpoint(MLP([784, 8, 10]).params))
    for source in (folder, folder / "model.npz"):
        info = Session.from_run(source).info()
        assert info["source"] == "my-run"
        assert str(tmp_path) not in json.dumps(info)


# --- Origin: another page's requests ------------------------------------------


@pytest.mark.parametrize(
    "origin",
    ["http://127.0.0.1:9000", "http://evil.example", "null", "https://127.0.0.1:8000"],
)
def test_another_pages_posts_are_refused(client, model, origin):
    before = model.params["dense1.w"].copy()
    for path, body in (
        ("/api/step", STEP),
        ("/api/reset", {}),
        ("/api/backward", STEP),
    ):
        r = client.post(path, json=body, headers={"origin": origin})
        assert r.status_code == 403 and "refused" in r.json()["error"], r.text
    assert steps(client) == 0
    np.testing.assert_array_equal(client.session.model.params["dense1.w"], before)


@pytest.mark.parametrize("site", ["cross-site", "same-site"])
def test_a_foreign_fetch_without_origin_is_refused(client, site):
    r = client.post("/api/step", json=STEP, headers={"sec-fetch-site": site})
    assert r.status_code == 403 and steps(client) == 0


@pytest.mark.parametrize(
    "headers",
    [
        {"origin": BASE},
        {"origin": "http://localhost:8000"},
        {"sec-fetch-site": "same-origin"},
        {"sec-fetch-site": "none"},
        {},  # curl, a script: no browser, no Origin
    ],
)
def test_its_own_page_and_scripts_take_steps(client, headers):
    r = client.post("/api/step", json=STEP, headers=headers)
    assert r.status_code == 200, r.text
    assert r.json()["steps"] == 1


def test_reading_from_another_origin_is_left_to_the_browser(client):
    # the browser shows no other page a GET's answer (same-origin policy)
    r = client.get("/api/model", headers={"origin": "http://evil.example"})
    assert r.status_code == 200 and "access-control-allow-origin" not in r.headers


# --- Content-Type: JSON only as application/json ------------------------------


def test_a_text_plain_step_is_refused_unread(client):
    # what fetch(..., {mode: "no-cors", body: JSON.stringify(...)}) sends
    for kind in ("text/plain;charset=UTF-8", "", "application/x-www-form-urlencoded"):
        r = client.post(
            "/api/step", content=json.dumps(STEP), headers={"content-type": kind}
        )
        assert r.status_code == 415 and "application/json" in r.json()["error"]
    assert steps(client) == 0


def test_a_form_cannot_reset_or_predict(client):
    assert client.post("/api/step", json=STEP).status_code == 200
    r = client.post("/api/reset", data={"x": "1"})  # an HTML form's POST
    assert r.status_code == 415 and steps(client) == 1
    r = client.post("/api/reset", files={"f": ("a.png", b"x", "image/png")})
    assert r.status_code == 415 and steps(client) == 1
    r = client.post("/api/predict", files={"f": ("a.png", png(28, 28), "image/png")})
    assert r.status_code == 415
    assert client.post("/api/reset", json={}).json() == {"steps": 0}


# --- bounded work -------------------------------------------------------------


def test_a_huge_png_is_refused_from_its_header(client, monkeypatch):
    bomb = png(13300, 13300)
    assert len(bomb) < 100_000
    with warnings.catch_warnings():  # Pillow alone would take it, warning
        warnings.simplefilter("ignore", Image.DecompressionBombWarning)
        img = Image.open(io.BytesIO(bomb))
        assert (
            img.size == (13300, 13300)
            and img.width * img.height < 2 * Image.MAX_IMAGE_PIXELS
        )

    def no_decoding(*args, **kwargs):
        raise AssertionError("decoded a refused image")

    monkeypatch.setattr(uploads, "decode_image", no_decoding)
    r = client.post("/api/predict", content=bomb, headers={"content-type": "image/png"})
    assert r.status_code == 400, r.text
    message = r.json()["error"]
    assert "13300x13300" in message and f"{MAX_PIXELS:,}" in message


def test_the_pixel_limit_is_width_times_height():
    small = png(40, 30)
    with pytest.raises(DataError, match="40x30 pixels is over"):
        prepare(small, max_pixels=40 * 30 - 1)
    with pytest.raises(DataError, match="blank"):  # decoded: blank, not too big
        prepare(small, max_pixels=40 * 30)


def test_decodes_run_at_most_a_few_at_once(client, monkeypatch):
    lock, running, most = threading.Lock(), [0], [0]
    full = threading.Event()  # as many decoding as the slots allow
    image = np.zeros(784, np.float32)

    def slow_prepare(data, recipe):
        with lock:
            running[0] += 1
            most[0] = max(most[0], running[0])
            if running[0] >= DECODE_SLOTS:
                full.set()
        full.wait(timeout=30)  # the first waits for company: they overlap
        time.sleep(0.05)  # room for one more to come in, were there no bound
        with lock:
            running[0] -= 1
        return image

    monkeypatch.setattr(app_module, "prepare", slow_prepare)
    answers = []

    def upload():
        r = client.post(
            "/api/predict", content=b"img", headers={"content-type": "image/png"}
        )
        answers.append(r.status_code)

    threads = [threading.Thread(target=upload) for _ in range(3 * DECODE_SLOTS)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert answers == [200] * len(threads)
    assert most[0] == DECODE_SLOTS  # several at once, but never more


def test_a_pixel_of_401_digits_is_a_bad_request(client):
    body = '{"pixels": [' + ", ".join(["0"] * 783 + ["9" * 401]) + '], "label": 1}'
    for path in ("/api/step", "/api/predict"):
        r = client.post(
            path, content=body, headers={"content-type": "application/json"}
        )
        assert r.status_code == 400 and "[0, 1]" in r.json()["error"]


def test_a_client_that_hangs_up_is_one_line(client, capsys):
    app = client.app
    messages = [
        {"type": "http.request", "body": b'{"pixels": [0.0, ', "more_body": True},
        {"type": "http.disconnect"},
    ]
    sent = []

    async def receive():
        return messages.pop(0) if messages else {"type": "http.disconnect"}

    async def send(message):
        sent.append(message)

    scope = {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "method": "POST",
        "scheme": "http",
        "path": "/api/step",
        "raw_path": b"/api/step",
        "root_path": "",
        "query_string": b"",
        "headers": [
            (b"host", b"127.0.0.1:8000"),
            (b"content-type", b"application/json"),
            (b"content-length", b"9000"),
        ],
        "client": ("127.0.0.1", 50000),
        "server": ("127.0.0.1", 8000),
    }
    asyncio.run(app(scope, receive, send))
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "went away during POST /api/step" in err, err
    assert "Traceback" not in err and steps(client) == 0


# --- the command's --host -----------------------------------------------------


def test_host_names_follow_the_bound_address():
    sock = server.bind("127.1", 0)  # an alias of 127.0.0.1
    try:
        assert server.bound_address(sock) == "127.0.0.1"
        assert set(server.host_names("127.1", sock)) == {
            "127.1",
            "127.0.0.1",
            "localhost",
        }
    finally:
        sock.close()
    sock = server.bind("0.0.0.0", 0)
    try:
        names = server.host_names("0.0.0.0", sock)
        assert {"127.0.0.1", "localhost"} <= set(names)
        assert server.url_of(sock).startswith("http://127.0.0.1:")
    finally:
        sock.close()


def small_run(tmp_path):
    from backprop.app.runs import Checkpoint, save_checkpoint

    folder = tmp_path / "run"
    folder.mkdir()
    save_checkpoint(folder / "model.npz", Checkpoint(MLP([784, 8, 10]).params))
    return folder


def test_the_command_on_127_1_is_loopback_and_on_nothing_refuses(
    tmp_path, monkeypatch, capsys
):
    served = {}
    monkeypatch.setattr(
        explore, "serve", lambda app, sock, open_browser: served.update(app=app)
    )
    run = small_run(tmp_path)
    assert (
        explore.main([str(run), "--host", "127.1", "--port", "0", "--no-browser"]) == 0
    )
    assert "warning" not in capsys.readouterr().err
    with pytest.raises(SystemExit) as refused:  # a bad flag: usage, then why
        explore.main([str(run), "--host", "", "--port", "0"])
    err = capsys.readouterr().err
    assert refused.value.code == 2 and "Traceback" not in err
    assert err.splitlines()[-1].endswith(
        "--host '' names no address: give "
        "127.0.0.1 (this machine only) or 0.0.0.0 "
        "(every interface, on purpose)"
    )
    assert explore.main([str(run), "--host", "0.0.0.0", "--port", "0"]) == 0
    err = capsys.readouterr().err
    assert (
        "not on loopback" in err
        and "localhost" in err
        and "other names are refused" in err
    )


def test_the_real_server_logs_a_hang_up_in_one_line(tmp_path):
    run = small_run(tmp_path)
    cmd = [sys.executable, "-m", "backprop.explore", str(run), "--port", "0"]
    proc = subprocess.Popen(
        [*cmd, "--no-browser"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        cwd=tmp_path,
    )
    try:
        port = int(re.search(r"127\.0\.0\.1:(\d+)/", proc.stdout.readline())[1])
        with socket.create_connection(("127.0.0.1", port), timeout=10) as conn:
            conn.sendall(
                b"POST /api/step HTTP/1.1\r\n"
                + f"Host: 127.0.0.1:{port}\r\n".encode()
                + b"Content-Type: application/json\r\nContent-Length: 9000\r\n\r\n"
                + b'{"pixels": [0.0, 0.0'
            )
        watch = selectors.DefaultSelector()
        watch.register(proc.stderr, selectors.EVENT_READ)
        assert watch.select(timeout=30), "the server logged nothing"
        line = proc.stderr.readline()
        assert "went away during POST /api/step" in line, line
    finally:
        proc.terminate()
        proc.wait(timeout=10)
    rest = proc.stderr.read()
    assert "Traceback" not in rest and "ClientDisconnect" not in rest, rest


def test_an_ipv6_loopback_is_answered_by_its_bracketed_name(model):
    import starlette._utils

    if not hasattr(starlette._utils, "parse_host_header"):
        pytest.skip("this Starlette's TrustedHostMiddleware refuses IPv6 hosts")
    client = explorer_client(Session(model, list("0123456789")), names=("::1",))
    assert client.get("/api/model", headers={"host": "[::1]:8000"}).status_code == 200
    assert client.get("/api/model", headers={"host": "[::2]:8000"}).status_code == 400
    r = client.post(
        "/api/reset",
        json={},
        headers={"host": "[::1]:8000", "origin": "http://[::1]:8000"},
    )
    assert r.status_code == 200
