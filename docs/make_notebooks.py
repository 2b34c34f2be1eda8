r"""Make a Jupyter notebook of every lecture, from the lecture's own page.

    python docs/make_notebooks.py           # write docs/notebooks/NN-name.ipynb
    python docs/make_notebooks.py --check   # exit 1, naming them, if any is stale

Run from the repository root. Each page of docs/lectures/ becomes one notebook
in docs/notebooks/: its Python blocks become code cells, in order, and the rest
becomes Markdown cells (converted by jupytext). On the way the page's MkDocs
syntax is turned into what Jupyter shows:

* an include such as ``--8<-- "backprop/layers.py::dense_backward"`` becomes
  the function's code, found by ``docs/hooks.py`` exactly as the site finds it,
  shown in a Markdown cell (it is the engine's code to read, not to run);
* admonitions (``!!! abstract "Learning goals"``) and content tabs
  (``=== "Engine"``) become a bold title and their content;
* ``\( \)`` and ``\[ \]`` math becomes ``$ $`` and ``$$ $$``;
* shell commands stay commands to read (a ``console`` block, not a cell that
  runs), and an Output block, which the tests compare with what the code
  prints, is shown as the expected output; the tests' tolerance comments go;
* links to other lectures point to their notebooks.

A first code cell moves the kernel to the repository root, where the notes'
code runs. Cell ids are numbered, so the same page always gives the same
notebook, byte for byte: ``tests/course/test_notebooks.py`` fails when a committed
notebook differs from what this script makes of its page, and executes every
notebook in a real Jupyter kernel.
"""

from __future__ import annotations

import argparse
import importlib.util
import re
import sys
import textwrap
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
LECTURES = ROOT / "docs" / "lectures"
NOTEBOOKS = ROOT / "docs" / "notebooks"

FENCE = re.compile(r"^(?P<indent>[ \t]*)(?P<fence>`{3,})(?P<info>.*)$")
BLOCK_TITLE = re.compile(
    r'^(?:!!!|\?\?\?\+?) (?P<kind>\w+)(?: "(?P<title>[^"]*)")?\s*$'
)
TAB_TITLE = re.compile(r'^=== "(?P<title>[^"]*)"\s*$')
COMMENT = re.compile(r"^\s*<!--.*-->\s*$")
LECTURE_LINK = re.compile(r"\]\((?P<name>\d\d-[\w-]+)\.md(?P<anchor>#[^)]*)?\)")
KIND = re.compile(
    r"<!--\s*(?P<name>spread|machine)\s*(?P<tol>±[^:]*?)?\s*:\s*(?P<label>.*?)\s*-->"
)
# a picture for wide screens and its narrow twin for phones: a notebook keeps one
NARROW_TWIN = re.compile(r"\s*!\[[^\]]*\]\([^)]*\)\{ \.narrow-figure \}")
WIDE_MARK = re.compile(r"\{ \.wide-figure \}")

SETUP = """\
# Run from the repository root, as the code of the notes expects.
import os
import sys
from pathlib import Path

here = Path.cwd()
root = next(p for p in [here, *here.parents] if (p / "mkdocs.yml").is_file())
os.chdir(root)
sys.path.insert(0, str(root))"""

KERNEL = {
    "kernelspec": {"display_name": "Python 3", "language": "python", "name": "python3"},
    "language_info": {"name": "python"},
}


def load_hooks():
    """docs/hooks.py, which finds the functions that a page includes."""
    spec = importlib.util.spec_from_file_location(
        "docs_hooks", ROOT / "docs" / "hooks.py"
    )
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def convert_math(line: str) -> str:
    r"""``\( \)`` and ``\[ \]`` to dollars, outside inline code."""
    parts = line.split("`")
    for k in range(0, len(parts), 2):  # the even parts are outside `code`
        text = parts[k].replace("\\(", "$").replace("\\)", "$")
        parts[k] = text.replace("\\[", "$$").replace("\\]", "$$")
    return "`".join(parts)


def convert_text(line: str) -> str:
    """A line of prose: math delimiters and links to other lectures."""
    line = WIDE_MARK.sub("", NARROW_TWIN.sub("", line))
    return LECTURE_LINK.sub(r"](\g<name>.ipynb\g<anchor>)", convert_math(line))


def output_note(annotation: str) -> str:
    """What a notebook says of an Output's numbers, from the page's annotation."""
    m = KIND.search(annotation)
    if not m:
        return ""
    if m["name"] == "machine":
        return f" (measured on {m['label']}; yours will differ)"
    tol = " ".join(m["tol"].split())
    over = "seed or CPU" if tol.endswith("over seeds") else "CPU"
    return f" (another {over} may differ by {tol.removesuffix(' over seeds')})"


def convert_fence(info: str, code: list[str], hooks, note: str = "") -> list[str]:
    """One fenced block of a page, as Markdown for jupytext.

    Args:
        info: the text after the opening fence, e.g. ``python title="..."``.
        code: the block's lines, dedented.
        hooks: docs/hooks.py.
        note: what to say of an Output's numbers (``output_note``).
    """
    lang = info.split()[0] if info.strip() else ""
    includes = [hooks.INCLUDE.search(line) for line in code if line.strip()]
    if lang == "python" and includes and all(includes):
        shown = [
            hooks.include_source(m["path"], m["name"], bool(m["doc"])) for m in includes
        ]
        code = ["```py", *"\n\n".join(shown).splitlines(), "```"]
        if 'title="' not in info:  # a tab names the file already
            return code
        return [f"*From `{includes[0]['path']}`:*", "", *code]
    if lang == "python":
        return ["```python", *code, "```"]
    if lang in ("bash", "sh", "shell", "console"):
        return ["```console", *code, "```"]
    if lang == "text" and 'title="Output' in info:
        return [f"*Expected output{note}:*", "", "```text", *code, "```"]
    return [f"```{info}", *code, "```"]


def to_markdown(lines: list[str], hooks) -> list[str]:
    """A page's Markdown, or the body of one of its admonitions, for Jupyter."""
    out: list[str] = []
    comment = ""  # a comment on the line just above: the tolerance of an Output
    i = 0
    while i < len(lines):
        line = lines[i]
        if COMMENT.match(line):  # the tests' tolerance annotations are not shown
            comment = line
            i += 1
            continue
        above, comment = comment, ""
        titled = BLOCK_TITLE.match(line) or TAB_TITLE.match(line)
        if titled:  # an admonition or a tab: its title, then its indented body
            kind = titled.groupdict().get("kind") or ""
            title = titled["title"] or kind.capitalize()
            body = []
            i += 1
            while i < len(lines) and (
                not lines[i].strip() or lines[i].startswith("    ")
            ):
                body.append(lines[i])
                i += 1
            inner = textwrap.dedent("\n".join(body)).strip("\n").splitlines()
            out += [f"**{title}**", "", *to_markdown(inner, hooks), ""]
            continue
        fence = FENCE.match(line)
        if fence:
            indent, marks = fence["indent"], fence["fence"]
            code = []
            i += 1
            while i < len(lines) and lines[i].strip() != marks:
                code.append(
                    lines[i][len(indent) :] if lines[i].startswith(indent) else lines[i]
                )
                i += 1
            i += 1  # the closing fence
            note = output_note(above)
            block = convert_fence(fence["info"].strip(), code, hooks, note)
            out += [indent + x if x else "" for x in block]
            continue
        out.append(convert_text(line))
        i += 1
    return out


def notebook_text(page: Path, hooks=None) -> str:
    """The notebook of one lecture page, as the JSON text to write."""
    import jupytext
    import nbformat

    hooks = hooks or load_hooks()
    lines = page.read_text().splitlines()
    title, rest = lines[0], lines[1:]
    made = (
        f"*This notebook is made from `docs/lectures/{page.name}` by "
        "`python docs/make_notebooks.py`; change the page, then remake it.*"
    )
    markdown = "\n".join(
        [title, "", made, "", "```python", SETUP, "```", *to_markdown(rest, hooks)]
    )
    notebook = jupytext.reads(markdown + "\n", fmt="md")
    notebook.metadata = dict(KERNEL)
    for k, cell in enumerate(notebook.cells):
        cell.id = f"{page.stem}-{k:03d}"
        cell.metadata = {}
        if cell.cell_type == "code":
            cell.outputs, cell.execution_count = [], None
    notebook.nbformat, notebook.nbformat_minor = 4, 5
    nbformat.validate(notebook)
    return nbformat.writes(notebook) + "\n"


def lecture_pages() -> list[Path]:
    """Every lecture page, in order."""
    return sorted(LECTURES.glob("*.md"))


def main(argv: list[str] | None = None) -> int:
    """Write (or, with --check, compare) every lecture's notebook."""
    parser = argparse.ArgumentParser(
        prog="python docs/make_notebooks.py",
        description="Make the Jupyter notebooks of the lectures from their pages.",
    )
    parser.add_argument(
        "--check", action="store_true", help="write nothing; exit 1 if one is stale"
    )
    args = parser.parse_args(argv)
    hooks = load_hooks()
    stale = []
    NOTEBOOKS.mkdir(parents=True, exist_ok=True)
    for page in lecture_pages():
        target = NOTEBOOKS / f"{page.stem}.ipynb"
        text = notebook_text(page, hooks)
        if target.is_file() and target.read_text() == text:
            continue
        stale.append(target)
        if not args.check:
            target.write_text(text)
            print(f"wrote {target.relative_to(ROOT)}")
    if args.check and stale:
        names = ", ".join(str(t.relative_to(ROOT)) for t in stale)
        print(f"stale: {names}; run python docs/make_notebooks.py", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
