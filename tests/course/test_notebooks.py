"""Every lecture is also a Jupyter notebook, made from its page and kept in step.

* ``docs/notebooks/NN-name.ipynb`` is exactly what ``python docs/make_notebooks.py``
  makes of ``docs/lectures/NN-name.md``: a stale notebook fails here.
* Every notebook runs, top to bottom, in a real Jupyter kernel (nbclient and
  ipykernel), as a student would run it. Its outputs are not compared: the page
  tests (``tests/course/test_docs.py``) check the same code's printed numbers.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from conftest import load_file_as_module

ROOT = Path(__file__).resolve().parents[2]
NOTEBOOKS = ROOT / "docs" / "notebooks"
CELL_TIMEOUT_S = 300


def make_notebooks():
    """docs/make_notebooks.py as a module (it needs jupytext to convert)."""
    pytest.importorskip("jupytext")
    return load_file_as_module(ROOT / "docs" / "make_notebooks.py", "make_notebooks")


def lecture_params():
    """One param per lecture page; TensorFlow lectures carry the tf marker."""
    for page in sorted((ROOT / "docs" / "lectures").glob("*.md")):
        marks = [pytest.mark.tf] if "import tensorflow" in page.read_text() else []
        yield pytest.param(page, id=page.stem, marks=marks)


def test_the_converter_turns_mkdocs_syntax_into_jupyter_markdown():
    module = make_notebooks()
    hooks = module.load_hooks()
    page = [
        '!!! abstract "Learning goals"',
        "    - read \\(x W\\)",
        "",
        "\\[",
        "a = b",
        "\\]",
        "",
        "```python",
        "print(1)",
        "```",
        "",
        "<!-- machine: a 2-core laptop -->",
        '```text title="Output"',
        "1 ms",
        "```",
        "",
        "<!-- spread ± 0.02 over seeds: sweep -->",
        '```text title="Output"',
        "0.95",
        "```",
        "",
        "![wide](../figures/a.png){ .wide-figure } "
        "![narrow](../figures/a-narrow.png){ .narrow-figure }",
        "",
        "```bash",
        "python -m backprop.train",
        "```",
        "",
        '```python title="backprop/layers.py"',
        '--8<-- "backprop/layers.py::dense_forward"',
        "```",
        "",
        "See [Lecture 4](04-backprop.md#gates) and `\\(code\\)`.",
    ]
    text = "\n".join(module.to_markdown(page, hooks))
    assert text.startswith("**Learning goals**\n\n- read $x W$")
    assert "$$\na = b\n$$" in text
    assert "*Expected output (measured on a 2-core laptop; yours will differ):*" in text
    assert "*Expected output (another seed or CPU may differ by ± 0.02):*" in text
    assert "![wide](../figures/a.png)\n" in text and "narrow" not in text
    assert "<!--" not in text and 'title="' not in text
    assert "```console\npython -m backprop.train\n```" in text
    assert "*From `backprop/layers.py`:*\n\n```py\ndef dense_forward(" in text
    assert "--8<--" not in text and '"""' not in text  # the code, not its docstring
    assert "[Lecture 4](04-backprop.ipynb#gates) and `\\(code\\)`" in text


@pytest.mark.parametrize("page", list(lecture_params()))
def test_committed_notebook_is_made_from_its_page(page):
    module = make_notebooks()
    notebook = NOTEBOOKS / f"{page.stem}.ipynb"
    assert notebook.is_file(), (
        f"{notebook.name} is missing: python docs/make_notebooks.py"
    )
    assert notebook.read_text() == module.notebook_text(page), (
        f"{notebook.name} is stale: run python docs/make_notebooks.py"
    )


def test_no_notebook_without_its_page():
    pages = {p.stem for p in (ROOT / "docs" / "lectures").glob("*.md")}
    assert {n.stem for n in NOTEBOOKS.glob("*.ipynb")} == pages


@pytest.mark.slow
@pytest.mark.parametrize("page", list(lecture_params()))
def test_notebook_runs_in_a_jupyter_kernel(page, tmp_path, monkeypatch):
    nbclient = pytest.importorskip("nbclient")
    nbformat = pytest.importorskip("nbformat")
    pytest.importorskip("ipykernel")
    if "import tensorflow" in page.read_text():
        pytest.importorskip("tensorflow")
    monkeypatch.setenv("MPLBACKEND", "Agg")
    # One BLAS thread in the kernel: the notes' small products gain nothing from
    # more, and on a busy machine threads that wait for each other cost minutes.
    for name in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
        monkeypatch.setenv(name, "1")
    notebook = nbformat.read(NOTEBOOKS / f"{page.stem}.ipynb", as_version=4)
    client = nbclient.NotebookClient(
        notebook,
        timeout=CELL_TIMEOUT_S,
        kernel_name="python3",
        resources={"metadata": {"path": str(NOTEBOOKS)}},  # where Jupyter starts it
    )
    client.execute()
    errors = [
        output
        for cell in notebook.cells
        if cell.cell_type == "code"
        for output in cell.outputs
        if output.output_type == "error"
    ]
    assert not errors
    ran = [c for c in notebook.cells if c.cell_type == "code"]
    assert all(c.execution_count for c in ran), "a code cell did not run"
