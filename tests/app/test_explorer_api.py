"""The explorer's JSON API against the engine: same numbers, bad requests refused.

Every number the page shows comes from ``/api/``; these tests compute each one
again with the engine directly (``MLP.predict_proba``, ``loss_and_grads``,
``Adam``, ``backprop.predict``'s preparation) and ask for equality.
"""

from __future__ import annotations

import io
import json
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("starlette", reason="the explorer extra is not installed")
pytest.importorskip("httpx", reason="starlette's TestClient needs httpx")
pytest.importorskip("PIL", reason="the explorer prepares images with Pillow")

from explorer_client import explorer_client  # noqa: E402
from PIL import Image, ImageDraw  # noqa: E402

from backprop.app.commands import explore  # noqa: E402
from backprop.app.explorer import server  # noqa: E402
from backprop.app.explorer.routes import MAX_BODY_BYTES, STATIC  # noqa: E402
from backprop.app.explorer.session import LR, TOP_UNITS, Session  # noqa: E402
from backprop.app.photos.prepare import open_image, prepare_image  # noqa: E402
from backprop.errors import ConfigError  # noqa: E402
from backprop.losses import softmax  # noqa: E402
from backprop.model import MLP  # noqa: E402
from backprop.optim import Adam  # noqa: E402

ROOT = Path(__file__).resolve().parents[2]
HISTORY = [
    {
        "epoch": 1,
        "train_loss": 0.5,
        "train_accuracy": 0.8,
        "test_loss": 0.4,
        "test_accuracy": 0.85,
        "seconds": 1.0,
        "diagnostics": {"dense1": {"grad_norm": 0.1}},
    }
]


def digit_png(kind: str = "seven", size: int = 200) -> bytes:
    """A drawn digit, dark ink on white paper, as PNG bytes."""
    img = Image.new("L", (size, size), 255)
    draw = ImageDraw.Draw(img)
    if kind == "seven":
        draw.line([(50, 40), (150, 40), (90, 170)], fill=0, width=14)
    else:  # a one
        draw.line([(100, 30), (100, 170)], fill=0, width=14)
    buf = io.BytesIO()
    img.save(buf, "PNG")
    return buf.getvalue()


@pytest.fixture
def model() -> MLP:
    return MLP([784, 32, 10], seed=0)


@pytest.fixture
def client(model):
    session = Session(model, [str(d) for d in range(10)], history=HISTORY, source="t")
    return explorer_client(session)


def post_image(client, data: bytes):
    return client.post(
        "/api/predict", content=data, headers={"content-type": "image/png"}
    )


def x_of(answer: dict) -> np.ndarray:
    return np.asarray(answer["prepared"], dtype=np.float32).reshape(1, -1)  # (1, 784)


def test_predict_prepares_like_predict_and_matches_the_engine(client, model, tmp_path):
    data = digit_png()
    r = post_image(client, data)
    assert r.status_code == 200, r.text
    answer = r.json()
    path = tmp_path / "seven.png"
    path.write_bytes(data)
    expected = prepare_image(open_image(path), "mnist").reshape(-1)  # predict's way
    assert answer["prepared"] == expected.astype(np.float64).tolist()
    x = x_of(answer)
    probs = model.predict_proba(x)[0]
    assert answer["probabilities"] == probs.tolist()
    assert answer["prediction"] == int(probs.argmax())
    w1, b1 = model.params["dense1.w"], model.params["dense1.b"]
    np.testing.assert_allclose(
        answer["hidden"][0], np.maximum(x @ w1 + b1, 0)[0], rtol=1e-6
    )
    assert len(answer["hidden"]) == 1 and answer["steps"] == 0


def test_predict_takes_pixels_as_json(client, model):
    prepared = post_image(client, digit_png("one")).json()
    r = client.post("/api/predict", json={"pixels": prepared["prepared"]})
    assert r.status_code == 200
    assert r.json()["probabilities"] == prepared["probabilities"]
    assert r.json()["probabilities"] == model.predict_proba(x_of(prepared))[0].tolist()


def test_backward_matches_loss_and_grads(client, model):
    x = x_of(post_image(client, digit_png()).json())
    label = 3
    r = client.post("/api/backward", json={"pixels": x[0].tolist(), "label": label})
    assert r.status_code == 200, r.text
    answer = r.json()
    loss, grads, logits = model.loss_and_grads(x, np.array([label]), return_logits=True)
    assert answer["loss"] == float(loss) and answer["label"] == label
    dlogits = softmax(logits)[0] - np.eye(10)[label]  # p - onehot(y), N = 1
    np.testing.assert_allclose(answer["grad_logits"], dlogits, rtol=1e-6, atol=1e-7)
    w1, b1, w2 = (model.params[k] for k in ("dense1.w", "dense1.b", "dense2.w"))
    dh = (softmax(logits)[0] - np.eye(10, dtype=np.float32)[label]) @ w2.T  # (32,)
    np.testing.assert_allclose(answer["grad_hidden"][0], dh, rtol=1e-5, atol=1e-7)
    # the units: the columns of dL/dW1 with the largest norms, largest first
    norms = np.linalg.norm(grads["dense1.w"], axis=0)  # (32,)
    units = [u["unit"] for u in answer["units"]]
    assert 0 < len(units) <= TOP_UNITS
    assert units == sorted(units, key=lambda j: -norms[j])
    assert norms[units[-1]] >= np.sort(norms)[-len(units)] * (1 - 1e-6)
    for u in answer["units"]:
        assert u["grad_weights"] == grads["dense1.w"][:, u["unit"]].tolist()
        assert u["weights"] == w1[:, u["unit"]].tolist()


def test_steps_are_adam_on_a_copy_and_reset_restores(client, model):
    x = x_of(post_image(client, digit_png()).json())
    loaded = {k: v.copy() for k, v in model.params.items()}
    twin, opt, label = MLP.from_params(model.params), Adam(lr=LR), 7
    before = twin.predict_proba(x)[0]
    for t in (1, 2, 3):
        r = client.post("/api/step", json={"pixels": x[0].tolist(), "label": label})
        assert r.status_code == 200, r.text
        loss, grads = twin.loss_and_grads(x, np.array([label]))
        opt.step(twin.params, grads)
        answer = r.json()
        assert answer["steps"] == t and answer["loss_before"] == float(loss)
        assert answer["probabilities"] == twin.predict_proba(x)[0].tolist()
        assert answer["probabilities"][label] > answer["probabilities_before"][label]
    for name, value in loaded.items():  # the loaded model is never changed
        np.testing.assert_array_equal(model.params[name], value)
    stepped = client.post("/api/predict", json={"pixels": x[0].tolist()}).json()
    assert stepped["probabilities"][label] > before[label] and stepped["steps"] == 3
    assert client.post("/api/reset", json={}).json() == {"steps": 0}
    again = client.post("/api/predict", json={"pixels": x[0].tolist()}).json()
    assert again["probabilities"] == before.tolist() and again["steps"] == 0


BAD = [
    ("/api/predict", b"{not json", "application/json", 400),
    ("/api/predict", b"[1, 2]", "application/json", 400),
    ("/api/predict", b'{"pixels": [0.5, 0.5]}', "application/json", 400),
    ("/api/predict", b'{"pixels": "abc"}', "application/json", 400),
    ("/api/predict", b"\xff\xfe\x00", "application/json", 400),
    ("/api/predict", b"this is not an image", "image/png", 400),
    ("/api/predict", b"\x89PNG\r\n\x1a\n broken", "image/png", 400),
    ("/api/predict", b"", "image/png", 400),
    ("/api/backward", b'{"pixels": [0.5]}', "application/json", 400),
    ("/api/backward", json.dumps({"pixels": [0.0] * 784}).encode(), "", 415),
    ("/api/backward", b'{"label": 1}', "application/json", 400),
    ("/api/step", b"nope", "application/json", 400),
    ("/api/step", b"[" * 100000 + b"]" * 100000, "application/json", 400),
]
BAD_JSON = [
    {"pixels": [0.0] * 784, "label": 10},
    {"pixels": [0.0] * 784, "label": -1},
    {"pixels": [0.0] * 784, "label": "3"},
    {"pixels": [0.0] * 784, "label": True},
    {"pixels": [0.0] * 783 + [2.0], "label": 1},
    {"pixels": [0.0] * 783 + [None], "label": 1},
    {"pixels": [[0.0] * 28] * 28, "label": 1},
]


@pytest.mark.parametrize(("path", "body", "kind", "status"), BAD)
def test_malformed_requests_get_an_error_and_the_server_goes_on(
    client, path, body, kind, status
):
    r = client.post(path, content=body, headers={"content-type": kind})
    assert r.status_code == status
    assert set(r.json()) == {"error"} and r.json()["error"]
    assert post_image(client, digit_png()).status_code == 200


@pytest.mark.parametrize("body", BAD_JSON, ids=range(len(BAD_JSON)))
@pytest.mark.parametrize("path", ["/api/backward", "/api/step"])
def test_bad_pixels_and_labels(client, path, body):
    r = client.post(path, json=body)
    assert r.status_code == 400 and "error" in r.json()


def test_nan_pixels_are_refused(client):
    body = '{"pixels": [' + ", ".join(["0"] * 783 + ["NaN"]) + '], "label": 1}'
    r = client.post(
        "/api/step", content=body, headers={"content-type": "application/json"}
    )
    assert r.status_code == 400 and "finite" in r.json()["error"]


def test_bodies_over_the_limit_get_413(client):
    big = b"\0" * (MAX_BODY_BYTES + 1)
    for path, kind in (
        ("/api/predict", "image/png"),
        ("/api/step", "application/json"),
        ("/api/reset", "application/json"),
    ):
        r = client.post(path, content=big, headers={"content-type": kind})
        assert r.status_code == 413 and "limit" in r.json()["error"]

    def chunks():  # no Content-Length: the server counts as it reads
        for _ in range(MAX_BODY_BYTES // 65536 + 2):
            yield b"\0" * 65536

    r = client.post(
        "/api/predict", content=chunks(), headers={"content-type": "image/png"}
    )
    assert r.status_code == 413
    assert post_image(client, digit_png()).status_code == 200


def test_wrong_routes_and_methods_answer_json(client):
    assert client.get("/api/nothing").status_code == 404
    r = client.get("/api/predict")
    assert r.status_code == 405 and "error" in r.json()


def test_model_and_history(client):
    info = client.get("/api/model").json()
    assert info["sizes"] == [784, 32, 10] and info["lr"] == LR
    assert info["adam"] == "keras" and info["class_names"][7] == "7"
    assert info["max_body_bytes"] == MAX_BODY_BYTES
    assert client.get("/api/history").json() == {"history": HISTORY}


def test_the_page_and_its_files_are_all_local(client):
    page = client.get("/")
    assert page.status_code == 200 and "text/html" in page.headers["content-type"]
    assert "default-src 'self'" in page.headers["content-security-policy"]
    links = re.findall(r'(?:src|href)="([^"]+)"', page.text)
    assert links and all(u.startswith(("/static/", "data:")) for u in links)
    for name in ("explorer.js", "explorer.css"):
        r = client.get(f"/static/{name}")
        assert r.status_code == 200 and r.text
        # no remote address anywhere (the SVG namespace is a name, not a fetch)
        remote = set(re.findall(r"https?://[^\s\"')]+", r.text))
        assert remote <= {"http://www.w3.org/2000/svg"}, remote
    for element in ("pad", "clear", "undo", "probabilities", "prediction"):
        assert f'id="{element}"' in page.text
    assert 'id="error" role="alert"' in page.text
    text = (ROOT / "pyproject.toml").read_text()
    assert '"app/explorer/static/*"' in text and {p.name for p in STATIC.iterdir()} >= {
        "index.html",
        "explorer.js",
        "explorer.css",
    }


def test_the_session_wants_28x28_inputs():
    with pytest.raises(ConfigError, match="28x28"):
        Session(MLP([64, 8, 10]), [str(d) for d in range(10)])


def test_loopback_and_binding():
    assert server.is_loopback("127.0.0.1") and server.is_loopback("::1")
    assert server.is_loopback("localhost") and server.is_loopback("127.0.0.2")
    assert not server.is_loopback("0.0.0.0") and not server.is_loopback("example.org")
    sock = server.bind("127.0.0.1", 0)
    try:
        port = sock.getsockname()[1]
        assert server.url_of(sock) == f"http://127.0.0.1:{port}/"
        with pytest.raises(ConfigError, match="cannot serve"):
            server.bind("127.0.0.1", port)  # in use
    finally:
        sock.close()


def small_run(tmp_path: Path) -> Path:
    """A run folder the explorer can load (untrained weights suffice here)."""
    from backprop.app.runs import Checkpoint, save_checkpoint

    folder = tmp_path / "run"
    folder.mkdir()
    model = MLP([784, 16, 10], seed=1)
    save_checkpoint(
        folder / "model.npz", Checkpoint(model.params, config={"dataset": "mnist"})
    )
    return folder


def test_the_command_without_a_model_trains_first_and_says_where(
    tmp_path, monkeypatch, capsys
):
    run = small_run(tmp_path)
    calls = {}
    monkeypatch.setattr(explore, "train_first_run", lambda: run)
    monkeypatch.setattr(
        explore, "serve", lambda app, sock, open_browser: calls.update(o=open_browser)
    )
    assert explore.main(["--port", "0"]) == 0
    out = capsys.readouterr().out
    assert "training the paper's model for 2 epochs" in out
    assert f"trained into {run}" in out and "http://127.0.0.1:" in out
    assert calls == {"o": True}  # the browser opens unless --no-browser
    assert explore.main([str(run / "model.npz"), "--port", "0", "--no-browser"]) == 0
    assert calls == {"o": False}


def test_the_command_warns_off_loopback_and_refuses_bad_models(
    tmp_path, monkeypatch, capsys
):
    monkeypatch.setattr(explore, "serve", lambda app, sock, open_browser: None)
    run = small_run(tmp_path)
    assert explore.main([str(run), "--host", "0.0.0.0", "--port", "0"]) == 0
    assert "warning: listening on 0.0.0.0" in capsys.readouterr().err
    assert explore.main([str(tmp_path / "nothing"), "--port", "0"]) == 1
    err = capsys.readouterr().err
    assert err.startswith("error:") and err.count("\n") == 1


def test_a_missing_extra_is_one_line(tmp_path):
    code = (
        "import sys; sys.modules['starlette'] = None; "
        "from backprop.app.commands.explore import main; "
        "sys.exit(main(['--port', '0']))"
    )
    r = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60
    )
    assert r.returncode == 1
    assert r.stderr.count("\n") == 1 and "[explorer]" in r.stderr, r.stderr


def test_python_m_backprop_explore_serves(tmp_path):
    import urllib.request

    run = small_run(tmp_path)
    cmd = [sys.executable, "-m", "backprop.explore", str(run), "--port", "0"]
    proc = subprocess.Popen(
        [*cmd, "--no-browser"], stdout=subprocess.PIPE, text=True, cwd=tmp_path
    )
    try:
        line = proc.stdout.readline()
        url = re.search(r"http://127\.0\.0\.1:\d+/", line)[0]
        with urllib.request.urlopen(url + "api/model", timeout=10) as r:
            assert json.load(r)["sizes"] == [784, 16, 10]
    finally:
        proc.terminate()
        proc.wait(timeout=10)
