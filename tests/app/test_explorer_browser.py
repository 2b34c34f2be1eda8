"""The explorer's page end to end, in a real headless Chromium.

Debian's ``chromium``, driven by Playwright's Python package (no browser
download). The server is the real command, ``python -m backprop.explore RUN
--port 0 --no-browser``, in a subprocess, over a small model trained for one
epoch on 10,000 MNIST images (and a small CNN, one epoch on 2,000). The tests
draw with mouse strokes, click, step, reset and upload, check what the page
shows against the API and the engine, and record every request the page
makes: none may leave the loopback address.
Screenshots go to ``tests/artifacts/`` (git-ignored).

Skipped, saying why, where Playwright or a chromium cannot be had.
"""

from __future__ import annotations

import contextlib
import http.server
import io
import json
import math
import re
import shutil
import subprocess
import sys
import threading
import urllib.error
import urllib.request
from pathlib import Path

import numpy as np
import pytest

pytest.importorskip("starlette", reason="the explorer extra is not installed")
pytest.importorskip("PIL", reason="the explorer prepares images with Pillow")
sync_api = pytest.importorskip(
    "playwright.sync_api", reason="Playwright's Python package is not installed"
)
CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
if CHROMIUM is None:
    pytest.skip(
        "no chromium on PATH (apt-get install chromium)", allow_module_level=True
    )

from conftest import write_mnist_subset  # noqa: E402
from PIL import Image  # noqa: E402

pytestmark = pytest.mark.slow  # a browser and servers: 22 s of CPU in all

from backprop.app.config import EngineConfig  # noqa: E402
from backprop.app.explorer.firstrun import train_first_run  # noqa: E402
from backprop.app.photos.prepare import open_image, prepare_image  # noqa: E402
from backprop.app.runs import load_model  # noqa: E402
from backprop.data import load_pixels  # noqa: E402

ARTIFACTS = Path(__file__).resolve().parents[1] / "artifacts"
ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    # DNS rebinding, without DNS: the attacker's name resolves to loopback
    "--host-resolver-rules=MAP rebound.test 127.0.0.1",
]
IDLE = "() => document.body.dataset.pending === '0'"  # a function: CSP bans eval


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory) -> Path:
    """A run folder: 784-128-10, one epoch over 10,000 MNIST training images."""
    root = tmp_path_factory.mktemp("explorer")
    data = write_mnist_subset(root / "data", 10000, 2000)
    cfg = EngineConfig(
        epochs=1, batch_size=64, data_dir=str(data), device="cpu", kernels="reference"
    )
    return train_first_run(root / "run", cfg, quiet=True)


@contextlib.contextmanager
def explorer(run: Path):
    """The explorer command, serving ``run`` on a free loopback port: its URL."""
    cmd = [sys.executable, "-m", "backprop.explore", str(run), "--port", "0"]
    proc = subprocess.Popen(
        [*cmd, "--no-browser"], stdout=subprocess.PIPE, text=True, cwd=run
    )
    try:
        match = re.search(r"http://127\.0\.0\.1:\d+/", proc.stdout.readline())
        assert match, "the command printed no address"
        yield match[0]
    finally:
        proc.terminate()
        proc.wait(timeout=10)


@pytest.fixture(scope="module")
def base_url(run_dir):
    """The explorer command, serving ``run_dir`` on a free loopback port."""
    with explorer(run_dir) as url:
        yield url


@pytest.fixture(scope="module")
def browser():
    with sync_api.sync_playwright() as pw:
        try:
            chromium = pw.chromium.launch(
                executable_path=CHROMIUM, args=ARGS, headless=True
            )
        except Exception as exc:  # a chromium that cannot start here
            pytest.skip(f"chromium did not start: {str(exc).splitlines()[0]}")
        yield chromium
        chromium.close()


@pytest.fixture
def page(browser, base_url):
    """A fresh page on the explorer; ``page.requests`` records every request."""
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    tab = context.new_page()
    tab.requests = []
    context.on("request", lambda request: tab.requests.append(request))
    tab.goto(base_url)
    tab.wait_for_function(
        "() => document.querySelectorAll('#probabilities > *').length"
    )
    tab.wait_for_function(IDLE)
    yield tab
    urls = [r.url for r in tab.requests]
    assert urls and all(u.startswith((base_url, "data:", "blob:")) for u in urls), urls
    context.close()


def api(base_url: str, path: str, body: bytes | dict, kind: str = "application/json"):
    """POST to the explorer's API from the test, as the page would."""
    data = json.dumps(body).encode() if isinstance(body, dict) else body
    request = urllib.request.Request(
        base_url + path.lstrip("/"), data=data, headers={"Content-Type": kind}
    )
    with urllib.request.urlopen(request, timeout=10) as answer:
        return json.load(answer)


def stroke(page, points: list[tuple[float, float]]) -> None:
    """One mouse stroke through ``points``, in the pad's 280x280 pixels."""
    box = page.locator("#pad").bounding_box()
    x0, y0 = box["x"], box["y"]
    page.mouse.move(x0 + points[0][0], y0 + points[0][1])
    page.mouse.down()
    for x, y in points[1:]:
        page.mouse.move(x0 + x, y0 + y, steps=4)
    page.mouse.up()
    page.wait_for_function(IDLE)


def one(page) -> None:
    stroke(page, [(140, 40), (140, 240)])


def zero(page) -> None:
    ring = [
        (140 + 55 * math.sin(t), 140 - 90 * math.cos(t))
        for t in np.linspace(0, 2 * math.pi, 30)
    ]
    stroke(page, ring)


def seven(page) -> None:
    stroke(page, [(70, 60), (210, 60), (120, 240)])


def shown_probabilities(page) -> list[tuple[int, float]]:
    return page.eval_on_selector_all(
        "#probabilities > *",
        "rows => rows.map(r => [+r.dataset.class, +r.dataset.probability])",
    )


def values(page, selector: str) -> list[float]:
    return page.eval_on_selector_all(
        selector, "cells => cells.map(c => Number(c.dataset.value))"
    )


def last_png(page) -> bytes:
    sent = [r for r in page.requests if r.url.endswith("/api/predict")]
    assert sent and sent[-1].headers["content-type"] == "image/png"
    return sent[-1].post_data_buffer


def test_drawing_shows_the_forward_pass(page, base_url, run_dir, tmp_path):
    one(page)
    assert page.text_content("#prediction") == "1"
    shown = shown_probabilities(page)
    assert [c for c, _ in shown] == list(range(10))
    probs = [p for _, p in shown]
    assert all(0 <= p <= 1 for p in probs) and abs(sum(probs) - 1) < 1e-5
    assert int(np.argmax(probs)) == 1
    # what the page showed is what the API and the engine give for its PNG
    png = last_png(page)
    answer = api(base_url, "/api/predict", png, "image/png")
    assert answer["probabilities"] == probs
    (tmp_path / "drawn.png").write_bytes(png)
    prepared = prepare_image(open_image(tmp_path / "drawn.png"), "mnist")
    assert answer["prepared"] == prepared.reshape(-1).astype(np.float64).tolist()
    model, _, _ = load_model(run_dir)
    engine = model.predict_proba(prepared.reshape(1, -1))[0]
    assert engine.tolist() == probs
    hidden = values(page, "#hidden > *")
    assert hidden == answer["hidden"][0] and len(hidden) == 128
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=ARTIFACTS / "explorer-one.png", full_page=True)

    page.click("#undo")
    page.wait_for_function(IDLE)
    assert page.text_content("#prediction") == ""
    zero(page)
    assert page.text_content("#prediction") == "0"
    answer = api(base_url, "/api/predict", last_png(page), "image/png")
    assert [p for _, p in shown_probabilities(page)] == answer["probabilities"]
    page.click("#clear")
    page.wait_for_function(IDLE)
    assert page.text_content("#prediction") == "" and not values(page, "#hidden > *")
    assert page.text_content("#error") == ""


def test_the_true_class_shows_the_backward_pass_and_steps(page, base_url):
    seven(page)
    page.click("#probabilities > [data-class='7']")
    page.wait_for_function(IDLE)
    pixels = api(base_url, "/api/predict", last_png(page), "image/png")["prepared"]
    expected = api(base_url, "/api/backward", {"pixels": pixels, "label": 7})
    assert values(page, "#grad-logits > *") == expected["grad_logits"]
    assert values(page, "#grad-hidden > *") == expected["grad_hidden"][0]
    units = page.eval_on_selector_all(
        "#grad-weights > *", "figs => figs.map(f => Number(f.dataset.unit))"
    )
    assert units and units == [u["unit"] for u in expected["units"]]
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=ARTIFACTS / "explorer.png", full_page=True)

    def p7() -> float:
        return dict(shown_probabilities(page))[7]

    before = p7()
    page.click("#step")
    page.wait_for_function(IDLE)
    after_one = p7()
    assert after_one > before and "1 step" in page.text_content("#steps")
    page.click("#step")
    page.wait_for_function(IDLE)
    assert p7() > after_one and "2 step" in page.text_content("#steps")
    stepped = api(base_url, "/api/backward", {"pixels": pixels, "label": 7})
    assert values(page, "#grad-logits > *") == stepped["grad_logits"]
    page.screenshot(path=ARTIFACTS / "explorer-steps.png", full_page=True)
    page.click("#reset")
    page.wait_for_function(IDLE)
    assert p7() == before and "0 step" in page.text_content("#steps")
    assert values(page, "#grad-logits > *") == expected["grad_logits"]


def test_uploads_good_and_bad(page, base_url, tmp_path):
    (_, _), (px_test, y_test) = load_pixels("mnist")
    digit = Image.fromarray(255 - px_test[0].reshape(28, 28)).resize((140, 140))
    good = tmp_path / "digit.png"
    digit.save(good)
    page.set_input_files("#upload", str(good))
    page.wait_for_function(IDLE)
    answer = api(base_url, "/api/predict", good.read_bytes(), "image/png")
    assert page.text_content("#prediction") == str(answer["prediction"])
    assert [p for _, p in shown_probabilities(page)] == answer["probabilities"]
    assert answer["prediction"] == int(y_test[0])  # a 7, clearly
    assert page.text_content("#error") == ""

    bad = tmp_path / "notes.png"
    bad.write_text("not an image at all")
    page.set_input_files("#upload", str(bad))
    page.wait_for_function(IDLE)
    alert = page.locator("[role=alert]")
    assert alert.get_attribute("id") == "error" and "not an image" in alert.inner_text()
    page.screenshot(path=ARTIFACTS / "explorer-error.png", full_page=True)
    one(page)  # the server goes on, and a good request clears the error
    assert page.text_content("#prediction") == "1"
    assert page.text_content("#error") == ""
    buf = io.BytesIO()
    digit.save(buf, "PNG")
    assert api(base_url, "/api/predict", buf.getvalue(), "image/png")["steps"] == 0


def test_the_run_tab_shows_curves_and_diagnostics(page):
    page.click("#tab-run")
    page.wait_for_function(IDLE)
    assert page.is_hidden("#draw-panel") and page.is_visible("#run-panel")
    assert page.locator("#curves figure").count() == 2
    assert page.locator("#diagnostics figure").count() == 3
    assert page.locator("#diagnostics polyline").count() >= 5  # 2 + 2 + 1 layers
    page.screenshot(path=ARTIFACTS / "explorer-run.png", full_page=True)
    page.click("#tab-draw")
    assert page.is_visible("#pad")


# --- safe to leave running: other pages and other names ---------------------------

ATTACK = """<!doctype html>
<html><body data-done="0">
<form id="step" method="POST" action="{target}api/step" enctype="text/plain"
  target="sink"><input name='{{"pixels": {pixels}, "label": 3, "pad": "'
  value='"}}'></form>
<form id="reset" method="POST" action="{target}api/reset" target="sink">
  <input name="steps" value="0"></form>
<iframe name="sink"></iframe>
<script>
(async () => {{
  const body = JSON.stringify({{pixels: {pixels}, label: 3}});
  for (let i = 0; i < 5; i++) {{
    await fetch("{target}api/step", {{
      method: "POST", mode: "no-cors", body,
      headers: {{"Content-Type": "text/plain"}},
    }}).catch(() => null);
  }}
  document.body.dataset.done = "1";
}})();
</script></body></html>"""


@contextlib.contextmanager
def other_origin(html: str):
    """A second local server, on another port: another origin, serving ``html``."""

    class Page(http.server.BaseHTTPRequestHandler):
        def do_GET(self):  # noqa: N802 (the http.server name)
            data = html.encode()
            self.send_response(200)
            self.send_header("Content-Type", "text/html; charset=utf-8")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def log_message(self, *args):  # quiet
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Page)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/"
    finally:
        server.shutdown()
        server.server_close()


def test_a_page_on_another_origin_cannot_take_a_step(browser, base_url):
    (_, _), (px_test, _) = load_pixels("mnist")
    pixels = (px_test[0] / 255).tolist()  # a 7
    api(base_url, "/api/reset", {})
    api(base_url, "/api/step", {"pixels": pixels, "label": 7})  # one step, ours
    before = api(base_url, "/api/predict", {"pixels": pixels})
    assert before["steps"] == 1
    html = ATTACK.format(target=base_url, pixels=json.dumps(pixels))
    with other_origin(html) as attacker:
        assert not attacker.startswith(base_url)  # another port: another origin
        context = browser.new_context()
        answers = []
        context.on(
            "response",
            lambda r: (
                answers.append((r.url, r.status))
                if r.url.startswith(base_url)
                else None
            ),
        )
        tab = context.new_page()
        tab.goto(attacker)
        tab.wait_for_function("() => document.body.dataset.done === '1'")
        for form in ("step", "reset"):
            with tab.expect_response(lambda r: r.url.startswith(base_url)):
                tab.eval_on_selector(f"#{form}", "form => form.submit()")
        context.close()
    paths = [url[len(base_url) :] for url, _ in answers]
    assert paths == ["api/step"] * 6 + ["api/reset"], answers
    assert {status for _, status in answers} == {403}, answers
    after = api(base_url, "/api/predict", {"pixels": pixels})
    assert after["steps"] == 1  # no step taken, none forgotten
    assert after["probabilities"] == before["probabilities"]  # the same weights
    api(base_url, "/api/reset", {})


def test_a_rebound_name_reads_nothing(browser, base_url):
    port = int(base_url.rstrip("/").rsplit(":", 1)[1])
    context = browser.new_context()
    tab = context.new_page()
    for path in ("", "api/model"):
        answer = tab.goto(f"http://rebound.test:{port}/{path}")
        assert answer.status == 400 and "sizes" not in answer.text()
    assert tab.goto(f"http://localhost:{port}/api/model").status == 200
    context.close()
    request = urllib.request.Request(
        base_url + "api/model", headers={"Host": f"rebound.test:{port}"}
    )
    with pytest.raises(urllib.error.HTTPError) as refused:
        urllib.request.urlopen(request, timeout=10)
    assert refused.value.code == 400


# --- the backward pass on a digit the model is sure of -----------------------------


@pytest.fixture(scope="module")
def sure_url(run_dir, tmp_path_factory):
    """The explorer on the run's model made sure of 7: +15 on 7's output bias."""
    from backprop.app.runs import Checkpoint, save_checkpoint

    model, ckpt, _ = load_model(run_dir)
    params = {name: np.array(value) for name, value in model.params.items()}
    params["dense2.b"][7] += 15
    folder = tmp_path_factory.mktemp("sure") / "sure-run"
    folder.mkdir()
    save_checkpoint(
        folder / "model.npz",
        Checkpoint(params, config=ckpt.config, history=ckpt.history),
    )
    with explorer(folder) as url:
        yield url


def shown(page, selector: str) -> list[tuple[float, str]]:
    """(value, text shown) of each row's number under ``selector``."""
    return page.eval_on_selector_all(
        selector,
        "rows => rows.map(r => [Number(r.dataset.value ?? r.dataset.probability),"
        " r.querySelector('.value').textContent])",
    )


def reads(value: float, text: str) -> bool:
    """The text shows the value to about 3 digits (``1 - c`` for near 1)."""
    if text.startswith("1 - "):
        return value > 0.99
    if value == 0:
        return text == "0"
    return abs(float(text) - value) <= 1e-3 * abs(value)


def test_a_sure_digit_reads_and_offers_a_wrong_class(browser, sure_url):
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    page = context.new_page()
    page.requests = []
    context.on("request", lambda request: page.requests.append(request))
    page.goto(sure_url)
    page.wait_for_function("() => document.querySelectorAll('#labels > *').length")
    page.wait_for_function(IDLE)
    seven(page)
    page.click("#labels > [data-class='7']")
    page.wait_for_function(IDLE)
    pixels = api(sure_url, "/api/predict", last_png(page), "image/png")["prepared"]
    answer = api(sure_url, "/api/backward", {"pixels": pixels, "label": 7})
    assert answer["probabilities"][7] == 1.0 and answer["grad_logits"][7] == 0.0
    grads = shown(page, "#grad-logits > *")
    assert [g for g, _ in grads] == answer["grad_logits"]
    assert all(reads(g, text) for g, text in grads), grads
    assert sum(text != "0" for _, text in grads) == 9  # all but 7's own
    probs = dict(shown_probabilities(page))
    texts = page.eval_on_selector_all(
        "#probabilities .value", "cells => cells.map(c => c.textContent)"
    )
    assert texts[7] == f"1 - {answer['complement'][7]:.3e}".replace("e-0", "e-")
    assert all(reads(probs[c], texts[c]) for c in range(10)), texts
    hint = page.text_content("#hint")
    assert "already sure this is 7" in hint and "Try a wrong class" in hint
    page.screenshot(path=ARTIFACTS / "explorer-sure.png", full_page=True)

    page.click("#step")  # a step on a sure digit: the numbers still move
    page.wait_for_function(IDLE)
    result = page.text_content("#step-result")
    before, after = re.findall(r"1 - ([\d.e+-]+)", result)[:2]
    assert float(after) < float(before), result

    runner_up = int(page.get_attribute("#try-wrong", "data-class"))
    assert runner_up == int(np.argsort(answer["probabilities"])[-2])
    page.click("#try-wrong")  # backpropagate from the wrong class
    page.wait_for_function(IDLE)
    pressed = page.get_attribute(
        f"#labels > [data-class='{runner_up}']", "aria-pressed"
    )
    assert pressed == "true" and page.text_content("#hint") == ""
    wrong = values(page, "#grad-logits > *")
    assert wrong[runner_up] < -0.99 and "-log p" in page.text_content("#loss")
    page.screenshot(path=ARTIFACTS / "explorer-wrong-class.png", full_page=True)
    context.close()


# --- a CNN run: its first convolution in place of the hidden units ---------------


@pytest.fixture(scope="module")
def cnn_run_dir(tmp_path_factory) -> Path:
    """A CNN run (LeNet-5's convolutions, dense 16): one epoch, 2,000 MNIST images."""
    from backprop.app.commands import train

    root = tmp_path_factory.mktemp("cnn")
    data = write_mnist_subset(root / "data", 2000, 500)
    argv = ["--model", "cnn", "--data-dir", str(data), "--out", str(root / "run")]
    argv += ["--quiet", "--hidden", "16", "--batch-size", "40", "--lr", "0.003"]
    assert train.main([*argv, "--epochs", "1"]) == 0
    return root / "run"


def painted(page, selector: str) -> list[tuple[int, int, list[int]]]:
    """Each canvas under ``selector``: its width, height and red channel."""
    return page.eval_on_selector_all(
        selector,
        "cs => cs.map(c => [c.width, c.height, Array.from(c.getContext('2d')"
        ".getImageData(0, 0, c.width, c.height).data.filter((_, i) => i % 4 === 0))])",
    )


def test_a_cnn_run_shows_its_feature_maps_and_steps(browser, cnn_run_dir, tmp_path):
    with explorer(cnn_run_dir) as url:
        context = browser.new_context(viewport={"width": 1280, "height": 900})
        page = context.new_page()
        page.requests = []
        context.on("request", lambda request: page.requests.append(request))
        page.goto(url)
        page.wait_for_function(
            "() => document.querySelectorAll('#probabilities > *').length"
        )
        page.wait_for_function(IDLE)
        assert page.get_attribute("body", "data-model") == "cnn"
        assert "conv5x5x6same" in page.text_content("#model-info")
        one(page)
        # the probabilities: the API's and the engine's for the drawn PNG
        probs = [p for _, p in shown_probabilities(page)]
        png = last_png(page)
        answer = api(url, "/api/predict", png, "image/png")
        assert probs == answer["probabilities"] and abs(sum(probs) - 1) < 1e-5
        assert page.text_content("#prediction") == str(answer["prediction"])
        (tmp_path / "drawn.png").write_bytes(png)
        prepared = prepare_image(open_image(tmp_path / "drawn.png"), "mnist")
        model, _, _ = load_model(cnn_run_dir)
        assert model.predict_proba(prepared.reshape(1, -1))[0].tolist() == probs
        # the feature maps in place of the hidden units, painted from the answer
        assert page.is_visible("#maps") and page.is_hidden("#hidden")
        canvases = painted(page, "#maps canvas")
        assert [(w, h) for w, h, _ in canvases] == [(5, 5), (28, 28)] * 6
        top = max(max(m) for m in answer["maps"])
        for f, values_f in enumerate(answer["maps"]):
            grey = np.asarray(canvases[2 * f + 1][2], dtype=float)  # (784,)
            np.testing.assert_allclose(grey, 255 * np.asarray(values_f) / top, atol=1)
        ARTIFACTS.mkdir(exist_ok=True)
        page.screenshot(path=ARTIFACTS / "explorer-cnn.png", full_page=True)

        page.click("#probabilities > [data-class='1']")  # the backward pass
        page.wait_for_function(IDLE)
        pixels = answer["prepared"]
        expected = api(url, "/api/backward", {"pixels": pixels, "label": 1})
        assert values(page, "#grad-logits > *") == expected["grad_logits"]
        units = page.eval_on_selector_all(
            "#grad-weights > *", "figs => figs.map(f => Number(f.dataset.unit))"
        )
        assert units == list(range(6)) and page.is_hidden("#grad-hidden")
        sizes = [(w, h) for w, h, _ in painted(page, "#grad-weights canvas")]
        assert sizes == [(5, 5)] * 12
        page.screenshot(path=ARTIFACTS / "explorer-cnn-backward.png", full_page=True)
        page.click("#step")
        page.wait_for_function(IDLE)
        assert "1 step" in page.text_content("#steps")
        assert [p for _, p in shown_probabilities(page)] != probs
        page.click("#reset")
        page.wait_for_function(IDLE)
        assert "0 step" in page.text_content("#steps")
        assert [p for _, p in shown_probabilities(page)] == probs
        page.click("#tab-run")  # the run's curves, and conv1 ... dense2's diagnostics
        page.wait_for_function(IDLE)
        assert page.locator("#curves figure").count() == 2
        assert page.locator("#diagnostics polyline").count() >= 4 + 4 + 3
        assert page.text_content("#error") == ""
        sent = [r.url for r in page.requests]
        assert all(u.startswith((url, "data:", "blob:")) for u in sent), sent
        context.close()
