"""The built notes are readable on a phone, a tablet and a laptop.

The site is built and every page is opened in a real headless browser
(Debian's ``chromium``, driven by Playwright's Python package; Playwright's
own browser downloads are not used) at 390, 768 and 1280 CSS pixels wide:

* every display equation is typeset by MathJax at a real size (its SVG is
  wider and taller than a few pixels), and none is a MathJax error;
* no page scrolls sideways at any width: the document is no wider than the
  window, and the failure names the elements that stick out (a long equation
  may scroll inside its own box, a table inside its own);
* no line of code hides behind a horizontal scroll bar: code wraps.

A screenshot of lecture 4 at each width is kept as an artifact under pytest's
``tmp_path`` (and also in ``$DOCS_SCREENSHOTS`` when that is set). The test
skips, saying why, where no browser can be had.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
DOCS = ROOT / "docs"
WIDTHS = (390, 768, 1280)
SCREENSHOT_PAGE = "lectures/04-backprop.html"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]

MEASURE = """() => {
  const equations = [...document.querySelectorAll('div.arithmatex')].map(div => {
    const svg = div.querySelector('mjx-container svg');
    const box = svg ? svg.getBoundingClientRect() : {width: 0, height: 0};
    return {width: box.width, height: box.height,
            error: !!div.querySelector('mjx-merror'),
            tex: div.textContent.trim().slice(0, 60)};
  });
  const code = [...document.querySelectorAll('pre > code')]
    .filter(c => c.scrollWidth > c.clientWidth + 1)
    .map(c => ({scroll: c.scrollWidth, client: c.clientWidth,
                line: c.innerText.split('\\n').reduce(
                  (a, l) => (l.length > a.length ? l : a), '').slice(0, 100)}));
  const page = document.documentElement;
  const scrolls = el => {  // inside a box that scrolls sideways by itself
    for (let a = el.parentElement; a && a !== page; a = a.parentElement) {
      if (['auto', 'scroll'].includes(getComputedStyle(a).overflowX)) return true;
    }
    return false;
  };
  const out = [...document.querySelectorAll('body *')]  // outermost first
    .filter(el => el.getBoundingClientRect().right > page.clientWidth + 1
                  && !scrolls(el))
    .slice(0, 3)
    .map(el => `<${el.tagName.toLowerCase()} `
               + `class="${el.className.baseVal ?? el.className}"> `
               + (el.textContent || '').trim().slice(0, 50));
  return {equations, code, overflow: page.scrollWidth - page.clientWidth, out};
}"""


def built_pages() -> list[str]:
    """The site path of every page of the notes, e.g. ``lectures/04-backprop.html``."""
    return [
        str(page.relative_to(DOCS).with_suffix(".html"))
        for page in sorted(DOCS.rglob("*.md"))
    ]


@pytest.fixture(scope="module")
def site(tmp_path_factory) -> Path:
    """The notes built into a temporary folder."""
    pytest.importorskip("mkdocs")
    pytest.importorskip("material")
    from mkdocs.commands.build import build
    from mkdocs.config import load_config

    folder = tmp_path_factory.mktemp("site")
    cwd = os.getcwd()
    os.chdir(ROOT)
    try:
        build(load_config(config_file=str(ROOT / "mkdocs.yml"), site_dir=str(folder)))
    finally:
        os.chdir(cwd)
    return folder


@pytest.fixture(scope="module")
def browser():
    """Headless Chromium from the system, or a skip that says why not."""
    sync_api = pytest.importorskip(
        "playwright.sync_api", reason="Playwright's Python package is not installed"
    )
    executable = shutil.which("chromium") or shutil.which("chromium-browser")
    if executable is None:
        pytest.skip("no chromium on PATH (Debian: apt-get install chromium)")
    manager = sync_api.sync_playwright().start()
    try:
        chromium = manager.chromium.launch(
            executable_path=executable, args=CHROMIUM_ARGS
        )
    except Exception as exc:  # a browser that cannot start here
        manager.stop()
        pytest.skip(f"chromium does not start: {str(exc).splitlines()[0]}")
    yield chromium
    chromium.close()
    manager.stop()


def offline(route) -> None:
    """Refuse every request that would leave the machine."""
    route.abort()


@pytest.mark.slow
def test_every_page_renders_its_math_and_code(site, browser, tmp_path):
    """Each page is loaded once and measured at every width (the layout reflows;
    MathJax's SVG does not depend on the width, so it is typeset only once)."""
    context = browser.new_context(viewport={"width": max(WIDTHS), "height": 900})
    context.route("http*://**", offline)  # the site's own files are file:// URLs
    page = context.new_page()
    problems = []
    try:
        for name in built_pages():
            page.set_viewport_size({"width": max(WIDTHS), "height": 900})
            page.goto((site / name).as_uri(), wait_until="domcontentloaded")
            page.wait_for_function("() => window.MathJax && MathJax.startup")
            page.evaluate("() => MathJax.startup.promise")
            for width in sorted(WIDTHS, reverse=True):
                page.set_viewport_size({"width": width, "height": 900})
                found = page.evaluate(MEASURE)
                for eq in found["equations"]:
                    if eq["error"] or eq["width"] <= 4 or eq["height"] <= 4:
                        problems.append(
                            f"{name} at {width} px: equation {eq['tex']!r} rendered "
                            f"{eq['width']:.0f} x {eq['height']:.0f} px"
                            + (" (a MathJax error)" if eq["error"] else "")
                        )
                if found["overflow"] > 0:
                    problems.append(
                        f"{name} at {width} px: the page scrolls sideways by "
                        f"{found['overflow']} px: {'; '.join(found['out'])}"
                    )
                for c in found["code"]:
                    problems.append(
                        f"{name} at {width} px: code scrolls "
                        f"({c['scroll']} > {c['client']} px): {c['line']!r}"
                    )
                if name == SCREENSHOT_PAGE:  # the first display equation in view
                    page.locator("div.arithmatex").first.scroll_into_view_if_needed()
                    shot = tmp_path / f"04-backprop-{width}px.png"
                    page.screenshot(path=str(shot))
                    if os.environ.get("DOCS_SCREENSHOTS"):
                        folder = Path(os.environ["DOCS_SCREENSHOTS"])
                        folder.mkdir(parents=True, exist_ok=True)
                        shutil.copy(shot, folder / shot.name)
    finally:
        context.close()
    for width in WIDTHS:
        assert (tmp_path / f"04-backprop-{width}px.png").is_file()
    assert not problems, "\n".join(problems)
