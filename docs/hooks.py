"""MkDocs hook: include a whole function or class of the engine by its name.

In a page, inside a fenced code block::

    --8<-- "backprop/layers.py::dense_backward"

names a function (or ``Class`` or ``Class.method``) instead of lines. Before
the Markdown is converted, this hook finds it with ``ast`` and rewrites the
line into the line-range form of ``pymdownx.snippets``
(``--8<-- "backprop/layers.py:34:55"``), which then includes the source. The
notes show the code as it is now; a renamed or deleted function fails the
(strict) build instead of showing stale lines.
"""

from __future__ import annotations

import ast
import re
from pathlib import Path

from mkdocs.exceptions import PluginError

ROOT = Path(__file__).resolve().parent.parent
INCLUDE = re.compile(r'--8<-- "(?P<path>[^":]+)::(?P<name>[\w.]+)"')


def definition_lines(path: Path, qualname: str) -> tuple[int, int]:
    """First and last line (1-based, decorators included) of a definition.

    Args:
        path: a Python source file.
        qualname: ``function``, ``Class`` or ``Class.method``.

    Returns:
        ``(first, last)`` line numbers.

    Raises:
        PluginError: the file or the name does not exist.
    """
    if not path.is_file():
        raise PluginError(f"{path}: source file not found")
    body: list[ast.stmt] = ast.parse(path.read_text()).body
    node = None
    for part in qualname.split("."):
        node = next(
            (
                n
                for n in body
                if isinstance(n, ast.FunctionDef | ast.AsyncFunctionDef | ast.ClassDef)
                and n.name == part
            ),
            None,
        )
        if node is None:
            raise PluginError(f"{path}: no definition named {qualname!r}")
        body = node.body
    first = min([node.lineno, *(d.lineno for d in node.decorator_list)])
    return first, node.end_lineno


def expand(markdown: str) -> str:
    """Rewrite every ``path::name`` include into a line-range include."""

    def replace(match: re.Match) -> str:
        first, last = definition_lines(ROOT / match["path"], match["name"])
        return f'--8<-- "{match["path"]}:{first}:{last}"'

    return INCLUDE.sub(replace, markdown)


def on_page_markdown(markdown: str, **kwargs) -> str:
    """MkDocs event: runs on each page's Markdown before it is converted."""
    return expand(markdown)
