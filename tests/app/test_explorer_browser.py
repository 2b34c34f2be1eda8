"""The explorer's page end to end, in a real headless Chromium.

Debian's ``chromium``, driven by Playwright's Python package (no browser
download). The server is the real command, ``python -m backprop.explore RUN
--port 0 --no-browser``, in a subprocess, over a small model trained for one
epoch on 10,000 MNIST images. The tests draw with mouse strokes, click, step,
reset and upload, check what the page shows against the API and the engine,
and record every request the page makes: none may leave the loopback address.
Screenshots go to ``tests/artifacts/`` (git-ignored).

Skipped, saying why, where Playwright or a chromium cannot be had.
"""

from __future__ import annotations

import io
import json
import math
import re
import shutil
import subprocess
import sys
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

from PIL import Image  # noqa: E402

from backprop.app.config import EngineConfig  # noqa: E402
from backprop.app.explorer.firstrun import train_first_run  # noqa: E402
from backprop.app.photos.prepare import open_image, prepare_image  # noqa: E402
from backprop.app.runs import load_model  # noqa: E402
from backprop.data import SPLITS, load_pixels, write_idx  # noqa: E402

ARTIFACTS = Path(__file__).resolve().parents[1] / "artifacts"
ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
IDLE = "() => document.body.dataset.pending === '0'"  # a function: CSP bans eval


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory) -> Path:
    """A run folder: 784-128-10, one epoch over 10,000 MNIST training images."""
    root = tmp_path_factory.mktemp("explorer")
    (px_train, y_train), (px_test, y_test) = load_pixels("mnist")
    data = root / "data"
    data.mkdir()
    for split, px, y, n in (
        ("train", px_train, y_train, 10000),
        ("test", px_test, y_test, 2000),
    ):
        images, labels = SPLITS[split]
        write_idx(data / f"{images}.gz", px[:n].reshape(n, 28, 28))
        write_idx(data / f"{labels}.gz", y[:n])
    cfg = EngineConfig(
        epochs=1, batch_size=64, data_dir=str(data), device="cpu", kernels="reference"
    )
    return train_first_run(root / "run", cfg, quiet=True)


@pytest.fixture(scope="module")
def base_url(run_dir):
    """The explorer command, serving ``run_dir`` on a free loopback port."""
    cmd = [sys.executable, "-m", "backprop.explore", str(run_dir), "--port", "0"]
    proc = subprocess.Popen(
        [*cmd, "--no-browser"], stdout=subprocess.PIPE, text=True, cwd=run_dir
    )
    try:
        match = re.search(r"http://127\.0\.0\.1:\d+/", proc.stdout.readline())
        assert match, "the command printed no address"
        yield match[0]
    finally:
        proc.terminate()
        proc.wait(timeout=10)


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
