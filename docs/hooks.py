"""MkDocs hook: include a function or class of the engine by its name.

In a page, inside a fenced code block::

    --8<-- "backprop/layers.py::dense_backward"

names a function (or ``Class`` or ``Class.method``) instead of lines. Before
the Markdown is converted, this hook finds it with ``ast`` and rewrites the
line into the line-range form of ``pymdownx.snippets``
(``--8<-- "backprop/layers.py:34:39,52:55"``), which then includes the
source. The docstring is left out, so the page shows the code; add ``+doc``
to keep it (``--8<-- "backprop/layers.py::dense_backward+doc"``). The notes
show the code as it is now; a renamed or deleted function fails the (strict)
build instead of showing stale lines.

The hook also shows readers the kind that ``tests/course/test_docs.py`` checks an
Output block's numbers as, declared in an HTML comment on the line above it:
a spread (``<!-- spread ± 0.01: name -->``) is titled "Output (± 0.01 across
CPUs)" (``spread ± 0.01 over seeds: name``: "across seeds and CPUs"), a
machine's numbers (``<!-- machine: a 2-core AMD EPYC -->``) "Output (measured
on a 2-core AMD EPYC)"; exact numbers keep the plain title.

``docs/make_notebooks.py`` uses ``include_source`` to put the same code into
the notebooks.
"""

from __future__ import annotations

import ast
import re
import textwrap
from pathlib import Path

from mkdocs.exceptions import PluginError

ROOT = Path(__file__).resolve().parent.parent
# (not in inline code: docs/checking.md shows the syntax itself)
INCLUDE = re.compile(
    r'(?<!`)--8<-- "(?P<path>[^":]+)::(?P<name>[\w.]+)(?P<doc>\+doc)?"'
)
KIND_LINE = re.compile(
    r"^\s*<!--\s*(?P<name>spread|machine)\s*(?P<tol>±[^:]*?)?\s*:\s*(?P<label>.*?)"
    r"\s*-->\s*$"
)
OUTPUT_TITLE = re.compile(r'title="Output"')

Definition = ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef


def find_definition(path: Path, qualname: str) -> Definition:
    """The ``ast`` node of ``function``, ``Class`` or ``Class.method`` in a file.

    Raises:
        PluginError: the file or the name does not exist.
    """
    if not path.is_file():
        raise PluginError(f"{path}: source file not found")
    body: list[ast.stmt] = ast.parse(path.read_text()).body
    node = None
    for part in qualname.split("."):
        node = next(
            (n for n in body if isinstance(n, Definition) and n.name == part), None
        )
        if node is None:
            raise PluginError(f"{path}: no definition named {qualname!r}")
        body = node.body
    return node


def definition_lines(path: Path, qualname: str) -> tuple[int, int]:
    """First and last line (1-based, decorators included) of a definition."""
    node = find_definition(path, qualname)
    first = min([node.lineno, *(d.lineno for d in node.decorator_list)])
    return first, node.end_lineno


def line_ranges(path: Path, qualname: str, doc: bool = False) -> list[tuple[int, int]]:
    """The (first, last) line ranges to show: the definition, less its docstring.

    Args:
        path: a Python source file.
        qualname: ``function``, ``Class`` or ``Class.method``.
        doc: keep the docstring.

    Returns:
        One range, or two (the lines above the docstring and those below it).
    """
    node = find_definition(path, qualname)
    first, last = definition_lines(path, qualname)
    head = node.body[0]
    has_doc = (
        isinstance(head, ast.Expr)
        and isinstance(head.value, ast.Constant)
        and isinstance(head.value.value, str)
    )
    if doc or not has_doc or len(node.body) == 1:
        return [(first, last)]
    return [(first, head.lineno - 1), (head.end_lineno + 1, last)]


def include_source(path: str, qualname: str, doc: bool = False) -> str:
    """The included code itself, dedented, as the built page shows it."""
    lines = (ROOT / path).read_text().splitlines()
    chosen = [
        line
        for a, b in line_ranges(ROOT / path, qualname, doc)
        for line in lines[a - 1 : b]
    ]
    return textwrap.dedent("\n".join(chosen))


def expand(markdown: str) -> str:
    """Rewrite every ``path::name`` include into a line-range include."""

    def replace(match: re.Match) -> str:
        ranges = line_ranges(ROOT / match["path"], match["name"], bool(match["doc"]))
        spec = ",".join(f"{a}:{b}" for a, b in ranges)
        return f'--8<-- "{match["path"]}:{spec}"'

    return INCLUDE.sub(replace, markdown)


def show_kinds(markdown: str) -> str:
    """Title each spread or machine Output block with its kind, as declared."""
    lines = markdown.split("\n")
    for k, line in enumerate(lines[:-1]):
        m = KIND_LINE.match(line)
        if not m or not OUTPUT_TITLE.search(lines[k + 1]):
            continue
        if m["name"] == "spread":
            tol = " ".join(m["tol"].split())
            over = "seeds and CPUs" if tol.endswith("over seeds") else "CPUs"
            tol = tol.removesuffix(" over seeds")
            title = f"Output ({tol} across {over})"
        else:
            title = f"Output (measured on {m['label']})"
        lines[k + 1] = OUTPUT_TITLE.sub(f'title="{title}"', lines[k + 1])
    return "\n".join(lines)


def on_page_markdown(markdown: str, **kwargs) -> str:
    """MkDocs event: runs on each page's Markdown before it is converted."""
    return show_kinds(expand(markdown))
