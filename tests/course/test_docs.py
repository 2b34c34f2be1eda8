"""The course notes cannot drift from the code.

* The site builds with ``mkdocs build --strict`` (broken links, missing pages,
  a renamed function that a page includes: all fail), with the network cut off.
* Every ```` ```python ```` block of a page runs, in order, in one namespace per
  page, from the repository root, as a reader would run them.
* A ```` ```text title="Output" ```` block right after a code block is what the
  code must print. Words must match. Each Output's numbers are of one of three
  kinds, declared in an HTML comment on the line above the block:

  - **exact** (no comment, or ``<!-- exact: float64 -->``): the number does not
    depend on the CPU (float64, a count, a fixed order of summation), and must
    match within one unit of its last digit shown (``2.303`` means 2.302 to
    2.304; integers exactly); ``<!-- exact ± 1e-14: float64 rounding -->``
    allows float64 rounding and says why.
  - **spread** (``<!-- spread ± 0.03: name -->``): a float32 training number,
    quoted with a tolerance taken from its measured spread over seeds and BLAS
    kernels; ``docs/results/spreads.json`` keeps the measurement under
    ``page#name``, and every measured value must lie within the tolerance.
  - **machine** (``<!-- machine: a 2-core AMD EPYC VM -->``): timings and
    other numbers of one machine, named on the rendered page: their words are
    checked, their numbers not.

  A failure says which kind the number is.
* Every figure has its command written under it, and the command names a
  figure of ``docs/make_figures.py``; every shown ``python -m`` command parses.

The convention is explained to readers in docs/checking.md; the spreads are
measured by hand with ``docs/measure_spreads.py`` (never from the tests).
"""

from __future__ import annotations

import contextlib
import html
import importlib
import importlib.util
import io
import json
import math
import re
import shlex
import socket
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest
from conftest import load_file_as_module

ROOT = Path(__file__).resolve().parents[2]
DOCS = ROOT / "docs"
PAGES = sorted(DOCS.rglob("*.md"))

FENCE = re.compile(r"^(?P<indent>[ \t]*)(?P<fence>`{3,}|~{3,})(?P<info>.*)$")
NUMBER = re.compile(r"[-+]?(?:\d+\.\d*|\.\d+|\d+)(?:[eE][-+]?\d+)?")
ANNOTATION = re.compile(
    r"^\s*<!--\s*(?P<spec>(?:exact|spread|machine|tolerance)\b.*?)\s*-->\s*$"
)
KIND = re.compile(
    r"^(?P<name>exact|spread|machine)"
    r"(?:\s*±\s*(?P<value>[0-9.eE+-]+)\s*(?P<percent>%?))?"
    r"(?P<seeds>\s+over seeds)?"
    r"\s*(?::\s*(?P<label>\S.*))?$"
)
SPREADS = DOCS / "results" / "spreads.json"
IMAGE = re.compile(r"!\[[^\]]*\]\((?P<path>[^)]+\.png)\)")


@dataclass
class Block:
    """A fenced code block of a page."""

    lang: str
    info: str
    code: str
    line: int  # 1-based line of the opening fence
    annotation: str = ""  # the kind declared on the line above (exact if none)

    @property
    def is_include(self) -> bool:
        """A block that only shows source files (pymdownx.snippets lines)."""
        lines = [ln for ln in self.code.splitlines() if ln.strip()]
        return bool(lines) and all(ln.strip().startswith("--8<--") for ln in lines)

    @property
    def runs(self) -> bool:
        """A Python block the reader runs."""
        return self.lang == "python" and not self.is_include

    @property
    def is_output(self) -> bool:
        """The printed output of the code block before it."""
        return self.lang == "text" and 'title="Output' in self.info


def fenced_blocks(text: str) -> list[Block]:
    """Every fenced code block of a Markdown page, in order (also in admonitions)."""
    blocks = []
    lines = text.splitlines()
    i = 0
    while i < len(lines):
        m = FENCE.match(lines[i])
        if not m:
            i += 1
            continue
        indent, fence, info = m["indent"], m["fence"], m["info"].strip()
        lang = info.split()[0] if info else ""
        above = ANNOTATION.match(lines[i - 1]) if i else None
        body = []
        j = i + 1
        while j < len(lines) and lines[j].strip() != fence:
            line = lines[j]
            body.append(line[len(indent) :] if line.startswith(indent) else line)
            j += 1
        blocks.append(
            Block(
                lang,
                info,
                "\n".join(body) + "\n",
                i + 1,
                above["spec"] if above else "",
            )
        )
        i = j + 1
    return blocks


@dataclass(frozen=True)
class Kind:
    """How an Output's numbers are checked: exact, spread or machine."""

    name: str = "exact"
    value: float | None = None  # the declared ± (None: one unit of the last digit)
    relative: bool = False
    label: str = ""  # why exact; the spread's name; the machine
    seeds: bool = False  # a spread that covers other seeds too, not only kernels

    def tolerance(self, token: str) -> float:
        """How far a printed number may be from the quoted ``token``."""
        if self.name == "machine":
            return math.inf
        if self.value is None:
            return last_digit_unit(token) * (1 + 1e-9)
        return self.value / 100 * abs(float(token)) if self.relative else self.value

    def describe(self) -> str:
        """The kind, in the words of a failure message."""
        if self.name == "spread":
            over = "seeds and BLAS kernels" if self.seeds else "BLAS kernels"
            return (
                f"a spread number: its tolerance ± {self.value:g}"
                f"{'%' if self.relative else ''} is its measured spread over {over} "
                f"({SPREADS.relative_to(ROOT)}, "
                f"'{self.label}'); if it moved further, measure again with "
                "docs/measure_spreads.py before changing the page"
            )
        why = f" ({self.label})" if self.label else ""
        return (
            f"an exact number{why}: declared independent of the CPU, so a "
            "difference is a change in the code or a number that depends on "
            "the machine after all"
        )


def kind_of(annotation: str) -> Kind:
    """The kind an annotation declares (no annotation: exact).

    Raises:
        ValueError: an annotation that declares no kind, or a spread without
            its tolerance and name.
    """
    if not annotation:
        return Kind()
    m = KIND.match(annotation.strip())
    if not m:
        raise ValueError(
            f"unreadable annotation {annotation!r}: declare 'exact[ ± t][: why]', "
            "'spread ± t[ over seeds]: name' or 'machine: which machine'"
        )
    value = float(m["value"]) if m["value"] else None
    label = (m["label"] or "").strip()
    if m["name"] == "spread" and (value is None or not label):
        raise ValueError(f"{annotation!r}: a spread needs '± tolerance: name'")
    if m["seeds"] and m["name"] != "spread":
        raise ValueError(f"{annotation!r}: only a spread is measured over seeds")
    if m["name"] == "machine" and (value is not None or not label):
        raise ValueError(f"{annotation!r}: say 'machine: which machine', no ±")
    return Kind(m["name"], value, bool(m["percent"]), label, bool(m["seeds"]))


def last_digit_unit(token: str) -> float:
    """One unit in the last digit shown: 0.001 for ``2.303``, 1e-17 for ``3.1e-16``."""
    mantissa, _, exponent = token.lower().partition("e")
    decimals = len(mantissa.partition(".")[2])
    if "." not in mantissa and not exponent:
        return 0.0  # an integer: exact
    return 10.0 ** (int(exponent or 0) - decimals)


def digits(token: str) -> tuple[int, bool]:
    """The decimals a number is printed with, and whether it has an exponent."""
    mantissa, e, _ = token.lower().partition("e")
    return len(mantissa.partition(".")[2]), bool(e)


def compare_output(expected: str, actual: str, annotation: str = "") -> list[str]:
    """Differences between an Output block and what the code printed."""
    kind = kind_of(annotation)
    exp_lines = [ln.rstrip() for ln in expected.strip("\n").splitlines()]
    act_lines = [ln.rstrip() for ln in actual.strip("\n").splitlines()]
    if len(exp_lines) != len(act_lines):
        return [f"expected {len(exp_lines)} lines, printed {len(act_lines)}"]
    problems = []
    for k, (e, a) in enumerate(zip(exp_lines, act_lines), start=1):
        e_text, a_text = NUMBER.split(e), NUMBER.split(a)
        e_nums, a_nums = NUMBER.findall(e), NUMBER.findall(a)
        if [" ".join(t.split()) for t in e_text] != [
            " ".join(t.split()) for t in a_text
        ] or len(e_nums) != len(a_nums):
            problems.append(f"line {k}: expected {e!r}, printed {a!r}")
            continue
        for e_num, a_num in zip(e_nums, a_nums):
            tol = kind.tolerance(e_num)
            want, got = float(e_num), float(a_num)
            if kind.name == "exact" and digits(e_num) != digits(a_num):
                problems.append(
                    f"line {k}: printed {a_num}, the page {e_num} (an exact number "
                    "is quoted with the digits it is printed with)"
                )
                continue
            if (
                kind.name == "exact"
                and want == got == 0
                and (math.copysign(1, want) != math.copysign(1, got))
            ):
                problems.append(f"line {k}: printed {a_num}, the page {e_num}")
                continue
            if not math.isclose(float(e_num), float(a_num), rel_tol=0, abs_tol=tol):
                problems.append(
                    f"line {k}: {a_num} differs from the quoted {e_num} "
                    f"by more than {tol:g} in {a!r}, {kind.describe()}"
                )
    return problems


def page_id(page: Path) -> str:
    """The page's path under docs/, as the test id."""
    return str(page.relative_to(DOCS))


# Pages whose code trains for long (more than about 5 s here): slow.
SLOW_PAGES = {
    "answers.md",
    "lectures/02-forward.md",
    "lectures/03-cross-entropy.md",
    "lectures/06-optimisers.md",
    "lectures/07a-tensor-autodiff.md",
    "lectures/10-diagnostics.md",
}


def page_params():
    """One pytest param per page; TensorFlow pages carry the tf marker, the
    pages of ``SLOW_PAGES`` the slow one."""
    for page in PAGES:
        marks = [pytest.mark.tf] if "import tensorflow" in page.read_text() else []
        if page_id(page) in SLOW_PAGES:
            marks.append(pytest.mark.slow)
        yield pytest.param(page, id=page_id(page), marks=marks)


def test_every_slow_page_is_a_page():
    assert SLOW_PAGES <= {page_id(page) for page in PAGES}


# --- the parser and the comparison are themselves tested -----------------------


def test_fenced_blocks_finds_code_outputs_and_includes():
    text = (
        "Intro\n\n```python\nx = 1\nprint(x)\n```\n\n"
        '```text title="Output"\n1\n```\n\n'
        '!!! note\n    ```python\n    --8<-- "backprop/layers.py::dense_forward"\n'
        "    ```\n"
    )
    blocks = fenced_blocks(text)
    assert [b.lang for b in blocks] == ["python", "text", "python"]
    assert blocks[0].runs and blocks[1].is_output and not blocks[2].runs
    assert blocks[2].is_include and blocks[0].line == 3
    assert kind_of(blocks[1].annotation) == Kind("exact")


def test_each_output_declares_its_kind_in_a_comment_above_it():
    text = (
        "```python\nprint(1)\n```\n\n<!-- spread ± 5% over seeds: sweep -->\n"
        '```text title="Output"\n1\n```\n\n<!-- machine: a 2-core AMD EPYC -->\n'
        '```text title="Output"\n2 ms\n```\n```text title="Output"\n3\n```\n'
        '<!-- exact ± 1e-14: float64 -->\n```text title="Output"\n3\n```\n'
    )
    blocks = fenced_blocks(text)
    kinds = [kind_of(b.annotation) for b in blocks]
    assert kinds == [
        Kind(),
        Kind("spread", 5.0, True, "sweep", seeds=True),
        Kind("machine", None, False, "a 2-core AMD EPYC"),
        Kind(),
        Kind("exact", 1e-14, False, "float64"),
    ]
    for bad in (
        "tolerance: ± 0.01",  # the old form, which said nothing of its kind
        "spread ± 0.01",  # a spread names its measurement
        "spread: sweep",  # and has a tolerance
        "machine ± 1: a laptop",  # a machine's numbers are not compared
        "machine",  # and it names the machine
        "exact over seeds: a count",  # only a spread is measured over seeds
        "roughly",
    ):
        with pytest.raises(ValueError):
            kind_of(bad)


def test_compare_output_checks_each_kind_as_declared():
    assert compare_output("loss 2.303\n", "loss 2.304\n") == []
    assert compare_output("loss 2.303\n", "loss 2.305\n")
    assert compare_output("shape (60000, 784)", "shape (60000, 785)")
    assert compare_output("err 3.1e-16", "err 3.2e-16") == []
    assert compare_output("err 3.1e-16", "err 3.3e-16")
    assert compare_output("acc 0.97", "acc 0.99", "spread ± 0.03: a") == []
    assert compare_output("acc 100", "acc 104", "spread ± 5%: a") == []
    assert compare_output("acc 100", "acc 106", "spread ± 5%: a")
    assert compare_output("1.0 x", "1.0 x", "exact ± 1e-14: float64") == []
    assert compare_output("0.5 ms", "7.25 ms", "machine: a laptop") == []
    assert compare_output("0.5 ms", "7.25 s", "machine: a laptop")
    assert compare_output("loss 2.303", "gain 2.303")
    assert compare_output("[0.0, 0.0]", "[0.0, -0.0]")  # NumPy's negative zero
    assert compare_output("[0.0, -0.0]", "[0.0, -0.0]") == []
    assert compare_output("active 0.5", "active 0.52")  # quoted with fewer digits
    assert compare_output("active 0.5", "active 0.52", "spread ± 0.05: a") == []
    assert compare_output("a\nb", "a")


def test_a_failure_says_which_kind_the_number_is():
    (exact,) = compare_output("dead 0.10", "dead 0.12", "exact: a count")
    assert "an exact number (a count)" in exact and "independent of the CPU" in exact
    (plain,) = compare_output("dead 0.10", "dead 0.12")
    assert "an exact number" in plain
    (spread,) = compare_output("dead 0.10", "dead 0.12", "spread ± 0.01: sweep")
    assert "a spread number" in spread and "'sweep'" in spread
    assert "over BLAS kernels" in spread and "spreads.json" in spread
    (seeds,) = compare_output("dead 0.10", "dead 0.13", "spread ± 0.02 over seeds: s")
    assert "over seeds and BLAS kernels" in seeds
    assert "0.12 differs from the quoted 0.10 by more than 0.01" in spread


def load_hooks():
    """docs/hooks.py as a module (it needs MkDocs for its error type)."""
    pytest.importorskip("mkdocs")
    return load_file_as_module(DOCS / "hooks.py", "docs_hooks")


def test_includes_leave_the_docstring_out_unless_asked():
    hooks = load_hooks()
    code = hooks.include_source("backprop/layers.py", "dense_backward")
    assert code.startswith("def dense_backward(") and '"""' not in code
    assert "dw = x.T @ dout  # (D, H)" in code
    kept = hooks.include_source("backprop/layers.py", "dense_backward", doc=True)
    assert "Gradients of the affine layer." in kept
    method = hooks.include_source("backprop/model.py", "MLP.forward")
    assert method.startswith("def forward(self") and "\n    caches = []" in method
    line = '--8<-- "backprop/layers.py::dense_backward"'
    assert re.fullmatch(
        r'--8<-- "backprop/layers.py:\d+:\d+,\d+:\d+"', hooks.expand(line)
    )
    doc = hooks.expand('--8<-- "backprop/layers.py::dense_backward+doc"')
    assert re.fullmatch(r'--8<-- "backprop/layers.py:\d+:\d+"', doc)
    page = (
        '<!-- spread ± 0.01: sweep -->\n```text title="Output"\n'
        '<!-- spread ± 2% over seeds: dead -->\n```text title="Output"\n'
        '    <!-- machine: a 2-core AMD EPYC -->\n    ```text title="Output"\n'
        '<!-- exact: a count -->\n```text title="Output"\n'
    )
    assert hooks.show_kinds(page).splitlines()[1::2] == [
        '```text title="Output (± 0.01 across CPUs)"',
        '```text title="Output (± 2% across seeds and CPUs)"',
        '    ```text title="Output (measured on a 2-core AMD EPYC)"',
        '```text title="Output"',
    ]


# --- the site -------------------------------------------------------------------


def test_site_builds_strict_offline(tmp_path, monkeypatch):
    """``mkdocs build --strict`` succeeds with every network connection refused."""
    pytest.importorskip("mkdocs")
    pytest.importorskip("material")
    pytest.importorskip("pymdownx")
    from mkdocs.commands.build import build
    from mkdocs.config import load_config

    def refuse(*args, **kwargs):
        raise OSError("the docs build must not use the network")

    monkeypatch.setattr(socket.socket, "connect", refuse)
    monkeypatch.setattr(socket, "create_connection", refuse)
    monkeypatch.chdir(ROOT)
    site = tmp_path / "site"
    config = load_config(
        config_file=str(ROOT / "mkdocs.yml"), site_dir=str(site), strict=True
    )
    build(config)

    lecture4 = (site / "lectures" / "04-backprop.html").read_text()
    text = html.unescape(re.sub(r"<[^>]+>", "", lecture4))  # code without highlighting
    assert "def dense_backward(" in text  # included from backprop/layers.py
    assert "dw = x.T @ dout  # (D, H)" in text
    assert "Gradients of the affine layer." not in text  # docstrings left out
    assert 'class="arithmatex"' in lecture4  # math left for MathJax
    assert "\\mathrm{d}W" in lecture4
    assert (site / "javascripts" / "vendor" / "mathjax" / "tex-svg.js").is_file()
    for page in PAGES:
        built = site / page.relative_to(DOCS).with_suffix(".html")
        assert built.is_file(), f"{page_id(page)} was not built"
        text = built.read_text()
        assert "--8<--" not in text, f"{page_id(page)}: include left"
        # viewable offline: no script or stylesheet from another host
        remote = re.findall(r'(?:src|href)="(https?://[^"]+\.(?:js|css))"', text)
        assert not remote, f"{page_id(page)} loads {remote}"
        # readers see each spread and each machine that a page declares
        shown = re.findall(r'class="filename">(Output[^<]*)<', text)
        kinds = [kind_of(b.annotation) for b in fenced_blocks(page.read_text())]
        titled = [t for t in shown if t != "Output"]
        declared = [k for k in kinds if k.name in ("spread", "machine")]
        assert len(titled) == len(declared), f"{page_id(page)}: {shown}"


def test_every_page_is_in_the_nav():
    nav = (ROOT / "mkdocs.yml").read_text()
    for page in PAGES:
        assert page_id(page) in nav, f"{page_id(page)} is missing from mkdocs.yml nav"


# --- code, numbers, figures, commands -----------------------------------------


@pytest.mark.parametrize("page", list(page_params()))
def test_page_code_runs_and_prints_what_the_page_quotes(page, monkeypatch):
    """Run a page's Python blocks in order; check each Output block."""
    monkeypatch.chdir(ROOT)
    monkeypatch.setenv("MPLBACKEND", "Agg")
    monkeypatch.syspath_prepend(str(ROOT))
    blocks = fenced_blocks(page.read_text())
    namespace: dict = {"__name__": "__main__"}
    printed = None
    for block in blocks:
        where = f"{page_id(page)}:{block.line}"
        if block.is_output:
            assert printed is not None, f"{where}: Output block after no code block"
            problems = compare_output(block.code, printed, block.annotation)
            assert not problems, (
                f"{where}: " + "; ".join(problems) + (f"\n--- printed ---\n{printed}")
            )
            printed = None
            continue
        if not block.runs:
            continue
        if "import tensorflow" in block.code:
            pytest.importorskip("tensorflow")
        buffer = io.StringIO()
        with contextlib.redirect_stdout(buffer):
            exec(compile(block.code, where, "exec"), namespace)  # noqa: S102
        printed = buffer.getvalue()
        sys.stdout.write(printed)


def test_every_output_of_float32_training_declares_its_kind():
    """An Output after code that trains or takes gradients in float32 says its kind.

    Such numbers depend on the CPU's rounding unless the page says why not, so
    the plain default (exact) is not enough for them: the comment must be there.
    """
    trains = re.compile(r"train_epoch\(|\.step\(|loss_and_grads\(")
    silent = []
    for page in PAGES:
        code = None
        for block in fenced_blocks(page.read_text()):
            if block.runs:
                code = block.code
            elif block.is_output and code is not None:
                float32 = trains.search(code) and "float64" not in code
                if float32 and not block.annotation:
                    silent.append(f"{page_id(page)}:{block.line}")
                code = None
    assert not silent, f"float32 training Outputs that declare no kind: {silent}"


def test_every_spread_is_measured_and_holds_what_was_measured():
    """A spread's tolerance covers the runs of docs/results/spreads.json, no more.

    The runs are made by hand (``docs/measure_spreads.py``) on several BLAS
    kernels, with the page's seed and with others. Every run with the page's
    seed (and, for a spread declared ``over seeds``, every run) must lie within
    the tolerance; a tolerance wider than twice the widest deviation measured
    (or, for numbers that did not move, five units of the coarsest last digit
    the block prints) is padding, and fails, as does a page edited since its
    measurement.
    """
    measured = json.loads(SPREADS.read_text())["spreads"]
    declared = set()
    for page in PAGES:
        for block in fenced_blocks(page.read_text()):
            kind = kind_of(block.annotation)
            if not block.is_output or kind.name != "spread":
                continue
            key = f"{page_id(page)}#{kind.label}"
            where = f"{page_id(page)}:{block.line} ({key})"
            declared.add(key)
            assert key in measured, f"{where}: not measured (docs/measure_spreads.py)"
            entry = measured[key]
            tokens = NUMBER.findall(block.code)
            assert entry["quoted"] == [float(t) for t in tokens], (
                f"{where}: the page quotes other numbers than were measured"
            )
            runs = entry["runs"]
            own = [r for r in runs if r["seed"] == 0]
            assert len({r["blas_kernel"] for r in own}) >= 2, f"{where}: one kernel"
            assert len({r["seed"] for r in runs}) >= 2, f"{where}: one seed"
            covered = runs if kind.seeds else own
            widest = 0.0
            for run in covered:
                for token, got in zip(tokens, run["numbers"], strict=True):
                    tol = kind.tolerance(token)
                    off = abs(float(token) - got)
                    assert off <= tol * (1 + 1e-9), (
                        f"{where}: {run['label']} ({run['command']}) printed {got:g}, "
                        f"{off:g} from the quoted {token}, beyond ± {tol:g}"
                    )
                    widest = max(widest, off / tol if tol else 0.0)
            coarsest = max((last_digit_unit(t) for t in tokens), default=0.0)
            padded = widest < 0.5 and kind.tolerance(tokens[0]) > 5 * coarsest
            if kind.relative:
                padded = widest < 0.5
            assert not padded, (
                f"{where}: ± {kind.value:g} is more than twice the widest deviation "
                f"measured ({widest:.2f} of the tolerance)"
            )
    assert set(measured) <= declared, (
        f"spreads.json measures blocks no page declares: {set(measured) - declared}"
    )


def test_every_printing_block_has_its_output_shown():
    """A block that prints must be followed by the Output it prints (or say why not)."""
    for page in PAGES:
        blocks = fenced_blocks(page.read_text())
        for block, after in zip(blocks, [*blocks[1:], None]):
            if block.runs and "print(" in block.code:
                assert after is not None and after.is_output, (
                    f"{page_id(page)}:{block.line}: prints, but no Output block follows"
                )


def figure_names() -> set[str]:
    """The figures ``docs/make_figures.py`` knows how to make."""
    return set(load_file_as_module(DOCS / "make_figures.py", "make_figures").FIGURES)


def caption_under(lines: list[str], k: int) -> str:
    """The image line k and the paragraph under it (its caption)."""
    end = k + 1
    while end < len(lines) and not lines[end].strip():
        end += 1
    while end < len(lines) and lines[end].strip():
        end += 1
    return "\n".join(lines[k:end])


def test_every_figure_exists_and_says_how_it_was_made():
    names = figure_names()
    seen = set()
    for page in PAGES:
        lines = page.read_text().splitlines()
        for k, line in enumerate(lines):
            for m in IMAGE.finditer(line):
                target = (page.parent / m["path"]).resolve()
                assert target.is_file(), f"{page_id(page)}:{k + 1}: {m['path']} missing"
                below = caption_under(lines, k)
                cmd = re.search(r"python docs/make_figures\.py ([\w-]+)", below)
                assert cmd, f"{page_id(page)}:{k + 1}: no make_figures command under it"
                assert cmd[1] in names, f"{page_id(page)}:{k + 1}: unknown {cmd[1]}"
                seen.add(target.name)
    assert seen, "the notes show no figures"


def shown_commands() -> list[tuple[str, list[str]]]:
    """Every ``python -m backprop...`` / ``exercises.grade`` command in bash blocks."""
    commands = []
    for page in PAGES:
        for block in fenced_blocks(page.read_text()):
            if block.lang not in ("bash", "console", "sh"):
                continue
            for line in block.code.splitlines():
                line = line.strip().removeprefix("$ ")
                if line.startswith("python -m "):
                    words = shlex.split(line.split(" #")[0])
                    commands.append((f"{page_id(page)}:{block.line}", words[2:]))
    return commands


def test_shown_commands_exist_and_their_flags_parse(monkeypatch):
    """A renamed module or flag in a shown command fails here, not in class."""
    monkeypatch.syspath_prepend(str(ROOT))
    checked = 0
    for where, (module, *args) in shown_commands():
        if importlib.util.find_spec(module.split(".")[0]) is None:
            continue  # e.g. tf_reference without TensorFlow installed
        if (
            module.startswith("tf_reference")
            and importlib.util.find_spec("tensorflow") is None
        ):
            continue
        assert importlib.util.find_spec(module) is not None, f"{where}: no {module}"
        mod = importlib.import_module(module)
        parser = getattr(mod, "build_parser", None)
        if parser is None:
            continue
        try:
            parser().parse_args(args)
        except SystemExit as exc:
            if exc.code == 0:  # --help, --list
                continue
            pytest.fail(f"{where}: python -m {module} {' '.join(args)}: exit {exc}")
        checked += 1
    assert checked > 0


def test_every_ungraded_exercise_has_a_worked_answer():
    """Each lecture's exercises not marked (graded) have an answer on answers.md."""
    answers = (DOCS / "answers.md").read_text()
    sections = re.split(r"^## Lecture (\d+[a-z]?)\b", answers, flags=re.M)
    answered = {
        number: set(map(int, re.findall(r'^\?\?\? note "Exercise (\d+)', body, re.M)))
        for number, body in zip(sections[1::2], sections[2::2])
    }
    for page in sorted((DOCS / "lectures").glob("*.md")):
        lecture = page.name.split("-")[0].lstrip("0")  # "7", or "7a" for 07a-...
        text = page.read_text()
        exercises = text[text.index("## Exercises") :]
        items = re.findall(r"^(\d+)\. (.*)$", exercises, flags=re.M)
        ungraded = {int(n) for n, first in items if "(graded)" not in first}
        missing = ungraded - answered.get(lecture, set())
        assert not missing, (
            f"{page_id(page)}: no answer to exercise(s) {sorted(missing)}"
        )
        extra = answered.get(lecture, set()) - ungraded
        assert not extra, f"answers.md answers {sorted(extra)} of lecture {lecture}"
